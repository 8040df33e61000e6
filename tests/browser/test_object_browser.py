"""The dashboard's object browser in a real Chromium against the real S3 service.

A server and an S3 service of this module's own (the S3 service must know the dashboard's
origin and the server must know the S3 address). The browser does the user's work; boto3
checks the store afterwards with the keys the browser generated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.browser import run_script
from tests.browser.test_dashboard import pytestmark as browser_marks
from tests.integration.tenants import PASSWORD, make_domain, uniq
from tests.objectstore.conftest import S3Server
from tests.support.cloud import Cloud, Keys, free_port, make_cloud

pytestmark = [*browser_marks, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    port = free_port()
    cloud = make_cloud(tmp_path_factory.mktemp("ui-s3"), CUMULO_S3__PORT=str(port))
    cloud.start()
    server = S3Server(cloud, port, cloud.env)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        cloud.stop()


def test_buckets_uploads_downloads_and_share_links(stack: S3Server, tmp_path: Path) -> None:
    cloud: Cloud = stack.cloud
    domain = make_domain(cloud)
    username = uniq("s3web")
    account = cloud.call(
        "createAccount",
        accounttype=0,
        username=username,
        password=PASSWORD,
        email=f"{username}@example.com",
        firstname="F",
        lastname="L",
        domainid=domain["id"],
    )["account"]
    bucket = uniq("web").lower()
    env = {
        "BASE_URL": f"http://127.0.0.1:{cloud.port}",
        "USER_NAME": username,
        "USER_PASSWORD": PASSWORD,
        "USER_DOMAIN": domain["path"],
        "BUCKET": bucket,
        "WORK": str(tmp_path),
        "ADMIN_PASSWORD": cloud.admin_password,
        "S3USER_KEEP": uniq("s3only"),
        "S3USER_DISABLE": uniq("s3gone"),
    }
    seen = run_script("storage.mjs", env, timeout=300)

    assert seen["downloadSha"] == seen["smallSha"] and seen["downloadName"] == "small.bin"
    assert seen["shareStatus"] == 200 and seen["shareSha"] == seen["largeSha"]
    assert seen["shareLinkHost"] == f"127.0.0.1:{stack.port}"
    assert seen["folderOpened"] and seen["deleted"] and seen["pageErrors"] == []
    assert "BucketNotEmpty" in seen["deleteNonEmptyError"]

    # the store's side, with the keys the browser generated for the user
    keys = cloud.call("getUserKeys", id=account["user"][0]["id"])["userkeys"]
    s3 = stack.client(Keys(keys["apikey"], keys["secretkey"]))
    listed = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(listed) == {"docs/", "large.bin"}
    body = s3.get_object(Bucket=bucket, Key="large.bin")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == seen["largeSha"]
    assert listed["large.bin"]["ETag"].strip('"').endswith("-3")  # multipart: 3 parts
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    assert rule["Expiration"]["Days"] == 30
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 7
    cors = s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]
    assert cors["AllowedOrigins"] == ["https://app.example"]
    assert sorted(cors["AllowedMethods"]) == ["GET", "PUT"]

    # the S3-only users the operator made: one works (with its bucket limit), one is disabled
    kept, disabled = seen["s3users"]
    assert kept["keyId"].startswith("CU") and len(kept["secret"]) >= 20
    only = stack.client(Keys(kept["keyId"], kept["secret"]))
    assert only.list_buckets()["Buckets"] == []
    for n in range(2):
        only.create_bucket(Bucket=f"{bucket}-k{n}")
    with pytest.raises(ClientError) as too_many:
        only.create_bucket(Bucket=f"{bucket}-k2")
    assert too_many.value.response["Error"]["Code"] == "TooManyBuckets"
    with pytest.raises(ClientError) as refused:
        stack.client(Keys(disabled["keyId"], disabled["secret"])).list_buckets()
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_only_the_dashboard_origin_gets_cors(stack: S3Server) -> None:
    import httpx

    origin = f"http://127.0.0.1:{stack.cloud.port}"
    pre = httpx.options(
        f"{stack.endpoint}/any-bucket/key",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,x-amz-date",
        },
        timeout=10,
    )
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == origin
    assert "authorization" in pre.headers["access-control-allow-headers"]
    other = httpx.options(
        f"{stack.endpoint}/any-bucket/key",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    assert other.headers.get("access-control-allow-origin") != "http://evil.example"
    # CORS opens no door: an unsigned request from the dashboard origin is still refused
    anonymous = httpx.get(f"{stack.endpoint}/", headers={"Origin": origin}, timeout=10)
    assert (
        anonymous.status_code == 403 and anonymous.headers["access-control-allow-origin"] == origin
    )
