"""Engines and transactions: the one place that knows which database it talks to.

SQLite runs in WAL mode so readers never wait for the writer. Write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that later tries to write can deadlock against
another writer in a way the busy timeout does not resolve, so writers take the lock up front
and readers use a separate engine with plain deferred transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_MS = 30_000


def _sqlite_engine(url: str, echo: bool, immediate: bool) -> Engine:
    engine = create_engine(
        url, echo=echo, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN is ours to choose.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """Sessions scoped to one transaction: ``read()`` always rolls back, ``write()`` commits."""

    def __init__(self, url: str, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, echo, immediate=True)
            self.read_engine = _sqlite_engine(url, echo, immediate=False)
        else:
            self.engine = create_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.read_engine = self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._writer() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        # Closing the session returns its connection to the pool, whose reset-on-return rolls
        # the transaction back; an explicit rollback first would be a second round trip.
        with self._reader() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
