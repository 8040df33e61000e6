"""Alembic environment: runs migrations on the URL that cumulo.db.migrate put in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from cumulo.db.metadata import metadata as target_metadata

# Any constant will do, as long as every Cumulo uses the same one ("cumu").
MIGRATION_LOCK_KEY = 0x63756D75

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url
# NullPool: closing the connection ends the database session, which releases the lock.
engine = create_engine(url, poolclass=NullPool)
with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # Servers of a farm upgraded together would otherwise all read "no schema yet" and
        # race to create the same tables; with the lock the others wait, then find it current.
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
