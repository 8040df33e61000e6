"""Bodies stream: a 5 GiB upload and download through the real server keep its peak RSS under
200 MiB (the issue's bound), far below the object's size."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow
SIZE = 5 * 1024 * 1024 * 1024
CHUNK = 1024 * 1024
RSS_LIMIT_KIB = 200 * 1024


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _body(digest: Any) -> Iterator[bytes]:
    block = bytes(range(256)) * (CHUNK // 256)
    for i in range(SIZE // CHUNK):
        chunk = block[i % 256 :] + block[: i % 256]
        digest.update(chunk)
        yield chunk


def test_five_gib_stream_in_and_out(s3_server: Any, s3: Any, bucket: str) -> None:
    assert s3_server.proc is not None
    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "huge"}, ExpiresIn=1800
    )
    sent = hashlib.sha256()
    with httpx.Client(timeout=900) as client:
        resp = client.put(put_url, content=_body(sent), headers={"Content-Length": str(SIZE)})
        assert resp.status_code == 200, resp.text
        get_url = s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "huge"}, ExpiresIn=1800
        )
        got, size = hashlib.sha256(), 0
        with client.stream("GET", get_url) as stream:
            for chunk in stream.iter_bytes(CHUNK):
                got.update(chunk)
                size += len(chunk)
    assert size == SIZE and got.digest() == sent.digest()
    peak = _peak_rss_kib(s3_server.proc.pid)
    print(f"server peak RSS {peak // 1024} MiB")
    assert peak < RSS_LIMIT_KIB, f"server peak RSS {peak // 1024} MiB"
    s3.delete_object(Bucket=bucket, Key="huge")
