"""Webhooks over the CloudStack API, against receivers on loopback.

Events come from real commands (updateUser writes USER.UPDATE); receivers are plain HTTP
servers in this process that record what they got and verify X-CS-Signature themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.tenants import DOMAIN_ADMIN, Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud, make_cloud


@dataclass
class Receiver:
    """Records every POST; answers 500 to the first ``fail`` USER.UPDATE events."""

    fail: int = 0
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for _h, body in self.got]

    def wait_for(self, pred: Any, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if pred(events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"receiver never saw what was expected: {self.events()}")


def start_receiver(fail: int = 0) -> Receiver:
    rec = Receiver(fail=fail)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with rec.lock:
                rec.got.append((dict(self.headers), body))
                failing = rec.fail > 0 and json.loads(body).get("type") == "USER.UPDATE"
                rec.fail -= 1 if failing else 0
            self.send_response(500 if failing else 200)
            self.end_headers()
            self.wfile.write(b"nope" if failing else b"ok")

        def log_message(self, *_args: Any) -> None:
            pass

    rec.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=rec.server.serve_forever, daemon=True).start()
    return rec


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for rec in made:
        assert rec.server is not None
        rec.server.shutdown()
        rec.server.server_close()


@pytest.fixture(scope="module")
def fast_retries(cloud: Cloud) -> Iterator[None]:
    cloud.call("updateConfiguration", name="event.bus.retry.backoff", value="0.2")
    yield
    cloud.call("resetConfiguration", name="event.bus.retry.backoff")


def touch(t: Tenant) -> None:
    t.call("updateUser", id=t.user_id, firstname=uniq("fn"))


def verified(rec: Receiver, secret: str) -> None:
    for headers, body in rec.got:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-CS-Signature"] == expected


def test_owner_gets_every_own_event_signed_and_none_of_another_account(
    cloud: Cloud, receivers: list[Receiver]
) -> None:
    a, b = make_tenant(cloud), make_tenant(cloud)
    rec = start_receiver()
    receivers.append(rec)
    secret = uniq("secret")
    hook = a.call("createWebhook", name=uniq("wh"), payloadurl=rec.url, secretkey=secret)["webhook"]
    assert (hook["scope"], hook["state"], hook["account"]) == ("Local", "Enabled", a.name)
    assert hook["payloadurl"] == rec.url and hook["sslverification"] is False
    for _ in range(3):
        touch(a)
        touch(b)
    own = a.call("listEvents", type="USER.UPDATE")["event"]
    assert len(own) == 3
    wanted = {e["id"] for e in own}
    got = rec.wait_for(lambda evs: wanted <= {e.get("eventid") for e in evs})
    verified(rec, secret)
    assert all(e["account"] == a.name for e in got if e["category"] == "ActionEvent")
    others = {e["id"] for e in b.call("listEvents")["event"]}
    time.sleep(1)  # anything wrongly fanned out to this webhook would have arrived by now
    assert not others & {e.get("eventid") for e in rec.events()}
    update = next(e for e in got if e["eventid"] in wanted)
    assert (update["event"], update["status"], update["entity"]) == (
        "USER.UPDATE",
        "Completed",
        "User",
    )
    assert update["entityuuid"] == a.user_id and update["eventDateTime"]


def test_failing_receiver_gets_retries_and_deliveries_are_listed_and_reexecuted(
    cloud: Cloud, receivers: list[Receiver], fast_retries: None
) -> None:
    a = make_tenant(cloud)
    rec = start_receiver(fail=2)
    receivers.append(rec)
    hook = a.call("createWebhook", name=uniq("wh"), payloadurl=rec.url)["webhook"]
    touch(a)
    event = a.call("listEvents", type="USER.UPDATE")["event"][0]

    def three_tries(evs: list[dict[str, Any]]) -> bool:
        return sum(e.get("eventid") == event["id"] for e in evs) == 3

    rec.wait_for(three_tries)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = a.call("listWebhookDeliveries", webhookid=hook["id"], eventtype="USER.UPDATE")
        if listed.get("count", 0) == 3:
            break
        time.sleep(0.1)
    rows = listed["webhookdelivery"]
    assert [r["success"] for r in rows] == [True, False, False]  # newest first
    assert [r["responsecode"] for r in rows] == [200, 500, 500]
    assert all(r["webhookid"] == hook["id"] and r["eventid"] == event["id"] for r in rows)
    assert rows[0]["response"] == "ok" and rows[0]["startdate"] and rows[0]["enddate"]
    again = a.call("executeWebhookDelivery", id=rows[0]["id"])["webhookdelivery"]
    assert again["success"] is True and again["eventid"] == event["id"]
    assert rec.got[-1][1].decode() == rows[0]["payload"]
    listed = a.call("listWebhookDeliveries", webhookid=hook["id"], eventtype="USER.UPDATE")
    assert listed["count"] == 4
    a.call("deleteWebhookDelivery", id=again["id"])
    assert a.call("listWebhookDeliveries", id=again["id"]).get("count", 0) == 0


def test_giving_up_after_the_configured_tries(
    cloud: Cloud, receivers: list[Receiver], fast_retries: None
) -> None:
    a = make_tenant(cloud)
    rec = start_receiver(fail=1000)
    receivers.append(rec)
    hook = a.call("createWebhook", name=uniq("wh"), payloadurl=rec.url)["webhook"]
    touch(a)
    event = a.call("listEvents", type="USER.UPDATE")["event"][0]
    rec.wait_for(lambda evs: sum(e.get("eventid") == event["id"] for e in evs) >= 3)
    time.sleep(1.5)  # a fourth try would come 0.2 * 2**3 s later
    assert sum(e.get("eventid") == event["id"] for e in rec.events()) == 3
    listed = a.call("listWebhookDeliveries", webhookid=hook["id"], eventtype="USER.UPDATE")
    assert listed["count"] == 3 and not any(r["success"] for r in listed["webhookdelivery"])


def test_update_list_delete_and_scopes(cloud: Cloud, receivers: list[Receiver]) -> None:
    a, b = make_tenant(cloud), make_tenant(cloud)
    rec = start_receiver()
    receivers.append(rec)
    hook = a.call("createWebhook", name=uniq("wh"), payloadurl=rec.url)["webhook"]
    new = a.call("updateWebhook", id=hook["id"], state="Disabled", description="d")["webhook"]
    assert (new["state"], new["description"], new["name"]) == ("Disabled", "d", hook["name"])
    assert [w["id"] for w in a.call("listWebhooks")["webhook"]] == [hook["id"]]
    assert b.call("listWebhooks").get("count", 0) == 0
    assert hook["id"] in {w["id"] for w in cloud.call("listWebhooks", listall=True)["webhook"]}
    # a disabled webhook gets nothing new
    touch(a)
    time.sleep(1)
    assert [e for e in rec.events() if e["type"] == "USER.UPDATE"] == []
    code, _body = error(
        a.raw("createWebhook", name=uniq("wh"), payloadurl=rec.url, scope="Global"), "createWebhook"
    )
    assert code == 531
    a.call("deleteWebhook", id=hook["id"])
    assert a.call("listWebhooks").get("count", 0) == 0


def test_bad_input_changes_nothing(cloud: Cloud, receivers: list[Receiver]) -> None:
    a, b = make_tenant(cloud), make_tenant(cloud)
    rec = start_receiver()
    receivers.append(rec)
    name = uniq("bad")
    for url in ("not a url", "ftp://127.0.0.1/x", "http://192.0.2.1/outside-allowed"):
        code, body = error(a.raw("createWebhook", name=name, payloadurl=url), "createWebhook")
        assert code == 431, body
    code, _ = error(
        a.raw("createWebhook", name=name, payloadurl=rec.url, state="On"), "createWebhook"
    )
    assert code == 431
    assert a.call("listWebhooks", name=name).get("count", 0) == 0
    code, _ = error(
        a.raw("updateWebhook", id="9d6ad0b8-4c1b-4d2f-9a3c-000000000000", name="x"), "updateWebhook"
    )
    assert code == 431
    hook = a.call("createWebhook", name=name, payloadurl=rec.url)["webhook"]
    code, _ = error(b.raw("updateWebhook", id=hook["id"], name="stolen"), "updateWebhook")
    assert code == 531
    code, _ = error(b.raw("deleteWebhook", id=hook["id"]), "deleteWebhook")
    assert code == 531
    code, _ = error(
        a.raw("updateWebhook", id=hook["id"], payloadurl="http://192.0.2.1/"), "updateWebhook"
    )
    assert code == 431
    (still,) = a.call("listWebhooks", id=hook["id"])["webhook"]
    assert (still["name"], still["payloadurl"]) == (name, rec.url)


def test_killed_server_delivers_its_undelivered_outbox_after_restart(
    tmp_path: Path, receivers: list[Receiver]
) -> None:
    """Events committed while dispatch was paused sit in the outbox; the server is killed -9,
    restarted, dispatch resumed: every event arrives."""
    c = make_cloud(tmp_path / "cloud")
    c.start()
    try:
        a = make_tenant(c)
        rec = start_receiver()
        receivers.append(rec)
        a.call("createWebhook", name=uniq("wh"), payloadurl=rec.url)
        c.call("updateConfiguration", name="event.bus.dispatch.enabled", value="false")
        time.sleep(3.5)  # the configuration cache (3 s) of the dispatcher
        for _ in range(5):
            touch(a)
        wanted = {e["id"] for e in a.call("listEvents", type="USER.UPDATE")["event"]}
        assert len(wanted) == 5
        time.sleep(1)
        assert not wanted & {e.get("eventid") for e in rec.events()}
        c.kill9()
        c.start()
        c.call("updateConfiguration", name="event.bus.dispatch.enabled", value="true")
        rec.wait_for(lambda evs: wanted <= {e.get("eventid") for e in evs}, timeout=30)
    finally:
        c.stop()


def test_domain_scope_gets_the_subtree_and_nothing_outside(
    cloud: Cloud, receivers: list[Receiver]
) -> None:
    top = make_domain(cloud)
    child = make_domain(cloud, top["id"])
    admin = make_tenant(cloud, top["id"], DOMAIN_ADMIN)
    inside, below, outside = (
        make_tenant(cloud, top["id"]),
        make_tenant(cloud, child["id"]),
        make_tenant(cloud),
    )
    rec = start_receiver()
    receivers.append(rec)
    admin.call("createWebhook", name=uniq("wh"), payloadurl=rec.url, scope="Domain")
    for t in (inside, below, outside):
        touch(t)
    wanted = {
        e["id"] for t in (inside, below) for e in t.call("listEvents", type="USER.UPDATE")["event"]
    }
    rec.wait_for(lambda evs: wanted <= {e.get("eventid") for e in evs})
    (theirs,) = outside.call("listEvents", type="USER.UPDATE")["event"]
    time.sleep(1)
    assert theirs["id"] not in {e.get("eventid") for e in rec.events()}
    assert outside.name not in {e.get("account") for e in rec.events()}
