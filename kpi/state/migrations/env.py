"""Alembic environment for the state database; the URL comes from kpibot's settings, never a file."""

from alembic import context
from sqlalchemy import pool

from kpi.db import make_engine
from kpi.state.tables import VERSION_TABLE, state_metadata

config = context.config
url = config.attributes.get("url")
engine = make_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=state_metadata, version_table=VERSION_TABLE,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
