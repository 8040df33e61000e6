"""Fixtures for the service-level unit tests: a fresh cloud database per test, without a server.

``session`` is a transaction on a copy of a SQLite template (fast, for rules that do not depend
on the database); ``db_url``/``db`` are a migrated database on each backend, for behaviour that
does (locking, concurrency, SQL dialects).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.services.identity.bootstrap import ensure_cloud
from tests.support.postgres import session_cluster

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("pg", id="pg", marks=pytest.mark.pg)]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite database with a cloud's first rows; each test gets a copy, because
    migrating takes far longer than copying a file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    with db.write() as session:
        ensure_cloud(session)
    db.dispose()
    return path


@pytest.fixture
def session(template: Path, tmp_path: Path) -> Iterator[Session]:
    """One write transaction on this test's own copy of the template."""
    copy = tmp_path / "cloud.db"
    shutil.copy(template, copy)
    db = Database(f"sqlite:///{copy}")
    with db.write() as s:
        yield s
    db.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database holding the first rows of a cloud (root domain, admin, roles)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cloud.db'}"
    else:
        url = session_cluster(request.config).create_database(f"unit_{uuid.uuid4().hex[:12]}")
    upgrade(url)
    db = Database(url)
    try:
        with db.write() as session:
            ensure_cloud(session)
    finally:
        db.dispose()
    return url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()
