"""KPI Bot's domain. Nothing in this package imports Slack: it takes plain values and returns plain
dataclasses that the command line, the Slack layer (``bot/``), the worker and the tests all share.

Layers (each imports only the ones above it; ``tests/test_architecture.py`` checks it):

    errors, i18n, refs, settings, db      foundations: the error tree, message catalogs, plain references
    data/                                 the shop's data: schema, importer, demo shop
    metrics/                              catalog, periods, question reading, SQL, engine, formatting
    state/                                the bot's database: tables, migrations, stores, delivery log
    goals/, alerts/                       the features, on metrics and state
    digests/                              on goals, metrics and state
    services, seed, cli                   composition: build the parts, seed a team, the command line
"""

__version__ = "0.1.0"
