"""The dispatcher every management server runs: fan out, deliver, retry, forget.

1. Fan-out: new outbox rows are read (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so servers
   never take the same rows; SQLite has one writer at a time anyway) and, in the same
   transaction, become one task per sink that wants them — each matching enabled webhook, and
   RabbitMQ when configured — and are marked fanned out. Either all of that commits or none.
2. Delivery: due tasks are claimed with a lease (a conditional UPDATE that only succeeds on
   a task whose lease is free, so two servers never both deliver it), delivered outside any
   transaction, then marked Done, or retried with exponential backoff, or Failed after
   ``webhook.delivery.tries``. A server that dies mid-delivery leaves a lease that lapses: the
   task is delivered again elsewhere (at least once; receivers deduplicate by ``eventid``).
3. Retention: fanned-out rows, finished tasks and delivery records older than
   ``event.bus.retention.hours`` are deleted.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, or_, select, update

from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.models_eventbus import OutboxEvent, OutboxTask, Webhook, WebhookDelivery
from cumulo.services.config import ConfigStore
from cumulo.services.eventbus import alerts, keys, outbox, webhooks
from cumulo.services.eventbus.rabbitmq import Publisher

log = logging.getLogger(__name__)
PENDING, DONE, FAILED = "Pending", "Done", "Failed"
WEBHOOK, RABBITMQ = "webhook", "rabbitmq"
BATCH = 200
LEASE = timedelta(seconds=60)
MAX_BACKOFF = 300.0
HOUSEKEEPING_S = 30.0
PUBLISH_KEYS = {
    outbox.ACTION: keys.PUBLISH_ACTION,
    outbox.ALERT: keys.PUBLISH_ALERT,
    outbox.STATE: keys.PUBLISH_RESOURCE_STATE,
    outbox.USAGE: keys.PUBLISH_USAGE,
    outbox.JOB: keys.PUBLISH_ASYNC_JOB,
}


@dataclass(frozen=True)
class Claimed:
    task_id: int
    sink: str
    attempts: int
    event: OutboxEvent
    target: webhooks.Target | None


class EventDispatcher:
    def __init__(self, db: Database, store: ConfigStore, server_id: int) -> None:
        self.db, self.store, self.server_id = db, store, server_id
        self.publisher = Publisher()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_housekeeping = 0.0
        self._last_capacity = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="event-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        outbox.LOCAL_WAKE.set()
        if self._thread is not None:
            self._thread.join(5)
        self.publisher.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.run_once()
            except Exception:
                log.exception("event dispatch failed")
            if not busy:
                outbox.LOCAL_WAKE.wait(0.5)
                outbox.LOCAL_WAKE.clear()

    def run_once(self) -> bool:
        """One round; True if there was work (so the loop goes again without waiting)."""
        with self.db.read() as session:
            if not self.store.get(session, keys.DISPATCH_ENABLED):
                return False
            # Reads first: the write transactions below take SQLite's one write lock.
            unsent = session.scalar(_unsent().limit(1)) is not None
            due = session.scalar(_due(utcnow()).limit(1)) is not None
        busy = unsent and self.fan_out() > 0
        for claimed in self.claim() if due else []:
            busy = True
            self.deliver(claimed)
        if time.monotonic() - self._last_housekeeping > HOUSEKEEPING_S:
            self._last_housekeeping = time.monotonic()
            self.housekeeping()
        self._check_capacity()
        return busy

    # --- 1. fan-out ----------------------------------------------------------------------------

    def fan_out(self) -> int:
        with self.db.write() as session:
            stmt = select(OutboxEvent).where(OutboxEvent.id.in_(_unsent().limit(BATCH)))
            stmt = stmt.order_by(OutboxEvent.id)
            if not self.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(session.scalars(stmt))
            if not rows:
                return 0
            hooks = webhooks.enabled_with_owners(session)
            rabbit = bool(self.store.get(session, keys.RABBITMQ_URL))
            wanted = {c: bool(self.store.get(session, k)) for c, k in PUBLISH_KEYS.items()}
            now = utcnow()
            for row in rows:
                row.fanned_out = True
                if not wanted.get(row.category, True):
                    continue
                for hook, path, role in hooks:
                    if webhooks.receives(row, hook, path, role):
                        session.add(_task(row.id, WEBHOOK, hook.id, now))
                if rabbit:
                    session.add(_task(row.id, RABBITMQ, None, now))
            return len(rows)

    # --- 2. delivery ---------------------------------------------------------------------------

    def claim(self) -> list[Claimed]:
        now = utcnow()
        expires = now + LEASE
        with self.db.write() as session:
            due = _due(now).order_by(OutboxTask.id).limit(BATCH)
            if not self.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list(session.scalars(due))
            if not ids:
                return []
            session.execute(
                update(OutboxTask)
                .where(
                    OutboxTask.id.in_(ids),
                    or_(OutboxTask.lease_expires.is_(None), OutboxTask.lease_expires < now),
                )
                .values(lease_owner=self.server_id, lease_expires=expires)
                .execution_options(synchronize_session=False)
            )
            rows = session.execute(
                select(OutboxTask, OutboxEvent, Webhook)
                .join(OutboxEvent, OutboxEvent.id == OutboxTask.outbox_id)
                .outerjoin(Webhook, Webhook.id == OutboxTask.webhook_id)
                .where(
                    OutboxTask.id.in_(ids),
                    OutboxTask.lease_owner == self.server_id,
                    OutboxTask.state == PENDING,
                )
                .order_by(OutboxTask.id)
            ).all()
            out = []
            for task, event, hook in rows:
                session.expunge(event)
                out.append(Claimed(task.id, task.sink, task.attempts, event, _target(hook)))
            return out

    def deliver(self, claimed: Claimed) -> None:
        if claimed.sink == WEBHOOK:
            self._deliver_webhook(claimed)
        else:
            self._publish_rabbitmq(claimed)

    def _deliver_webhook(self, claimed: Claimed) -> None:
        if claimed.target is None:  # the webhook was deleted or disabled meanwhile
            self._finish(claimed, DONE, None)
            return
        with self.db.read() as session:
            timeout = float(self.store.get(session, keys.WEBHOOK_TIMEOUT))
            tries = int(self.store.get(session, keys.WEBHOOK_TRIES))
            allowed = str(self.store.get(session, keys.WEBHOOK_ALLOWED_NETWORKS))
        body = webhooks.body_of(claimed.event)
        try:
            webhooks.check_url(claimed.target.url, allowed)
            outcome = webhooks.deliver(claimed.target, body, claimed.event.type, timeout)
        except Exception as err:  # a refused target is a failed try like any other
            outcome = webhooks.refused(body, claimed.event.type, str(err))
        with self.db.write() as session:
            webhooks.record(
                session,
                claimed.target.id,
                claimed.event.uuid,
                claimed.event.type,
                outcome,
                self.server_id,
            )
        if outcome.success:
            self._finish(claimed, DONE, None)
        elif claimed.attempts + 1 >= tries:
            self._finish(claimed, FAILED, outcome.response)
        else:
            self._retry(claimed, outcome.response)

    def _publish_rabbitmq(self, claimed: Claimed) -> None:
        with self.db.read() as session:
            url = str(self.store.get(session, keys.RABBITMQ_URL))
            exchange = str(self.store.get(session, keys.RABBITMQ_EXCHANGE))
        if not url:  # RabbitMQ was switched off after the fan-out
            self._finish(claimed, DONE, None)
            return
        try:
            self.publisher.publish(url, exchange, claimed.event, webhooks.body_of(claimed.event))
        except Exception as err:
            log.warning("publishing to RabbitMQ failed", extra={"error": str(err)})
            self._retry(claimed, f"{type(err).__name__}: {err}")
            return
        self._finish(claimed, DONE, None)

    def _finish(self, claimed: Claimed, state: str, error: str | None) -> None:
        with self.db.write() as session:
            session.execute(
                update(OutboxTask)
                .where(OutboxTask.id == claimed.task_id, OutboxTask.lease_owner == self.server_id)
                .values(
                    state=state,
                    attempts=claimed.attempts + 1,
                    lease_owner=None,
                    lease_expires=None,
                    last_error=error,
                )
            )

    def _retry(self, claimed: Claimed, error: str) -> None:
        with self.db.read() as session:
            base = float(self.store.get(session, keys.RETRY_BACKOFF))
        delay = min(base * 2**claimed.attempts, MAX_BACKOFF)
        with self.db.write() as session:
            session.execute(
                update(OutboxTask)
                .where(OutboxTask.id == claimed.task_id, OutboxTask.lease_owner == self.server_id)
                .values(
                    attempts=claimed.attempts + 1,
                    next_attempt=utcnow() + timedelta(seconds=delay),
                    lease_owner=None,
                    lease_expires=None,
                    last_error=error[:4000],
                )
            )

    # --- 3. retention and periodic checks --------------------------------------------------------

    def housekeeping(self) -> None:
        with self.db.read() as session:
            hours = int(self.store.get(session, keys.RETENTION_HOURS))
        cutoff = utcnow() - timedelta(hours=hours)
        with self.db.write() as session:
            session.execute(
                delete(OutboxTask).where(OutboxTask.state != PENDING, OutboxTask.created < cutoff)
            )
            open_tasks = select(OutboxTask.outbox_id).where(OutboxTask.state == PENDING)
            session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.fanned_out.is_(True),
                    OutboxEvent.created < cutoff,
                    OutboxEvent.id.not_in(open_tasks),
                )
            )
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.start_date < cutoff))

    def _check_capacity(self) -> None:
        """Every ``capacity.check.period`` ms: clusters over their thresholds raise alerts
        (each server checks; a repeat folds into the open alert)."""
        with self.db.read() as session:
            period = int(self.store.get(session, keys.CAPACITY_CHECK_PERIOD)) / 1000
            cpu = float(self.store.get(session, keys.CPU_THRESHOLD))
            mem = float(self.store.get(session, keys.MEMORY_THRESHOLD))
        if time.monotonic() - self._last_capacity < period:
            return
        self._last_capacity = time.monotonic()
        with self.db.write() as session:
            alerts.check_capacity(session, cpu, mem)


def _unsent() -> Select[int]:
    return select(OutboxEvent.id).where(OutboxEvent.fanned_out.is_(False))


def _due(now: datetime) -> Select[int]:
    return select(OutboxTask.id).where(
        OutboxTask.state == PENDING,
        OutboxTask.next_attempt <= now,
        or_(OutboxTask.lease_expires.is_(None), OutboxTask.lease_expires < now),
    )


def _task(outbox_id: int, sink: str, webhook_id: int | None, now: Any) -> OutboxTask:
    return OutboxTask(
        outbox_id=outbox_id,
        sink=sink,
        webhook_id=webhook_id,
        state=PENDING,
        attempts=0,
        next_attempt=now,
        created=now,
    )


def _target(hook: Webhook | None) -> webhooks.Target | None:
    """None for a webhook deleted or disabled since the fan-out: its tasks are dropped."""
    if hook is None or hook.state != "Enabled":
        return None
    return webhooks.Target(
        hook.id, hook.uuid, hook.name, hook.payload_url, hook.secret_key, hook.ssl_verification
    )
