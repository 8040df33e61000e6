"""Body integrity: digests, aws-chunked (signed and unsigned, with trailers), lengths, memory."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from cumulo.objectstore.auth import AuthError, ChecksumError, PayloadCheck, authenticate
from tests.unit.objectstore.s3sign import (
    Wire,
    capture,
    client,
    crc32_b64,
    crc32c_reference,
    drain,
    from_iter,
    lookup,
    now,
    pieces,
    signed_chunked,
)

BODY = bytes(range(256)) * 40 + b"tail"


def _check(wire: Wire) -> PayloadCheck:
    return authenticate(wire.view, lookup, now()).payload


def _stream_error(check: PayloadCheck, body: bytes, size: int = 4096) -> ChecksumError:
    with pytest.raises(ChecksumError) as info:
        drain(lambda: check.stream(pieces(body, size)))
    return info.value


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


# -- plain bodies (hex x-amz-content-sha256 + header checksum, as boto3 sends over http) -----


def test_plain_body_every_byte_tamper_refused() -> None:
    wire = capture(client(), "put_object", Bucket="b", Key="k", Body=BODY)
    assert drain(lambda: _check(wire).stream(pieces(wire.body))) == BODY
    for index in range(0, len(BODY), 97):
        error = _stream_error(_check(wire), _flip(BODY, index))
        assert error.code == "XAmzContentSHA256Mismatch" and error.http_status == 400


def test_truncated_and_overlong_plain_body() -> None:
    wire = capture(client(), "put_object", Bucket="b", Key="k", Body=BODY)
    assert _stream_error(_check(wire), BODY[:-1]).code == "IncompleteBody"
    assert _stream_error(_check(wire), BODY + b"x").code == "IncompleteBody"


def test_content_md5_checked() -> None:
    md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
    wire = capture(
        client(payload_signing_enabled=False),
        "put_object",
        Bucket="b",
        Key="k",
        Body=BODY,
        ContentMD5=md5,
    )
    check = _check(wire)
    drain(lambda: check.stream(pieces(wire.body)))
    assert check.checksums["md5"] == hashlib.md5(BODY).hexdigest()
    # Content-MD5 is signed, so a wrong one comes from the client itself
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    bad = capture(
        client(payload_signing_enabled=False),
        "put_object",
        Bucket="b",
        Key="k",
        Body=BODY,
        ContentMD5=wrong,
        ChecksumCRC32=crc32_b64(BODY),
    )
    assert _stream_error(_check(bad), BODY).code == "BadDigest"
    invalid = capture(
        client(payload_signing_enabled=False),
        "put_object",
        Bucket="b",
        Key="k",
        Body=BODY,
        ContentMD5="abc",
    )
    with pytest.raises(ChecksumError) as info:
        _check(invalid)
    assert info.value.code == "InvalidDigest"


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_explicit_checksum_headers(algorithm: str) -> None:
    digests = {
        "CRC32": crc32_b64(BODY),
        "CRC32C": base64.b64encode(crc32c_reference(BODY).to_bytes(4, "big")).decode(),
        "SHA1": base64.b64encode(hashlib.sha1(BODY).digest()).decode(),
        "SHA256": base64.b64encode(hashlib.sha256(BODY).digest()).decode(),
    }
    params = {f"Checksum{algorithm}": digests[algorithm]}
    s3 = client(payload_signing_enabled=False)
    wire = capture(s3, "put_object", Bucket="b", Key="k", Body=BODY, **params)
    check = _check(wire)
    drain(lambda: check.stream(pieces(wire.body)))
    assert check.checksums[algorithm.lower()] == digests[algorithm]
    other = BODY[:-1] + b"X"
    error = _stream_error(_check(wire), other)
    assert error.code == "BadDigest" and algorithm in error.message


def test_invalid_or_multiple_checksum_headers() -> None:
    wire = capture(
        client(payload_signing_enabled=False), "put_object", Bucket="b", Key="k", Body=b"x"
    )
    for value in ("notbase64!", base64.b64encode(b"12345").decode()):
        view = replace(wire.view, headers={**wire.view.headers, "x-amz-checksum-crc32": value})
        with pytest.raises(AuthError) as info:
            authenticate(replace(view, headers={**view.headers}), lambda k: None, now())
        assert info.value.code == "InvalidAccessKeyId"  # headers unsigned: key checked first
    from cumulo.objectstore.auth.payload import payload_check

    for headers in (
        {"x-amz-checksum-crc32": "AAAAAA=="[:-1]},
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": crc32_b64(b"")},
        {"x-amz-checksum-xxhash64": "AAAAAAAAAAA="},
        {"x-amz-checksum-crc64nvme": "AAAAAA=="},  # 4 bytes: a CRC64 has 8
    ):
        with pytest.raises(AuthError) as info:
            payload_check(headers, content_sha256=None)
        assert info.value.code == "InvalidRequest"


# -- aws-chunked, unsigned with trailer (boto3's default over https) ------------------------


def _trailer_wire(body: bytes = BODY) -> Wire:
    return capture(client(https=True), "put_object", Bucket="b", Key="k", Body=body)


def test_unsigned_trailer_decodes_and_verifies() -> None:
    wire = _trailer_wire()
    assert wire.body.endswith(f"x-amz-checksum-crc32:{crc32_b64(BODY)}\r\n\r\n".encode())
    for size in (1, 3, 4096, len(wire.body)):
        check = _check(wire)
        assert drain(lambda: check.stream(pieces(wire.body, size))) == BODY  # noqa: B023
        assert check.checksums["crc32"] == crc32_b64(BODY)


def test_unsigned_trailer_every_byte_tamper_refused() -> None:
    wire = _trailer_wire(BODY[:300])
    for index in range(len(wire.body)):
        tampered = _flip(wire.body, index)
        with pytest.raises(ChecksumError):
            drain(lambda: _check(wire).stream(pieces(tampered, 64)))  # noqa: B023


def test_unsigned_trailer_missing_or_truncated() -> None:
    wire = _trailer_wire()
    without = wire.body[: wire.body.index(b"0\r\nx-amz-checksum")] + b"0\r\n\r\n"
    assert _stream_error(_check(wire), without).code == "MalformedTrailerError"
    for cut in (1, 5, 30, len(wire.body) - 10):
        assert _stream_error(_check(wire), wire.body[:-cut]).code in {
            "IncompleteBody",
            "MalformedTrailerError",
        }
    assert _stream_error(_check(wire), wire.body + b"junk").code == "IncompleteBody"


def test_decoded_length_mismatch() -> None:
    wire = _trailer_wire()
    longer = wire.with_headers(**{"x-amz-decoded-content-length": str(len(BODY) + 1)})
    with pytest.raises(AuthError) as info:
        authenticate(longer.view, lookup, now())
    assert info.value.code == "SignatureDoesNotMatch"  # the header is signed
    for declared in (len(BODY) + 1, len(BODY) - 1):
        signed = signed_chunked(declared)
        body = b"".join(signed.encode([BODY], None))
        check = authenticate(signed.wire.view, lookup, now()).payload
        assert _stream_error(check, body).code == "IncompleteBody"


# -- aws-chunked with chunk signatures -------------------------------------------------------


@pytest.mark.parametrize("trailer", [None, "x-amz-checksum-crc32"])
def test_signed_chunks_accepted(trailer: str | None) -> None:
    signed = signed_chunked(len(BODY), trailer=trailer)
    trailers = {"x-amz-checksum-crc32": crc32_b64(BODY)} if trailer else None
    wire = b"".join(signed.encode([BODY[:4096], BODY[4096:8192], BODY[8192:]], trailers))
    result = authenticate(signed.wire.view, lookup, now())
    for size in (1, 7, 65536):
        check = authenticate(signed.wire.view, lookup, now()).payload
        assert drain(lambda: check.stream(pieces(wire, size))) == BODY  # noqa: B023
    assert result.signature_version == "v4"


@pytest.mark.parametrize("trailer", [None, "x-amz-checksum-crc32"])
def test_signed_chunks_every_byte_tamper_refused(trailer: str | None) -> None:
    data = BODY[:600]
    signed = signed_chunked(len(data), trailer=trailer)
    trailers = {"x-amz-checksum-crc32": crc32_b64(data)} if trailer else None
    wire = b"".join(signed.encode([data[:200], data[200:400], data[400:]], trailers))
    for index in range(len(wire)):
        tampered = _flip(wire, index)
        with pytest.raises(ChecksumError):
            drain(
                lambda t=tampered: authenticate(signed.wire.view, lookup, now()).payload.stream(
                    pieces(t, 50)
                )
            )


def test_signed_chunks_reordered_dropped_or_spliced_refused() -> None:
    signed = signed_chunked(600)
    parts = list(signed.encode([BODY[:200], BODY[200:400], BODY[400:600]], None))
    # parts: [hdr+data1, crlf, hdr+data2, crlf, hdr+data3, crlf, final, end]
    swapped = parts[2:4] + parts[0:2] + parts[4:]
    error = _stream_error(authenticate(signed.wire.view, lookup, now()).payload, b"".join(swapped))
    assert error.code == "SignatureDoesNotMatch" and error.http_status == 403
    dropped = parts[:2] + parts[4:]
    other = signed_chunked(400)
    assert _stream_error(
        authenticate(other.wire.view, lookup, now()).payload, b"".join(dropped)
    ).code == ("SignatureDoesNotMatch")
    # a chunk signed for another request (other seed) does not fit this chain
    foreign = list(other.encode([BODY[:200], BODY[200:400]], None))
    spliced = parts[:2] + foreign[2:4] + parts[4:]
    assert _stream_error(
        authenticate(signed.wire.view, lookup, now()).payload, b"".join(spliced)
    ).code == ("SignatureDoesNotMatch")


def test_signed_trailer_value_must_match_body() -> None:
    signed = signed_chunked(600, trailer="x-amz-checksum-crc32")
    wrong = {"x-amz-checksum-crc32": crc32_b64(b"not the body")}
    wire = b"".join(signed.encode([BODY[:600]], wrong))
    assert (
        _stream_error(authenticate(signed.wire.view, lookup, now()).payload, wire).code
        == "BadDigest"
    )


def test_signed_streaming_needs_decoded_length() -> None:
    signed = signed_chunked(10)
    headers = {
        k: v for k, v in signed.wire.view.headers.items() if k != "x-amz-decoded-content-length"
    }
    with pytest.raises(AuthError):
        authenticate(replace(signed.wire.view, headers=headers), lookup, now())


# -- memory and small bodies ----------------------------------------------------------------

SIXTY_FOUR_MIB = 64 * 1024 * 1024
CHUNK = 64 * 1024


def _generated_chunks(total: int) -> Iterator[bytes]:
    block = (hashlib.sha256(b"seed").digest() * (CHUNK // 32))[:CHUNK]
    for start in range(0, total, CHUNK):
        yield block[: min(CHUNK, total - start)]


def _re_piece(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The transport delivers 64 KiB pieces unaligned with chunk boundaries."""

    async def gen() -> AsyncIterator[bytes]:
        pending = b""
        for part in parts:
            pending += part
            while len(pending) >= 65536:
                yield pending[:65536]
                pending = pending[65536:]
        if pending:
            yield pending

    return gen()


def test_memory_bounded_for_large_signed_chunked_body() -> None:
    signed = signed_chunked(SIXTY_FOUR_MIB, trailer="x-amz-checksum-crc32")
    import zlib

    crc = 0
    for part in _generated_chunks(SIXTY_FOUR_MIB):
        crc = zlib.crc32(part, crc)
    trailers = {"x-amz-checksum-crc32": base64.b64encode(crc.to_bytes(4, "big")).decode()}
    check = authenticate(signed.wire.view, lookup, now()).payload

    async def consume() -> int:
        total = 0
        async for data in check.stream(
            _re_piece(signed.encode(_generated_chunks(SIXTY_FOUR_MIB), trailers))
        ):
            total += len(data)
        return total

    tracemalloc.start()
    try:
        total = asyncio.run(consume())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == SIXTY_FOUR_MIB
    assert check.checksums["crc32"] == trailers["x-amz-checksum-crc32"]
    assert peak < 2 * 1024 * 1024, peak


def test_read_all_limit_and_single_use() -> None:
    wire = capture(client(), "delete_objects", Bucket="b", Delete={"Objects": [{"Key": "a"}]})
    check = _check(wire)
    assert asyncio.run(check.read_all(from_iter([wire.body]), 10_000)) == wire.body
    with pytest.raises(RuntimeError):
        asyncio.run(check.read_all(from_iter([wire.body]), 10_000))
    with pytest.raises(ChecksumError) as info:
        asyncio.run(_check(wire).read_all(from_iter([wire.body]), 10))
    assert info.value.code == "MaxMessageLengthExceeded"


def test_declares_digest() -> None:
    deleting = capture(client(), "delete_objects", Bucket="b", Delete={"Objects": [{"Key": "a"}]})
    assert _check(deleting).declares_digest  # boto3 sends a CRC32 header, no Content-MD5
    assert _check(_trailer_wire()).declares_digest  # trailer
    listing = capture(client(), "list_objects_v2", Bucket="b")
    assert not _check(listing).declares_digest
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    legacy = capture(client(), "put_object", Bucket="b", Key="k", Body=b"x", ContentMD5=md5)
    assert _check(legacy).declares_digest


@pytest.mark.parametrize("trailer", [None, "x-amz-checksum-crc32"])
def test_random_damage_only_ever_raises_checksum_errors(trailer: str | None) -> None:
    """Random insertions, deletions and overwrites of a signed aws-chunked body, split at
    random points: the decoder either refuses with a ChecksumError or (never, here) yields
    the original payload; no other exception escapes."""
    import random

    rng = random.Random(8)
    data = BODY[:900]
    signed = signed_chunked(len(data), trailer=trailer)
    trailers = {"x-amz-checksum-crc32": crc32_b64(data)} if trailer else None
    wire = b"".join(signed.encode([data[:300], data[300:600], data[600:]], trailers))
    for _ in range(400):
        damaged = bytearray(wire)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(damaged))
            action = rng.choice(("insert", "delete", "overwrite"))
            if action == "insert":
                damaged[position:position] = bytes([rng.randrange(256)])
            elif action == "delete":
                del damaged[position]
            else:
                damaged[position] = rng.randrange(256)
        if bytes(damaged) == wire:
            continue
        size = rng.randint(1, 200)
        check = authenticate(signed.wire.view, lookup, now()).payload
        try:
            out = drain(lambda c=check, d=bytes(damaged), s=size: c.stream(pieces(d, s)))
        except ChecksumError:
            continue
        pytest.fail(f"damaged body accepted ({len(out)} bytes)")


def test_offloaded_hashing_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PayloadCheck, "offload_min", 1)
    signed = signed_chunked(len(BODY), trailer="x-amz-checksum-crc32")
    wire = b"".join(
        signed.encode([BODY[:5000], BODY[5000:]], {"x-amz-checksum-crc32": crc32_b64(BODY)})
    )
    check = authenticate(signed.wire.view, lookup, now()).payload
    assert drain(lambda: check.stream(pieces(wire, 3000))) == BODY
    assert check.checksums["crc32"] == crc32_b64(BODY)
    tampered = authenticate(signed.wire.view, lookup, now()).payload
    assert _stream_error(tampered, _flip(wire, 100), 3000).code == "SignatureDoesNotMatch"


def crc64nvme_reference(data: bytes) -> int:
    """Bitwise CRC-64/NVME (reflected 0x9A6C9329AC4BC9B5, init and xorout all ones)."""
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x9A6C9329AC4BC9B5 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def test_crc64nvme_as_aws_cli_v2_sends_it() -> None:
    """AWS CLI v2 defaults to CRC64NVME; botocore here lacks the CRT, so the header is set
    by hand (as the CLI would) and the value computed by a bitwise reference."""
    assert crc64nvme_reference(b"123456789") == 0xAE8B14860A799888  # the catalogue check value
    value = base64.b64encode(crc64nvme_reference(BODY).to_bytes(8, "big")).decode()
    wire = capture(
        client(payload_signing_enabled=False),
        "put_object",
        Bucket="b",
        Key="k",
        Body=BODY,
        ChecksumCRC64NVME=value,
    )
    assert wire.view.headers["x-amz-checksum-crc64nvme"] == value
    check = _check(wire)
    drain(lambda: check.stream(pieces(wire.body, 777)))
    assert check.checksums["crc64nvme"] == value
    assert _stream_error(_check(wire), _flip(BODY, 10)).code == "BadDigest"
