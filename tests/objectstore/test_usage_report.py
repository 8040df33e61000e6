"""Usage reports from the admin API (and the Python seam metering calls): the counts and
bytes equal exactly the traffic the test made, per operation; storage per bucket is exact."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest

from cumulo.cli.s3admin import AdminClient
from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.objectstore.report import access_rows, storage_rows, usage_report
from tests.objectstore.admin_support import admin_client, new_s3_user, user_keys
from tests.objectstore.conftest import S3Server


@pytest.fixture(scope="module")
def admin(s3_server: S3Server) -> AdminClient:
    return admin_client(s3_server, s3_server.cloud.admin)


def _traffic(s3: Any) -> str:
    bucket = f"r-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="b", Body=b"y" * 500)
    s3.put_object(Bucket=bucket, Key="c", Body=b"z" * 250)
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"x" * 1000
    assert s3.get_object(Bucket=bucket, Key="b", Range="bytes=0-99")["Body"].read() == b"y" * 100
    s3.head_object(Bucket=bucket, Key="a")
    s3.list_objects_v2(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="c")
    return bucket


def _ops(report: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {o["name"]: (o["count"], o["bytes_in"], o["bytes_out"]) for o in report["operations"]}


def test_report_equals_the_traffic(s3_server: S3Server, admin: AdminClient, s3: Any) -> None:
    user = new_s3_user(admin)
    mine = s3_server.client(user_keys(user))
    bucket = _traffic(mine)
    _traffic(s3)  # someone else's traffic stays out of this user's report
    report = admin.call("GET", f"usage/{user['key_id']}")
    ops = _ops(report)
    assert ops["BucketCreate"][0] == 1
    assert ops["KeyWrite"] == (3, 1750, 0)
    assert ops["KeyRead"] == (2, 0, 1100)
    assert ops["KeyStat"] == (1, 0, 0)
    assert ops["BucketRead"][0] == 1
    assert ops["KeyDelete"] == (1, 0, 0)
    assert set(ops) == {"BucketCreate", "KeyWrite", "KeyRead", "KeyStat", "BucketRead", "KeyDelete"}
    assert report["owner_id"] == user["id"]
    assert report["storage"] == [{"bucket": bucket, "objects": 2, "bytes": 1500}]
    assert report["totals"]["count"] == 9 and report["totals"]["bytes"] == 1500
    assert {row["bucket"] for row in report["access"]} == {bucket}

    # The same report over the Python seam metering calls, on the metadata database.
    db = Database(f"sqlite:///{s3_server.cloud.data_dir / 's3meta.db'}")
    try:
        now = utcnow()
        seam = usage_report(db, user["id"], now - timedelta(hours=2), now + timedelta(hours=1))
        assert seam.operations()["KeyWrite"] == {"count": 3, "bytes_in": 1750, "bytes_out": 0}
        assert [(b.bucket, b.objects, b.bytes) for b in seam.storage] == [(bucket, 2, 1500)]
        everyone = access_rows(db, now - timedelta(hours=2), now + timedelta(hours=1))
        assert sum(r.count for o, r in everyone if o == user["id"]) == 9
        assert (user["id"], bucket) in {(o, b.bucket) for o, b in storage_rows(db)}
    finally:
        db.dispose()


def test_report_window_flags_and_xml(admin: AdminClient, s3_server: S3Server) -> None:
    user = new_s3_user(admin)
    _traffic(s3_server.client(user_keys(user)))
    later = (utcnow() + timedelta(hours=2)).strftime("%Y%m%dT%H0000Z")
    empty = admin.call(
        "GET", f"usage/{user['key_id']}", query={"start": later, "end": later[:9] + "235959Z"}
    )
    assert empty.get("operations") == [] and empty["access"] == []
    only_storage = admin.call("GET", f"usage/{user['key_id']}", query={"access": "false"})
    assert "operations" not in only_storage and only_storage["storage"][0]["objects"] == 2
    xml = ET.fromstring(admin.call("GET", f"usage/{user['id']}", xml=True))
    ops = {o.findtext("name"): o.findtext("count") for o in xml.iter("operation")}
    assert ops["KeyWrite"] == "3"
    assert xml.find("storage/bucket/bytes") is not None
    assert xml.findtext("storage/bucket/bytes") == "1500"


@pytest.mark.parametrize(
    "query",
    [
        {"start": "yesterday"},
        {"start": "2026-11-22T10:00:00Z", "end": "2026-11-22T09:00:00Z"},
        {"start": "2026-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"},
        {"access": "maybe"},
    ],
)
def test_bad_report_arguments(admin: AdminClient, query: dict[str, str]) -> None:
    user = new_s3_user(admin)
    response = admin.request("GET", f"usage/{user['key_id']}", query=query)
    assert response.status_code == 400
    assert ET.fromstring(response.content).findtext("Code") == "InvalidArgument"
