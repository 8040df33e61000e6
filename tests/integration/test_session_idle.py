"""A login session's timeout counts idle time: using the session pushes its expiry back."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.support.cloud import Cloud, make_cloud

TIMEOUT = 60  # the smallest allowed; sessions are touched after a tenth of it (6 s)


@pytest.fixture
def short_sessions(tmp_path: Path) -> Iterator[Cloud]:
    cloud = make_cloud(tmp_path, CUMULO_API__SESSION_TIMEOUT=str(TIMEOUT))
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


def _expires(cloud: Cloud) -> datetime:
    with sqlite3.connect(cloud.data_dir / "cumulo.db") as db:
        (value,) = db.execute("select expires from api_sessions").fetchone()
    return datetime.fromisoformat(value)


@pytest.mark.slow
def test_using_a_session_extends_it(short_sessions: Cloud) -> None:
    cloud = short_sessions
    client = httpx.Client()
    login = client.post(
        cloud.endpoint,
        data={
            "command": "login",
            "username": "admin",
            "password": cloud.admin_password,
            "response": "json",
        },
    )
    key = login.json()["loginresponse"]["sessionkey"]
    first = _expires(cloud)
    call = {"command": "listUsers", "response": "json", "sessionkey": key}
    assert client.get(cloud.endpoint, params=call).status_code == 200
    assert _expires(cloud) == first  # fresh sessions are not rewritten on every call
    time.sleep(TIMEOUT // 10 + 1)
    assert client.get(cloud.endpoint, params=call).status_code == 200
    assert (_expires(cloud) - first).total_seconds() >= TIMEOUT // 10
