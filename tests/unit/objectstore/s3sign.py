"""Requests signed by the real botocore signers, captured before they leave the client.

``capture`` runs a real boto3 call (default settings unless told otherwise) and stops it in
``before-send``, so the request is exactly what boto3 would put on the wire: headers, path,
query and the encoded body (aws-chunked with trailing checksums over https, as boto3 does by
default). botocore does not produce signed-chunk bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD),
so ``signed_chunked`` signs the headers with botocore's S3SigV4Auth and encodes the chunks
following the S3 API reference, independently of the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials as BotoCredentials

from cumulo.objectstore.auth import Credentials, RequestView

ACCESS = "AKIDCUMULOTEST0001"
SECRET = "s3cr3t/Key+with=chars0123456789abcdefABCD"
CREDS = Credentials(ACCESS, SECRET, principal={"user": "alice"})
REGION = "us-east-1"


def lookup(key: str) -> Credentials | None:
    return CREDS if key == ACCESS else None


@dataclass(frozen=True)
class Wire:
    """A captured request: the view the server would build, and the body bytes."""

    view: RequestView
    body: bytes

    def with_headers(self, **changes: str) -> Wire:
        headers = dict(self.view.headers)
        headers.update({k.replace("_", "-"): v for k, v in changes.items()})
        return replace(self, view=replace(self.view, headers=headers))


class _Stop(Exception):
    def __init__(self, wire: Wire) -> None:
        super().__init__("captured")
        self.wire = wire


def _read_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return bytes(body.read())


def to_wire(method: str, url: str, headers: Iterable[tuple[str, Any]], body: Any) -> Wire:
    parts = urlsplit(url)
    lowered: dict[str, str] = {}
    for name, value in headers:
        text = value.decode() if isinstance(value, bytes) else str(value)
        key = name.lower()
        lowered[key] = f"{lowered[key]},{text}" if key in lowered else text
    lowered.setdefault("host", parts.netloc)  # what urllib3 adds on the wire
    data = _read_body(body)
    chunked = lowered.get("transfer-encoding") == "chunked"
    if not chunked and (data or method in ("PUT", "POST")):
        lowered.setdefault("content-length", str(len(data)))
    view = RequestView(
        method=method,
        raw_path=parts.path or "/",
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers=lowered,
        host=parts.netloc,
    )
    return Wire(view, data)


def client(
    *,
    https: bool = False,
    style: str = "path",
    signature_version: str = "s3v4",
    **s3: Any,
) -> Any:
    scheme = "https" if https else "http"
    return boto3.client(
        "s3",
        endpoint_url=f"{scheme}://s3.cumulo.test:8443",
        region_name=REGION,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        config=Config(
            signature_version=signature_version,
            s3={"addressing_style": style, **s3},
            retries={"max_attempts": 1},
        ),
    )


def capture(s3: Any, operation: str, **params: Any) -> Wire:
    """Run a boto3 call and return the request it would have sent."""

    def stop(request: Any, **_: Any) -> None:
        raise _Stop(to_wire(request.method, request.url, request.headers.items(), request.body))

    s3.meta.events.register("before-send.s3", stop)
    try:
        getattr(s3, operation)(**params)
    except _Stop as captured:
        return captured.wire
    raise AssertionError("the request was not captured")


def presigned(s3: Any, operation: str, expires: int = 3600, **params: Any) -> Wire:
    url = s3.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
    return to_wire("GET" if operation.startswith(("get", "head")) else "PUT", url, [], b"")


# -- signed aws-chunked bodies (not produced by botocore) ----------------------------------

EMPTY = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


class _StreamingAuth(S3SigV4Auth):
    def __init__(self, mode: str) -> None:
        super().__init__(BotoCredentials(ACCESS, SECRET), "s3", REGION)
        self.mode = mode

    def payload(self, request: Any) -> str:
        return self.mode


@dataclass
class ChunkedRequest:
    """A signed aws-chunked PUT: the header part (as a Wire without body) plus the chain."""

    wire: Wire
    key: bytes
    timestamp: str
    scope: str
    seed: str

    def encode(self, chunks: Iterable[bytes], trailers: dict[str, str] | None) -> Iterator[bytes]:
        previous = self.seed
        for data in [*chunks, b""]:
            text = "\n".join(
                [
                    "AWS4-HMAC-SHA256-PAYLOAD",
                    self.timestamp,
                    self.scope,
                    previous,
                    EMPTY,
                    hashlib.sha256(data).hexdigest(),
                ]
            )
            previous = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
            yield f"{len(data):x};chunk-signature={previous}\r\n".encode() + data
            if data:
                yield b"\r\n"
        if trailers is None:
            yield b"\r\n"
            return
        canonical = "".join(f"{k}:{v}\n" for k, v in sorted(trailers.items()))
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                self.timestamp,
                self.scope,
                previous,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        signature = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
        yield canonical.replace("\n", "\r\n").encode()
        yield f"x-amz-trailer-signature:{signature}\r\n\r\n".encode()


def signed_chunked(
    decoded_length: int,
    *,
    trailer: str | None = None,
    path: str = "/bucket/big%20object.bin",
    extra: dict[str, str] | None = None,
) -> ChunkedRequest:
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer else "")
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(decoded_length),
        **(extra or {}),
    }
    if trailer:
        headers["X-Amz-Trailer"] = trailer
    request = AWSRequest(method="PUT", url=f"http://s3.cumulo.test:8443{path}", headers=headers)
    _StreamingAuth(mode).add_auth(request)
    wire = to_wire("PUT", request.url, request.headers.items(), b"")
    headers_out = dict(wire.view.headers)
    headers_out.pop("content-length", None)
    wire = Wire(replace(wire.view, headers=headers_out), b"")
    timestamp = request.context["timestamp"]
    date = timestamp[:8]
    key = _hmac(f"AWS4{SECRET}".encode(), date)
    for part in (REGION, "s3", "aws4_request"):
        key = _hmac(key, part)
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    return ChunkedRequest(wire, key, timestamp, f"{date}/{REGION}/s3/aws4_request", seed)


# -- small helpers -------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


async def pieces(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def from_iter(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def drain(stream_of: Callable[[], AsyncIterator[bytes]]) -> bytes:
    async def run() -> bytes:
        return b"".join([part async for part in stream_of()])

    return asyncio.run(run())


def crc32_b64(data: bytes) -> str:
    return base64.b64encode((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")).decode()


def crc32c_reference(data: bytes) -> int:
    """Bitwise CRC-32C (Castagnoli, reflected 0x82F63B78): slow, independent of the package."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
