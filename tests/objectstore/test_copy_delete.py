"""CopyObject (metadata directive, percent-encoded sources, conditions, across buckets and
accounts) and DeleteObjects as current boto3 sends it (x-amz-checksum-*, no Content-MD5)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError


def test_copy_keeps_or_replaces_metadata(s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket, Key="orig", Body=b"data", ContentType="text/a", Metadata={"k": "v"}
    )
    src = {"Bucket": bucket, "Key": "orig"}
    out = s3.copy_object(Bucket=bucket, Key="copy1", CopySource=src)
    assert out["CopyObjectResult"]["ETag"] == s3.head_object(Bucket=bucket, Key="orig")["ETag"]
    c1 = s3.get_object(Bucket=bucket, Key="copy1")
    assert (
        c1["Body"].read() == b"data"
        and c1["ContentType"] == "text/a"
        and c1["Metadata"] == {"k": "v"}
    )
    s3.copy_object(
        Bucket=bucket,
        Key="copy2",
        CopySource=src,
        MetadataDirective="REPLACE",
        ContentType="text/b",
        Metadata={"n": "w"},
    )
    c2 = s3.get_object(Bucket=bucket, Key="copy2")
    assert c2["ContentType"] == "text/b" and c2["Metadata"] == {"n": "w"}


def test_copy_to_itself_needs_replace(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"s", Metadata={"a": "1"})
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert err.value.response["Error"]["Code"] == "InvalidRequest"
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource={"Bucket": bucket, "Key": "self"},
        MetadataDirective="REPLACE",
        Metadata={"a": "2"},
    )
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Metadata"] == {"a": "2"} and got["Body"].read() == b"s"


def test_copy_percent_encoded_source(s3: Any, bucket: str) -> None:
    """The radosgw crash case: a source key that needs percent-encoding."""
    key = "dir/ä ö+%25/x?y#z"
    s3.put_object(Bucket=bucket, Key=key, Body=b"enc")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"enc"


def test_copy_conditions_and_missing_source(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="o", Body=b"o")["ETag"]
    src = {"Bucket": bucket, "Key": "o"}
    s3.copy_object(Bucket=bucket, Key="ok", CopySource=src, CopySourceIfMatch=etag)
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="no", CopySource=src, CopySourceIfMatch='"bad"')
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="no", CopySource=src, CopySourceIfNoneMatch=etag)
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="no", CopySource={"Bucket": bucket, "Key": "missing"})
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["o", "ok"]


def test_copy_from_other_account_denied(s3: Any, s3_bob: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private", Body=b"p")
    bobs = bucket + "-bob"
    s3_bob.create_bucket(Bucket=bobs)
    try:
        with pytest.raises(ClientError) as err:
            s3_bob.copy_object(
                Bucket=bobs, Key="stolen", CopySource={"Bucket": bucket, "Key": "private"}
            )
        assert err.value.response["Error"]["Code"] == "AccessDenied"
        assert s3_bob.list_objects_v2(Bucket=bobs)["KeyCount"] == 0
    finally:
        s3_bob.delete_bucket(Bucket=bobs)


def test_delete_objects_with_default_checksums(s3: Any, bucket: str) -> None:
    for k in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    out = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]}
    )
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a", "b", "zz"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_without_integrity_header_refused(
    s3_server: Any, s3: Any, bucket: str
) -> None:
    import botocore.auth
    import botocore.awsrequest
    import httpx

    s3.put_object(Bucket=bucket, Key="keep", Body=b"k")
    body = b"<Delete><Object><Key>keep</Key></Object></Delete>"
    url = f"{s3_server.endpoint}/{bucket}?delete"
    req = botocore.awsrequest.AWSRequest("POST", url, data=body)
    creds = s3._request_signer._credentials
    botocore.auth.S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
    resp = httpx.post(url, content=body, headers=dict(req.headers))
    assert resp.status_code == 400 and "Content-MD5" in resp.text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["keep"]
