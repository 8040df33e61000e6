"""Access statistics: requests and bytes in and out, per account, bucket and operation, land in
the metadata database; storage statistics (objects and bytes) follow writes and deletes."""

from __future__ import annotations

import sqlite3
import time
from typing import Any


def _access(s3_server: Any, bucket: str) -> dict[str, tuple[int, int, int]]:
    db = sqlite3.connect(s3_server.cloud.data_dir / "s3meta.db")
    try:
        rows = db.execute(
            "SELECT operation, SUM(count), SUM(bytes_in), SUM(bytes_out) FROM s3_usage "
            "WHERE bucket = ? GROUP BY operation",
            (bucket,),
        ).fetchall()
    finally:
        db.close()
    return {op: (int(c), int(i), int(o)) for op, c, i, o in rows}


def _storage(s3_server: Any, bucket: str) -> tuple[int, int]:
    db = sqlite3.connect(s3_server.cloud.data_dir / "s3meta.db")
    try:
        row = db.execute(
            "SELECT object_count, byte_count FROM s3_buckets WHERE name = ?", (bucket,)
        ).fetchone()
    finally:
        db.close()
    return int(row[0]), int(row[1])


def test_access_and_storage_statistics(s3_server: Any, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="b", Body=b"y" * 500)
    s3.get_object(Bucket=bucket, Key="a")["Body"].read()
    s3.head_object(Bucket=bucket, Key="a")
    s3.list_objects_v2(Bucket=bucket)
    assert _storage(s3_server, bucket) == (2, 1500)
    deadline = time.monotonic() + 10
    stats = _access(s3_server, bucket)
    while stats.get("KeyRead", (0, 0, 0))[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
        stats = _access(s3_server, bucket)
    assert stats["KeyWrite"][0] == 2 and stats["KeyWrite"][1] >= 1500
    assert stats["KeyRead"] == (1, 0, 1000)
    assert stats["KeyStat"][0] == 1 and stats["KeyStat"][2] == 0
    assert stats["BucketRead"][0] == 1
    s3.delete_object(Bucket=bucket, Key="a")
    assert _storage(s3_server, bucket) == (1, 500)
