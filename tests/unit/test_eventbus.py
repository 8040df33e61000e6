"""The event bus's pieces on a real (SQLite) schema: leases, routing keys, signing, guards."""

from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.db.models_eventbus import OutboxEvent, OutboxTask
from cumulo.services.config import ConfigStore
from cumulo.services.errors import ParamError
from cumulo.services.eventbus import outbox, webhooks
from cumulo.services.eventbus.dispatcher import PENDING, RABBITMQ, EventDispatcher
from cumulo.services.eventbus.rabbitmq import routing_key


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    upgrade(url)
    return Database(url)


def _tasks(db: Database, n: int) -> None:
    with db.write() as session:
        for i in range(n):
            row = outbox.publish(session, outbox.ACTION, "VM.START", {"i": i}, account_id=1)
            session.flush()
            now = utcnow()
            session.add(
                OutboxTask(
                    outbox_id=row.id, sink=RABBITMQ, state=PENDING, attempts=0,
                    next_attempt=now, created=now,
                )
            )  # fmt: skip


def test_two_dispatchers_never_claim_the_same_task(db: Database) -> None:
    _tasks(db, 300)
    store = ConfigStore()
    claimed: dict[int, list[int]] = {1: [], 2: []}
    start = threading.Barrier(2)

    def run(server_id: int) -> None:
        dispatcher = EventDispatcher(db, store, server_id)
        start.wait()
        while batch := dispatcher.claim():
            claimed[server_id].extend(c.task_id for c in batch)

    threads = [threading.Thread(target=run, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    both = claimed[1] + claimed[2]
    assert len(both) == len(set(both)) == 300


def test_an_expired_lease_is_claimed_again(db: Database) -> None:
    _tasks(db, 1)
    store = ConfigStore()
    first = EventDispatcher(db, store, 1).claim()
    assert len(first) == 1 and EventDispatcher(db, store, 2).claim() == []
    with db.write() as session:
        task = session.get(OutboxTask, first[0].task_id)
        assert task is not None
        task.lease_expires = utcnow().replace(year=2000)
    again = EventDispatcher(db, store, 2).claim()
    assert [c.task_id for c in again] == [first[0].task_id]


def test_routing_key_follows_cloudstack() -> None:
    row = OutboxEvent(category="ActionEvent", type="VM.START", resource_type="VirtualMachine")
    row.resource_uuid = "0b5c5a40-0000-4000-8000-000000000001"
    assert routing_key(row) == (
        "management-server.ActionEvent.VM-START.VirtualMachine.0b5c5a40-0000-4000-8000-000000000001"
    )
    bare = OutboxEvent(category="AlertEvent", type="ALERT.CPU")
    assert routing_key(bare) == "management-server.AlertEvent.ALERT-CPU.*.*"


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"event":"VM.START"}'
    expected = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    assert webhooks.sign("k3y", body) == expected


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/", "http:///nohost", "http://192.0.2.10/", "http://[2001:db8::1]/x"],
)
def test_target_guard_refuses(url: str) -> None:
    with pytest.raises(ParamError):
        webhooks.check_url(url, "127.0.0.0/8,10.0.0.0/8,::1/128")


def test_target_guard_allows_listed_networks() -> None:
    webhooks.check_url("http://127.0.0.1:8080/hook", "127.0.0.0/8")
    webhooks.check_url("https://10.1.2.3/hook", "127.0.0.0/8,10.0.0.0/8")
    webhooks.check_url("http://192.0.2.10/", "0.0.0.0/0,::/0")


def test_retention_forgets_old_delivered_rows_and_keeps_pending_ones(db: Database) -> None:
    _tasks(db, 3)
    old = utcnow().replace(year=2000)
    with db.write() as session:
        rows = list(session.scalars(select(OutboxTask).order_by(OutboxTask.id)))
        for task in rows:
            task.created = old
        rows[0].state, rows[1].state = "Done", "Failed"  # the third stays Pending
        for event in session.scalars(select(OutboxEvent)):
            event.created, event.fanned_out = old, True
        fresh = outbox.publish(session, outbox.ACTION, "VM.STOP", {}, account_id=1)
        fresh.fanned_out = True
    EventDispatcher(db, ConfigStore(), 1).housekeeping()
    with db.read() as session:
        left = list(session.scalars(select(OutboxTask)))
        events = {e.type: e for e in session.scalars(select(OutboxEvent))}
    assert [t.state for t in left] == [PENDING]
    assert sorted(e.id for e in events.values()) == sorted([left[0].outbox_id, fresh.id])
