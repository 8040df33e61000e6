"""The usage job's schedule: which periods are due, and submitting each once, as a job.

Periods follow CloudStack's settings: ``usage.stats.job.aggregation.range`` minutes long,
counted from midnight in ``usage.aggregation.timezone``; a period is due
``usage.stats.job.exec.time`` (HH:MM) after it ends, so late events of its last minutes are
in. Everything from the first usage event on is covered: periods missed while no server ran
(or cut short by an operator's ad-hoc run) are found as gaps and scheduled too.

Each due period gets a ``usage_jobs`` row (unique start and end) and a job in the job engine,
in one transaction: a second server computing the same schedule collides on the unique row
and submits nothing, and a server dying mid-aggregation leaves a job that another claims and
re-runs identically.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cumulo.common.time import aware, utcnow
from cumulo.db.models import Account, User
from cumulo.db.models_usage import UsageEvent, UsageJob
from cumulo.services.access import AccountType
from cumulo.services.config import ConfigKey, define
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime
from cumulo.services.usage import object_storage, quota
from cumulo.services.usage.aggregate import SCHEDULED

log = logging.getLogger(__name__)
JOB_COMMAND = "generateUsageRecords"
MAX_PERIODS_PER_TICK = 48
TICK_SECONDS = 60.0
Period = tuple[datetime, datetime]

AGGREGATION_RANGE = define(
    ConfigKey(
        "usage.stats.job.aggregation.range",
        "Usage",
        "Integer",
        "1440",
        "The range of time for aggregating the user statistics specified in minutes "
        "(e.g. 1440 for daily, 60 for hourly).",
        group="Usage Server",
        min=1,
        max=1440,
    )
)
EXEC_TIME = define(
    ConfigKey(
        "usage.stats.job.exec.time",
        "Usage",
        "String",
        "00:15",
        "The time (HH:MM) after the end of a period at which its usage job runs.",
        group="Usage Server",
    )
)
AGGREGATION_TIMEZONE = define(
    ConfigKey(
        "usage.aggregation.timezone",
        "Usage",
        "String",
        "GMT",
        "The timezone to use for usage stats aggregation",
        group="Usage Server",
    )
)


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown usage.aggregation.timezone; using GMT", extra={"tz": name})
        return ZoneInfo("GMT")


def offset_of(text: str) -> int:
    """``HH:MM`` as minutes; a malformed value means the default 00:15."""
    try:
        hours, minutes = (int(p) for p in text.split(":"))
    except ValueError:
        return 15
    return max(0, hours * 60 + minutes)


def _midnight(t: datetime, tz: ZoneInfo, days: int = 0) -> datetime:
    local = t.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return (local + timedelta(days=days)).replace(tzinfo=tz).astimezone(UTC)


def floor(t: datetime, range_minutes: int, tz: ZoneInfo) -> datetime:
    """The start of the grid cell holding ``t``."""
    day = _midnight(t, tz)
    step = timedelta(minutes=range_minutes)
    return day + step * ((t - day) // step)


def next_boundary(t: datetime, range_minutes: int, tz: ZoneInfo) -> datetime:
    """The first grid boundary after ``t`` (a day's last cell ends at midnight)."""
    return min(floor(t, range_minutes, tz) + timedelta(minutes=range_minutes), _midnight(t, tz, 1))


def due_periods(
    session: Session, now: datetime, *, range_minutes: int, tz: str, offset_minutes: int
) -> list[Period]:
    """The periods not yet aggregated or scheduled, from the first usage event on, up to the
    last boundary that is ``offset_minutes`` old; oldest first."""
    zone = zone_of(tz)
    first = session.scalar(select(func.min(UsageEvent.created)))
    if first is None:
        return []
    origin = floor(aware(first), range_minutes, zone)
    until = floor(aware(now) - timedelta(minutes=offset_minutes), range_minutes, zone)
    taken = session.execute(
        select(UsageJob.start_date, UsageJob.end_date)
        .where(UsageJob.end_date > origin, UsageJob.start_date < until)
        .order_by(UsageJob.start_date)
    ).all()
    due: list[Period] = []
    cursor = origin
    for start, end in taken:
        due += _split(cursor, aware(start), range_minutes, zone)
        cursor = max(cursor, aware(end))
    return due + _split(cursor, until, range_minutes, zone)


def _split(start: datetime, end: datetime, range_minutes: int, tz: ZoneInfo) -> list[Period]:
    out: list[Period] = []
    while start < end:
        stop = min(next_boundary(start, range_minutes, tz), end)
        out.append((start, stop))
        start = stop
    return out


def _system_user(session: Session) -> int | None:
    """Scheduled usage jobs run as the first root admin (CloudStack's usage job is system)."""
    return session.scalar(
        select(User.id)
        .join(Account, User.account_id == Account.id)
        .where(Account.type == AccountType.ADMIN, Account.removed.is_(None))
        .order_by(Account.id, User.id)
        .limit(1)
    )


def schedule(rt: Runtime, now: datetime | None = None) -> list[Period]:
    """Submit a job for every due period, once across all servers; the periods submitted."""
    try:
        with rt.db.write() as session:
            return _schedule(rt, session, now or utcnow())
    except IntegrityError:  # another server scheduled the same periods first
        return []


def _schedule(rt: Runtime, session: Session, now: datetime) -> list[Period]:
    due = due_periods(
        session,
        now,
        range_minutes=int(rt.config.get(session, AGGREGATION_RANGE)),
        tz=str(rt.config.get(session, AGGREGATION_TIMEZONE)),
        offset_minutes=offset_of(str(rt.config.get(session, EXEC_TIME))),
    )[:MAX_PERIODS_PER_TICK]
    user_id = _system_user(session)
    caller = auth.caller_by_user_id(session, user_id) if user_id is not None else None
    if not due or caller is None:
        return []
    for start, end in due:
        params = {"period_start": start.isoformat(), "period_end": end.isoformat()}
        job = queue.submit(session, caller, JOB_COMMAND, params)
        session.add(UsageJob(start_date=start, end_date=end, state=SCHEDULED, job_uuid=job.uuid))
    session.flush()
    return due


def schedule_quota(rt: Runtime) -> bool:
    """After aggregation: a quotaUpdate job when quota is enabled and some aggregated period
    is newer than its quota (``quota.schedule_update``); True if one was submitted."""
    try:
        with rt.db.write() as session:
            user_id = _system_user(session)
            caller = auth.caller_by_user_id(session, user_id) if user_id is not None else None
            return caller is not None and quota.schedule_update(session, caller, rt.config)
    except IntegrityError:
        return False


def sample_object_storage(rt: Runtime) -> None:
    """Bucket sizes into the ledger's history, once a tick (``usage.object_storage``)."""
    if object_storage.registered() is None:
        return
    try:
        with rt.db.write() as session:
            object_storage.sample(session)
    except Exception:
        log.exception("object storage usage sampling failed")


def loop(rt: Runtime, stop: threading.Event, notify: Callable[[], None]) -> None:
    """The management server's usage thread: a tick a minute until the server stops."""
    while not stop.wait(TICK_SECONDS):
        try:
            sample_object_storage(rt)
            aggregating = bool(schedule(rt))
            if schedule_quota(rt) or aggregating:
                notify()
        except Exception:
            log.exception("usage scheduling failed")
