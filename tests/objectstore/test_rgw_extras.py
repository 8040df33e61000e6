"""What the wider (radosgw) s3-tests selection checks beyond the core subset: grantees'
display names and grants by e-mail address, HeadBucket's ``read-stats`` extension and the
``allow-unordered`` listing parameter."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _with_param(client: Any, event: str, param: str) -> Any:
    """Add a query parameter to every ``event`` call (as s3-tests does for rgw extensions)."""

    def add(params: dict[str, Any], **_: Any) -> None:
        sep = "&" if "?" in params["url"] else "?"
        params["url"] += f"{sep}{param}"

    client.meta.events.register(f"before-call.s3.{event}", add)
    return add


def _grants(acl: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Grantee id -> (display name, permission) for the user grants of an ACL."""
    return {
        g["Grantee"]["ID"]: (g["Grantee"].get("DisplayName", ""), g["Permission"])
        for g in acl["Grants"]
        if g["Grantee"]["Type"] == "CanonicalUser"
    }


def test_grant_by_id_shows_display_name(s3: Any, s3_bob: Any, bucket: str) -> None:
    bob = s3_bob.list_buckets()["Owner"]
    me = s3.list_buckets()["Owner"]
    s3.put_bucket_acl(
        Bucket=bucket, GrantRead=f'id="{bob["ID"]}"', GrantFullControl=f'id="{me["ID"]}"'
    )
    grants = _grants(s3.get_bucket_acl(Bucket=bucket))
    assert grants[bob["ID"]] == (bob["DisplayName"], "READ")
    assert grants[me["ID"]] == (me["DisplayName"], "FULL_CONTROL")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", GrantReadACP=f'id="{bob["ID"]}"')
    grants = _grants(s3.get_object_acl(Bucket=bucket, Key="k"))
    assert grants[bob["ID"]] == (bob["DisplayName"], "READ_ACP")


def test_grant_by_email(s3: Any, s3_bob: Any, bucket: str) -> None:
    bob = s3_bob.list_buckets()["Owner"]
    # new_user gives each account the e-mail address <name>@example.test (any case matches).
    email = f"{bob['DisplayName']}@Example.TEST"
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f'emailAddress="{email}"')
    assert _grants(s3.get_bucket_acl(Bucket=bucket))[bob["ID"]] == (bob["DisplayName"], "WRITE")
    s3_bob.put_object(Bucket=bucket, Key="from-bob", Body=b"b")  # the grant works

    before = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.test"
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, GrantRead=f'emailAddress="{nobody}"')
    assert err.value.response["Error"]["Code"] == "UnresolvableGrantByEmailAddress"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"] == before


def test_head_bucket_read_stats(s3: Any, s3_server: Any, alice_keys: Any, bucket: str) -> None:
    plain = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert "x-rgw-object-count" not in plain
    client = s3_server.client(alice_keys)
    _with_param(client, "HeadBucket", "read-stats=true")
    hdrs = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert (hdrs["x-rgw-object-count"], hdrs["x-rgw-bytes-used"]) == ("0", "0")
    assert hdrs["x-rgw-quota-max-buckets"] == "-1"  # no limit set
    for key in ("a", "bb", "ccc"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode() * 2)
    hdrs = client.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    assert (hdrs["x-rgw-object-count"], hdrs["x-rgw-bytes-used"]) == ("3", "12")


@pytest.mark.parametrize("event", ["ListObjects", "ListObjectsV2"])
def test_allow_unordered(s3: Any, s3_server: Any, alice_keys: Any, bucket: str, event: str) -> None:
    keys = ["a/1", "a/2", "b", "c"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    client = s3_server.client(alice_keys)
    _with_param(client, event, "allow-unordered=true")
    listing = client.list_objects if event == "ListObjects" else client.list_objects_v2
    assert sorted(o["Key"] for o in listing(Bucket=bucket)["Contents"]) == keys
    with pytest.raises(ClientError) as err:
        listing(Bucket=bucket, Delimiter="/")
    assert err.value.response["Error"]["Code"] == "InvalidArgument"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Without the extension a delimiter is fine.
    assert [
        p["Prefix"] for p in s3.list_objects_v2(Bucket=bucket, Delimiter="/")["CommonPrefixes"]
    ] == ["a/"]
