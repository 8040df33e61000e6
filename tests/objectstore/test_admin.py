"""The admin API: S3-only users made, listed, disabled and re-keyed by an admin over signed
HTTP; boto3 then uses (or is refused with) their keys. Non-admins and bad input change nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from cumulo.cli.s3admin import AdminClient
from tests.objectstore.admin_support import admin_client, meta_rows, new_s3_user, user_keys
from tests.objectstore.conftest import S3Server, empty_and_delete
from tests.support.cloud import Keys


@pytest.fixture(scope="module")
def admin(s3_server: S3Server) -> AdminClient:
    return admin_client(s3_server, s3_server.cloud.admin)


def _error(response: httpx.Response) -> str:
    return str(ET.fromstring(response.content).findtext("Code"))


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_created_user_works_with_boto3(s3_server: S3Server, admin: AdminClient) -> None:
    user = new_s3_user(admin)
    assert user["status"] == "enabled" and user["admin"] is False
    assert user["key_id"].startswith("CU") and len(user["key_secret"]) >= 40
    s3 = s3_server.client(user_keys(user))
    bucket = f"adm-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"hello"
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    assert owner["ID"] == user["id"] and owner["DisplayName"] == user["name"]
    # The secret is stored sealed, never in clear.
    sealed = meta_rows(
        s3_server, "SELECT secret_enc FROM s3_users WHERE key_id = ?", user["key_id"]
    )
    assert sealed and user["key_secret"] not in sealed[0][0]
    log = s3_server.log_path.read_text()
    assert user["key_secret"] not in log
    shown = admin.call("GET", f"users/{user['key_id']}")
    assert "key_secret" not in shown and shown["email"] == user["email"]
    assert admin.call("GET", f"users/{user['id']}")["key_id"] == user["key_id"]
    empty_and_delete(s3, bucket)


def test_disable_refuses_at_once_and_enable_restores(
    s3_server: S3Server, admin: AdminClient
) -> None:
    user = new_s3_user(admin)
    s3 = s3_server.client(user_keys(user))
    bucket = f"adm-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"data")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert httpx.get(url).content == b"data"
    out = admin.call("PUT", f"users/{user['key_id']}", body={"status": "disabled"})
    assert out["status"] == "disabled"
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=bucket)
    assert _code(err) == "AccessDenied"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="k2", Body=b"more")
    assert _code(err) == "AccessDenied"
    presigned = httpx.get(url)  # made before the disable
    assert presigned.status_code == 403 and _error(presigned) == "AccessDenied"
    disabled = admin.call("GET", "users", query={"status": "disabled"})["users"]
    enabled = admin.call("GET", "users", query={"status": "enabled"})["users"]
    assert user["key_id"] in {u["key_id"] for u in disabled}
    assert user["key_id"] not in {u["key_id"] for u in enabled}
    admin.call("PUT", f"users/{user['key_id']}", body={"status": "enabled"})
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    empty_and_delete(s3, bucket)


def test_new_secret_replaces_the_old_one(s3_server: S3Server, admin: AdminClient) -> None:
    user = new_s3_user(admin)
    old = s3_server.client(user_keys(user))
    old.list_buckets()
    out = admin.call("PUT", f"users/{user['key_id']}", body={"new_key_secret": True})
    assert out["key_id"] == user["key_id"] and out["key_secret"] != user["key_secret"]
    with pytest.raises(ClientError) as err:
        old.list_buckets()
    assert _code(err) == "SignatureDoesNotMatch"
    new = s3_server.client(Keys(user["key_id"], out["key_secret"]))
    assert new.list_buckets()["Buckets"] == []


def test_admin_user_may_administer(s3_server: S3Server, admin: AdminClient) -> None:
    boss = new_s3_user(admin, admin=True)
    other = admin_client(s3_server, user_keys(boss))
    made = new_s3_user(other)
    assert admin.call("GET", f"users/{made['key_id']}")["name"] == made["name"]


def test_non_admin_is_refused_and_nothing_changes(
    s3_server: S3Server, admin: AdminClient, alice_keys: Keys
) -> None:
    victim = new_s3_user(admin)
    plain = new_s3_user(admin)
    for keys in (alice_keys, user_keys(plain)):
        client = admin_client(s3_server, keys)
        before = len(admin.call("GET", "users")["users"])
        tag = uuid.uuid4().hex[:8]
        attempts = [
            client.request("POST", "users", body={"name": tag, "email": f"{tag}@example.test"}),
            client.request("PUT", f"users/{victim['key_id']}", body={"status": "disabled"}),
            client.request("PUT", f"users/{victim['key_id']}", body={"new_key_secret": True}),
            client.request("PUT", f"limits/{victim['key_id']}", body={"max_buckets": 0}),
            client.request("GET", "users"),
            client.request("GET", f"usage/{victim['key_id']}"),
        ]
        for response in attempts:
            assert response.status_code == 403 and _error(response) == "AccessDenied"
        assert len(admin.call("GET", "users")["users"]) == before
        assert f"{tag}@example.test" not in {
            u["email"] for u in admin.call("GET", "users")["users"]
        }
    after = admin.call("GET", f"users/{victim['key_id']}")
    assert after["status"] == "enabled" and after["limits"]["max_buckets"] is None
    s3_server.client(user_keys(victim)).list_buckets()  # the secret did not change
    anonymous = httpx.get(f"{s3_server.endpoint}/_admin/users")
    assert anonymous.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "users", {"name": "x", "email": "not-an-email"}, 400, "InvalidArgument"),
        ("POST", "users", {"name": "", "email": "a@example.test"}, 400, "InvalidArgument"),
        (
            "POST",
            "users",
            {"name": "x", "email": "b@example.test", "max_bytes": -1},
            400,
            "InvalidArgument",
        ),
        (
            "POST",
            "users",
            {"name": "x", "email": "c@example.test", "colour": "red"},
            400,
            "InvalidArgument",
        ),
        ("GET", "users/CUNOSUCHUSER00000000", None, 404, "NoSuchUser"),
        ("PUT", "users/CUNOSUCHUSER00000000", {"status": "disabled"}, 404, "NoSuchUser"),
        ("GET", "usage/no-such-owner", None, 404, "NoSuchUser"),
        ("PUT", "limits/no-such-owner", {"max_buckets": 1}, 404, "NoSuchUser"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    s3_server: S3Server,
    admin: AdminClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    before = admin.call("GET", "users")["users"]
    limits_before = meta_rows(s3_server, "SELECT * FROM s3_limits ORDER BY owner_id")
    response = admin.request(method, path, body=body)
    assert response.status_code == status and _error(response) == code, response.text
    assert admin.call("GET", "users")["users"] == before
    assert meta_rows(s3_server, "SELECT * FROM s3_limits ORDER BY owner_id") == limits_before


def test_bad_update_changes_nothing(s3_server: S3Server, admin: AdminClient) -> None:
    user = new_s3_user(admin)
    path = f"users/{user['key_id']}"
    for body in (
        {"status": "disabled", "email": "bad"},
        {"status": "paused"},
        {"name": "ok", "max_objects": -5},
        {"new_key_secret": "yes", "status": "disabled"},
    ):
        response = admin.request("PUT", path, body=body)
        assert response.status_code == 400 and _error(response) == "InvalidArgument"
    after = admin.call("GET", path)
    assert (after["status"], after["name"], after["email"]) == (
        "enabled",
        user["name"],
        user["email"],
    )
    assert after["limits"] == {"max_buckets": None, "max_bytes": None, "max_objects": None}
    s3_server.client(user_keys(user)).list_buckets()
    duplicate = admin.request("POST", "users", body={"name": "x", "email": user["email"]})
    assert duplicate.status_code == 409 and _error(duplicate) == "UserAlreadyExists"


def test_xml_answers(admin: AdminClient) -> None:
    user = new_s3_user(admin)
    root = ET.fromstring(admin.call("GET", f"users/{user['key_id']}", xml=True))
    assert root.tag == "Result" and root.findtext("key_id") == user["key_id"]
    listing = ET.fromstring(admin.call("GET", "users", xml=True))
    assert user["key_id"] in {u.findtext("key_id") for u in listing.findall("user")}


def test_cli_drives_the_admin_api(s3_server: S3Server) -> None:
    admin = s3_server.cloud.admin
    env = {
        **s3_server.env,
        "CUMULO_S3_ENDPOINT": s3_server.endpoint,
        "CUMULO_S3_ACCESS_KEY": admin.api_key,
        "CUMULO_S3_SECRET_KEY": admin.secret,
    }

    def cli(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "cumulo", "s3", "admin", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    tag = uuid.uuid4().hex[:8]
    made = cli("create-user", f"cli-{tag}", f"cli-{tag}@example.test", "--max-buckets", "1")
    assert made["limits"]["max_buckets"] == 1
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=made["key_id"],
        aws_secret_access_key=made["key_secret"],
        region_name="us-east-1",
    )
    assert s3.list_buckets()["Buckets"] == []
    assert cli("disable-user", made["key_id"])["status"] == "disabled"
    assert made["key_id"] in {
        u["key_id"] for u in cli("list-users", "--status", "disabled")["users"]
    }
    rotated = cli("new-secret", made["key_id"])
    assert rotated["key_secret"] != made["key_secret"]
    assert cli("enable-user", made["key_id"])["status"] == "enabled"
    assert cli("set-limits", made["key_id"], "--max-bytes", "100")["limits"]["max_bytes"] == 100
    assert cli("usage", made["key_id"])["owner_id"] == made["id"]
    refused = subprocess.run(
        [sys.executable, "-m", "cumulo", "s3", "admin", "show-user", "CUNOSUCHUSER00000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1 and "NoSuchUser" in refused.stderr
