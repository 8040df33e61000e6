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
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Protocol

import anycrc  # type: ignore[import-untyped]  # no stubs; calc(data, crc) -> int
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


_CRC64NVME = anycrc.Model("CRC64-NVME")


class _Crc64Nvme:
    """CRC-64/NVME, the AWS CLI v2 default, big-endian as S3 encodes it (anycrc: C speed)."""

    def __init__(self) -> None:
        self._value: int = _CRC64NVME.calc(b"")

    def update(self, data: bytes, /) -> None:
        self._value = _CRC64NVME.calc(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(8, "big")


def _sha1() -> Digest:
    return hashlib.sha1(usedforsecurity=False)


def _sha256() -> Digest:
    return hashlib.sha256()


# name (as in ``x-amz-checksum-<name>``) → (factory, digest size in bytes)
ALGORITHMS: dict[str, tuple[Callable[[], Digest], int]] = {
    "crc32": (_Crc32, 4),
    "crc32c": (_Crc32c, 4),
    "crc64nvme": (_Crc64Nvme, 8),
    "sha1": (_sha1, 20),
    "sha256": (_sha256, 32),
}

# Algorithms S3 defines that this store cannot verify: refused rather than stored unchecked.
# (Newer CLI releases also offer these; S3-compatible stores mostly do not.)
UNSUPPORTED = frozenset({"md5", "sha512", "xxhash64", "xxhash3", "xxhash128"})


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


# -- multipart upload checksums ---------------------------------------------------------------

# Reflected polynomials of the CRCs S3 can combine into a whole-object (FULL_OBJECT) value.
_CRC_POLY = {"crc32": 0xEDB88320, "crc32c": 0x82F63B78}


def composite_checksum(algorithm: str, parts: Sequence[str]) -> str:
    """A COMPOSITE multipart checksum: the algorithm over the concatenated binary part
    checksums, base64, suffixed with ``-<part count>`` (as S3 returns it)."""
    factory, size = ALGORITHMS[algorithm]
    digest = factory()
    for value in parts:
        raw = decode_b64(value, size)
        if raw is None:
            raise ValueError(f"invalid {algorithm} part checksum {value!r}")
        digest.update(raw)
    return f"{b64(digest.digest())}-{len(parts)}"


def full_object_crc(algorithm: str, parts: Sequence[tuple[str, int]]) -> str:
    """The FULL_OBJECT CRC of a multipart object from its parts' CRCs and sizes, without
    reading the data again (zlib's crc32_combine for CRC32/CRC32C, anycrc's for CRC64)."""
    size = ALGORITHMS[algorithm][1]
    total = 0
    for index, (value, length) in enumerate(parts):
        raw = decode_b64(value, size)
        if raw is None:
            raise ValueError(f"invalid {algorithm} part checksum {value!r}")
        part = int.from_bytes(raw, "big")
        if index == 0:
            total = part
        elif algorithm == "crc64nvme":
            total = _CRC64NVME.combine(total, part, length)
        else:
            total = _gf2_apply(_zeros_operator(length, _CRC_POLY[algorithm]), total) ^ part
    return b64(total.to_bytes(size, "big"))


def _gf2_apply(matrix: Sequence[int], vector: int) -> int:
    result, row = 0, 0
    while vector:
        if vector & 1:
            result ^= matrix[row]
        vector >>= 1
        row += 1
    return result


def _gf2_square(matrix: Sequence[int]) -> list[int]:
    return [_gf2_apply(matrix, matrix[n]) for n in range(32)]


@lru_cache(maxsize=64)
def _zeros_operator(length: int, poly: int) -> tuple[int, ...]:
    """The linear map "append ``length`` zero bytes" on a CRC register. Cached: the parts
    of one upload nearly all share a size."""
    result = [1 << n for n in range(32)]  # identity
    step = [poly] + [1 << (n - 1) for n in range(1, 32)]  # one zero bit
    for _ in range(3):  # one zero byte = eight zero bits
        step = _gf2_square(step)
    while length:
        if length & 1:
            result = [_gf2_apply(step, v) for v in result]
        length >>= 1
        if length:
            step = _gf2_square(step)
    return tuple(result)
