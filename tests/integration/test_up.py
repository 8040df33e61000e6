"""`cumulo up`: a cloud in a box with no default password, and logs that keep secrets out."""

from __future__ import annotations

import configparser
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cloud import Keys, free_port

SECRET_FILES = ("admin-password", "admin.ini", "master.key")


def _start_up(data_dir: Path, port: int, log: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    env.update(
        CUMULO_DATA_DIR=str(data_dir),
        CUMULO_API__PORT=str(port),
        CUMULO_LOG__FILE=str(log),
        CUMULO_S3__PORT=str(free_port()),
        CUMULO_BOX__VMS="false",  # the box's VM host has its own test (test_up_box.py)
        CUMULO_BOX__DEBIAN="false",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "cumulo", "up"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _read_banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    banner: dict[str, str] = {}
    assert proc.stdout is not None
    while "API keys (cs)" not in banner:
        line = proc.stdout.readline()
        assert line, "cumulo up exited before printing its banner"
        key, _, value = line.partition(":")
        banner[key.strip()] = value.strip()
    return banner


def _wait_live(port: int) -> None:
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], Path, int]]:
    port, log = free_port(), tmp_path / "server.log"
    proc = _start_up(tmp_path / "data", port, log)
    try:
        banner = _read_banner(proc)
        _wait_live(port)
        yield proc, banner, tmp_path / "data", port
    finally:
        _stop(proc)


def test_up_prints_endpoint_and_a_random_password_once(
    up: tuple[subprocess.Popen[str], dict[str, str], Path, int], tmp_path: Path
) -> None:
    proc, banner, data_dir, port = up
    assert banner["Cumulo API"] == f"http://127.0.0.1:{port}/client/api"
    password = banner["Admin password"].split()[0]
    assert len(password) >= 16
    assert (data_dir / "admin-password").read_text().strip() == password
    for name in SECRET_FILES:
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700  # the database is private too
    resp = httpx.post(
        f"http://127.0.0.1:{port}/client/api",
        data={"command": "login", "username": "admin", "password": password, "response": "json"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["loginresponse"]["account"] == "admin"
    wrong = httpx.post(
        f"http://127.0.0.1:{port}/client/api",
        data={"command": "login", "username": "admin", "password": "admin", "response": "json"},
    )
    assert wrong.status_code == 401  # there is no default password
    _stop(proc)
    again = _start_up(data_dir, port, tmp_path / "again.log")
    try:
        second = _read_banner(again)
        assert password not in second["Admin password"]
        assert str(data_dir / "admin-password") in second["Admin password"]
    finally:
        _stop(again)


def test_logs_carry_request_ids_and_no_secrets(
    up: tuple[subprocess.Popen[str], dict[str, str], Path, int], tmp_path: Path
) -> None:
    proc, banner, data_dir, port = up
    password = banner["Admin password"].split()[0]
    endpoint = f"http://127.0.0.1:{port}/client/api"
    login = httpx.post(
        endpoint,
        data={"command": "login", "username": "admin", "password": password, "response": "json"},
    )
    sessionkey = login.json()["loginresponse"]["sessionkey"]
    ini = configparser.ConfigParser()
    ini.read(data_dir / "admin.ini")
    keys = Keys(ini["cloudstack"]["key"], ini["cloudstack"]["secret"])
    bad = httpx.get(
        endpoint,
        params={"command": "listUsers", "apiKey": keys.api_key, "signature": "Zm9vYmFy"},
    )
    assert bad.status_code == 401
    rid = bad.headers["x-request-id"]
    _stop(proc)
    text = (tmp_path / "server.log").read_text()
    assert rid in text  # the failed call is logged with its request id
    for secret in (password, sessionkey, keys.secret, "Zm9vYmFy"):
        assert secret not in text
