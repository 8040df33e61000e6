"""The job queue against a real database: claims, leases, serialisation, under concurrency.

Several claimers (one per simulated management server, each with its own engine as separate
processes would have) race for the same jobs. On PostgreSQL that exercises
``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite the single writer.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import event, select

from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.db.models import AsyncJob, ManagementServer, User
from cumulo.services.access import Caller
from cumulo.services.identity import auth
from cumulo.services.identity.bootstrap import ensure_cloud
from cumulo.services.jobs import queue
from tests.support.postgres import session_cluster


def _admin(db: Database) -> Caller:
    with db.read() as session:
        user_id = session.scalar(select(User.id).where(User.is_default.is_(True)))
        assert user_id is not None
        caller = auth.caller_by_user_id(session, user_id)
    assert caller is not None
    return caller


def _servers(db: Database, count: int) -> list[int]:
    with db.write() as session:
        rows = [ManagementServer(name=f"test-{i}", pid=i, version="test") for i in range(count)]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _submit(db: Database, keys: list[str | None]) -> list[int]:
    """One job per entry; entries with the same key act on the same resource."""
    caller = _admin(db)
    with db.write() as session:
        jobs = [
            queue.submit(
                session, caller, "testJob", {"n": i}, instance_type="Thing", instance_id=key
            )
            for i, key in enumerate(keys)
        ]
        return [job.id for job in jobs]


def _finish(db: Database, job_id: int, server_id: int) -> bool:
    """True if the finish was recorded, False if ``server_id`` no longer owned the job."""
    with db.write() as session:
        return (
            queue.finish(session, job_id, server_id, queue.SUCCEEDED, 0, {"ok": True}) is not None
        )


@dataclass(frozen=True)
class JobRow:
    status: int
    result_code: int
    attempts: int
    sync_key: str | None
    completed: Any
    lease_expires: Any


def _jobs(db: Database) -> dict[int, JobRow]:
    with db.read() as session:
        return {
            job.id: JobRow(
                job.status,
                job.result_code,
                job.attempts,
                job.sync_key,
                job.completed,
                job.lease_expires,
            )
            for job in session.scalars(select(AsyncJob))
        }


@dataclass(frozen=True)
class Run:
    job_id: int
    server_id: int
    started: float
    ended: float
    finished: bool


@dataclass
class Race:
    """What the claimers saw; shared between their threads."""

    url: str
    total: int
    deadline: float
    runs: list[Run] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done(self) -> bool:
        with self.lock:
            finished = sum(run.finished for run in self.runs)
            return bool(self.errors) or finished >= self.total or time.monotonic() > self.deadline

    def claimer(self, server_id: int) -> None:
        try:
            self._claim_until_done(server_id)
        except BaseException as err:  # surfaced by the test's assertions
            with self.lock:
                self.errors.append(err)

    def _claim_until_done(self, server_id: int) -> None:
        db = Database(self.url, pool_size=2)
        try:
            while not self.done():
                claimed = queue.claim(db, server_id, lease_seconds=60, max_attempts=3)
                if claimed is None:
                    time.sleep(0.005)
                    continue
                started = time.monotonic()
                time.sleep(random.uniform(0.005, 0.03))
                # The work ends before the finish commits: the next job on the same key can
                # only be claimed after that commit, so a serialised successor starts later.
                ended = time.monotonic()
                finished = _finish(db, claimed.id, server_id)
                with self.lock:
                    self.runs.append(Run(claimed.id, server_id, started, ended, finished))
        finally:
            db.dispose()


def test_concurrent_claimers_never_share_a_job_and_serialise_each_key(
    db: Database, db_url: str
) -> None:
    keys: list[str | None] = [None] * 30
    for k in range(5):
        keys += [f"res-{k}"] * 6
    random.Random(7).shuffle(keys)
    job_ids = _submit(db, keys)
    race = Race(db_url, len(job_ids), deadline=time.monotonic() + 60)
    threads = [threading.Thread(target=race.claimer, args=(sid,)) for sid in _servers(db, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not race.errors, race.errors
    assert not any(t.is_alive() for t in threads), "claimers did not finish"

    runs = race.runs
    claimed_ids = [run.job_id for run in runs]
    assert sorted(claimed_ids) == sorted(job_ids), "a job was claimed twice or never"
    assert all(run.finished for run in runs), "a claimer lost a job while running it"
    rows = _jobs(db)
    assert all(rows[i].status == queue.SUCCEEDED and rows[i].attempts == 1 for i in job_ids)
    assert len({run.server_id for run in runs}) > 1, "only one claimer ever won"

    by_key: dict[str, list[tuple[int, Run]]] = {}
    for run in runs:
        key = rows[run.job_id].sync_key
        if key is not None:
            by_key.setdefault(key, []).append((run.job_id, run))
    assert len(by_key) == 5
    for key, key_runs in by_key.items():
        key_runs.sort(key=lambda item: item[1].started)
        assert [job_id for job_id, _ in key_runs] == sorted(j for j, _ in key_runs), (
            f"{key}: jobs ran out of submission order"
        )
        for (_, before), (_, after) in pairwise(key_runs):
            assert after.started >= before.ended, f"{key}: jobs overlapped"


def test_unrelated_jobs_run_concurrently(db: Database, db_url: str) -> None:
    """Jobs with no key or different keys are all claimable at once."""
    _submit(db, [None, None, "a", "b"])
    a, b, c, d = _servers(db, 4)
    claims = [queue.claim(db, sid, 60, 3) for sid in (a, b, c, d)]
    assert all(claim is not None for claim in claims)
    assert len({claim.id for claim in claims if claim is not None}) == 4
    assert queue.claim(db, a, 60, 3) is None


def test_a_key_waits_for_its_oldest_job(db: Database) -> None:
    first, second = _submit(db, ["k", "k"])
    (server,) = _servers(db, 1)
    claimed = queue.claim(db, server, 60, 3)
    assert claimed is not None and claimed.id == first
    assert queue.claim(db, server, 60, 3) is None, "second job on the key ran alongside"
    assert _finish(db, first, server)
    claimed = queue.claim(db, server, 60, 3)
    assert claimed is not None and claimed.id == second


def test_a_lapsed_lease_is_taken_over_and_the_old_owner_cannot_finish(db: Database) -> None:
    (job_id,) = _submit(db, ["k"])
    dead, alive = _servers(db, 2)
    assert queue.claim(db, dead, lease_seconds=0.3, max_attempts=3) is not None
    assert queue.claim(db, alive, 60, 3) is None, "a fresh lease was taken over"
    time.sleep(0.5)
    taken = queue.claim(db, alive, 60, 3)
    assert taken is not None and taken.id == job_id and taken.attempts == 2
    assert not _finish(db, job_id, dead), "the server that lost the lease finished the job"
    assert _finish(db, job_id, alive)
    assert _jobs(db)[job_id].status == queue.SUCCEEDED


def test_renew_keeps_a_lease_and_reports_lost_ones(db: Database) -> None:
    kept, lost = _submit(db, [None, None])
    one, two = _servers(db, 2)
    assert queue.claim(db, one, 0.4, 3) is not None
    assert queue.claim(db, one, 0.4, 3) is not None
    time.sleep(0.2)
    assert queue.renew(db, one, [kept], 0.4) == {kept}
    time.sleep(0.3)
    taken = queue.claim(db, two, 60, 3)
    assert taken is not None and taken.id == lost, "the renewed lease was taken over"
    assert queue.renew(db, one, [kept, lost], 0.4) == {kept}


def test_a_job_claimed_too_often_comes_back_abandoned_not_to_run_again(db: Database) -> None:
    (job_id,) = _submit(db, ["k"])
    (server,) = _servers(db, 1)
    for attempt in (1, 2):
        claimed = queue.claim(db, server, lease_seconds=0.05, max_attempts=2)
        assert claimed is not None and claimed.attempts == attempt
        assert not claimed.abandoned
        time.sleep(0.1)
    last = queue.claim(db, server, 60, 2)
    assert last is not None and last.abandoned and last.attempts == 2
    job = _jobs(db)[job_id]
    # Still ours and in progress: the runner fails it, with its event and clean-up.
    assert job.status == queue.IN_PROGRESS and job.lease_expires is not None


@pytest.mark.pg
def test_postgres_claim_skips_locked_rows(request: pytest.FixtureRequest) -> None:
    """The claim query on PostgreSQL locks the row it takes and skips rows others hold."""
    url = session_cluster(request.config).create_database(f"jobs_{uuid.uuid4().hex[:12]}")
    upgrade(url)
    db = Database(url)
    statements: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _seen(_conn: Any, _cur: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    try:
        with db.write() as session:
            ensure_cloud(session)
        _submit(db, [None])
        (server,) = _servers(db, 1)
        assert queue.claim(db, server, 60, 3) is not None
    finally:
        db.dispose()
    claims = [s for s in statements if "FROM async_jobs" in s and "LIMIT" in s]
    assert claims and "FOR UPDATE OF async_jobs SKIP LOCKED" in claims[0]
