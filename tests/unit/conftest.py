"""Fixtures for the service-level unit tests: a fresh cloud database per test, without a server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.services.identity.bootstrap import ensure_cloud


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
