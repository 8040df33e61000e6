"""The job table as a queue: submit, claim with a lease, heartbeat, finish.

The row is the source of truth. A worker owns a job only while its lease is fresh; a job
whose server died is claimed again once the lease lapses, up to ``max_attempts`` claims, after
which it fails rather than staying in progress forever. Jobs sharing a ``sync_key`` (the
resource they act on) run one at a time, oldest first; others run concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.models import AsyncJob
from cumulo.services.access import Caller

IN_PROGRESS, SUCCEEDED, FAILED, CANCELLED = 0, 1, 2, 3


def submit(
    session: Session,
    caller: Caller,
    cmd: str,
    params: dict[str, Any],
    *,
    instance_type: str | None = None,
    instance_id: str | None = None,
) -> AsyncJob:
    """Write the job row inside the caller's transaction: the job exists iff the request did."""
    job = AsyncJob(
        user_id=caller.user_id,
        account_id=caller.account_id,
        domain_id=caller.domain_id,
        cmd=cmd,
        params=params,
        instance_type=instance_type,
        instance_id=instance_id,
        sync_key=f"{instance_type}:{instance_id}" if instance_id else None,
    )
    session.add(job)
    session.flush()
    return job


@dataclass(frozen=True)
class Claimed:
    id: int
    uuid: str
    cmd: str
    params: dict[str, Any]
    user_id: int
    attempts: int
    # Claimed only to be failed: its servers kept dying. The runner fails it (with its event
    # and any clean-up the command registered) instead of running the body again.
    abandoned: bool = False


def _claimable(now: Any) -> Any:
    older = aliased(AsyncJob)
    blocked = exists().where(
        older.sync_key == AsyncJob.sync_key, older.status == IN_PROGRESS, older.id < AsyncJob.id
    )
    return and_(
        AsyncJob.status == IN_PROGRESS,
        or_(AsyncJob.lease_expires.is_(None), AsyncJob.lease_expires < now),
        or_(AsyncJob.sync_key.is_(None), ~blocked),
    )


# Built once: every worker wake-up claims, and building this statement (with its aliased
# subquery) cost more than running it.
_CLAIM = (
    select(AsyncJob)
    .where(_claimable(bindparam("p_now", type_=AsyncJob.lease_expires.type)))
    .order_by(AsyncJob.id)
    .limit(1)
)
_CLAIM_LOCKED = _CLAIM.with_for_update(skip_locked=True, of=AsyncJob)
_FINISH = (
    select(AsyncJob)
    .where(
        AsyncJob.id == bindparam("p_id"),
        AsyncJob.owner_id == bindparam("p_owner"),
        AsyncJob.status == IN_PROGRESS,
    )
    .with_for_update()
)


def claim(db: Database, server_id: int, lease_seconds: float, max_attempts: int) -> Claimed | None:
    """Take the oldest runnable job; one claimed too often comes back marked ``abandoned``."""
    now = utcnow()
    with db.write() as session:
        job = session.scalar(_CLAIM if db.is_sqlite else _CLAIM_LOCKED, {"p_now": now})
        if job is None:
            return None
        abandoned = job.attempts >= max_attempts
        job.owner_id = server_id
        job.lease_expires = now + timedelta(seconds=lease_seconds)
        if not abandoned:
            job.attempts += 1
        params = dict(job.params or {})
        return Claimed(job.id, job.uuid, job.cmd, params, job.user_id, job.attempts, abandoned)


def renew(db: Database, server_id: int, job_ids: list[int], lease_seconds: float) -> set[int]:
    """Extend our leases; returns the ids not taken over (ours, or finished meanwhile)."""
    if not job_ids:
        return set()
    with db.write() as session:
        session.execute(
            update(AsyncJob)
            .where(
                AsyncJob.id.in_(job_ids),
                AsyncJob.owner_id == server_id,
                AsyncJob.status == IN_PROGRESS,
            )
            .values(lease_expires=utcnow() + timedelta(seconds=lease_seconds))
        )
        # A job that finished since the caller listed it is not lost: only one still in
        # progress under another owner was taken over.
        owned = session.scalars(
            select(AsyncJob.id).where(
                AsyncJob.id.in_(job_ids),
                or_(AsyncJob.owner_id == server_id, AsyncJob.status != IN_PROGRESS),
            )
        )
        return set(owned)


def _finish(job: AsyncJob, status: int, code: int, result: dict[str, Any] | None) -> None:
    job.status, job.result_code, job.result = status, code, result
    job.completed = utcnow()
    job.lease_expires = None


def finish(
    session: Session,
    job_id: int,
    server_id: int,
    status: int,
    code: int,
    result: dict[str, Any] | None,
) -> AsyncJob | None:
    """Record the outcome if we still own the job; None means another server took it over.

    The row is locked as it is read (PostgreSQL; SQLite has one writer anyway): otherwise a
    server claiming the job after our read, before our write, would find its claim overwritten
    and both would believe they ran it.
    """
    job = session.scalar(_FINISH, {"p_id": job_id, "p_owner": server_id})
    if job is None:
        return None
    _finish(job, status, code, result)
    return job
