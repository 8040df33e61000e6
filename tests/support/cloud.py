"""A real Cumulo management server in a subprocess, on a free loopback port.

Tests talk to it over HTTP only, with real clients; nothing of the server runs in the test
process except ``init_cloud`` (the same code ``cumulo init`` runs) to create the first rows.
"""

from __future__ import annotations

import configparser
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from cumulo.api.cloudstack.signing import sign_params


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Keys:
    api_key: str
    secret: str


@dataclass
class Cloud:
    data_dir: Path
    port: int
    env: dict[str, str]
    admin: Keys
    admin_password: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=lambda: Path("/dev/null"))
    integration_port: int = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/api"

    def start(self) -> None:
        self.log_path = self.data_dir / f"server-{time.time_ns()}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cumulo", "server"],
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/livez", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not come up in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    # --- raw requests, for checks that a client library would hide -----------------------

    def signed(
        self, command: str, keys: Keys | None = None, *, method: str = "GET", **params: Any
    ) -> httpx.Response:
        keys = keys or self.admin
        query = {
            "command": command,
            "response": "json",
            "apiKey": keys.api_key,
            **{k: str(v) for k, v in params.items()},
        }
        query["signature"] = sign_params(keys.secret, query)
        if method == "POST":
            return httpx.post(self.endpoint, data=query, timeout=30)
        return httpx.get(f"{self.endpoint}?{urlencode(query)}", timeout=30)

    def call(self, command: str, keys: Keys | None = None, **params: Any) -> dict[str, Any]:
        """A signed JSON call that must succeed; returns the body under <command>response."""
        resp = self.signed(command, keys, **params)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()[f"{command.lower()}response"]
        return body

    def wait_job(self, jobid: str, keys: Keys | None = None, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.call("queryAsyncJobResult", keys, jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {jobid} still running after {timeout} s")


def make_cloud(data_dir: Path, database_url: str = "", **env_extra: str) -> Cloud:
    """Initialise a cloud in ``data_dir`` (admin, keys) and return it, not yet started."""
    from cumulo.cli.main import init_cloud
    from cumulo.common.settings import load_settings

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    env.update(
        {
            "CUMULO_DATA_DIR": str(data_dir),
            "CUMULO_API__PORT": str(port),
            "CUMULO_DATABASE__URL": database_url,
            "CUMULO_LOG__FORMAT": "json",
            "CUMULO_JOBS__POLL_SECONDS": "0.1",
            **env_extra,
        }
    )
    settings = load_settings(data_dir=data_dir, database={"url": database_url}, api={"port": port})
    password = init_cloud(settings)
    assert password is not None, "the data directory was not empty"
    ini = configparser.ConfigParser()
    ini.read(data_dir / "admin.ini")
    keys = Keys(ini["cloudstack"]["key"], ini["cloudstack"]["secret"])
    return Cloud(
        data_dir=data_dir,
        port=port,
        env=env,
        admin=keys,
        admin_password=password,
        integration_port=int(env_extra.get("CUMULO_API__INTEGRATION_PORT", "0")),
    )
