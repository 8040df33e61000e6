"""Object storage in the cloud's usage ledger, end to end: a real management server and a real
``cumulo s3`` sharing the cloud database; users store and read objects with boto3, the
operator aggregates periods with generateUsageRecords, and listUsageRecords shows exactly the
requests, bytes and GB-hours the test made (hand-counted from what the client sent and saw).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cumulo.services.usage.object_storage import bucket_uuid
from tests.objectstore.conftest import S3Server
from tests.support.cloud import Keys, free_port, make_cloud

FORMAT = "%Y-%m-%d %H:%M:%S"
STORAGE, WRITES, READS, BYTES_IN, BYTES_OUT = 29, 100, 101, 102, 103


@dataclass
class Tenant:
    name: str
    account_id: str
    domain_id: str
    keys: Keys
    s3: Any


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    data_dir = tmp_path_factory.mktemp("s3ledger")
    cloud = make_cloud(data_dir)
    cloud.start()
    env = {**cloud.env, "CUMULO_S3__PORT": str(free_port())}
    env["CUMULO_S3__USAGE_FLUSH_SECONDS"] = "0.3"
    server = S3Server(cloud, int(env["CUMULO_S3__PORT"]), env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        cloud.stop()


def tenant(server: S3Server) -> Tenant:
    cloud = server.cloud
    name = f"led-{uuid.uuid4().hex[:10]}"
    admin = cloud.call("listUsers", username="admin", listall="true")["user"][0]
    cloud.call(
        "createAccount",
        account=name,
        username=name,
        password=f"pw-{uuid.uuid4().hex}",
        firstname="Lea",
        lastname="Dger",
        email=f"{name}@example.test",
        accounttype=0,
        domainid=admin["domainid"],
    )
    user = cloud.call("listUsers", username=name, listall="true")["user"][0]
    body = cloud.call("registerUserKeys", id=user["id"])["userkeys"]
    keys = Keys(body["apikey"], body["secretkey"])
    return Tenant(name, user["accountid"], user["domainid"], keys, server.client(keys))


def length(response: dict[str, Any]) -> int:
    return int(response["ResponseMetadata"]["HTTPHeaders"].get("content-length", "0"))


def fmt(t: datetime) -> str:
    return t.strftime(FORMAT)


def generate(server: S3Server, start: datetime, end: datetime) -> None:
    server.cloud.call("generateUsageRecords", startdate=fmt(start), enddate=fmt(end))


def records(server: S3Server, start: datetime, end: datetime, **kw: str) -> list[dict[str, Any]]:
    """Records of periods inside ``[start, end)`` (the query's end date is inclusive)."""
    found = server.cloud.call(
        "listUsageRecords",
        startdate=fmt(start),
        enddate=fmt(end - timedelta(seconds=1)),
        **kw,
    ).get("usagerecord", [])
    return [r for r in found if r["usagetype"] in (STORAGE, WRITES, READS, BYTES_IN, BYTES_OUT)]


def by_type(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for r in rows:
        assert r["usagetype"] not in out, rows  # one bucket: one record per type
        out[r["usagetype"]] = r
    return out


def sleep_until(t: datetime) -> None:
    time.sleep(max(0.0, (t - datetime.now(UTC)).total_seconds()))


def whole_second_after(t: datetime, seconds: int) -> datetime:
    return t.replace(microsecond=0) + timedelta(seconds=seconds + 1)


def test_object_storage_usage_in_the_ledger(s3_server: S3Server) -> None:
    now = datetime.now(UTC)
    if now.minute == 59 and now.second > 20:  # keep every request inside one hour
        sleep_until(now.replace(minute=0, second=1, microsecond=0) + timedelta(hours=1))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    alice, bob = tenant(s3_server), tenant(s3_server)
    a_bucket, b_bucket = f"la-{uuid.uuid4().hex[:12]}", f"lb-{uuid.uuid4().hex[:12]}"

    # Alice: 5 class-A requests (create, 3 PUTs, a LIST), 3 class-B (2 GETs, a HEAD).
    sent, seen = 0, 0
    seen += length(alice.s3.create_bucket(Bucket=a_bucket))
    bodies = {"k1": b"a" * 1000, "k2": b"b" * 20_000, "k3": b"c" * 300_000}
    for key, body in bodies.items():
        seen += length(alice.s3.put_object(Bucket=a_bucket, Key=key, Body=body))
        sent += len(body)
    seen += length(alice.s3.list_objects_v2(Bucket=a_bucket))
    for key in ("k1", "k3"):
        got = alice.s3.get_object(Bucket=a_bucket, Key=key)
        assert got["Body"].read() == bodies[key]
        seen += length(got)
    alice.s3.head_object(Bucket=a_bucket, Key="k2")  # HEAD: counted, no bytes out
    stored = sum(len(b) for b in bodies.values())
    assert seen >= 1000 + 300_000

    # Bob: one bucket, one object; none of it may show up in Alice's records.
    bob.s3.create_bucket(Bucket=b_bucket)
    bob.s3.put_object(Bucket=b_bucket, Key="x", Body=b"z" * 777)
    time.sleep(1.5)  # the S3 service flushes its counters every 0.3 s

    # Any aggregation run samples bucket sizes first: this one (the hour before, which holds
    # nothing of ours) puts both buckets' sizes into the ledger's history now.
    before = datetime.now(UTC)
    generate(s3_server, hour - timedelta(hours=1), hour)
    after = datetime.now(UTC)
    assert records(s3_server, hour - timedelta(hours=1), hour, accountid=alice.account_id) == []

    p1 = whole_second_after(after, 1)
    p2 = p1 + timedelta(seconds=3)
    sleep_until(p1 + timedelta(milliseconds=300))
    generate(s3_server, hour, p1)
    first_a = records(s3_server, hour, p1, accountid=alice.account_id)
    mine = by_type(first_a)
    assert set(mine) == {STORAGE, WRITES, READS, BYTES_IN, BYTES_OUT}
    assert {r["usageid"] for r in first_a} == {bucket_uuid(alice.account_id, a_bucket)}
    assert all(r["accountid"] == alice.account_id for r in first_a)
    assert float(mine[WRITES]["rawusage"]) == 5
    assert float(mine[READS]["rawusage"]) == 3
    assert float(mine[BYTES_IN]["rawusage"]) == sent
    assert float(mine[BYTES_OUT]["rawusage"]) == seen
    assert mine[STORAGE]["size"] == stored
    # Stored from the sample (between `before` and `after`) to the period's end.
    lo = math.floor((p1 - after).total_seconds())
    hi = math.ceil((p1 - before).total_seconds())
    assert lo <= round(float(mine[STORAGE]["rawusage"]) * 3600) <= hi

    # A period wholly after the sample: exactly 3 s at the stored size, and no requests.
    sleep_until(p2 + timedelta(milliseconds=300))
    generate(s3_server, p1, p2)
    second = by_type(records(s3_server, p1, p2, accountid=alice.account_id))
    assert set(second) == {STORAGE}
    assert second[STORAGE]["size"] == stored
    assert second[STORAGE]["rawusage"] == "0.000833"  # 3 s = 0.000833 h (6 decimals)

    # Bob's usage is his own.
    bobs = by_type(records(s3_server, hour, p1, accountid=bob.account_id))
    assert bobs[STORAGE]["size"] == 777
    assert float(bobs[BYTES_IN]["rawusage"]) == 777
    assert float(bobs[WRITES]["rawusage"]) == 2
    assert READS not in bobs
    assert {r["usageid"] for r in bobs.values()} == {bucket_uuid(bob.account_id, b_bucket)}

    # Re-runs give the same records: no gap, no duplicate.
    whole_before = records(s3_server, hour, p2)
    generate(s3_server, hour, p1)
    generate(s3_server, p1, p2)
    assert records(s3_server, hour, p2) == whole_before
    # One ad-hoc run over both periods replaces them: the same totals, once.
    generate(s3_server, hour, p2)
    merged = by_type(records(s3_server, hour, p2, accountid=alice.account_id))
    assert float(merged[WRITES]["rawusage"]) == 5
    assert float(merged[BYTES_OUT]["rawusage"]) == seen
    assert records(s3_server, hour, p1, accountid=alice.account_id) == []

    # The quota statement charges them: 0.5 per class-A request, 2 per GiB received.
    for usage_type, value in ((WRITES, "0.5"), (BYTES_IN, "2")):
        s3_server.cloud.call(
            "quotaTariffCreate",
            name=f"s3-{usage_type}-{uuid.uuid4().hex[:8]}",
            usagetype=usage_type,
            value=value,
            startdate=fmt(hour),
            enddate=(p2 + timedelta(days=1)).strftime("%Y-%m-%d"),
        )
    s3_server.cloud.call("quotaUpdate")
    body = s3_server.cloud.call(
        "quotaStatement",
        account=alice.name,
        domainid=alice.domain_id,
        startdate=hour.strftime("%Y-%m-%d"),
        enddate=p2.strftime("%Y-%m-%d"),
    )["statement"]
    quota = {int(i["type"]): Decimal(str(i["quota"])) for i in body["quotausage"]}
    units = {int(i["type"]): i["unit"] for i in body["quotausage"]}
    assert quota[WRITES] == Decimal("2.5") and units[WRITES] == "IOPS"
    expected_in = (Decimal(sent) / 1024**3 * 2).quantize(Decimal("0.00000001"))
    assert quota[BYTES_IN] == expected_in and units[BYTES_IN] == "GB"


def test_usage_types_listed(s3_server: S3Server) -> None:
    types = s3_server.cloud.call("listUsageTypes")["usagetype"]
    ids = {t["usagetypeid"]: t["name"] for t in types}
    assert ids[29] == "BUCKET"
    assert ids[100] == "S3_REQUESTS_WRITE"
    assert ids[101] == "S3_REQUESTS_READ"
    assert ids[102] == "S3_BYTES_IN"
    assert ids[103] == "S3_BYTES_OUT"
