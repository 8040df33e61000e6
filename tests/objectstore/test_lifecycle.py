"""Lifecycle rules applied by the worker (a "day" is one second in these tests): current
versions expire by prefix and tag, noncurrent versions and lone delete markers go, old
multipart uploads are aborted; objects outside the rules stay."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def _wait(check: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return check()


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_expiration_by_prefix_and_tag(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="tmp/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="keep/b", Body=b"b")
    s3.put_object(Bucket=bucket, Key="tagged", Body=b"c", Tagging="expire=yes")
    s3.put_object(Bucket=bucket, Key="untagged", Body=b"d")
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "tmp",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "tmp/"},
                    "Expiration": {"Days": 2},
                },
                {
                    "ID": "tag",
                    "Status": "Enabled",
                    "Filter": {"Tag": {"Key": "expire", "Value": "yes"}},
                    "Expiration": {"Days": 2},
                },
                {
                    "ID": "off",
                    "Status": "Disabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": 1},
                },
            ]
        },
    )
    assert _keys(s3, bucket) == ["keep/b", "tagged", "tmp/a", "untagged"]  # not two days yet
    assert _wait(lambda: _keys(s3, bucket) == ["keep/b", "untagged"])
    time.sleep(1.5)
    assert _keys(s3, bucket) == ["keep/b", "untagged"]


def test_noncurrent_markers_and_uploads(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="v", Body=b"old")
    current = s3.put_object(Bucket=bucket, Key="v", Body=b"new")["VersionId"]
    s3.put_object(Bucket=bucket, Key="gone", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="gone")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "nc",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "v"},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                },
                {
                    "ID": "gone",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "gone"},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                    "Expiration": {"ExpiredObjectDeleteMarker": True},
                },
                {
                    "ID": "mp",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "mp"},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                },
            ]
        },
    )

    def settled() -> bool:
        listing = s3.list_object_versions(Bucket=bucket)
        versions = [(v["Key"], v["VersionId"]) for v in listing.get("Versions", [])]
        markers = listing.get("DeleteMarkers", [])
        uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return versions == [("v", current)] and not markers and not uploads

    assert _wait(settled)
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"new"
    del upload
