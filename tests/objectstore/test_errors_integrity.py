"""Error paths through the real server: bad and unknown keys, wrong checksums, short bodies,
a client that hangs up mid-upload, expired presigned URLs; and virtual-host addressing and
the blob collector. Every refusal is checked to have left nothing behind."""

from __future__ import annotations

import base64
import hashlib
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.awsrequest
import httpx
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.cloud import Keys


def signed(
    s3_server: Any, keys: Keys, method: str, path: str, body: bytes = b"", **headers: str
) -> httpx.Response:
    url = f"{s3_server.endpoint}{path}"
    req = botocore.awsrequest.AWSRequest(method, url, data=body, headers=headers)
    botocore.auth.S3SigV4Auth(Credentials(keys.api_key, keys.secret), "s3", "us-east-1").add_auth(
        req
    )
    return httpx.request(method, url, content=body, headers=dict(req.headers))


def listing(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_wrong_secret_and_unknown_key(
    s3_server: Any, alice_keys: Keys, bucket: str, s3: Any
) -> None:
    bad = s3_server.client(Keys(alice_keys.api_key, "not-the-secret"))
    with pytest.raises(ClientError) as err:
        bad.put_object(Bucket=bucket, Key="x", Body=b"x")
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = s3_server.client(Keys("AKNOTAKEY", "whatever"))
    with pytest.raises(ClientError) as err:
        unknown.list_buckets()
    assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert listing(s3, bucket) == []


def test_wrong_content_md5(s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket=bucket, Key="md5", Body=b"payload", ContentMD5=wrong)
    assert err.value.response["Error"]["Code"] == "BadDigest"
    assert listing(s3, bucket) == []


def test_wrong_checksum_header(s3_server: Any, alice_keys: Keys, s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    resp = signed(
        s3_server,
        alice_keys,
        "PUT",
        f"/{bucket}/ck",
        b"payload",
        **{"x-amz-checksum-sha256": wrong},
    )
    assert resp.status_code == 400 and "<Code>BadDigest</Code>" in resp.text
    assert listing(s3, bucket) == []
    right = base64.b64encode(hashlib.sha256(b"payload").digest()).decode()
    resp = signed(
        s3_server,
        alice_keys,
        "PUT",
        f"/{bucket}/ck",
        b"payload",
        **{"x-amz-checksum-sha256": right},
    )
    assert resp.status_code == 200 and resp.headers["x-amz-checksum-sha256"] == right
    got = s3.get_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == right


def test_payload_hash_mismatch(s3_server: Any, alice_keys: Keys, s3: Any, bucket: str) -> None:
    url = f"{s3_server.endpoint}/{bucket}/h"
    req = botocore.awsrequest.AWSRequest("PUT", url, data=b"signed body")
    botocore.auth.S3SigV4Auth(
        Credentials(alice_keys.api_key, alice_keys.secret), "s3", "us-east-1"
    ).add_auth(req)
    resp = httpx.put(url, content=b"tampered!!!", headers=dict(req.headers))
    assert resp.status_code == 400 and "XAmzContentSHA256Mismatch" in resp.text
    assert listing(s3, bucket) == []


def _raw_put(
    s3_server: Any, keys: Keys, bucket: str, key: str, declared: int, sent: bytes
) -> bytes:
    """A signed PUT promising ``declared`` bytes, sending ``sent``, then closing."""
    url = f"{s3_server.endpoint}/{bucket}/{key}"
    signed_body = sent if len(sent) == declared else b"\0" * declared
    req = botocore.awsrequest.AWSRequest("PUT", url, data=signed_body)
    botocore.auth.S3SigV4Auth(Credentials(keys.api_key, keys.secret), "s3", "us-east-1").add_auth(
        req
    )
    head = f"PUT /{bucket}/{key} HTTP/1.1\r\nContent-Length: {declared}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items()
    )
    netloc = urlsplit(url).netloc
    host, port = netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            (head + f"Host: {netloc}\r\n\r\n").encode()
            if "Host" not in req.headers
            else (head + "\r\n").encode()
        )
        sock.sendall(sent)
        if len(sent) < declared:
            return b""  # hang up mid-body
        try:
            time.sleep(0.3)
            return sock.recv(65536)
        except OSError:
            return b""


def test_disconnect_mid_upload_leaves_nothing(
    s3_server: Any, alice_keys: Keys, s3: Any, bucket: str
) -> None:
    tmp = s3_server.blob_dir / "tmp"
    before = set(tmp.iterdir())  # a crash test may have left its own temp files
    _raw_put(s3_server, alice_keys, bucket, "cut", 4 * 1024 * 1024, b"x" * 100_000)
    deadline = time.monotonic() + 10
    while set(tmp.iterdir()) - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(tmp.iterdir()) - before, "the temp file of the cut upload was not removed"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="cut")
    assert listing(s3, bucket) == []


def test_raw_socket_upload(s3_server: Any, alice_keys: Keys, s3: Any, bucket: str) -> None:
    reply = _raw_put(s3_server, alice_keys, bucket, "whole", 5, b"hello")
    assert reply.startswith(b"HTTP/1.1 200"), reply[-330:]
    assert s3.get_object(Bucket=bucket, Key="whole")["Body"].read() == b"hello"


def test_expired_presigned_url(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p", Body=b"presigned")
    good = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=60
    )
    assert httpx.get(good).content == b"presigned"
    expired = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1
    )
    time.sleep(2.1)
    resp = httpx.get(expired)
    assert resp.status_code == 403 and "<Code>AccessDenied</Code>" in resp.text
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "up"}, ExpiresIn=60
    )
    assert httpx.put(put_url, content=b"via url").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"via url"


def test_virtual_host_addressing(s3_server: Any, alice_keys: Keys, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="vh/key.txt", Body=b"virtual")
    url = f"http://{bucket}.localhost:{s3_server.port}/vh/key.txt"
    req = botocore.awsrequest.AWSRequest("GET", url)
    botocore.auth.S3SigV4Auth(
        Credentials(alice_keys.api_key, alice_keys.secret), "s3", "us-east-1"
    ).add_auth(req)
    headers = {**dict(req.headers), "Host": f"{bucket}.localhost:{s3_server.port}"}
    resp = httpx.get(f"{s3_server.endpoint}/vh/key.txt", headers=headers)
    assert resp.status_code == 200 and resp.content == b"virtual"
    listing_url = f"http://{bucket}.localhost:{s3_server.port}/?list-type=2"
    req = botocore.awsrequest.AWSRequest("GET", listing_url)
    botocore.auth.S3SigV4Auth(
        Credentials(alice_keys.api_key, alice_keys.secret), "s3", "us-east-1"
    ).add_auth(req)
    headers = {**dict(req.headers), "Host": f"{bucket}.localhost:{s3_server.port}"}
    resp = httpx.get(f"{s3_server.endpoint}/?list-type=2", headers=headers)
    assert "<Key>vh/key.txt</Key>" in resp.text


def test_collector_reclaims_overwritten_and_deleted(s3_server: Any, s3: Any, bucket: str) -> None:
    def files() -> set[str]:
        return {
            p.name for p in s3_server.blob_dir.rglob("*") if p.is_file() and p.parent.name != "tmp"
        }

    before = files()
    s3.put_object(Bucket=bucket, Key="g", Body=b"1" * 1000)
    first = files() - before
    assert len(first) == 1
    s3.put_object(Bucket=bucket, Key="g", Body=b"2" * 1000)
    second = files() - before - first
    s3.delete_object(Bucket=bucket, Key="g")
    deadline = time.monotonic() + 15
    while (files() & (first | second)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not files() & (first | second)


def test_error_body_shape(s3_server: Any, s3: Any, bucket: str) -> None:
    resp = httpx.get(f"{s3_server.endpoint}/{bucket}/missing-key")
    assert resp.status_code in (403, 404)
    assert resp.headers["content-type"] == "application/xml"
    for element in (
        "<Code>",
        "<Message>",
        f"<Resource>/{bucket}/missing-key</Resource>",
        "<RequestId>",
    ):
        assert element in resp.text
    assert resp.headers["x-amz-request-id"] in resp.text
