"""Aggregation: usage events → usage records for a period ``[start, end)``.

A period's records are a pure function of the usage events and the period, so running a
period again gives the same rows: a run deletes the period's records and writes them anew
in ONE transaction, and marks the period Done in its ``usage_jobs`` row in the same
transaction. A run killed half-way committed nothing; its re-run is the first run.

Aggregated periods never overlap. A run for a period that overlaps others (an operator's
``generateUsageRecords`` over the last hour, inside a day the scheduler already did) cuts
those periods where the new one begins and ends and aggregates the pieces again: every
moment is billed in exactly one period — no gap, no duplicate.

Each resource's events are streamed in (resource, time) order and turned into intervals
(``intervals.py``), clipped to the period and summed per (account, usage type, resource,
offering, template, size): CloudStack's record granularity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby, islice
from typing import Any, cast

from sqlalchemy import Table, and_, delete, insert, select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_uuid
from cumulo.common.time import aware, utcnow
from cumulo.db.models_catalog import DiskOffering, ServiceOffering
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_images import Template
from cumulo.db.models_network import NetworkOffering
from cumulo.db.models_usage import UsageEvent, UsageJob, UsageRecord
from cumulo.services.errors import ParamError
from cumulo.services.usage import object_storage
from cumulo.services.usage import types as ut
from cumulo.services.usage.intervals import RESOURCE_TYPES, Interval, intervals, overlap_seconds

DONE, SCHEDULED = "Done", "Scheduled"
RECORDS = cast(Table, UsageRecord.__table__)  # written with Core: one executemany
STREAM_ROWS = 10_000
RECORD_BATCH = 5_000
EVENT_COLUMNS = (
    UsageEvent.resource_type,
    UsageEvent.resource_id,
    UsageEvent.created,
    UsageEvent.id,
    UsageEvent.type,
    UsageEvent.account_id,
    UsageEvent.domain_id,
    UsageEvent.zone_id,
    UsageEvent.resource_uuid,
    UsageEvent.resource_name,
    UsageEvent.offering_id,
    UsageEvent.template_id,
    UsageEvent.size,
    UsageEvent.virtual_size,
)


@dataclass
class Bucket:
    """One future record: its identity, the latest attributes and the seconds summed."""

    usage_type: int
    attrs: Any
    name: str | None
    seconds: int = 0
    resource_ids: set[int] = field(default_factory=set)


def run(session: Session, start: datetime, end: datetime, job_uuid: str | None = None) -> int:
    """Aggregate ``[start, end)`` (replacing its records and cutting overlapping periods);
    the number of records the period now has."""
    start, end = aware(start), aware(end)
    if not start < end:
        raise ParamError("The start date must be before the end date")
    if end > utcnow():
        raise ParamError("Usage can only be generated for a period that has ended")
    object_storage.sample(session)  # bucket sizes now, before any period is read
    pieces = _cut_overlapping(session, start, end)
    for piece_start, piece_end in pieces:
        _aggregate_period(session, piece_start, piece_end, None)
    return _aggregate_period(session, start, end, job_uuid)


def _cut_overlapping(
    session: Session, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Remove the periods overlapping ``[start, end)`` (other than itself); the parts of them
    outside it, to aggregate again."""
    pieces: list[tuple[datetime, datetime]] = []
    others = session.scalars(
        select(UsageJob).where(UsageJob.start_date < end, UsageJob.end_date > start)
    ).all()
    for job in others:
        js, je = aware(job.start_date), aware(job.end_date)
        if (js, je) == (start, end):
            continue
        if js < start:
            pieces.append((js, start))
        if je > end:
            pieces.append((end, je))
        _delete_records(session, js, je)
        session.delete(job)
    session.flush()
    return pieces


def _delete_records(session: Session, start: datetime, end: datetime) -> None:
    session.execute(
        delete(UsageRecord).where(
            and_(UsageRecord.start_date == start, UsageRecord.end_date == end)
        )
    )


def _aggregate_period(
    session: Session, start: datetime, end: datetime, job_uuid: str | None
) -> int:
    _delete_records(session, start, end)
    count = 0
    for batch in batched(_buckets(session, start, end), RECORD_BATCH):
        # Core inserts, a batch at a time: ORM objects would cost most of the run, and a
        # resource's records are final once its events are read, so memory stays flat.
        names = _Names(session, batch)
        rows = [_record(b, start, end, names) for b in batch]
        session.connection().execute(insert(RECORDS), rows)
        count += len(batch)
    s3_rows = object_storage.records(session, start, end)
    if s3_rows:
        session.connection().execute(insert(RECORDS), s3_rows)
    count += len(s3_rows)
    job = session.scalar(
        select(UsageJob).where(UsageJob.start_date == start, UsageJob.end_date == end)
    )
    if job is None:
        job = UsageJob(start_date=start, end_date=end)
        session.add(job)
    job.state, job.records, job.finished = DONE, count, utcnow()
    job.job_uuid = job_uuid or job.job_uuid
    session.flush()
    return count


def _events(session: Session, end: datetime) -> Iterator[Any]:
    """Every usage event before ``end``, one resource after another, oldest first."""
    stmt = (
        select(*EVENT_COLUMNS)
        .where(UsageEvent.created < end, UsageEvent.resource_type.in_(RESOURCE_TYPES))
        .order_by(
            UsageEvent.resource_type,
            UsageEvent.resource_id,
            UsageEvent.created,
            UsageEvent.id,
        )
    )
    yield from session.execute(stmt.execution_options(yield_per=STREAM_ROWS))


def like_rows(t: datetime, row_time: datetime) -> datetime:
    """``t`` in the kind of datetime the database hands back: SQLite's are naive UTC. Comparing
    in the rows' kind avoids converting every one of a million rows."""
    return t if row_time.tzinfo is not None else t.astimezone(UTC).replace(tzinfo=None)


def batched(items: Iterator[Bucket], size: int) -> Iterator[list[Bucket]]:
    """itertools.batched (Python 3.12), for 3.11."""
    while batch := list(islice(items, size)):
        yield batch


def _buckets(session: Session, start: datetime, end: datetime) -> Iterator[Bucket]:
    """Each resource's future records, one resource after another."""
    bounds: tuple[datetime, datetime] | None = None
    for _, rows in groupby(_events(session, end), key=_resource_key):
        history = list(rows)
        if bounds is None:
            bounds = like_rows(start, history[0].created), like_rows(end, history[0].created)
        buckets: dict[tuple[Any, ...], Bucket] = {}
        for interval in intervals(history, bounds[1]):
            seconds = overlap_seconds(interval, *bounds)
            if seconds > 0:
                _add(buckets, interval, seconds)
        yield from sorted(buckets.values(), key=_bucket_order)


def _resource_key(event: Any) -> tuple[str, int]:
    return event.resource_type, event.resource_id


def _add(buckets: dict[tuple[Any, ...], Bucket], interval: Interval, seconds: int) -> None:
    a = interval.attrs
    key: tuple[Any, ...] = (interval.usage_type, a.resource_type, a.resource_uuid, a.account_id)
    key += (a.offering_id, a.template_id, a.size)
    bucket = buckets.get(key)
    if bucket is None:
        bucket = buckets[key] = Bucket(interval.usage_type, a, a.resource_name)
    bucket.seconds += seconds


def _bucket_order(b: Bucket) -> tuple[Any, ...]:
    a = b.attrs
    return (b.usage_type, a.created, a.id)


class _Names:
    """UUIDs and VM sizes for the records, looked up once per run, not once per record."""

    def __init__(self, session: Session, buckets: list[Bucket]) -> None:
        def ids(rtype: str, attr: str) -> set[int]:
            return {
                getattr(b.attrs, attr)
                for b in buckets
                if b.attrs.resource_type == rtype and getattr(b.attrs, attr) is not None
            }

        self.service = _uuids(session, ServiceOffering, ids("VirtualMachine", "offering_id"))
        self.disk = _uuids(session, DiskOffering, ids("Volume", "offering_id"))
        self.network = _uuids(session, NetworkOffering, ids("NicOffering", "offering_id"))
        templates = ids("VirtualMachine", "template_id") | ids("Volume", "template_id")
        self.template = _uuids(session, Template, templates)
        vm_ids = ids("VirtualMachine", "resource_id")
        self.vms = {
            v.id: v
            for v in session.execute(
                select(
                    VirtualMachine.id,
                    VirtualMachine.hypervisor_type,
                    VirtualMachine.cpu_number,
                    VirtualMachine.cpu_speed,
                    VirtualMachine.memory,
                ).where(VirtualMachine.id.in_(vm_ids))
            )
        }


def _uuids(session: Session, model: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(session.execute(select(model.id, model.uuid).where(model.id.in_(ids))).all())


def _record(b: Bucket, start: datetime, end: datetime, names: _Names) -> dict[str, Any]:
    a = b.attrs
    is_vm = a.resource_type == "VirtualMachine"
    offerings = names.service if is_vm else names.disk
    vm = names.vms.get(a.resource_id) if is_vm else None
    if a.resource_type == "NicOffering":  # usage id = the VM, offering = the network's
        is_vm, offerings = True, names.network
    return dict(
        uuid=new_uuid(),
        account_id=a.account_id,
        domain_id=a.domain_id,
        zone_id=a.zone_id,
        usage_type=b.usage_type,
        description=describe(b.usage_type, a),
        seconds=b.seconds,
        raw_usage=b.seconds / 3600,
        usage_uuid=a.resource_uuid,
        vm_uuid=a.resource_uuid if is_vm else None,
        vm_name=a.resource_name if is_vm else None,
        offering_uuid=offerings.get(a.offering_id) if a.offering_id else None,
        template_uuid=names.template.get(a.template_id) if a.template_id else None,
        resource_type=vm.hypervisor_type if vm is not None else None,
        size=a.size,
        virtual_size=a.virtual_size,
        cpu_number=vm.cpu_number if vm is not None else None,
        cpu_speed=vm.cpu_speed if vm is not None else None,
        memory=vm.memory if vm is not None else None,
        start_date=start,
        end_date=end,
    )


def describe(usage_type: int, a: Any) -> str:
    """CloudStack-like descriptions (``UsageManagerImpl``), naming resources, not row ids."""
    name = a.resource_name or a.resource_uuid
    if usage_type == ut.RUNNING_VM:
        return f"{name} running time"
    if usage_type == ut.ALLOCATED_VM:
        return f"{name} allocated time"
    if usage_type == ut.VOLUME:
        return f"Volume {name} usage time (Size: {a.size})"
    if usage_type == ut.IP_ADDRESS:
        return f"IPAddress: {name}"
    if usage_type == ut.PORT_FORWARDING_RULE:
        return f"Port Forwarding Rule: {name} usage time"
    if usage_type == ut.LOAD_BALANCER_POLICY:
        return f"Load Balancing Policy: {name} usage time"
    if usage_type == ut.NETWORK_OFFERING:
        return f"Network offering usage for VM {name}"
    if usage_type == ut.SECURITY_GROUP:
        return f"Security Group: {name} usage time"
    label = ut.USAGE_TYPES[usage_type][1]
    return f"{label}: {name} (Size: {a.size})"


# --- keeping the raw events small ---------------------------------------------------------


def remove_raw(session: Session, before: datetime) -> int:
    """Delete usage events before ``before`` that no longer matter: those of resources with
    nothing open at that time, and only up to the end of the last aggregated period (an
    event a later run still needs is never removed). Periods before it are then final."""
    done_until = session.scalar(
        select(UsageJob.end_date).where(UsageJob.state == DONE).order_by(UsageJob.end_date.desc())
    )
    if done_until is None:
        return 0
    cutoff = min(aware(before), aware(done_until))
    closed: list[tuple[str, int]] = []
    for key, rows in groupby(_events(session, cutoff), key=_resource_key):
        history = list(rows)
        until = like_rows(cutoff, history[0].created)
        if not any(i.end >= until for i in intervals(history, until)):
            closed.append(key)
    removed = 0
    for rtype, rid in closed:
        removed += session.execute(
            delete(UsageEvent).where(
                UsageEvent.resource_type == rtype,
                UsageEvent.resource_id == rid,
                UsageEvent.created < cutoff,
            )
        ).rowcount  # type: ignore[attr-defined]
    return removed
