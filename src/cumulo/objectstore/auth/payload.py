"""Streaming verification of a request body against everything the request declared.

A request can promise its body in several ways at once: ``x-amz-content-sha256`` (a hex
SHA-256 signed into the request, or a ``STREAMING-*`` marker that switches the body to
``aws-chunked`` with per-chunk signatures and/or trailing checksums), ``Content-MD5``,
``x-amz-checksum-<alg>`` as a header or as a trailer, ``Content-Length`` and
``x-amz-decoded-content-length``. ``PayloadCheck.stream`` passes the decoded payload through
while feeding every digest in one pass, and raises ``ChecksumError`` when the body ends (or
as soon as a chunk signature or length is wrong). The caller commits the object only after
the stream finished without an error: that is what makes a PUT all-or-nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

from anyio import to_thread

from cumulo.objectstore.auth.checksums import (
    ALGORITHMS,
    UNSUPPORTED,
    Digest,
    b64,
    decode_b64,
    new_md5,
)
from cumulo.objectstore.auth.chunked import ChunkDecoder
from cumulo.objectstore.auth.errors import AuthError, ChecksumError
from cumulo.objectstore.auth.sigv4 import HEX64_ANY_CASE, ChunkSigner

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = frozenset(
    {STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER}
)
_SIGNED_STREAMING = frozenset({STREAMING_SIGNED, STREAMING_SIGNED_TRAILER})
_TRAILER_MODES = frozenset({STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER})
_CHECKSUM_PREFIX = "x-amz-checksum-"


@dataclass
class PayloadSpec:
    """What the headers declared about the body (built by ``payload_check``)."""

    content_sha256: str | None = None
    content_length: int | None = None
    decoded_length: int | None = None
    md5: bytes | None = None
    expected: dict[str, bytes] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)
    trailer_names: tuple[str, ...] = ()


class PayloadCheck:
    """Verifies one request body while it streams; see the module docstring."""

    # Pieces at least this large are decoded and hashed in a worker thread; None keeps all
    # work in the caller's thread. Off by default: the thread hand-off costs a single stream
    # more than it gains unless several uploads share one process on several free cores
    # (measure with bench/s3_auth.py before turning it on).
    offload_min: int | None = None

    def __init__(self, spec: PayloadSpec, signer: ChunkSigner | None = None) -> None:
        self._spec = spec
        self._signer = signer
        self._used = False
        self.checksums: dict[str, str] = {}

    @property
    def chunked(self) -> bool:
        """True when the body is aws-chunked (the decoded length differs from the wire's)."""
        return self._spec.content_sha256 in STREAMING_MODES

    @property
    def declared_length(self) -> int | None:
        """The payload length the client declared, if it did (for quota checks up front)."""
        if self.chunked:
            return self._spec.decoded_length
        return self._spec.content_length

    @property
    def declares_digest(self) -> bool:
        """Whether the request carries Content-MD5 or an x-amz-checksum (header or trailer):
        S3 requires one for DeleteObjects, PutBucketLifecycleConfiguration and a few more
        ("Missing required header for this request: Content-Md5")."""
        spec = self._spec
        return spec.md5 is not None or bool(spec.expected) or bool(spec.trailer_names)

    async def stream(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Yield the decoded payload; raise ChecksumError on any mismatch.

        With ``offload_min`` set, large pieces are decoded and hashed in a worker thread:
        hashlib and zlib release the GIL on such buffers, so concurrent uploads can hash on
        several cores while the event loop keeps serving other requests.
        """
        if self._used:
            raise RuntimeError("a request body can be streamed once")
        self._used = True
        digests = self._digests()
        decoder = self._decoder()
        wire = 0
        limit = self._spec.content_length

        def absorb(piece: bytes) -> list[bytes]:
            out = decoder.feed(piece) if decoder else [piece]
            for data in out:
                for digest in digests.values():
                    digest.update(data)
            return out

        async for piece in body:
            if not piece:
                continue
            wire += len(piece)
            if limit is not None and wire > limit:
                raise ChecksumError("IncompleteBody", "The body is longer than Content-Length.")
            if self.offload_min is not None and len(piece) >= self.offload_min:
                out = await to_thread.run_sync(absorb, piece)
            else:
                out = absorb(piece)
            for data in out:
                yield data
        trailers = decoder.finish() if decoder else {}
        decoded = decoder.decoded if decoder else wire
        self._verify(wire, decoded, digests, trailers)

    async def read_all(self, body: AsyncIterator[bytes], limit: int) -> bytes:
        """The whole verified payload of a small request (XML documents), at most limit."""
        parts: list[bytes] = []
        size = 0
        declared = self.declared_length
        if declared is not None and declared > limit:
            raise ChecksumError("MaxMessageLengthExceeded", "Your request was too big.")
        async for data in self.stream(body):
            size += len(data)
            if size > limit:
                raise ChecksumError("MaxMessageLengthExceeded", "Your request was too big.")
            parts.append(data)
        return b"".join(parts)

    # -- internals --------------------------------------------------------------------

    def _digests(self) -> dict[str, Digest]:
        digests: dict[str, Digest] = {"md5": new_md5()}
        wanted = set(self._spec.requested)
        if _is_hex_sha256(self._spec.content_sha256):
            wanted.add("sha256")
        for name in sorted(wanted):
            digests[name] = ALGORITHMS[name][0]()
        return digests

    def _decoder(self) -> ChunkDecoder | None:
        mode = self._spec.content_sha256
        if mode not in STREAMING_MODES:
            return None
        signer = self._signer if mode in _SIGNED_STREAMING else None
        return ChunkDecoder(signer, with_trailer=mode in _TRAILER_MODES)

    def _verify(
        self, wire: int, decoded: int, digests: dict[str, Digest], trailers: dict[str, str]
    ) -> None:
        spec = self._spec
        _check_length(wire, spec.content_length, "Content-Length")
        if self.chunked:
            _check_length(decoded, spec.decoded_length, "x-amz-decoded-content-length")
        results = {name: d.digest() for name, d in digests.items()}
        if _is_hex_sha256(spec.content_sha256):
            assert spec.content_sha256 is not None
            if not hmac.compare_digest(results["sha256"].hex(), spec.content_sha256.lower()):
                raise ChecksumError("XAmzContentSHA256Mismatch")
        if spec.md5 is not None and not hmac.compare_digest(results["md5"], spec.md5):
            raise ChecksumError("BadDigest", "The Content-MD5 you specified did not match.")
        for name, expected in self._expected_with(trailers).items():
            if not hmac.compare_digest(results[name], expected):
                label = name.upper()
                raise ChecksumError(
                    "BadDigest", f"The {label} you specified did not match the calculated checksum."
                )
        self.checksums = {"md5": results["md5"].hex()}
        self.checksums.update({n: b64(v) for n, v in results.items() if n in spec.requested})

    def _expected_with(self, trailers: dict[str, str]) -> dict[str, bytes]:
        expected = dict(self._spec.expected)
        for name in self._spec.trailer_names:
            if name not in trailers:
                raise ChecksumError(
                    "MalformedTrailerError", f"The declared trailer {name} is missing."
                )
        for name, value in trailers.items():
            algorithm = name.removeprefix(_CHECKSUM_PREFIX)
            if not name.startswith(_CHECKSUM_PREFIX) or algorithm not in ALGORITHMS:
                continue
            raw = decode_b64(value, ALGORITHMS[algorithm][1])
            if raw is None or algorithm not in self._spec.requested:
                raise ChecksumError("InvalidRequest", f"Value for {name} trailer is invalid.")
            expected[algorithm] = raw
        return expected


def _check_length(actual: int, declared: int | None, what: str) -> None:
    if declared is None or actual == declared:
        return
    relation = "shorter" if actual < declared else "longer"
    raise ChecksumError("IncompleteBody", f"The body is {relation} than {what} declared.")


def _is_hex_sha256(value: str | None) -> bool:
    return value is not None and HEX64_ANY_CASE.fullmatch(value) is not None


# -- building the check from headers ------------------------------------------------------


def payload_check(
    headers: Mapping[str, str],
    *,
    content_sha256: str | None,
    signer: ChunkSigner | None = None,
) -> PayloadCheck:
    """Read every body declaration from the headers; refuse malformed ones up front."""
    spec = PayloadSpec(content_sha256=content_sha256)
    spec.content_length = _int_header(headers, "content-length")
    spec.decoded_length = _int_header(headers, "x-amz-decoded-content-length")
    if content_sha256 in _SIGNED_STREAMING and spec.decoded_length is None:
        raise AuthError("MissingContentLength", "x-amz-decoded-content-length is required.")
    if "content-md5" in headers:
        spec.md5 = decode_b64(headers["content-md5"], 16)
        if spec.md5 is None:
            raise ChecksumError("InvalidDigest")
    _read_checksum_headers(headers, spec)
    _read_trailer_declaration(headers, spec)
    return PayloadCheck(spec, signer)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii():
        raise AuthError("InvalidArgument", f"Invalid {name} header.")
    return int(text)


def _read_checksum_headers(headers: Mapping[str, str], spec: PayloadSpec) -> None:
    for name, value in headers.items():
        algorithm = name.removeprefix(_CHECKSUM_PREFIX)
        if not name.startswith(_CHECKSUM_PREFIX):
            continue
        if algorithm in UNSUPPORTED:
            raise AuthError("InvalidRequest", f"Checksum algorithm {algorithm} is not supported.")
        if algorithm not in ALGORITHMS:
            continue  # x-amz-checksum-type, -mode, -algorithm: not digests
        raw = decode_b64(value, ALGORITHMS[algorithm][1])
        if raw is None:
            raise AuthError("InvalidRequest", f"Value for {name} header is invalid.")
        spec.expected[algorithm] = raw
        spec.requested.add(algorithm)
    if len(spec.expected) > 1:
        raise AuthError(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    sdk = headers.get("x-amz-sdk-checksum-algorithm", "").strip().lower()
    if sdk:
        if sdk not in ALGORITHMS:
            raise AuthError("InvalidRequest", f"Checksum algorithm {sdk} is not supported.")
        spec.requested.add(sdk)


def _read_trailer_declaration(headers: Mapping[str, str], spec: PayloadSpec) -> None:
    declared = headers.get("x-amz-trailer", "")
    names = tuple(n.strip().lower() for n in declared.split(",") if n.strip())
    if names and spec.content_sha256 not in _TRAILER_MODES:
        raise AuthError("InvalidRequest", "x-amz-trailer needs a STREAMING-*-TRAILER payload.")
    if spec.content_sha256 in _TRAILER_MODES and not names:
        raise AuthError("InvalidRequest", "A STREAMING-*-TRAILER payload needs x-amz-trailer.")
    for name in names:
        algorithm = name.removeprefix(_CHECKSUM_PREFIX)
        if not name.startswith(_CHECKSUM_PREFIX) or algorithm not in ALGORITHMS:
            raise AuthError("InvalidRequest", f"Unsupported trailer {name}.")
        spec.requested.add(algorithm)
    spec.trailer_names = names
