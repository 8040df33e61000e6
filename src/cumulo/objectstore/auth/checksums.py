"""The digests S3 accepts for a body: Content-MD5 and the ``x-amz-checksum-*`` family.

Each algorithm is a small object with ``update`` and ``digest`` so the payload checker can
feed one stream into several of them. CRC32C comes from the ``crc32c`` package (hardware
instructions; a pure-Python CRC runs at a few MB/s, far below what a PUT must sustain).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable
from typing import Protocol

import crc32c as _crc32c


class Digest(Protocol):
    """The part of hashlib's interface the checker uses."""

    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    """CRC-32 (IEEE, as zlib computes it), big-endian as S3 encodes it."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Crc32c:
    """CRC-32C (Castagnoli), big-endian as S3 encodes it."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = _crc32c.crc32c(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def _sha1() -> Digest:
    return hashlib.sha1(usedforsecurity=False)


def _sha256() -> Digest:
    return hashlib.sha256()


# name (as in ``x-amz-checksum-<name>``) → (factory, digest size in bytes)
ALGORITHMS: dict[str, tuple[Callable[[], Digest], int]] = {
    "crc32": (_Crc32, 4),
    "crc32c": (_Crc32c, 4),
    "sha1": (_sha1, 20),
    "sha256": (_sha256, 32),
}

# Algorithms S3 defines that this store cannot verify: refused rather than stored unchecked.
UNSUPPORTED = frozenset({"crc64nvme"})


def new_md5() -> Digest:
    """MD5 is the ETag of a single-part object, not a security check."""
    return hashlib.md5(usedforsecurity=False)


def decode_b64(value: str, size: int) -> bytes | None:
    """Decode a base64 digest of the given size; None when it is not one."""
    try:
        raw = base64.b64decode(value.strip(" \t"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
