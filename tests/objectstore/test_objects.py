"""Objects through boto3 with default settings: PUT/GET/HEAD/DELETE, metadata, ranges,
conditions, content checked byte for byte."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_put_get_round_trip(s3: Any, bucket: str) -> None:
    data = os.urandom(300_000)
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/a b+c.bin",
        Body=data,
        ContentType="application/x-test",
        Metadata={"colour": "blue"},
        CacheControl="max-age=60",
    )
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert got["Body"].read() == data
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"colour": "blue"}
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentLength"] == len(data)
    head = s3.head_object(Bucket=bucket, Key="dir/a b+c.bin")
    assert head["ETag"] == put["ETag"]
    assert head["ContentLength"] == len(data)


def test_missing_key_and_delete_idempotent(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="nope")
    assert code(err) == "NoSuchKey"
    assert s3.delete_object(Bucket=bucket, Key="nope")["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert err.value.response["Error"]["Code"] == "404"


def test_overwrite_replaces_content_and_metadata(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"one", Metadata={"a": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"two!")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"two!"
    assert got["Metadata"] == {}


def test_empty_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


def test_ranges(s3: Any, bucket: str) -> None:
    data = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    got = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert got["Body"].read() == data[10:20]
    assert got["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == data[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10000-")["Body"].read() == data[10000:]
    )
    # Several ranges: S3 answers with the whole object.
    whole = s3.get_object(Bucket=bucket, Key="r", Range="bytes=0-1,5-6")
    assert whole["Body"].read() == data
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert code(err) == "InvalidRange"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 416


def test_conditional_get_and_put(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"cond"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert code(err) == "PreconditionFailed"
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    import datetime as dt

    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    # PUT If-None-Match: * creates only; the object keeps its old content.
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="c", Body=b"new", IfNoneMatch="*")
    assert code(err) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="c")["Body"].read() == b"cond"
    s3.put_object(Bucket=bucket, Key="fresh", Body=b"f", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="fresh")["Body"].read() == b"f"


def test_large_object_streams(s3: Any, bucket: str, tmp_path: Any) -> None:
    """A 40 MiB object through boto3's managed transfer (multipart) and back, byte exact."""
    data = os.urandom(40 * 1024 * 1024)
    src = tmp_path / "big"
    src.write_bytes(data)
    s3.upload_file(str(src), bucket, "big")
    dst = tmp_path / "back"
    s3.download_file(bucket, "big", str(dst))
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()
    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ETag"].endswith('-5"')
    part = s3.get_object(Bucket=bucket, Key="big", PartNumber=2)
    assert part["Body"].read() == data[8 * 1024 * 1024 : 16 * 1024 * 1024]
    assert part["PartsCount"] == 5


def test_unicode_and_odd_keys(s3: Any, bucket: str) -> None:
    keys = ["ünï/cødé ☃.txt", "a%2Fb", "sp ace", "plus+sign", "q?x=1&y", "~tilde", "x//y"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert s3.get_object(Bucket=bucket, Key=k)["Body"].read() == k.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert listed_v1 == listed


def test_framing_encoding_not_stored(s3_server: Any, alice_keys: Any, s3: Any, bucket: str) -> None:
    """aws-chunked in Content-Encoding is the request's framing, not the object's encoding."""
    import botocore.auth
    import botocore.awsrequest
    import httpx
    from botocore.credentials import Credentials

    url = f"{s3_server.endpoint}/{bucket}/enc"
    headers = {"Content-Encoding": "aws-chunked,gzip"}
    req = botocore.awsrequest.AWSRequest("PUT", url, data=b"zz", headers=headers)
    creds = Credentials(alice_keys.api_key, alice_keys.secret)
    botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    assert httpx.put(url, content=b"zz", headers=dict(req.headers)).status_code == 200
    assert s3.head_object(Bucket=bucket, Key="enc")["ContentEncoding"] == "gzip"
