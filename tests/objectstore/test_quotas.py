"""Per-owner limits: the N+1th bucket, a PUT, copy or multipart completion past the byte or
object limit is refused with S3's error and stores nothing; concurrent PUTs never commit past
the byte limit (the check runs in the committing transaction)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cumulo.cli.s3admin import AdminClient
from tests.objectstore.admin_support import admin_client, meta_rows, new_s3_user, user_keys
from tests.objectstore.conftest import S3Server, new_user

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def admin(s3_server: S3Server) -> AdminClient:
    return admin_client(s3_server, s3_server.cloud.admin)


def _limited(s3_server: S3Server, admin: AdminClient, **limits: int) -> tuple[Any, dict[str, Any]]:
    user = new_s3_user(admin, **limits)
    return s3_server.client(user_keys(user)), user


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = err.value.response
    return str(r["Error"]["Code"]), int(r["ResponseMetadata"]["HTTPStatusCode"])


def _bucket(s3: Any) -> str:
    name = f"q-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _stored(s3_server: S3Server, owner: str) -> tuple[int, int]:
    row = meta_rows(
        s3_server,
        "SELECT COALESCE(SUM(object_count), 0), COALESCE(SUM(byte_count), 0) FROM s3_buckets "
        "WHERE owner_id = ?",
        owner,
    )[0]
    return int(row[0]), int(row[1])


def test_bucket_limit(s3_server: S3Server, admin: AdminClient) -> None:
    s3, user = _limited(s3_server, admin, max_buckets=2)
    first, second = _bucket(s3), _bucket(s3)
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=f"q-{uuid.uuid4().hex[:12]}")
    assert _code(err) == ("TooManyBuckets", 400)
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == sorted([first, second])
    # Deleting one makes room again; raising the limit does too.
    s3.delete_bucket(Bucket=first)
    _bucket(s3)
    admin.call("PUT", f"limits/{user['key_id']}", body={"max_buckets": 3})
    _bucket(s3)
    assert len(s3.list_buckets()["Buckets"]) == 3


def test_byte_limit_on_put_and_overwrite(s3_server: S3Server, admin: AdminClient) -> None:
    s3, user = _limited(s3_server, admin, max_bytes=1000)
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="a", Body=b"a" * 600)
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="b", Body=b"b" * 500)
    assert _code(err) == ("QuotaExceeded", 403)
    assert _keys(s3, bucket) == ["a"]
    assert _stored(s3_server, user["id"]) == (1, 600)
    # An overwrite is charged only the difference.
    s3.put_object(Bucket=bucket, Key="a", Body=b"c" * 1000)
    assert _stored(s3_server, user["id"]) == (1, 1000)
    assert s3.get_object(Bucket=bucket, Key="a")["Body"].read() == b"c" * 1000
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="z", Body=b"z")
    assert _code(err) == ("QuotaExceeded", 403)
    limits = admin.call("GET", f"limits/{user['key_id']}")
    assert limits["used"] == {"buckets": 1, "objects": 1, "bytes": 1000}
    assert limits["limits"]["max_bytes"] == 1000


def test_object_limit(s3_server: S3Server, admin: AdminClient) -> None:
    s3, user = _limited(s3_server, admin, max_objects=2)
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="a", Body=b"1")
    s3.put_object(Bucket=bucket, Key="b", Body=b"2")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="c", Body=b"3")
    assert _code(err) == ("QuotaExceeded", 403)
    s3.put_object(Bucket=bucket, Key="a", Body=b"again")  # replaces, adds no object
    assert _keys(s3, bucket) == ["a", "b"]
    assert _stored(s3_server, user["id"]) == (2, 6)
    # Lifting the limit (null) lets the write through.
    admin.call("PUT", f"limits/{user['key_id']}", body={"max_objects": None})
    s3.put_object(Bucket=bucket, Key="c", Body=b"3")
    assert _keys(s3, bucket) == ["a", "b", "c"]


def test_copy_and_multipart_complete_past_the_limit(
    s3_server: S3Server, admin: AdminClient
) -> None:
    s3, user = _limited(s3_server, admin, max_bytes=6 * MIB)
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="src", Body=b"s" * (4 * MIB))
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert _code(err) == ("QuotaExceeded", 403)
    s3.delete_object(Bucket=bucket, Key="src")
    up = s3.create_multipart_upload(Bucket=bucket, Key="big")["UploadId"]
    parts = []
    for number, size in ((1, 5 * MIB), (2, 2 * MIB)):
        etag = s3.upload_part(
            Bucket=bucket, Key="big", UploadId=up, PartNumber=number, Body=b"p" * size
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    with pytest.raises(ClientError) as err:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="big", UploadId=up, MultipartUpload={"Parts": parts}
        )
    assert _code(err) == ("QuotaExceeded", 403)
    assert _keys(s3, bucket) == []
    assert _stored(s3_server, user["id"]) == (0, 0)
    # The upload is still there to abort (or to complete once the limit allows).
    admin.call("PUT", f"limits/{user['key_id']}", body={"max_bytes": 8 * MIB})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=up, MultipartUpload={"Parts": parts}
    )
    assert _stored(s3_server, user["id"]) == (1, 7 * MIB)


def test_concurrent_puts_never_commit_past_the_byte_limit(
    s3_server: S3Server, admin: AdminClient
) -> None:
    size, fits = 100_000, 10
    s3, user = _limited(s3_server, admin, max_bytes=size * fits)
    bucket = _bucket(s3)

    def put(i: int) -> str:
        client = s3_server.client(user_keys(user))
        try:
            client.put_object(Bucket=bucket, Key=f"k{i:02d}", Body=bytes([i]) * size)
            return "ok"
        except ClientError as err:
            return str(err.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(put, range(24)))
    assert results.count("ok") == fits
    assert results.count("QuotaExceeded") == 24 - fits
    assert _stored(s3_server, user["id"]) == (fits, size * fits)
    assert len(_keys(s3, bucket)) == fits


def test_limits_on_a_cloud_account(s3_server: S3Server, admin: AdminClient) -> None:
    """Cloud users' buckets belong to their account: limits name it by a user's API key."""
    keys = new_user(s3_server.cloud)
    s3 = s3_server.client(keys)
    out = admin.call("PUT", f"limits/{keys.api_key}", body={"max_objects": 1})
    assert out["limits"]["max_objects"] == 1
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="one", Body=b"1")
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="two", Body=b"2")
    assert _code(err) == ("QuotaExceeded", 403)
    by_account = admin.call("GET", f"limits/{out['owner_id']}")
    assert by_account["used"]["objects"] == 1 and by_account["limits"]["max_objects"] == 1
