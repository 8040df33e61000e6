"""Writing the outbox: one row per event worth pushing, in the transaction of the change.

Action events are written by ``services.events.record``. Job completions, resource state
changes (VMs, volumes, snapshots) and usage events are noticed by a ``before_flush`` hook on
every ORM session, so no service has to remember to publish them and none can forget: if
the change commits, its outbox row commits with it, and if it rolls back, so does the row.

After a commit that wrote outbox rows, waiters in this process (the push stream) are woken at
once, which is what lets a client see its job complete within milliseconds; servers that did
not make the change find the rows by polling.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import inspect
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models import AsyncJob, Domain
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_eventbus import OutboxEvent
from cumulo.db.models_storage import Snapshot
from cumulo.db.models_usage import UsageEvent

SOURCE = "management-server"
ACTION, JOB, STATE, ALERT, USAGE = (
    "ActionEvent",
    "AsyncJobEvent",
    "ResourceStateEvent",
    "AlertEvent",
    "UsageEvent",
)
CATEGORIES = (ACTION, JOB, STATE, ALERT, USAGE)
JOB_STATUS = {1: "SUCCEEDED", 2: "FAILED", 3: "CANCELLED"}
STATEFUL = {VirtualMachine: "VirtualMachine", Volume: "Volume", Snapshot: "Snapshot"}
WROTE = "eventbus_wrote"


def cs_date(when: datetime) -> str:
    """CloudStack's eventDateTime format, ``yyyy-MM-dd HH:mm:ss Z`` (reference §7.2)."""
    return when.strftime("%Y-%m-%d %H:%M:%S +0000")


def precise(when: datetime) -> str:
    """An ISO time with microseconds: what a client measures push latency against."""
    return when.isoformat(timespec="microseconds")


def publish(
    session: Session,
    category: str,
    type: str,
    payload: dict[str, Any],
    *,
    account_id: int | None = None,
    domain_path: str | None = None,
    resource_type: str | None = None,
    resource_uuid: str | None = None,
    uuid: str | None = None,
) -> OutboxEvent:
    """Add an outbox row to the session's transaction; it commits or rolls back with it.
    An action event's row takes the event's uuid, so receivers and listEvents agree."""
    row = OutboxEvent(
        uuid=uuid or new_uuid(),
        category=category,
        type=type,
        payload=payload,
        account_id=account_id,
        domain_path=domain_path,
        resource_type=resource_type,
        resource_uuid=resource_uuid,
        created=utcnow(),
        fanned_out=False,
    )
    session.add(row)
    session.info[WROTE] = True
    return row


class _PathCache:
    """Domain paths by id, per process: every event names its domain's path, and a deploy
    writes several events in more than one transaction, each of which read the domain row.

    A rename rewrites paths and a delete removes a domain: both are noticed in this process
    (bulk UPDATE/DELETE on domains, or a flushed Domain change) and clear the cache when the
    transaction ends. A read that raced with such a change is not stored (the generation
    moved on). Another server's rename is seen here after at most ``TTL`` seconds."""

    TTL = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[int, tuple[str, float]] = {}
        self.generation = 0

    def get(self, domain_id: int) -> str | None:
        hit = self._paths.get(domain_id)
        if hit is None or time.monotonic() - hit[1] > self.TTL:
            return None
        return hit[0]

    def put(self, domain_id: int, path: str, generation: int) -> None:
        with self._lock:
            if generation == self.generation:
                self._paths[domain_id] = (path, time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._paths.clear()


PATHS = _PathCache()
DOMAINS_CHANGED = "eventbus_domains_changed"


def domain_path_of(session: Session, domain_id: int | None) -> str | None:
    if domain_id is None:
        return None
    path = PATHS.get(domain_id)
    if path is not None:
        return path
    generation = PATHS.generation
    domain = session.get(Domain, domain_id)
    if domain is None:
        return None
    if domain.removed is None and not session.info.get(DOMAINS_CHANGED):
        PATHS.put(domain_id, domain.path, generation)
    return domain.path


# --- noticing changes ------------------------------------------------------------------------


def _changed(obj: Any, attr: str) -> tuple[Any, Any] | None:
    """(old, new) if ``attr`` was changed in this flush, else None."""
    history = inspect(obj).attrs[attr].history
    if not history.added:
        return None
    old = history.deleted[0] if history.deleted else None
    new = history.added[0]
    return None if old == new else (old, new)


def _job_done(session: Session, job: AsyncJob) -> None:
    change = _changed(job, "status")
    if change is None or change[0] != 0 or change[1] == 0:
        return
    completed = job.completed or utcnow()
    payload = {
        "jobid": job.uuid,
        "cmd": job.cmd,
        "status": JOB_STATUS.get(job.status, str(job.status)),
        "jobstatus": job.status,
        "jobresultcode": job.result_code,
        "jobinstancetype": job.instance_type,
        "jobinstanceid": job.instance_id,
        "created": precise(job.created) if job.created else None,
        "completed": precise(completed),
        "eventDateTime": cs_date(completed),
    }
    if job.status == 2 and job.result:
        payload["errortext"] = str(job.result.get("errortext", ""))
    publish(
        session,
        JOB,
        "CompleteAsyncJob",
        payload,
        account_id=job.account_id,
        domain_path=domain_path_of(session, job.domain_id),
        resource_type=job.instance_type,
        resource_uuid=job.instance_id,
    )
    if job.status == 2 and job.result_code == 530:
        # Imported here: alerts publish through this module.
        from cumulo.services.eventbus.alerts import job_failed

        job_failed(session, job)


def _state_changed(session: Session, obj: Any, kind: str) -> None:
    change = _changed(obj, "state")
    if change is None or change[0] is None:
        return
    state_changed(session, obj, kind, change[0], change[1])


def state_changed(session: Session, obj: Any, kind: str, old: str, new: str) -> None:
    """The StateChange event of ``obj``: for a change written with a plain UPDATE, which the
    flush hook cannot see (the VM state machine's guarded UPDATE)."""
    now = utcnow()
    payload = {
        "resource": kind,
        "id": obj.uuid,
        "name": getattr(obj, "name", None),
        "old-state": old,
        "new-state": new,
        "status": "postStateTransitionEvent",
        "eventDateTime": cs_date(now),
        "changed": precise(now),
    }
    publish(
        session,
        STATE,
        "StateChange",
        payload,
        account_id=obj.account_id,
        domain_path=domain_path_of(session, obj.domain_id),
        resource_type=kind,
        resource_uuid=obj.uuid,
    )


def _usage(session: Session, usage: UsageEvent) -> None:
    created = usage.created or utcnow()
    payload = {
        "event": usage.type,
        "resource": usage.resource_type,
        "id": usage.resource_uuid,
        "name": usage.resource_name,
        "size": usage.size,
        "eventDateTime": cs_date(created),
    }
    publish(
        session,
        USAGE,
        usage.type,
        payload,
        account_id=usage.account_id,
        domain_path=domain_path_of(session, usage.domain_id),
        resource_type=usage.resource_type,
        resource_uuid=usage.resource_uuid,
    )


def _before_flush(session: Session, _ctx: UOWTransaction, _instances: Any) -> None:
    """Queries made here (domain paths, open alerts) must not flush: we are flushing."""
    with session.no_autoflush:
        for obj in list(session.dirty):
            if isinstance(obj, Domain):
                _domains_changed(session)
            elif isinstance(obj, AsyncJob):
                _job_done(session, obj)
            elif type(obj) in STATEFUL:
                _state_changed(session, obj, STATEFUL[type(obj)])
        for obj in list(session.new):
            if isinstance(obj, UsageEvent):
                _usage(session, obj)
        if any(isinstance(obj, Domain) for obj in session.deleted):
            _domains_changed(session)


def _domains_changed(session: Session) -> None:
    """Domain paths may change in this transaction: forget them now and again when it ends
    (a read by another thread in between may have stored the old path)."""
    session.info[DOMAINS_CHANGED] = True
    PATHS.clear()


def _bulk_domain_change(state: ORMExecuteState) -> None:
    """A bulk UPDATE or DELETE on domains (a rename rewrites a whole subtree's paths)."""
    if (state.is_update or state.is_delete) and any(m.class_ is Domain for m in state.all_mappers):
        _domains_changed(state.session)


# --- waking local waiters after commit ---------------------------------------------------------


class Notifier:
    """Wakes the push stream's connections (each an asyncio.Event on some loop) after a commit
    in this process wrote outbox rows; thread-safe, as commits happen in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def add(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        with self._lock:
            self._waiters.add((loop, wake))

    def remove(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        with self._lock:
            self._waiters.discard((loop, wake))

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, wake in waiters:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed under us: its stream is gone
                self.remove(loop, wake)


NOTIFIER = Notifier()
LOCAL_WAKE = threading.Event()  # the dispatcher's: new rows to fan out


def _after_commit(session: Session) -> None:
    if session.info.pop(DOMAINS_CHANGED, False):
        PATHS.clear()
    if session.info.pop(WROTE, False):
        LOCAL_WAKE.set()
        NOTIFIER.notify()


def _after_rollback(session: Session) -> None:
    session.info.pop(WROTE, None)
    if session.info.pop(DOMAINS_CHANGED, False):
        PATHS.clear()


sa_event.listen(Session, "before_flush", _before_flush)
sa_event.listen(Session, "do_orm_execute", _bulk_domain_change)
sa_event.listen(Session, "after_commit", _after_commit)
sa_event.listen(Session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
