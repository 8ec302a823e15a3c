"""The shop's data (the *source*): its canonical schema, the importer that writes it, the demo shop.

schema      the six canonical tables (DESIGN.md section 3): their fields are a contract
importer    CSV and Shopify exports in, all or nothing, every bad line named
demo        a synthetic shop consistent across tables, for the demo, the tests and the benchmarks

May import: ``kpi.errors``, ``kpi.i18n``. Writes the shop data; reads nothing of the bot's own state.
"""
