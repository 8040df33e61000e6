"""Versioning (enable, suspend, version ids, delete markers, GET/DELETE by version, listing
versions), canned ACLs and grants, tagging, and the stored CORS/policy/lifecycle documents."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError


def test_versioning_lifecycle(s3: Any, bucket: str) -> None:
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"null-version")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    assert v1 != v2 and "null" not in (v1, v2)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"null-version"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    versions = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in versions["Versions"]] == [v2, v1, "null"]
    assert [m["VersionId"] for m in versions["DeleteMarkers"]] == [marker["VersionId"]]
    assert versions["DeleteMarkers"][0]["IsLatest"] is True
    # Removing the marker brings v2 back.
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"two"
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"


def test_suspended_versioning_overwrites_null(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kept = s3.put_object(Bucket=bucket, Key="s", Body=b"kept")["VersionId"]
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="s", Body=b"n1")
    s3.put_object(Bucket=bucket, Key="s", Body=b"n2")
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert ids == ["null", kept]
    assert s3.get_object(Bucket=bucket, Key="s")["Body"].read() == b"n2"


def test_version_listing_pagination(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    made = []
    for key in ("a", "b"):
        for i in range(3):
            made.append((key, s3.put_object(Bucket=bucket, Key=key, Body=b"%d" % i)["VersionId"]))
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    ):
        seen += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
    assert sorted(seen) == sorted(made) and len(seen) == len(made)


def test_canned_acls(s3: Any, s3_bob: Any, s3_server: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="pub", Body=b"public", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="priv", Body=b"private")
    assert httpx.get(f"{s3_server.endpoint}/{bucket}/pub").content == b"public"
    anon = httpx.get(f"{s3_server.endpoint}/{bucket}/priv")
    assert anon.status_code == 403 and "<Code>AccessDenied</Code>" in anon.text
    assert s3_bob.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"public"
    grants = s3.get_object_acl(Bucket=bucket, Key="pub")["Grants"]
    assert {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"} in [
        g["Grantee"] for g in grants
    ]
    # Listing needs the bucket's READ: public-read on the bucket opens it to anyone.
    assert httpx.get(f"{s3_server.endpoint}/{bucket}").status_code == 403
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert "<Key>pub</Key>" in httpx.get(f"{s3_server.endpoint}/{bucket}").text
    with pytest.raises(ClientError):
        s3_bob.put_object(Bucket=bucket, Key="w", Body=b"x")
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    assert httpx.get(f"{s3_server.endpoint}/{bucket}").status_code == 403


def test_explicit_grant_to_other_account(s3: Any, s3_bob: Any, bucket: str) -> None:
    bob_id = s3_bob.list_buckets()["Owner"]["ID"]
    s3.put_object(Bucket=bucket, Key="shared", Body=b"for bob", GrantRead=f'id="{bob_id}"')
    assert s3_bob.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"for bob"
    owner = s3.list_buckets()["Owner"]
    s3.put_object_acl(
        Bucket=bucket,
        Key="shared",
        AccessControlPolicy={
            "Owner": owner,
            "Grants": [
                {
                    "Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]},
                    "Permission": "FULL_CONTROL",
                }
            ],
        },
    )
    with pytest.raises(ClientError) as err:
        s3_bob.get_object(Bucket=bucket, Key="shared")
    assert err.value.response["Error"]["Code"] == "AccessDenied"


def test_object_and_bucket_tagging(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="t", Body=b"t", Tagging="a=1&b=two")
    assert (
        s3.head_object(Bucket=bucket, Key="t")["ResponseMetadata"]["HTTPHeaders"][
            "x-amz-tagging-count"
        ]
        == "2"
    )
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags} == {"a": "1", "b": "two"}
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "x", "Value": "y"}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "x", "Value": "y"}]
    too_many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}
    with pytest.raises(ClientError):
        s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=too_many)
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [{"Key": "x", "Value": "y"}]
    s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchTagSet"
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "team", "Value": "s3"}]})
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "team", "Value": "s3"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_tagging(Bucket=bucket)


def test_stored_documents(s3: Any, s3_bob: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchCORSConfiguration"
    rule = {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedMethods"] == ["GET"]
    with pytest.raises(ClientError) as err:
        s3_bob.get_bucket_cors(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    s3.delete_bucket_cors(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.get_bucket_cors(Bucket=bucket)
    policy = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", '
        f'"Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/nothing-here"}}]}}'
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy="not json")
    assert err.value.response["Error"]["Code"] == "MalformedPolicy"
    assert s3.get_bucket_policy(Bucket=bucket)["Policy"] == policy
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "r",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "tmp/"},
                    "Expiration": {"Days": 1},
                }
            ]
        },
    )
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["ID"] == "r" and rules[0]["Expiration"]["Days"] == 1


def test_bucket_policy_enforced(s3: Any, s3_bob: Any, s3_server: Any, bucket: str) -> None:
    import json

    bob_id = s3_bob.list_buckets()["Owner"]["ID"]
    s3.put_object(Bucket=bucket, Key="shared/a", Body=b"shared")
    s3.put_object(Bucket=bucket, Key="private/b", Body=b"private")
    with pytest.raises(ClientError):
        s3_bob.get_object(Bucket=bucket, Key="shared/a")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{bob_id}:root"]},
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/shared/*"],
            },
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:ListBucket",
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringEquals": {"s3:prefix": "shared/"}},
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{bucket}/shared/*",
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert s3_bob.get_object(Bucket=bucket, Key="shared/a")["Body"].read() == b"shared"
    with pytest.raises(ClientError) as err:
        s3_bob.get_object(Bucket=bucket, Key="private/b")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert httpx.get(f"{s3_server.endpoint}/{bucket}?prefix=shared/").status_code == 200
    assert httpx.get(f"{s3_server.endpoint}/{bucket}?prefix=private/").status_code == 403
    # An explicit Deny binds the owner too.
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=bucket, Key="shared/a")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=bucket, Key="shared/a")["Body"].read() == b"shared"
    s3.delete_bucket_policy(Bucket=bucket)
    with pytest.raises(ClientError):
        s3_bob.get_object(Bucket=bucket, Key="shared/a")


def test_cors_preflight_and_headers(s3: Any, s3_server: Any, bucket: str) -> None:
    url = f"{s3_server.endpoint}/{bucket}/obj"
    ask = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    assert httpx.options(url, headers=ask).status_code == 403  # no CORS configuration yet
    rule = {
        "AllowedMethods": ["GET", "PUT"],
        "AllowedOrigins": ["https://app.example"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 600,
    }
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [rule]})
    ok = httpx.options(url, headers={**ask, "Access-Control-Request-Headers": "content-type"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "GET" in ok.headers["access-control-allow-methods"]
    denied = httpx.options(url, headers={**ask, "Origin": "https://evil.example"})
    assert denied.status_code == 403
    s3.put_object(Bucket=bucket, Key="obj", Body=b"o", ACL="public-read")
    got = httpx.get(url, headers={"Origin": "https://app.example"})
    assert got.headers["access-control-allow-origin"] == "https://app.example"
    assert (
        "access-control-allow-origin"
        not in httpx.get(url, headers={"Origin": "https://evil.example"}).headers
    )


def test_public_access_block(s3: Any, s3_server: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.get_public_access_block(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchPublicAccessBlockConfiguration"
    s3.put_object(Bucket=bucket, Key="was-public", Body=b"p", ACL="public-read")
    assert httpx.get(f"{s3_server.endpoint}/{bucket}/was-public").status_code == 200
    config = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False,
    }
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == config
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="new-public", Body=b"x", ACL="public-read")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    # IgnorePublicAcls: the old public grant no longer opens the object.
    assert httpx.get(f"{s3_server.endpoint}/{bucket}/was-public").status_code == 403
    public = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
        f'"Action": "s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/*"}}]}}'
    )
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=public)
    assert err.value.response["Error"]["Code"] == "AccessDenied"
    s3.delete_public_access_block(Bucket=bucket)
    assert httpx.get(f"{s3_server.endpoint}/{bucket}/was-public").status_code == 200
