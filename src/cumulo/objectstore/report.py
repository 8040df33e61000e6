"""Usage reports over the metadata database: what the admin API serves and the seam the
cloud's metering calls (plain functions of a ``Database``, no HTTP, no service running).

Access statistics come from ``s3_usage`` (requests, bytes in, bytes out per owner, bucket,
operation and hour), so a report's window has hour granularity: an hour counts when it begins
in [start, end) after ``start`` is rounded down to its hour. Counts still in a server's memory
(at most ``usage_flush_seconds`` old) are not in the table yet; the admin API flushes its own
process's counts before it reads. Storage statistics (objects and bytes per bucket, current
and noncurrent versions) are exact at the moment of the report, as the writing transactions
keep them; the database keeps no history of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from cumulo.common.time import aware, utcnow
from cumulo.db.engine import Database
from cumulo.objectstore.meta.schema import buckets, usage


@dataclass(frozen=True)
class AccessRow:
    hour: datetime
    bucket: str
    operation: str
    count: int
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True)
class BucketStorage:
    bucket: str
    objects: int
    bytes: int


@dataclass
class UsageReport:
    owner_id: str
    start: datetime
    end: datetime
    sampled: datetime
    access: list[AccessRow] = field(default_factory=list)
    storage: list[BucketStorage] = field(default_factory=list)

    def operations(self) -> dict[str, dict[str, int]]:
        """Totals per operation over the window."""
        out: dict[str, dict[str, int]] = {}
        for row in self.access:
            op = out.setdefault(row.operation, {"count": 0, "bytes_in": 0, "bytes_out": 0})
            op["count"] += row.count
            op["bytes_in"] += row.bytes_in
            op["bytes_out"] += row.bytes_out
        return dict(sorted(out.items()))

    def totals(self) -> dict[str, int]:
        return {
            "count": sum(r.count for r in self.access),
            "bytes_in": sum(r.bytes_in for r in self.access),
            "bytes_out": sum(r.bytes_out for r in self.access),
            "objects": sum(b.objects for b in self.storage),
            "bytes": sum(b.bytes for b in self.storage),
        }


def floor_hour(when: datetime) -> datetime:
    return aware(when).replace(minute=0, second=0, microsecond=0)


def access_rows(
    db: Database, start: datetime, end: datetime, owner_id: str | None = None
) -> list[tuple[str, AccessRow]]:
    """(owner id, row) for every hour slot in the window, of one owner or of all: the seam
    for the cloud's metering (object-storage request and transfer usage)."""
    cond = [usage.c.hour >= floor_hour(start), usage.c.hour < aware(end)]
    if owner_id is not None:
        cond.append(usage.c.owner_id == owner_id)
    stmt = (
        select(usage)
        .where(*cond)
        .order_by(usage.c.owner_id, usage.c.hour, usage.c.bucket, usage.c.operation)
    )
    with db.read() as s:
        return [
            (
                r.owner_id,
                AccessRow(
                    aware(r.hour),
                    r.bucket,
                    r.operation,
                    r._mapping["count"],
                    r.bytes_in,
                    r.bytes_out,
                ),
            )
            for r in s.execute(stmt)
        ]


def storage_rows(db: Database, owner_id: str | None = None) -> list[tuple[str, BucketStorage]]:
    """(owner id, bucket storage) now, of one owner or of all: the seam for the cloud's
    metering (object-storage capacity usage)."""
    stmt = select(buckets.c.owner_id, buckets.c.name, buckets.c.object_count, buckets.c.byte_count)
    if owner_id is not None:
        stmt = stmt.where(buckets.c.owner_id == owner_id)
    with db.read() as s:
        rows = s.execute(stmt.order_by(buckets.c.owner_id, buckets.c.name)).all()
    return [(r[0], BucketStorage(r[1], int(r[2]), int(r[3]))) for r in rows]


def usage_report(
    db: Database,
    owner_id: str,
    start: datetime,
    end: datetime,
    *,
    access: bool = True,
    storage: bool = True,
) -> UsageReport:
    """One owner's report: access statistics in the window and storage statistics now."""
    report = UsageReport(owner_id, aware(start), aware(end), utcnow())
    if access:
        report.access = [row for _, row in access_rows(db, start, end, owner_id)]
    if storage:
        report.storage = [row for _, row in storage_rows(db, owner_id)]
    return report


def owners_with_usage(db: Database, start: datetime, end: datetime) -> list[str]:
    """Owner ids with any access in the window or any bucket now."""
    with db.read() as s:
        active = s.scalars(
            select(func.distinct(usage.c.owner_id)).where(
                usage.c.hour >= floor_hour(start), usage.c.hour < aware(end)
            )
        ).all()
        holding = s.scalars(select(func.distinct(buckets.c.owner_id))).all()
    return sorted(set(active) | set(holding))
