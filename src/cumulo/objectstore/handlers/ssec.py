"""SSE-C wiring: which key a request carries, what an object keeps to recognise it, and the
per-blob cipher streams (the primitives are ``auth/ssec.py``).

An encrypted object keeps, in its stored headers, the algorithm and the key's MD5 (which S3
echoes on GET and HEAD) and a salted HMAC of the key (``x-cumulo-sse-c-key``, never echoed)
to refuse another key with 403; never the key. Each blob is encrypted with AES-256-CTR under
an IV derived from its blob id (unique per blob), so a multipart object's parts, each its own
blob, need no IV of their own, and a ranged GET decrypts from any offset.

S3 refuses SSE-C over plain HTTP; here a request is secure when it came over TLS or from this
machine (loopback: the key never crossed a network).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from cumulo.objectstore.auth.errors import AuthError
from cumulo.objectstore.auth.ssec import CustomerKey, customer_key
from cumulo.objectstore.blobs import BlobStore
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.base import Ctx

ALGORITHM_HEADER = "x-amz-server-side-encryption-customer-algorithm"
MD5_HEADER = "x-amz-server-side-encryption-customer-key-md5"
FINGERPRINT = "x-cumulo-sse-c-key"
SSE_HEADERS = (ALGORITHM_HEADER, MD5_HEADER, FINGERPRINT)


def secure(ctx: Ctx) -> bool:
    if ctx.req.scheme == "https":
        return True
    try:
        return ipaddress.ip_address(ctx.req.client_ip).is_loopback
    except ValueError:
        return False


def request_key(ctx: Ctx, copy_source: bool = False) -> CustomerKey | None:
    """The SSE-C key the request sends (for the object written, or the copy's source)."""
    key = customer_key(ctx.req.headers, copy_source=copy_source, secure=secure(ctx))
    if key is not None and not copy_source and "x-amz-server-side-encryption" in ctx.req.headers:
        raise S3Error(
            "InvalidArgument",
            "Server Side Encryption with Customer provided key is incompatible with the "
            "encryption method specified",
        )
    return key


def stored(key: CustomerKey | None) -> dict[str, str]:
    """What an object (or multipart upload) written with ``key`` keeps in its headers."""
    if key is None:
        return {}
    salt = os.urandom(16)
    return {
        ALGORITHM_HEADER: "AES256",
        MD5_HEADER: key.key_md5,
        FINGERPRINT: f"{salt.hex()}${key.fingerprint(salt)}",
    }


def without_sse(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in SSE_HEADERS}


def echoed(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The SSE-C response headers for an object or upload stored with ``headers``."""
    return [(k, headers[k]) for k in (ALGORITHM_HEADER, MD5_HEADER) if k in headers]


def key_for(ctx: Ctx, headers: Mapping[str, Any], copy_source: bool = False) -> CustomerKey | None:
    """The key to read (or add parts to) something stored with ``headers``: refused when it is
    missing (400), not the one it was written with (403), or sent for a plain object (400)."""
    given = request_key(ctx, copy_source)
    kept = headers.get(FINGERPRINT)
    if kept is None:
        if given is not None:
            raise S3Error(
                "InvalidRequest", "The encryption parameters are not applicable to this object."
            )
        return None
    if given is None:
        raise S3Error(
            "InvalidRequest",
            "The object was stored using a form of Server Side Encryption. The correct "
            "parameters must be provided to retrieve the object.",
        )
    salt, _, fingerprint = str(kept).partition("$")
    try:
        given.check_fingerprint(bytes.fromhex(salt), fingerprint)
    except AuthError as err:
        # radosgw (and ceph/s3-tests) answer 400 where AWS answers 403.
        raise S3Error("InvalidRequest", err.message) from err
    return given


def iv_for(blob_id: str) -> bytes:
    return hashlib.sha256(b"cumulo-sse-c-iv:" + blob_id.encode()).digest()[:16]


async def decrypted(
    blobs: BlobStore, blob_id: str, lo: int, hi: int, key: CustomerKey
) -> AsyncIterator[bytes]:
    """Plaintext bytes ``lo`` to ``hi`` of one encrypted blob."""
    context = key.decryptor(iv_for(blob_id), lo)
    async for chunk in blobs.read(blob_id, lo, hi):
        yield context.update(chunk)
