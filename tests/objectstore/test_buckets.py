"""Buckets through boto3: create (location constraint), list, head, delete, location,
and the refusals (name taken, not empty, not yours, bad names)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _name() -> str:
    return f"b-{uuid.uuid4().hex[:16]}"


def test_create_list_head_delete(s3: Any) -> None:
    name = _name()
    s3.create_bucket(Bucket=name)
    listed = s3.list_buckets()
    assert name in [b["Name"] for b in listed["Buckets"]]
    assert listed["Owner"]["ID"]
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket=name)
    assert err.value.response["Error"]["Code"] == "404"


def test_location_constraint(s3: Any) -> None:
    name = _name()
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "mars-1"})
    assert err.value.response["Error"]["Code"] == "IllegalLocationConstraintException"
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_name_taken_by_me_and_by_other(s3: Any, s3_bob: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="kept", Body=b"k")
    # Re-creating one's own bucket succeeds and changes nothing (us-east-1, radosgw).
    s3.create_bucket(Bucket=bucket)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["kept"]
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=bucket, ACL="public-read")
    assert err.value.response["Error"]["Code"] == "BucketAlreadyExists"
    assert len(s3.get_bucket_acl(Bucket=bucket)["Grants"]) == 1
    with pytest.raises(ClientError) as err:
        s3_bob.create_bucket(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "BucketAlreadyExists"
    assert bucket not in [b["Name"] for b in s3_bob.list_buckets()["Buckets"]]


def test_delete_not_empty_refused(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "BucketNotEmpty"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_other_account_is_denied(s3_bob: Any, bucket: str, s3: Any) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"mine")
    for call in (
        lambda: s3_bob.list_objects_v2(Bucket=bucket),
        lambda: s3_bob.get_object(Bucket=bucket, Key="secret"),
        lambda: s3_bob.put_object(Bucket=bucket, Key="intruder", Body=b"x"),
        lambda: s3_bob.delete_bucket(Bucket=bucket),
        lambda: s3_bob.delete_object(Bucket=bucket, Key="secret"),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDenied"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["secret"]


@pytest.mark.parametrize("bad", ["ab", "UPPER-case", "a..b", "-start", "192.168.1.1", "x" * 64])
def test_invalid_bucket_names(s3: Any, bad: str) -> None:
    import httpx

    # boto3 validates some names itself, so these go as raw (unauthenticated) requests too.
    with pytest.raises((ClientError, Exception)):
        s3.create_bucket(Bucket=bad)
    assert bad not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    del httpx


def test_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=_name())
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=_name(), Key="k", Body=b"x")
    assert err.value.response["Error"]["Code"] == "NoSuchBucket"


def test_list_buckets_paginated(s3_server: Any) -> None:
    from tests.objectstore.conftest import new_user

    s3 = s3_server.client(new_user(s3_server.cloud))
    names = sorted(_name() for _ in range(3))
    for n in names:
        s3.create_bucket(Bucket=n)
    first = s3.list_buckets(MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == names[:2]
    rest = s3.list_buckets(MaxBuckets=2, ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == names[2:]
    assert "ContinuationToken" not in rest
    for n in names:
        s3.delete_bucket(Bucket=n)
