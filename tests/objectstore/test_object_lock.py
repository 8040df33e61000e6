"""Object lock: buckets made with it keep versioning on; retention and legal holds refuse
deleting a version (GOVERNANCE yields to the bypass header, COMPLIANCE does not)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _code(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    r = err.value.response
    return str(r["Error"]["Code"]), int(r["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture
def locked(s3: Any) -> Iterator[str]:
    name = f"lk-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    yield name
    for v in s3.list_object_versions(Bucket=name).get("Versions", []):
        s3.put_object_legal_hold(
            Bucket=name, Key=v["Key"], VersionId=v["VersionId"], LegalHold={"Status": "OFF"}
        )


def test_configuration_and_versioning(s3: Any, locked: str, bucket: str) -> None:
    assert s3.get_bucket_versioning(Bucket=locked)["Status"] == "Enabled"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_versioning(Bucket=locked, VersioningConfiguration={"Status": "Suspended"})
    assert _code(err) == ("InvalidBucketState", 409)
    conf = {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
    }
    s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=conf)
    assert s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == conf
    bad = {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}},
    }
    with pytest.raises(ClientError) as err:
        s3.put_object_lock_configuration(Bucket=locked, ObjectLockConfiguration=bad)
    assert _code(err) == ("InvalidRetentionPeriod", 400)
    assert s3.get_object_lock_configuration(Bucket=locked)["ObjectLockConfiguration"] == conf
    # A bucket without versioning cannot take a configuration.
    with pytest.raises(ClientError) as err:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=conf)
    assert _code(err) == ("InvalidBucketState", 409)
    with pytest.raises(ClientError) as err:
        s3.get_object_lock_configuration(Bucket=bucket)
    assert _code(err) == ("ObjectLockConfigurationNotFoundError", 404)
    # The default retention applies to new versions.
    vid = s3.put_object(Bucket=locked, Key="d", Body=b"d")["VersionId"]
    head = s3.head_object(Bucket=locked, Key="d")
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(hours=23)
    with pytest.raises(ClientError) as err:
        s3.delete_object(Bucket=locked, Key="d", VersionId=vid)
    assert _code(err) == ("AccessDenied", 403)
    s3.delete_object(Bucket=locked, Key="d", VersionId=vid, BypassGovernanceRetention=True)


def test_retention_and_legal_hold_protect_versions(s3: Any, locked: str) -> None:
    until = datetime.now(UTC) + timedelta(days=1)
    vid = s3.put_object(
        Bucket=locked,
        Key="c",
        Body=b"c",
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=until,
    )["VersionId"]
    for bypass in (False, True):
        with pytest.raises(ClientError) as err:
            s3.delete_object(
                Bucket=locked, Key="c", VersionId=vid, BypassGovernanceRetention=bypass
            )
        assert _code(err) == ("AccessDenied", 403)
    shorter = {"Mode": "COMPLIANCE", "RetainUntilDate": until - timedelta(hours=1)}
    with pytest.raises(ClientError) as err:
        s3.put_object_retention(
            Bucket=locked, Key="c", Retention=shorter, BypassGovernanceRetention=True
        )
    assert _code(err) == ("AccessDenied", 403)
    # A delete without a version id only adds a marker.
    marker = s3.delete_object(Bucket=locked, Key="c")
    assert marker["DeleteMarker"] is True
    assert s3.get_object(Bucket=locked, Key="c", VersionId=vid)["Body"].read() == b"c"

    held = s3.put_object(Bucket=locked, Key="h", Body=b"h")["VersionId"]
    s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "ON"})
    result = s3.delete_objects(Bucket=locked, Delete={"Objects": [{"Key": "h", "VersionId": held}]})
    assert result["Errors"][0]["Code"] == "AccessDenied"
    s3.put_object_legal_hold(Bucket=locked, Key="h", LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=locked, Key="h", VersionId=held)
    versions = s3.list_object_versions(Bucket=locked).get("Versions", [])
    assert held not in {v["VersionId"] for v in versions}
    assert vid in {v["VersionId"] for v in versions}


def test_lock_requests_on_a_plain_bucket(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"k")
    with pytest.raises(ClientError) as err:
        s3.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
    assert _code(err) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as err:
        s3.put_object(
            Bucket=bucket,
            Key="k2",
            Body=b"x",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=datetime.now(UTC) + timedelta(days=1),
        )
    assert _code(err) == ("InvalidRequest", 400)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
