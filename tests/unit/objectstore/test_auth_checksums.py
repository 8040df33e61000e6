"""Checksum algorithms and the multipart (COMPOSITE / FULL_OBJECT) checksums S3 returns."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import zlib

import crc32c
import pytest

from cumulo.objectstore.auth.checksums import (
    ALGORITHMS,
    composite_checksum,
    decode_b64,
    full_object_crc,
)
from tests.unit.objectstore.s3sign import crc32c_reference

PARTS = [os.urandom(n) for n in (5, 0, 1, 100, 4096, 70_001, 5)]


def _b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode()


def test_crc32c_matches_the_bitwise_reference_and_is_fast() -> None:
    data = os.urandom(3000)
    digest = ALGORITHMS["crc32c"][0]()
    digest.update(data[:1000])
    digest.update(data[1000:])
    assert int.from_bytes(digest.digest(), "big") == crc32c_reference(data)
    assert crc32c_reference(b"123456789") == 0xE3069283  # the CRC-32C check value
    big = bytes(64 * 1024 * 1024)
    start = time.perf_counter()
    fast = ALGORITHMS["crc32c"][0]()
    fast.update(big)
    assert 64 / (time.perf_counter() - start) > 100  # MB/s, far above pure Python


def _crc64(data: bytes) -> int:
    digest = ALGORITHMS["crc64nvme"][0]()
    digest.update(data)
    return int.from_bytes(digest.digest(), "big")


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "crc64nvme"])
def test_full_object_crc_equals_crc_of_the_whole(algorithm: str) -> None:
    crc = {"crc32": zlib.crc32, "crc32c": crc32c.crc32c, "crc64nvme": _crc64}[algorithm]
    size = ALGORITHMS[algorithm][1]

    def _b64(value: int) -> str:
        return base64.b64encode(value.to_bytes(size, "big")).decode()

    parts = [(_b64(crc(p)), len(p)) for p in PARTS]
    assert full_object_crc(algorithm, parts) == _b64(crc(b"".join(PARTS)))
    assert full_object_crc(algorithm, parts[:1]) == parts[0][0]
    wrong = [*parts[:3], (parts[3][0], parts[3][1] + 1), *parts[4:]]
    assert full_object_crc(algorithm, wrong) != _b64(crc(b"".join(PARTS)))


def test_full_object_crc_for_ten_thousand_parts_is_quick() -> None:
    start = time.perf_counter()
    full_object_crc("crc32", [(_b64(n), 5 * 1024 * 1024) for n in range(10_000)])
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "sha1", "sha256"])
def test_composite_checksum(algorithm: str) -> None:
    factory = ALGORITHMS[algorithm][0]
    values = []
    for part in PARTS:
        digest = factory()
        digest.update(part)
        values.append(base64.b64encode(digest.digest()).decode())
    raw = b"".join(base64.b64decode(v) for v in values)
    if algorithm.startswith("sha"):
        expected = hashlib.new(algorithm, raw).digest()
    else:
        crc = zlib.crc32(raw) if algorithm == "crc32" else crc32c_reference(raw)
        expected = crc.to_bytes(4, "big")
    assert (
        composite_checksum(algorithm, values)
        == f"{base64.b64encode(expected).decode()}-{len(PARTS)}"
    )
    with pytest.raises(ValueError):
        composite_checksum(algorithm, ["nope"])


def test_decode_b64_is_strict() -> None:
    assert decode_b64("AAAAAA==", 4) == bytes(4)
    assert decode_b64(" AAAAAA==\t", 4) == bytes(4)
    for bad in ("AAAAAA=", "AAAAAAAA", "AAAA AA==", "AAAAAA==\r", ""):
        assert decode_b64(bad, 4) is None, bad
