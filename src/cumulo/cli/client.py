"""A small CloudStack API client for the ``cumulo`` command (it talks HTTP only).

Two ways in, as CloudMonkey offers: API key and secret (every request signed), or username,
password and domain (a ``login`` session: the JSESSIONID cookie plus the ``sessionkey``
parameter; on a 401 the client logs in again once and retries, so an expired session is
invisible to the user). A session may be kept in a 0600 file between invocations.

Credentials come from, in order: explicit arguments, ``CLOUDSTACK_ENDPOINT``/``_KEY``/
``_SECRET``, then a ``cs``-style ini file (``CLOUDSTACK_CONFIG`` or ``<data_dir>/admin.ini``).
"""

from __future__ import annotations

import configparser
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from cumulo.api.cloudstack.signing import sign_params


class ApiError(RuntimeError):
    def __init__(self, command: str, status: int, errorcode: int, text: str) -> None:
        super().__init__(f"{command}: {errorcode} {text}")
        self.command, self.status, self.errorcode, self.text = command, status, errorcode, text


@dataclass(frozen=True)
class Credentials:
    endpoint: str
    key: str = ""
    secret: str = ""
    username: str = ""
    password: str = ""
    domain: str = "/"

    @property
    def uses_session(self) -> bool:
        return not self.key and bool(self.username)


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
    def __init__(
        self, creds: Credentials, timeout: float = 60, session_file: Path | None = None
    ) -> None:
        self.creds = creds
        self.http = httpx.Client(timeout=timeout)
        self.session_file = session_file
        self.sessionkey = ""
        if creds.uses_session:
            self._load_session()

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        """One POST; returns the body under ``<command>response`` or raises ApiError."""
        query = {k: _text(v) for k, v in params.items() if v is not None}
        query.update(command=command, response="json")
        if not self.creds.uses_session:
            return self._send(command, self._signed(query))
        if not self.sessionkey:
            self.login()
        try:
            return self._send(command, {**query, "sessionkey": self.sessionkey})
        except ApiError as err:
            if err.status != 401:
                raise
        self.login()  # the session expired or was ended elsewhere: once more, freshly
        return self._send(command, {**query, "sessionkey": self.sessionkey})

    def login(self) -> None:
        """Start a session with the profile's username and password."""
        self.http.cookies.clear()
        body = self._send(
            "login",
            {
                "command": "login",
                "response": "json",
                "username": self.creds.username,
                "password": self.creds.password,
                "domain": self.creds.domain or "/",
            },
        )
        self.sessionkey = str(body["sessionkey"])
        self._save_session()

    def stream_request(self) -> tuple[str, dict[str, str]]:
        """The push stream's URL and cookies, authenticated as this client's API calls."""
        base = self.creds.endpoint.rsplit("/client/api", 1)[0]
        url = f"{base}/client/events/stream"
        if self.creds.uses_session:
            if not self.sessionkey:
                self.login()
            query = {"sessionkey": self.sessionkey}
        else:
            query = self._signed({"response": "json", "command": "streamEvents"})
        cookies = {c.name: c.value or "" for c in self.http.cookies.jar}
        return f"{url}?{urlencode(query)}", cookies

    def _signed(self, query: dict[str, str]) -> dict[str, str]:
        query["apiKey"] = self.creds.key
        query["signature"] = sign_params(self.creds.secret, query)
        return query

    def _send(self, command: str, form: dict[str, str]) -> dict[str, Any]:
        resp = self.http.post(self.creds.endpoint, data=form)
        try:
            body = resp.json()
        except ValueError:
            raise ApiError(command, resp.status_code, resp.status_code, resp.text[:200]) from None
        inner: dict[str, Any] = next(iter(body.values())) if isinstance(body, dict) and body else {}
        if resp.status_code != 200:
            raise ApiError(
                command,
                resp.status_code,
                int(inner.get("errorcode", resp.status_code)),
                str(inner.get("errortext", resp.text)),
            )
        return inner

    def _load_session(self) -> None:
        if self.session_file is None or not self.session_file.exists():
            return
        try:
            saved = json.loads(self.session_file.read_text())
        except ValueError:
            return
        if saved.get("endpoint") != self.creds.endpoint:
            return
        self.sessionkey = str(saved.get("sessionkey", ""))
        for name, value in dict(saved.get("cookies", {})).items():
            self.http.cookies.set(name, value)

    def _save_session(self) -> None:
        if self.session_file is None:
            return
        cookies = {c.name: c.value or "" for c in self.http.cookies.jar}
        data = {"endpoint": self.creds.endpoint, "sessionkey": self.sessionkey, "cookies": cookies}
        write_private(self.session_file, json.dumps(data))

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


def write_private(path: Path, text: str) -> None:
    """Create a 0600 file atomically: secrets are never world-readable, even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    return str(value)
