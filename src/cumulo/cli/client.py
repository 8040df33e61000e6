"""A small signed CloudStack API client for the ``cumulo`` command (it talks HTTP only).

Credentials come from, in order: explicit arguments, ``CLOUDSTACK_ENDPOINT``/``_KEY``/
``_SECRET``, then a ``cs``-style ini file (``CLOUDSTACK_CONFIG`` or ``<data_dir>/admin.ini``).
"""

from __future__ import annotations

import configparser
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cumulo.api.cloudstack.signing import sign_params


class ApiError(RuntimeError):
    def __init__(self, command: str, status: int, errorcode: int, text: str) -> None:
        super().__init__(f"{command}: {errorcode} {text}")
        self.command, self.status, self.errorcode, self.text = command, status, errorcode, text


@dataclass(frozen=True)
class Credentials:
    endpoint: str
    key: str
    secret: str


def load_credentials(ini: Path | None = None) -> Credentials:
    env = os.environ
    if env.get("CLOUDSTACK_ENDPOINT") and env.get("CLOUDSTACK_KEY"):
        return Credentials(
            env["CLOUDSTACK_ENDPOINT"], env["CLOUDSTACK_KEY"], env.get("CLOUDSTACK_SECRET", "")
        )
    if ini is not None:
        path = ini
    elif env.get("CLOUDSTACK_CONFIG"):
        path = Path(env["CLOUDSTACK_CONFIG"])
    else:
        from cumulo.common.settings import load_settings

        path = load_settings().data_dir / "admin.ini"
    parser = configparser.ConfigParser()
    if not parser.read(path):
        raise FileNotFoundError(f"no credentials: set CLOUDSTACK_ENDPOINT/KEY/SECRET or {path}")
    section = parser["cloudstack"]
    return Credentials(section["endpoint"], section["key"], section["secret"])


class Client:
    def __init__(self, creds: Credentials, timeout: float = 60) -> None:
        self.creds = creds
        self.http = httpx.Client(timeout=timeout)

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        """One signed POST; returns the body under ``<command>response`` or raises ApiError."""
        query = {k: _text(v) for k, v in params.items() if v is not None}
        query.update(command=command, response="json", apiKey=self.creds.key)
        query["signature"] = sign_params(self.creds.secret, query)
        resp = self.http.post(self.creds.endpoint, data=query)
        body = resp.json()
        inner: dict[str, Any] = next(iter(body.values())) if body else {}
        if resp.status_code != 200:
            raise ApiError(
                command,
                resp.status_code,
                int(inner.get("errorcode", resp.status_code)),
                str(inner.get("errortext", resp.text)),
            )
        return inner

    def wait(self, command: str, timeout: float = 600, **params: Any) -> dict[str, Any]:
        """Run a command; for an async one, poll its job to the end and return its result."""
        submitted = self.call(command, **params)
        if "jobid" not in submitted:
            return submitted
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.call("queryAsyncJobResult", jobid=submitted["jobid"])
            if job["jobstatus"] == 1:
                result: dict[str, Any] = job.get("jobresult", {})
                return result
            if job["jobstatus"] != 0:
                err = job.get("jobresult", {})
                raise ApiError(
                    command,
                    200,
                    int(err.get("errorcode", 530)),
                    str(err.get("errortext", "job failed")),
                )
            time.sleep(0.2)
        raise ApiError(command, 200, 530, f"job {submitted['jobid']} still running")

    def find(self, command: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """The objects a list command returns (empty lists come back as ``{}``)."""
        items: list[dict[str, Any]] = self.call(command, listall="true", **params).get(key, [])
        return items


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)
