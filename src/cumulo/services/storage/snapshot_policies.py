"""Snapshot policies: recurring snapshots of a volume, kept to ``maxsnaps``.

A policy stores CloudStack's schedule text (HOURLY ``MM``, DAILY ``MM:HH``, WEEKLY
``MM:HH:D`` with D 1-7 Sunday first, MONTHLY ``MM:HH:DD`` with DD 1-28) in its timezone, and
the next time it is due in UTC (``next_run``), so the scheduler finds due policies with one
indexed query and a claim is a conditional UPDATE of ``next_run`` (one run per slot even
with several servers).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_compute import Volume
from cumulo.db.models_storage import SnapshotPolicy
from cumulo.services.errors import ParamError

INTERVALS = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY")
MAX_SNAPS = 8  # snapshot.max.hourly and friends default to 8 in CloudStack


def interval_of(text: str) -> str:
    value = text.strip().upper()
    if value.isdigit() and int(value) < len(INTERVALS):
        return INTERVALS[int(value)]
    if value not in INTERVALS:
        raise ParamError(f"Unsupported interval type {text}: use HOURLY, DAILY, WEEKLY or MONTHLY")
    return value


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParamError(f"Invalid timezone {name}") from None


def _fields(interval: str, schedule: str) -> list[int]:
    parts = schedule.split(":")
    wanted = {"HOURLY": 1, "DAILY": 2, "WEEKLY": 3, "MONTHLY": 3}[interval]
    if len(parts) != wanted or not all(p.isdigit() for p in parts):
        raise ParamError(f"Invalid schedule {schedule} for interval type {interval}")
    values = [int(p) for p in parts]
    limits = [(0, 59), (0, 23), (1, 7) if interval == "WEEKLY" else (1, 28)]
    for value, (low, high) in zip(values, limits, strict=False):
        if not low <= value <= high:
            raise ParamError(f"Invalid schedule {schedule} for interval type {interval}")
    return values


def next_run(interval: str, schedule: str, tz: str, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (UTC), computed in the policy's timezone."""
    zone = _zone(tz)
    fields = _fields(interval, schedule)
    local = after.astimezone(zone).replace(second=0, microsecond=0)
    minute = fields[0]
    step = timedelta(hours=1) if interval == "HOURLY" else timedelta(days=1)
    candidate = local.replace(minute=minute)
    if interval != "HOURLY":
        candidate = candidate.replace(hour=fields[1])
    for _ in range(400):
        if candidate > local and _matches(interval, fields, candidate):
            return candidate.astimezone(ZoneInfo("UTC"))
        candidate += step
    raise ParamError(f"Schedule {schedule} never comes due")


def _matches(interval: str, fields: list[int], when: datetime) -> bool:
    if interval == "WEEKLY":
        return (when.isoweekday() % 7) + 1 == fields[2]  # 1 = Sunday
    if interval == "MONTHLY":
        return when.day == fields[2]
    return True


def create(
    session: Session,
    volume: Volume,
    interval: str,
    schedule: str,
    tz: str,
    max_snaps: int,
    display: bool,
) -> SnapshotPolicy:
    kind = interval_of(interval)
    if max_snaps < 1 or max_snaps > MAX_SNAPS:
        raise ParamError(f"maxsnaps must be between 1 and {MAX_SNAPS}")
    if volume.volume_type not in ("ROOT", "DATADISK"):
        raise ParamError("Snapshot policies are for ROOT and DATADISK volumes")
    due = next_run(kind, schedule, tz, utcnow())
    existing = session.scalar(
        select(SnapshotPolicy).where(
            SnapshotPolicy.volume_id == volume.id,
            SnapshotPolicy.interval_type == kind,
            SnapshotPolicy.removed.is_(None),
        )
    )
    if existing is not None:  # CloudStack replaces the volume's policy of the same interval
        existing.schedule, existing.timezone, existing.max_snaps = schedule, tz, max_snaps
        existing.display, existing.next_run = display, due
        return existing
    policy = SnapshotPolicy(
        volume_id=volume.id,
        account_id=volume.account_id,
        interval_type=kind,
        schedule=schedule,
        timezone=tz,
        max_snaps=max_snaps,
        display=display,
        next_run=due,
    )
    session.add(policy)
    session.flush()
    return policy


def render(policy: SnapshotPolicy, volume_uuid: str) -> dict[str, Any]:
    return {
        "id": policy.uuid,
        "volumeid": volume_uuid,
        "schedule": policy.schedule,
        "intervaltype": INTERVALS.index(policy.interval_type),
        "maxsnaps": policy.max_snaps,
        "timezone": policy.timezone,
        "fordisplay": policy.display,
        "tags": [],
    }
