"""Fixtures: real servers on loopback, one per database backend, shared by a test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cloud import Cloud, make_cloud

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("pg", id="pg", marks=pytest.mark.pg)]


def _database_url(backend: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return ""
    from tests.support.postgres import database_url_for

    return database_url_for(request, tmp.name)


@pytest.fixture(scope="session", params=BACKENDS)
def cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cloud]:
    """A running management server; tests must create uniquely named resources."""
    data_dir = tmp_path_factory.mktemp(f"cloud-{request.param}")
    c = make_cloud(data_dir, _database_url(request.param, data_dir, request))
    c.start()
    try:
        yield c
    finally:
        c.stop()
