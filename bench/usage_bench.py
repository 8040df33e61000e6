"""Usage aggregation over one million usage events, side by side with a plain SQL GROUP BY.

Builds a fresh migrated SQLite cloud database in a temporary directory and writes synthetic
usage events: VMs created over a month, started and stopped a few times, some destroyed,
plus data volumes created, resized and deleted — ``--events`` rows in all. Then, in the same
run and on the same rows:

- ``aggregate.run`` for the whole month as one period (streams every event, builds the
  intervals, writes the records in one transaction; rolled back afterwards so each repeat
  starts from the same state);
- a plain ``SELECT … GROUP BY`` over the same rows (what the database alone does in one pass).

Prints the wall time of each, the ratio, and the Python heap peak during aggregation
(tracemalloc, measured in a separate pass so it does not slow the timed one).

    .venv/bin/python bench/usage_bench.py [--events 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from cumulo.db.engine import Database
from cumulo.db.migrate import upgrade
from cumulo.db.models import Account
from cumulo.db.models_usage import UsageEvent
from cumulo.services.identity.bootstrap import ensure_cloud
from cumulo.services.usage import aggregate

MONTH_START = datetime(2026, 1, 1, tzinfo=UTC)
MONTH = timedelta(days=30)
BATCH = 50_000


def vm_history(rng: random.Random, vm: int) -> list[tuple[str, datetime]]:
    """CREATE, some START/STOP pairs, maybe DESTROY: about ten events per VM."""
    t = MONTH_START + timedelta(seconds=rng.randrange(int(MONTH.total_seconds() // 4)))
    out = [("VM.CREATE", t)]
    for _ in range(4):
        t += timedelta(seconds=rng.randrange(60, 86_400))
        out.append(("VM.START", t))
        t += timedelta(seconds=rng.randrange(60, 86_400))
        out.append(("VM.STOP", t))
    if rng.random() < 0.5:
        out.append(("VM.DESTROY", t + timedelta(seconds=60)))
    return out


def rows(n: int, account: int, domain: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    out: list[dict[str, Any]] = []
    vm = 0
    while len(out) < n:
        vm += 1
        for type_, at in vm_history(rng, vm):
            out.append(
                {
                    "type": type_,
                    "created": at,
                    "account_id": account,
                    "domain_id": domain,
                    "zone_id": 1,
                    "resource_type": "VirtualMachine",
                    "resource_id": vm,
                    "resource_uuid": f"00000000-0000-0000-0000-{vm:012d}",
                    "resource_name": f"vm-{vm}",
                    "offering_id": 1 + vm % 3,
                    "template_id": 1,
                }
            )
    return out[:n]


def build(path: Path, n: int) -> Database:
    url = f"sqlite:///{path}"
    upgrade(url)
    db = Database(url)
    with db.write() as session:
        ensure_cloud(session)
    with db.write() as session:
        acct = session.scalar(select(Account).order_by(Account.id))
        assert acct is not None
        account, domain = acct.id, acct.domain_id
    data = rows(n, account, domain)
    for i in range(0, len(data), BATCH):
        with db.write() as session:
            session.execute(insert(UsageEvent), data[i : i + BATCH])
    return db


def timed_aggregate(db: Database) -> tuple[float, int]:
    """One month as one period, rolled back so every repeat sees the same tables."""
    session = Session(db.engine)
    try:
        start = time.perf_counter()
        count = aggregate.run(session, MONTH_START, MONTH_START + MONTH)
        return time.perf_counter() - start, count
    finally:
        session.rollback()
        session.close()


def timed_group_by(db: Database) -> tuple[float, int]:
    stmt = (
        select(
            UsageEvent.account_id,
            UsageEvent.resource_id,
            UsageEvent.type,
            func.count(),
            func.min(UsageEvent.created),
            func.max(UsageEvent.created),
        )
        .where(UsageEvent.created < MONTH_START + MONTH)
        .group_by(UsageEvent.account_id, UsageEvent.resource_id, UsageEvent.type)
    )
    with db.read() as session:
        start = time.perf_counter()
        groups = len(session.execute(stmt).all())
        return time.perf_counter() - start, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = build(Path(tmp) / "usage.db", args.events)
        with db.read() as session:
            total = session.execute(text("SELECT count(*) FROM usage_events")).scalar_one()
        print(f"{total} usage events written in {time.perf_counter() - t0:.1f} s")
        agg = min(timed_aggregate(db) for _ in range(args.repeat))
        grp = min(timed_group_by(db) for _ in range(args.repeat))
        tracemalloc.start()
        timed_aggregate(db)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"aggregate.run (month):  {agg[0]:8.2f} s  {agg[1]} records")
        print(f"SQL GROUP BY:           {grp[0]:8.2f} s  {grp[1]} groups")
        print(f"ratio aggregate / GROUP BY: {agg[0] / grp[0]:.1f}")
        print(f"aggregation Python heap peak: {peak / 2**20:.1f} MiB")
        db.dispose()


if __name__ == "__main__":
    main()
