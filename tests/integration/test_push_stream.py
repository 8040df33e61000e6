"""The push stream (GET /client/events/stream): Server-Sent Events of the caller's events.

A client reads the stream in a thread and stamps each event with its arrival time; jobs are
real async commands (authorizeSecurityGroupIngress) run by the server's job workers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from cumulo.api.cloudstack.signing import sign_params
from tests.integration.tenants import PASSWORD, Tenant, make_tenant, uniq
from tests.support.cloud import Cloud, Keys

PATH = "/client/events/stream"


@dataclass
class StreamClient:
    """One SSE connection, read in a thread: (arrival time, id, event, data) per event."""

    url: str
    headers: dict[str, str]
    got: list[tuple[float, int, str, dict[str, Any]]] = field(default_factory=list)
    comments: int = 0
    connected: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        try:
            self._read()
        except httpx.HTTPError:  # the server went away: the test notices missing events
            self.connected.set()

    def _read(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=30)) as client,
            client.stream("GET", self.url, headers=self.headers) as resp,
        ):
            assert resp.status_code == 200, resp.read()
            assert resp.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            for line in resp.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith(":"):
                    self.comments += 1
                    self.connected.set()
                elif line == "":
                    if "data" in fields:
                        data = json.loads(fields["data"])
                        self.got.append((time.time(), int(fields["id"]), fields["event"], data))
                    fields = {}
                else:
                    key, _, value = line.partition(": ")
                    fields[key] = value

    def start(self) -> StreamClient:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the stream never said hello"
        return self

    def close(self) -> None:
        self.stop.set()

    def wait_for(self, pred: Any, timeout: float = 20) -> tuple[float, int, str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in list(self.got):
                if pred(item[3]):
                    return item
            time.sleep(0.01)
        raise AssertionError(f"never streamed: {[g[3] for g in self.got]}")


def signed_url(cloud: Cloud, keys: Keys) -> str:
    query = {"apiKey": keys.api_key, "response": "json", "command": "streamEvents"}
    query["signature"] = sign_params(keys.secret, query)
    return f"http://127.0.0.1:{cloud.port}{PATH}?{urlencode(query)}"


@pytest.fixture
def streams() -> Iterator[list[StreamClient]]:
    made: list[StreamClient] = []
    yield made
    for s in made:
        s.close()


def open_stream(
    cloud: Cloud, keys: Keys, streams: list[StreamClient], last: int | None = None
) -> StreamClient:
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    s = StreamClient(signed_url(cloud, keys), headers).start()
    streams.append(s)
    return s


def completion(jobid: str) -> Any:
    return lambda d: d.get("category") == "AsyncJobEvent" and d.get("jobid") == jobid


def authorize(t: Tenant) -> str:
    group = t.call("createSecurityGroup", name=uniq("sg"))["securitygroup"]
    job = t.call(
        "authorizeSecurityGroupIngress",
        securitygroupid=group["id"],
        protocol="tcp",
        startport=22,
        endport=22,
        cidrlist="192.0.2.0/24",
    )
    return str(job["jobid"])


def test_own_job_completion_arrives_within_100_ms(
    cloud: Cloud, streams: list[StreamClient]
) -> None:
    a = make_tenant(cloud)
    s = open_stream(cloud, a.keys, streams)
    for _ in range(3):  # the worst of three, so one lucky run proves nothing
        jobid = authorize(a)
        arrived, _id, kind, data = s.wait_for(completion(jobid))
        assert kind == "AsyncJobEvent" and data["status"] == "SUCCEEDED"
        assert data["cmd"] == "authorizeSecurityGroupIngress" and data["jobstatus"] == 1
        completed = datetime.fromisoformat(data["completed"]).timestamp()
        assert arrived - completed < 0.100, f"{(arrived - completed) * 1000:.1f} ms"
        done = cloud.wait_job(jobid, a.keys)
        assert done["jobstatus"] == 1


def test_no_cross_tenant_events(cloud: Cloud, streams: list[StreamClient]) -> None:
    a, b = make_tenant(cloud), make_tenant(cloud)
    sa, sb = open_stream(cloud, a.keys, streams), open_stream(cloud, b.keys, streams)
    ja, jb = authorize(a), authorize(b)
    sa.wait_for(completion(ja))
    sb.wait_for(completion(jb))
    time.sleep(0.5)
    a_acct, b_acct = a.name, b.name
    for client, mine, other_job, other in ((sa, a_acct, jb, b_acct), (sb, b_acct, ja, a_acct)):
        seen = [g[3] for g in client.got]
        assert seen, "a stream saw nothing at all"
        assert not [d for d in seen if d.get("jobid") == other_job]
        assert not [d for d in seen if d.get("account") == other]
        assert all(d.get("account") in (mine, None) for d in seen)
    ids = [g[1] for g in sa.got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_resume_with_last_event_id(cloud: Cloud, streams: list[StreamClient]) -> None:
    a = make_tenant(cloud)
    s = open_stream(cloud, a.keys, streams)
    first = authorize(a)
    _t, last_id, _k, _d = s.wait_for(completion(first))
    s.close()
    missed = [authorize(a) for _ in range(2)]
    for jobid in missed:
        assert cloud.wait_job(jobid, a.keys)["jobstatus"] == 1
    again = open_stream(cloud, a.keys, streams, last=last_id)
    for jobid in missed:
        again.wait_for(completion(jobid))
    assert min(g[1] for g in again.got) > last_id
    assert not [g for g in again.got if completion(first)(g[3])]


def test_unauthenticated_or_badly_signed_stream_is_refused(cloud: Cloud) -> None:
    url = f"http://127.0.0.1:{cloud.port}{PATH}"
    assert httpx.get(url, timeout=10).status_code == 401
    bad = signed_url(cloud, Keys(cloud.admin.api_key, "not-the-secret"))
    assert httpx.get(bad, timeout=10).status_code == 401


def test_a_login_session_streams_like_the_dashboard(
    cloud: Cloud, streams: list[StreamClient]
) -> None:
    """Session cookies plus the sessionkey parameter, as the dashboard authenticates its API
    calls (api.sessionkey.check.locations=CookieAndParameter); a wrong sessionkey with the
    right cookies is refused."""
    a = make_tenant(cloud)
    resp = httpx.post(
        cloud.endpoint,
        data={"command": "login", "response": "json", "username": a.username, "password": PASSWORD},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    jsession, key = resp.cookies["JSESSIONID"], resp.cookies["sessionkey"]
    base = f"http://127.0.0.1:{cloud.port}{PATH}"
    cookies = {"Cookie": f"JSESSIONID={jsession}; sessionkey={key}"}
    s = StreamClient(f"{base}?{urlencode({'sessionkey': key})}", cookies)
    streams.append(s.start())
    jobid = authorize(a)
    s.wait_for(completion(jobid))
    bad = httpx.get(f"{base}?sessionkey=wrong", headers=cookies, timeout=10)
    assert bad.status_code == 401
