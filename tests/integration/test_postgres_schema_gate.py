"""``cumulo server`` refuses a database whose schema is behind, on SQLite and PostgreSQL.

Serving an old schema with new code could write rows the old schema cannot hold, so the
server stops before touching anything and says which command fixes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, inspect

from tests.support.cloud import free_port
from tests.support.postgres import session_cluster

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("pg", id="pg", marks=pytest.mark.pg)]


def _env(data_dir: Path, url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    env.update(
        {
            "CUMULO_DATA_DIR": str(data_dir),
            "CUMULO_DATABASE__URL": url,
            "CUMULO_API__PORT": str(port),
            "CUMULO_LOG__FORMAT": "json",
        }
    )
    return env


def _cumulo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cumulo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _serves(env: dict[str, str], port: int) -> bool:
    """Start ``cumulo server``, wait for /livez, stop it; True if it answered."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cumulo", "server"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                time.sleep(0.1)
        return False
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_refuses_a_schema_behind_until_db_upgrade(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data_dir = tmp_path / "data"
    if backend == "sqlite":
        url = f"sqlite:///{data_dir / 'cumulo.db'}"
        configured = ""  # the default: SQLite under the data directory
    else:
        name = f"gate_{uuid.uuid4().hex[:12]}"
        url = configured = session_cluster(request.config).create_database(name)
    port = free_port()
    env = _env(data_dir, configured, port)

    refused = _cumulo(env, "server")
    assert refused.returncode == 2, refused.stderr
    assert "cumulo db upgrade" in refused.stderr
    assert "Traceback" not in refused.stderr
    if backend == "sqlite":
        assert not (data_dir / "cumulo.db").exists(), "the refused server created a database"
    else:
        assert not _tables(url), "the refused server wrote a schema"
    assert not (data_dir / "master.key").exists(), "the refused server created a master key"

    upgraded = _cumulo(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert {"alembic_version", "async_jobs", "accounts"} <= _tables(url)
    assert _serves(env, port), "the server did not start on an up-to-date schema"


@pytest.mark.pg
def test_servers_upgrading_together_all_succeed(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A farm's servers may run ``cumulo db upgrade`` at once: none may fail the race."""
    for round_ in range(2):
        url = session_cluster(request.config).create_database(f"race_{uuid.uuid4().hex[:12]}")
        env = _env(tmp_path / f"data{round_}", url, free_port())
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "cumulo", "db", "upgrade"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [(proc.wait(60), proc.stderr.read() if proc.stderr else "") for proc in procs]
        assert [code for code, _ in results] == [0] * 4, [err[-500:] for _, err in results]
        assert {"alembic_version", "async_jobs"} <= _tables(url)


def test_server_refuses_a_schema_newer_than_its_code(tmp_path: Path) -> None:
    """A database migrated by a newer Cumulo: this server must not touch it either."""
    data_dir = tmp_path / "data"
    env = _env(data_dir, "", free_port())
    assert _cumulo(env, "db", "upgrade").returncode == 0
    engine = create_engine(f"sqlite:///{data_dir / 'cumulo.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    engine.dispose()
    refused = _cumulo(env, "server")
    assert refused.returncode == 2
    assert "newer than this Cumulo" in refused.stderr
