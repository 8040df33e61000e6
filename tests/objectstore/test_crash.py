"""kill -9 of the S3 service during 100 concurrent uploads: after a restart every key is
either absent or complete and matching its checksum, and no multipart upload is
half-completed (its object exists whole, or the upload is still open)."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.objectstore.conftest import S3Server
from tests.support.cloud import Keys, free_port

pytestmark = pytest.mark.slow
N = 100
SIZE = 512 * 1024


def body(key: str) -> bytes:
    seed = hashlib.sha256(key.encode()).digest()
    return (seed * (SIZE // len(seed) + 1))[:SIZE]


def test_kill9_during_uploads(s3_server: S3Server, alice_keys: Keys, s3: Any) -> None:
    port = free_port()
    second = S3Server(s3_server.cloud, port, {**s3_server.env, "CUMULO_S3__PORT": str(port)})
    second.start()
    try:
        _crash_and_check(second, alice_keys, s3)
    finally:
        second.stop()


def _crash_and_check(server: S3Server, keys: Keys, s3: Any) -> None:
    bucket = f"crash-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    client = server.client(keys, max_pool_connections=N + 10, connect_timeout=5, read_timeout=10)
    mp_keys = [f"mp/{i}" for i in range(5)]
    uploads = _prepare_multipart(client, bucket, mp_keys)
    started = threading.Barrier(N + len(mp_keys) + 1)

    def put(i: int) -> None:
        key = f"obj/{i:03d}"
        started.wait()
        with contextlib.suppress(Exception):  # the server died under it
            client.put_object(Bucket=bucket, Key=key, Body=body(key))

    def complete(key: str) -> None:
        started.wait()
        with contextlib.suppress(Exception):
            client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=uploads[key][0],
                MultipartUpload={"Parts": uploads[key][1]},
            )

    with ThreadPoolExecutor(N + len(mp_keys)) as ex:
        futures = [ex.submit(put, i) for i in range(N)] + [ex.submit(complete, k) for k in mp_keys]
        started.wait()
        _wait_for_some(s3, bucket)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        server.proc = None
        for f in futures:
            f.result()
    server.start()
    _check(server.client(keys), bucket, mp_keys, uploads)


def _wait_for_some(s3: Any, bucket: str) -> None:
    """Kill mid-work: once some uploads have landed (through the other server) and most not."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if s3.list_objects_v2(Bucket=bucket, Prefix="obj/")["KeyCount"] >= 5:
            return
        time.sleep(0.05)


def _prepare_multipart(
    client: Any, bucket: str, keys: list[str]
) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    out = {}
    for key in keys:
        up = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = []
        for n, data in enumerate((b"A" * (5 * 1024 * 1024), b"tail-" + key.encode()), 1):
            r = client.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=data)
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        out[key] = (up, parts)
    return out


def _check(client: Any, bucket: str, mp_keys: list[str], uploads: dict[str, Any]) -> None:
    present = [
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    for key in present:
        got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        if key.startswith("obj/"):
            assert got == body(key), key
        else:
            assert got == b"A" * (5 * 1024 * 1024) + b"tail-" + key.encode(), key
    landed = len([k for k in present if k.startswith("obj/")])
    print("present after kill:", landed, "of", N)
    assert 0 < landed < N, "the kill did not land mid-work"
    still_open = {u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}
    for key in mp_keys:
        assert (key in present) != (key in still_open), key
        if key in still_open:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uploads[key][0])
    for key in present:
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)
    assert not any(k.startswith("obj/") and k not in present for k in present)
