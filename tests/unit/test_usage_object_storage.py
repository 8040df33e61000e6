"""Object-storage usage with a controlled clock: bucket sizes sampled at chosen times, hourly
access counters from a fake S3 source, records compared with hand-computed figures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_usage import UsageRecord
from cumulo.services.usage import aggregate
from cumulo.services.usage import object_storage as osu

D = datetime(2026, 3, 10, tzinfo=UTC)
H = timedelta(hours=1)


class FakeSource:
    def __init__(self) -> None:
        self.buckets: list[osu.StoredBucket] = []
        self.rows: list[osu.AccessCount] = []

    def access(self, start: datetime, end: datetime) -> list[osu.AccessCount]:
        return [
            r for r in self.rows if r.hour >= start.replace(minute=0, second=0) and r.hour < end
        ]

    def storage(self) -> list[osu.StoredBucket]:
        return list(self.buckets)


@pytest.fixture
def source() -> Iterator[FakeSource]:
    fake = FakeSource()
    osu.register(fake)
    yield fake
    osu.register(None)


def owner(session: Session) -> Account:
    account = session.scalar(select(Account).order_by(Account.id))
    assert account is not None
    return account


def recs(
    session: Session, start: datetime, end: datetime
) -> list[tuple[int, int, float, int | None]]:
    rows = session.scalars(
        select(UsageRecord)
        .where(UsageRecord.start_date == start, UsageRecord.end_date == end)
        .order_by(UsageRecord.usage_type, UsageRecord.size)
    )
    return [(r.usage_type, r.seconds, r.raw_usage, r.size) for r in rows]


def test_request_classes() -> None:
    for op in ("KeyWrite", "KeyCopy", "BucketRead", "ListBuckets", "KeyWriteMultipartInit"):
        assert osu.request_class(op) == 100, op
    for op in ("KeyRead", "KeyStat", "KeyDelete", "BucketDelete", "KeyReadACL", "BucketStat"):
        assert osu.request_class(op) == 101, op


def test_storage_seconds_at_each_size(session: Session, source: FakeSource) -> None:
    acct = owner(session).uuid
    source.buckets = [osu.StoredBucket(acct, "b", 1000)]
    assert osu.sample(session, at=D + 0.5 * H) == 1
    assert osu.sample(session, at=D + 0.75 * H) == 0  # unchanged: no event
    source.buckets = [osu.StoredBucket(acct, "b", 5000)]
    assert osu.sample(session, at=D + 1.5 * H) == 1
    source.buckets = [osu.StoredBucket("s3-only-user", "x", 9)]  # not a cloud account
    assert osu.sample(session, at=D + 2.25 * H) == 1  # b went away; x is not metered
    # Period [D, D+2h): 1 h at 1000 bytes, 0.5 h at 5000.
    aggregate.run(session, D, D + 2 * H)
    assert recs(session, D, D + 2 * H) == [(29, 3600, 1.0, 1000), (29, 1800, 0.5, 5000)]
    # Period [D+2h, D+3h): 0.25 h at 5000, then deleted.
    aggregate.run(session, D + 2 * H, D + 3 * H)
    assert recs(session, D + 2 * H, D + 3 * H) == [(29, 900, 0.25, 5000)]
    first = recs(session, D, D + 2 * H)
    aggregate.run(session, D, D + 2 * H)  # a re-run: the same records
    assert recs(session, D, D + 2 * H) == first


def test_access_hours_billed_in_the_period_they_begin(session: Session, source: FakeSource) -> None:
    acct = owner(session).uuid

    def row(hour: datetime, op: str, n: int, b_in: int, b_out: int) -> osu.AccessCount:
        return osu.AccessCount(acct, hour, "b", op, n, b_in, b_out)

    source.rows = [
        row(D, "KeyWrite", 3, 300, 0),
        row(D, "KeyRead", 2, 0, 200),
        row(D + H, "KeyRead", 7, 0, 700),
        osu.AccessCount("s3-only-user", D, "x", "KeyWrite", 5, 5, 0),
    ]
    # Half-hour periods: the hour D+1h begins in [D+1h, D+1.5h) only.
    for i in range(4):
        aggregate.run(session, D + i * 0.5 * H, D + (i + 1) * 0.5 * H)
    assert recs(session, D, D + 0.5 * H) == [
        (100, 0, 3.0, None),
        (101, 0, 2.0, None),
        (102, 0, 300.0, None),
        (103, 0, 200.0, None),
    ]
    assert recs(session, D + 0.5 * H, D + H) == []
    assert recs(session, D + H, D + 1.5 * H) == [(101, 0, 7.0, None), (103, 0, 700.0, None)]
    assert recs(session, D + 1.5 * H, D + 2 * H) == []
