"""Schema versions of the metadata store, apart from the cloud database's Alembic chain.

The object store may share a PostgreSQL database with the cloud or live in its own SQLite
file; either way its tables (all ``s3_*``) move on their own numbered steps, recorded in
``s3_schema_version``. The pending steps run in one transaction with the version bump, so a
crash mid-upgrade leaves the previous version intact, and every server may call ``upgrade`` at
start: the write lock (BEGIN IMMEDIATE on SQLite, a table lock on PostgreSQL) lets one win and
the others then find nothing to do. Add a step by appending a function; never edit one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Engine, inspect, select, text

from cumulo.objectstore.meta import schema


def _v1_initial(conn: Connection) -> None:
    """Version 1: the tables as ``schema.py`` first shipped them."""
    schema.metadata.create_all(conn, checkfirst=True)


def _v2_public_access_block(conn: Connection) -> None:
    """Version 2: buckets keep a PublicAccessBlockConfiguration. A database made by version 1
    of this code lacks the column; one made since (create_all) already has it."""
    columns = {c["name"] for c in inspect(conn).get_columns(schema.buckets.name)}
    if "public_access_block" not in columns:
        conn.execute(text("ALTER TABLE s3_buckets ADD COLUMN public_access_block JSON"))


def _v3_users_and_limits(conn: Connection) -> None:
    """Version 3: S3-only users and per-owner limits (the admin API)."""
    schema.metadata.create_all(conn, tables=[schema.users, schema.limits], checkfirst=True)


def _v4_object_lock(conn: Connection) -> None:
    """Version 4: buckets keep an object lock configuration."""
    columns = {c["name"] for c in inspect(conn).get_columns(schema.buckets.name)}
    if "object_lock" not in columns:
        conn.execute(text("ALTER TABLE s3_buckets ADD COLUMN object_lock JSON"))


STEPS: list[Callable[[Connection], None]] = [
    _v1_initial,
    _v2_public_access_block,
    _v3_users_and_limits,
    _v4_object_lock,
]
HEAD = len(STEPS)


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table(schema.schema_version.name):
        return 0
    value = conn.scalar(select(schema.schema_version.c.version))
    return int(value or 0)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Serialises concurrent upgrades from several s3 processes of a farm.
        conn.execute(text("SELECT pg_advisory_xact_lock(7480001)"))


def upgrade(engine: Engine) -> int:
    """Apply every missing step; returns the version reached."""
    with engine.begin() as conn:
        _lock(conn)
        version = current_version(conn)
        if version > HEAD:
            raise RuntimeError(
                f"object store schema {version} is newer than this Cumulo (knows {HEAD})"
            )
        for number in range(version + 1, HEAD + 1):
            STEPS[number - 1](conn)
            _record(conn, number)
        return HEAD


def _record(conn: Connection, number: int) -> None:
    table = schema.schema_version
    if conn.scalar(select(table.c.id)) is None:
        conn.execute(table.insert().values(id=1, version=number))
    else:
        conn.execute(table.update().values(version=number))
