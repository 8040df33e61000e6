"""Streaming a request body into a blob, and a manifest's bytes back out.

The write is guarded: whatever goes wrong before the commit (a bad checksum found at the end,
a client that hangs up, a full disk), the temp file is removed and no metadata names the blob.
Before the first byte the blob is recorded as intended, so even a crash of the whole process
leaves a garbage row that lets the collector reclaim a blob renamed into place but never
referenced.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cumulo.objectstore.auth.ssec import CustomerKey
from cumulo.objectstore.blobs import BlobStore
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.base import Ctx
from cumulo.objectstore.handlers.ssec import decrypted, iv_for

MAX_OBJECT_SIZE = 5 * 1024**3


@dataclass(frozen=True)
class Written:
    blob_id: str
    size: int
    md5: str
    checksums: dict[str, str]


def declared_length(ctx: Ctx) -> int | None:
    """The payload length the client declared (the decoded one for aws-chunked bodies)."""
    h = ctx.req.headers
    raw = h.get("x-amz-decoded-content-length") or h.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError as err:
        raise S3Error("InvalidArgument", ArgumentName="Content-Length") from err
    if value > MAX_OBJECT_SIZE:
        raise S3Error("EntityTooLarge", MaxSizeAllowed=str(MAX_OBJECT_SIZE))
    return value


async def write_body(
    ctx: Ctx, body: AsyncIterator[bytes] | None = None, encrypt: CustomerKey | None = None
) -> Written:
    """Stream a body (the request's, or ``body``) into a new blob; with ``encrypt`` the blob
    holds its SSE-C ciphertext while sizes, MD5 and checksums are of the plaintext."""
    expected = declared_length(ctx)
    writer = ctx.svc.blobs.writer()
    cipher = encrypt.encryptor(iv_for(writer.blob_id)) if encrypt is not None else None
    await ctx.run(ctx.svc.meta.intend, writer.blob_id)
    # A client body's MD5 comes from the payload check, which computes it anyway.
    md5 = hashlib.md5(usedforsecurity=False) if body is not None else None
    try:
        async for chunk in body if body is not None else ctx.body():
            if md5 is not None:
                md5.update(chunk)
            await writer.write(cipher.update(chunk) if cipher is not None else chunk)
            if writer.size > MAX_OBJECT_SIZE:
                raise S3Error("EntityTooLarge", MaxSizeAllowed=str(MAX_OBJECT_SIZE))
        if body is None and expected is not None and writer.size != expected:
            raise S3Error("IncompleteBody")
        await writer.commit()
    except BaseException:
        await writer.discard()
        raise
    if md5 is not None:
        return Written(writer.blob_id, writer.size, md5.hexdigest(), {})
    computed = dict(ctx.payload.checksums)
    return Written(writer.blob_id, writer.size, computed["md5"], normalise_checksums(computed))


def normalise_checksums(values: Any) -> dict[str, str]:
    """Checksums the payload check computed, as ``{"CRC32": base64, ...}``."""
    out: dict[str, str] = {}
    for name, value in dict(values or {}).items():
        algo = str(name).lower().removeprefix("x-amz-checksum-").replace("-", "").upper()
        if algo in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"):
            out[algo] = value if isinstance(value, str) else str(value)
    return out


async def read_manifest(
    blobs: BlobStore,
    manifest: list[list[Any]],
    start: int,
    end: int,
    key: CustomerKey | None = None,
) -> AsyncIterator[bytes]:
    """Bytes ``start`` to ``end`` (exclusive) of an object made of the manifest's blobs
    (decrypted with ``key`` when it is SSE-C encrypted)."""
    offset = 0
    for blob_id, size in manifest:
        lo, hi = max(start, offset), min(end, offset + size)
        if lo < hi:
            chunks = (
                blobs.read(blob_id, lo - offset, hi - offset)
                if key is None
                else decrypted(blobs, blob_id, lo - offset, hi - offset, key)
            )
            async for chunk in chunks:
                yield chunk
        offset += size
        if offset >= end:
            return
