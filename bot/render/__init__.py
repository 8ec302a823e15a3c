"""Block Kit rendering, one module per kind of message. Private: import the public API from ``bot.blocks``.

common   Message, limits, escaping, typed block builders and the ``fit`` guard
text     the fixed strings, marked for translation (kpi.i18n), and the little typography of each language
answer   a KPI answer (value, comparison, sample, chart, breakdown, share button)
guide    help, the KPI catalog (/kpi list) and error messages
home     the App Home view and progress bars
"""
