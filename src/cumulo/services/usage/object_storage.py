"""Object storage (the S3 service) in the cloud's usage ledger.

The S3 service keeps its own metadata database: hourly access counters per owner, bucket and
operation (``s3_usage``) and the bytes each bucket holds *now*. Services may import ``db``
only, so they never open that database: the management server's entry point hands this
module a :class:`Source` (``cli/usage_wiring.py``, built on ``objectstore/report.py``'s seam).

Two things cross:

- **Bytes stored** have no history on the S3 side, so the ledger keeps one: :func:`sample`
  (each usage tick, a minute, and at the start of every aggregation run) compares each
  bucket's bytes with its last ``Bucket`` usage event and writes ``BUCKET.CREATE``,
  ``BUCKET.UPDATE`` (new size) or ``BUCKET.DELETE`` when they differ. A period's ``BUCKET``
  (29) records are then a pure function of those events, like volumes: seconds at each size.
- **Requests and transfer** are read at aggregation time from the hourly counters: an hour
  belongs to the period its first second falls in (periods never overlap, so every hour is
  billed once), giving records of types 100-103 (:data:`OBJECT_STORAGE_TYPES`).

Owners are CloudStack account UUIDs (``objectstore/identity.py``); owners that are not cloud
accounts (S3-only users of the S3 admin API) are not in the cloud ledger.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_uuid
from cumulo.common.time import aware, utcnow
from cumulo.db.models import Account
from cumulo.db.models_usage import UsageEvent
from cumulo.services.usage import types as ut

log = logging.getLogger(__name__)

RESOURCE_TYPE = "Bucket"
BUCKET_CREATE, BUCKET_UPDATE, BUCKET_DELETE = "BUCKET.CREATE", "BUCKET.UPDATE", "BUCKET.DELETE"
BUCKET_NAMESPACE = uuid.UUID("6f1d1c1e-5b53-4c8e-9a1e-0b5e3c0b5e30")

# Request classes, by the S3 service's (Riak CS) operation names. Class A is what S3 bills
# as PUT/COPY/POST/LIST; every other request (GET, HEAD, DELETE, ACL reads …) is class B.
WRITE_OPERATIONS = frozenset(
    {
        "ListBuckets",
        "BucketCreate",
        "BucketRead",
        "BucketReadVersions",
        "BucketWriteACL",
        "KeyWrite",
        "KeyCopy",
        "KeyWriteACL",
        "KeyDeleteMulti",  # a POST
        "KeyWriteMultipartInit",
        "KeyWritePart",
        "KeyWritePartCopy",
        "KeyWriteMultipartComplete",
    }
)
READ_PREFIXES_THAT_WRITE = ("Put", "Post", "List", "Copy")


@dataclass(frozen=True)
class AccessCount:
    """One hour slot of the S3 service's access counters."""

    owner_id: str
    hour: datetime
    bucket: str
    operation: str
    count: int
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True)
class StoredBucket:
    owner_id: str
    bucket: str
    bytes: int


class Source(Protocol):
    """What the S3 service's metadata says; ``None`` when it has no metadata (S3 never ran)."""

    def access(self, start: datetime, end: datetime) -> list[AccessCount] | None: ...

    def storage(self) -> list[StoredBucket] | None: ...


_source: Source | None = None


def register(source: Source | None) -> None:
    """Set by the management server's entry point; without one, nothing is metered here."""
    global _source
    _source = source


def registered() -> Source | None:
    return _source


def request_class(operation: str) -> int:
    """100 for PUT/COPY/POST/LIST requests, 101 for GET and every other request."""
    if operation in WRITE_OPERATIONS or operation.startswith(READ_PREFIXES_THAT_WRITE):
        return ut.S3_REQUESTS_WRITE
    return ut.S3_REQUESTS_READ


def bucket_uuid(owner_id: str, bucket: str) -> str:
    """A stable id for an owner's bucket (the S3 side names buckets, it has no UUIDs)."""
    return str(uuid.uuid5(BUCKET_NAMESPACE, f"{owner_id}/{bucket}"))


def _accounts(session: Session, owner_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Owner id → (account id, domain id) for owners that are cloud accounts (removed ones
    too: their usage before removal is billed)."""
    wanted = set(owner_ids)
    if not wanted:
        return {}
    rows = session.execute(
        select(Account.uuid, Account.id, Account.domain_id).where(Account.uuid.in_(wanted))
    )
    return {r[0]: (r[1], r[2]) for r in rows}


# --- bytes stored: sampling into usage events ---------------------------------------------


def _last_events(session: Session) -> dict[str, UsageEvent]:
    latest = (
        select(func.max(UsageEvent.id))
        .where(UsageEvent.resource_type == RESOURCE_TYPE)
        .group_by(UsageEvent.resource_uuid)
    )
    rows = session.scalars(select(UsageEvent).where(UsageEvent.id.in_(latest)))
    return {e.resource_uuid: e for e in rows}


def sample(session: Session, source: Source | None = None, at: datetime | None = None) -> int:
    """Write a usage event for every bucket whose bytes changed since its last event (or that
    appeared or went away); the number written. Two servers sampling at once write the same
    size twice, which the history reading ignores."""
    source = source or _source
    stored = source.storage() if source is not None else None
    if stored is None:
        return 0
    when = at or utcnow()
    accounts = _accounts(session, {b.owner_id for b in stored})
    last = _last_events(session)
    seen: set[str] = set()
    written = 0
    for b in stored:
        if b.owner_id not in accounts:
            continue  # an S3-only user: reported by the S3 usage report only
        key = bucket_uuid(b.owner_id, b.bucket)
        seen.add(key)
        prev = last.get(key)
        if prev is not None and prev.type != BUCKET_DELETE and prev.size == b.bytes:
            continue
        kind = BUCKET_CREATE if prev is None or prev.type == BUCKET_DELETE else BUCKET_UPDATE
        account_id, domain_id = accounts[b.owner_id]
        _add_event(session, kind, key, b.bucket, account_id, domain_id, b.bytes, when)
        written += 1
    for key, prev in last.items():
        if key not in seen and prev.type != BUCKET_DELETE:
            _add_event(
                session,
                BUCKET_DELETE,
                key,
                prev.resource_name,
                prev.account_id,
                prev.domain_id,
                None,
                when,
            )
            written += 1
    session.flush()
    return written


def _add_event(
    session: Session,
    kind: str,
    key: str,
    name: str | None,
    account_id: int,
    domain_id: int,
    size: int | None,
    when: datetime,
) -> None:
    session.add(
        UsageEvent(
            type=kind,
            created=when,
            account_id=account_id,
            domain_id=domain_id,
            zone_id=None,
            resource_type=RESOURCE_TYPE,
            resource_id=0,  # buckets are known by resource_uuid (owner and name)
            resource_uuid=key,
            resource_name=name,
            size=size,
        )
    )


def storage_seconds(history: list[Any], start: datetime, end: datetime) -> dict[int, int]:
    """One bucket's events (oldest first) → seconds in ``[start, end)`` at each size."""
    out: dict[int, int] = defaultdict(int)
    for event, nxt in zip(history, [*history[1:], None], strict=True):
        if event.type == BUCKET_DELETE or event.size is None:
            continue
        lo = max(aware(event.created), start)
        hi = min(aware(nxt.created) if nxt is not None else end, end)
        seconds = int((hi - lo).total_seconds())
        if seconds > 0:
            out[int(event.size)] += seconds
    return dict(out)


def _storage_records(session: Session, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    stmt = (
        select(UsageEvent)
        .where(UsageEvent.resource_type == RESOURCE_TYPE, UsageEvent.created < end)
        .order_by(UsageEvent.resource_uuid, UsageEvent.created, UsageEvent.id)
    )
    by_bucket: dict[str, list[UsageEvent]] = defaultdict(list)
    for event in session.scalars(stmt):
        by_bucket[event.resource_uuid].append(event)
    for key, history in sorted(by_bucket.items()):
        last = history[-1]
        for size, seconds in sorted(storage_seconds(history, start, end).items()):
            yield _row(
                ut.BUCKET,
                last.account_id,
                last.domain_id,
                key,
                f"Bucket {last.resource_name}: storage (Size: {size})",
                seconds=seconds,
                raw_usage=seconds / 3600,
                size=size,
            )


# --- requests and transfer: read at aggregation time --------------------------------------


def access_totals(
    rows: Iterable[AccessCount], start: datetime, end: datetime
) -> dict[tuple[str, str, int], int]:
    """(owner, bucket, usage type) → requests or bytes, of the hours beginning in
    ``[start, end)``; zero totals are left out."""
    out: dict[tuple[str, str, int], int] = defaultdict(int)
    for r in rows:
        if not start <= aware(r.hour) < end:
            continue
        out[(r.owner_id, r.bucket, request_class(r.operation))] += r.count
        out[(r.owner_id, r.bucket, ut.S3_BYTES_IN)] += r.bytes_in
        out[(r.owner_id, r.bucket, ut.S3_BYTES_OUT)] += r.bytes_out
    return {k: v for k, v in out.items() if v}


def _access_records(session: Session, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    rows = _source.access(start, end) if _source is not None else None
    if not rows:
        return
    totals = access_totals(rows, start, end)
    accounts = _accounts(session, {owner for owner, _, _ in totals})
    for (owner, bucket, usage_type), value in sorted(totals.items()):
        if owner not in accounts:
            continue  # an S3-only user: reported by the S3 usage report only
        account_id, domain_id = accounts[owner]
        label = ut.USAGE_TYPES[usage_type][1]
        yield _row(
            usage_type,
            account_id,
            domain_id,
            bucket_uuid(owner, bucket),
            f"Bucket {bucket}: {label}",
            seconds=0,
            raw_usage=float(value),
            size=None,
        )


def _row(
    usage_type: int,
    account_id: int,
    domain_id: int,
    usage_uuid: str,
    description: str,
    *,
    seconds: int,
    raw_usage: float,
    size: int | None,
) -> dict[str, Any]:
    return dict(
        uuid=new_uuid(),
        account_id=account_id,
        domain_id=domain_id,
        zone_id=None,
        usage_type=usage_type,
        description=description,
        seconds=seconds,
        raw_usage=raw_usage,
        usage_uuid=usage_uuid,
        vm_uuid=None,
        vm_name=None,
        offering_uuid=None,
        template_uuid=None,
        resource_type=None,
        size=size,
        virtual_size=None,
        cpu_number=None,
        cpu_speed=None,
        memory=None,
    )


def records(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The period's object-storage records, rows for ``usage_records``."""
    rows = [*_storage_records(session, start, end), *_access_records(session, start, end)]
    for row in rows:
        row.update(start_date=start, end_date=end)
    return rows
