"""S3Store (the image store's S3 client) against a real Cumulo S3, checked with boto3."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import httpx

from cumulo.services.storage.s3store import S3Store
from tests.objectstore.conftest import S3Server
from tests.support.cloud import Keys


def _store(s3_server: S3Server, keys: Keys, bucket: str) -> S3Store:
    return S3Store(s3_server.endpoint, bucket, keys.api_key, keys.secret)


def test_writer_visible_only_after_commit(
    s3_server: S3Server, alice_keys: Keys, s3: Any, bucket: str
) -> None:
    store = _store(s3_server, alice_keys, bucket)
    data = os.urandom(9 * 1024 * 1024 + 17)
    w = store.open_writer("t/a.qcow2")
    w.write(data[:5_000_000])
    w.write(data[5_000_000:])
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    w.commit()
    body = s3.get_object(Bucket=bucket, Key="t/a.qcow2")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    assert store.size("t/a.qcow2") == len(data) and store.exists("t/a.qcow2")
    assert b"".join(store.open_reader("t/a.qcow2", start=100)) == data[100:]
    got = httpx.get(store.presign_get("t/a.qcow2", 60))
    assert got.status_code == 200 and got.content == data
    store.delete("t/a.qcow2")
    store.delete("t/a.qcow2")
    assert not store.exists("t/a.qcow2")


def test_abort_leaves_no_upload(
    s3_server: S3Server, alice_keys: Keys, s3: Any, bucket: str
) -> None:
    store = _store(s3_server, alice_keys, bucket)
    w = store.open_writer("t/b")
    w.write(b"x" * 1000)
    assert [k for k, _ in store.list_uploads("t/")] == ["t/b"]
    w.abort()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_presigned_parts(s3_server: S3Server, alice_keys: Keys, s3: Any, bucket: str) -> None:
    store = _store(s3_server, alice_keys, bucket)
    uid = store.start_upload("t/c")
    resp = httpx.put(store.presign_part("t/c", uid, 1, 60), content=b"hello")
    assert resp.status_code == 200
    store.complete_upload("t/c", uid, [resp.headers["etag"]])
    assert s3.get_object(Bucket=bucket, Key="t/c")["Body"].read() == b"hello"
    bad = S3Store(s3_server.endpoint, bucket, alice_keys.api_key, "wrong-" + uuid.uuid4().hex)
    assert not _raises_ok(bad)


def _raises_ok(store: S3Store) -> bool:
    try:
        store.check_bucket()
    except Exception:
        return False
    return True
