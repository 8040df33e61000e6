"""Bucket policy status, conditions on existing object tags, NotPrincipal with Allow, grants
to unknown ids, and CORS headers on a request that names Access-Control-Request-Method."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.objectstore.conftest import S3Server


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def _policy(bucket: str, statement: dict[str, Any]) -> str:
    base = {"Effect": "Allow", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    return json.dumps({"Version": "2012-10-17", "Statement": [{**base, **statement}]})


def test_policy_status(s3: Any, bucket: str) -> None:
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    pinned = _policy(
        bucket,
        {
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/32"}},
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=pinned)
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is False
    s3.put_bucket_policy(
        Bucket=bucket, Policy=_policy(bucket, {"Principal": "*", "Action": "s3:ListBucket"})
    )
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert s3.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"] is True


def test_not_principal_with_allow_is_refused(s3: Any, bucket: str) -> None:
    doc = _policy(bucket, {"NotPrincipal": {"AWS": "someone"}, "Action": "s3:ListBucket"})
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=doc)
    assert _code(err) == "MalformedPolicy"
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert _code(err) == "NoSuchBucketPolicy"


def test_existing_object_tag_condition(s3: Any, s3_bob: Any, bucket: str) -> None:
    for key, tags in (("pub", {"security": "public"}), ("priv", {"security": "private"})):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        s3.put_object_tagging(
            Bucket=bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
        )
    doc = _policy(
        bucket,
        {
            "Principal": "*",
            "Action": "s3:GetObject",
            "Condition": {"StringEquals": {"s3:ExistingObjectTag/security": "public"}},
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=doc)
    assert s3_bob.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"pub"
    with pytest.raises(ClientError) as err:
        s3_bob.get_object(Bucket=bucket, Key="priv")
    assert _code(err) == "AccessDenied"


def test_grant_to_unknown_id_is_refused(s3: Any, bucket: str) -> None:
    before = s3.get_bucket_acl(Bucket=bucket)
    policy = {
        "Owner": before["Owner"],
        "Grants": [
            *before["Grants"],
            {"Grantee": {"ID": "_nobody", "Type": "CanonicalUser"}, "Permission": "READ"},
        ],
    }
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)
    assert _code(err) == "InvalidArgument"
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == before["Grants"]


def test_cors_headers_follow_the_requested_method(
    s3_server: S3Server, s3: Any, bucket: str
) -> None:
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*x"]}]},
    )
    url = f"{s3_server.endpoint}/{bucket}/missing"
    refused = httpx.put(
        url, headers={"Origin": "a.x", "Access-Control-Request-Method": "GET"}, content=b""
    )
    assert refused.status_code == 403
    assert refused.headers.get("access-control-allow-origin") == "a.x"
    assert refused.headers.get("access-control-allow-methods") == "GET"
    plain = httpx.put(url, headers={"Origin": "a.x"}, content=b"")
    assert "access-control-allow-origin" not in plain.headers
    preflight = httpx.options(
        url, headers={"Origin": "a.x", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.headers.get_list("access-control-allow-origin") == ["a.x"]
