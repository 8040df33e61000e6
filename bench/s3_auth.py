"""Throughput of S3 body verification (``PayloadCheck.stream``) against plain MD5.

Every PUT pays at least an MD5 (the ETag); the question is what SigV4 streaming adds on top.
The bodies are built ahead of time (the signatures are chained outside the timed loop) and
fed in 64 KiB pieces as an ASGI server would deliver them.

    .venv/bin/python bench/s3_auth.py [--mib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

from cumulo.objectstore.auth import Credentials, PayloadCheck, RequestView, authenticate
from cumulo.objectstore.auth.sigv4 import EMPTY_SHA256, signing_key

ACCESS, SECRET, REGION = "AKIDBENCH", "bench-secret", "us-east-1"
CHUNK = 64 * 1024
EMPTY = EMPTY_SHA256


def _hex_hmac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class Body:
    """A request with a body of ``total`` bytes made of one repeated 64 KiB block."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.block = hashlib.sha256(b"bench").digest() * (CHUNK // 32)
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.scope = f"{self.stamp[:8]}/{REGION}/s3/aws4_request"
        self.key = signing_key(SECRET, self.stamp[:8], REGION, "s3")

    def headers(self, content_sha256: str, **extra: str) -> dict[str, str]:
        return {
            "host": "s3.bench",
            "x-amz-date": self.stamp,
            "x-amz-content-sha256": content_sha256,
            **extra,
        }

    def request(self, headers: dict[str, str]) -> RequestView:
        signed = ";".join(sorted(headers))
        canonical = "\n".join(
            [
                "PUT",
                "/bucket/object",
                "",
                "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                signed,
                headers["x-amz-content-sha256"],
            ]
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        signature = _hex_hmac(self.key, f"AWS4-HMAC-SHA256\n{self.stamp}\n{self.scope}\n{digest}")
        auth = (
            f"AWS4-HMAC-SHA256 Credential={ACCESS}/{self.scope}, SignedHeaders={signed}, "
            f"Signature={signature}"
        )
        return RequestView(
            "PUT", "/bucket/object", [], {**headers, "authorization": auth}, "s3.bench"
        )

    def crc32(self) -> str:
        crc = 0
        for _ in range(self.total // CHUNK):
            crc = zlib.crc32(self.block, crc)
        return base64.b64encode(crc.to_bytes(4, "big")).decode()

    def signed_chunks(self, seed: str, trailer: str | None) -> list[bytes]:
        """The wire pieces: size line + data + CRLF per chunk, then the final chunk."""
        block_sha = hashlib.sha256(self.block).hexdigest()
        previous, pieces = seed, []
        for _ in range(self.total // CHUNK):
            text = (
                f"AWS4-HMAC-SHA256-PAYLOAD\n{self.stamp}\n{self.scope}\n{previous}\n"
                f"{EMPTY}\n{block_sha}"
            )
            previous = _hex_hmac(self.key, text)
            pieces.append(
                f"{CHUNK:x};chunk-signature={previous}\r\n".encode() + self.block + b"\r\n"
            )
        text = f"AWS4-HMAC-SHA256-PAYLOAD\n{self.stamp}\n{self.scope}\n{previous}\n{EMPTY}\n{EMPTY}"
        previous = _hex_hmac(self.key, text)
        tail = f"0;chunk-signature={previous}\r\n"
        if trailer:
            canonical = f"x-amz-checksum-crc32:{trailer}\n"
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            text = f"AWS4-HMAC-SHA256-TRAILER\n{self.stamp}\n{self.scope}\n{previous}\n{digest}"
            tail += (
                canonical.replace("\n", "\r\n")
                + f"x-amz-trailer-signature:{_hex_hmac(self.key, text)}\r\n"
            )
        pieces.append((tail + "\r\n").encode())
        return pieces

    def unsigned_chunks(self, trailer: str) -> list[bytes]:
        line = f"{CHUNK:x}\r\n".encode()
        pieces = [line + self.block + b"\r\n" for _ in range(self.total // CHUNK)]
        pieces.append(f"0\r\nx-amz-checksum-crc32:{trailer}\r\n\r\n".encode())
        return pieces


def _lookup(key: str) -> Credentials | None:
    return Credentials(ACCESS, SECRET, None) if key == ACCESS else None


async def _feed(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _consume(check: PayloadCheck, pieces: list[bytes]) -> int:
    total = 0
    async for data in check.stream(_feed(pieces)):
        total += len(data)
    return total


def _timed(check: PayloadCheck, pieces: list[bytes], total: int) -> float:
    start = time.perf_counter()
    got = asyncio.run(_consume(check, pieces))
    elapsed = time.perf_counter() - start
    assert got == total, (got, total)
    return total / elapsed / 1e6


def _md5_rate(block: bytes, total: int) -> float:
    start = time.perf_counter()
    digest = hashlib.md5()
    for _ in range(total // len(block)):
        digest.update(block)
    digest.digest()
    return total / (time.perf_counter() - start) / 1e6


def _cases(body: Body) -> Iterator[tuple[str, Callable[[], tuple[PayloadCheck, list[bytes]]]]]:
    crc = body.crc32()
    plain = [body.block] * (body.total // CHUNK)
    length = str(body.total)

    def signed(trailer: bool) -> tuple[PayloadCheck, list[bytes]]:
        mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
        extra = {"x-amz-decoded-content-length": length, "content-encoding": "aws-chunked"}
        if trailer:
            extra["x-amz-trailer"] = "x-amz-checksum-crc32"
        view = body.request(body.headers(mode, **extra))
        seed = view.headers["authorization"].rsplit("Signature=", 1)[1]
        check = authenticate(view, _lookup, datetime.now(UTC)).payload
        return check, body.signed_chunks(seed, crc if trailer else None)

    def unsigned_trailer() -> tuple[PayloadCheck, list[bytes]]:
        extra = {"x-amz-decoded-content-length": length, "x-amz-trailer": "x-amz-checksum-crc32"}
        view = body.request(body.headers("STREAMING-UNSIGNED-PAYLOAD-TRAILER", **extra))
        return authenticate(view, _lookup, datetime.now(UTC)).payload, body.unsigned_chunks(crc)

    def hex_sha256() -> tuple[PayloadCheck, list[bytes]]:
        sha = hashlib.sha256()
        for piece in plain:
            sha.update(piece)
        view = body.request(body.headers(sha.hexdigest(), **{"content-length": length}))
        return authenticate(view, _lookup, datetime.now(UTC)).payload, plain

    def unsigned() -> tuple[PayloadCheck, list[bytes]]:
        view = body.request(body.headers("UNSIGNED-PAYLOAD", **{"content-length": length}))
        return authenticate(view, _lookup, datetime.now(UTC)).payload, plain

    yield "aws-chunked, signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)", lambda: signed(False)
    yield "aws-chunked, signed chunks + signed CRC32 trailer", lambda: signed(True)
    yield "aws-chunked, unsigned + CRC32 trailer (boto3 default, TLS)", unsigned_trailer
    yield "plain, hex x-amz-content-sha256 (boto3 default, http)", hex_sha256
    yield "plain, UNSIGNED-PAYLOAD (MD5 for the ETag only)", unsigned


def _auth_rate(body: Body) -> float:
    """Requests per second through authenticate() + the stream of a 4 KiB signed PUT."""
    data = body.block[:4096]
    view = body.request(
        body.headers(hashlib.sha256(data).hexdigest(), **{"content-length": str(len(data))})
    )
    count = 2000

    async def run() -> None:
        for _ in range(count):
            check = authenticate(view, _lookup, datetime.now(UTC)).payload
            async for _ in check.stream(_feed([data])):
                pass

    start = time.perf_counter()
    asyncio.run(run())
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="body size in MiB (default 256)")
    args = parser.parse_args()
    body = Body(args.mib * 1024 * 1024)
    md5 = _md5_rate(body.block, body.total)
    print(f"body {args.mib} MiB in {CHUNK // 1024} KiB chunks; hashlib.md5 alone: {md5:8.1f} MB/s")
    print(f"{'mode':66} {'MB/s':>8} {'vs md5':>7}")
    for name, build in _cases(body):
        check, pieces = build()
        rate = _timed(check, pieces, body.total)
        print(f"{name:66} {rate:8.1f} {rate / md5:7.2f}")
        del pieces
    print(f"4 KiB signed PUT, authenticate + verify: {_auth_rate(body):8.0f} requests/s (one core)")


if __name__ == "__main__":
    main()
