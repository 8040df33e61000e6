"""AWS Signature Version 4 as S3 verifies it (header and presigned query forms).

Canonical request (S3 API reference, "Signature Calculations for the Authorization Header"):

    METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders \\n SignedHeaders \\n Payload

S3 differs from other services in two ways that matter here: the canonical URI is the path
exactly as the client sent it (encoded once, never normalised or encoded again), and the
payload line is the ``x-amz-content-sha256`` value (a hex digest, ``UNSIGNED-PAYLOAD`` or a
``STREAMING-*`` marker) rather than a hash the server computes up front; the body is checked
later, while it streams. Virtual-host requests need nothing special: the client signs the
path it sends and the Host header, which carries the bucket.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, unquote

from cumulo.objectstore.auth.errors import AuthError

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
_UNRESERVED = "-_.~"
_DATE8 = re.compile(r"\d{8}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
HEX64_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Scope:
    """The parsed ``Credential=AKID/date/region/service/aws4_request`` value."""

    access_key: str
    date: str
    region: str
    service: str

    @property
    def text(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class SignedParts:
    """What a SigV4 request claims: scope, signed header names, signature and time."""

    scope: Scope
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str


def hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive kSigning; cached because every request of a key on one day reuses it."""
    key = hmac_sha256(f"AWS4{secret}".encode(), date)
    for part in (region, service, "aws4_request"):
        key = hmac_sha256(key, part)
    return key


def uri_encode(text: str, *, keep_slash: bool) -> str:
    """RFC 3986 encoding as SigV4 specifies it (unreserved characters kept, UTF-8 bytes)."""
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Encode every name and value, then sort by encoded name, then encoded value."""
    encoded = sorted(
        (uri_encode(k, keep_slash=False), uri_encode(v, keep_slash=False)) for k, v in pairs
    )
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_uri_candidates(raw_path: str) -> list[str]:
    """The raw path first; then its canonical re-encoding for clients that sent a character
    raw but signed it encoded (or the reverse). Both name the same decoded resource; an
    encoded slash is never produced or folded, so no other resource can be reached."""
    path = raw_path or "/"
    if "%2f" in path.lower():
        return [path]
    reencoded = uri_encode(unquote(path), keep_slash=True)
    return [path] if reencoded == path else [path, reencoded]


def canonical_headers(headers: Mapping[str, str], host: str, names: Iterable[str]) -> str:
    lines = []
    for name in names:
        value = headers.get(name)
        if value is None and name == "host":
            value = host
        lines.append(f"{name}:{' '.join((value or '').split())}\n")
    return "".join(lines)


def canonical_request(
    method: str,
    uri: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    host: str,
    signed: tuple[str, ...],
    payload_hash: str,
) -> str:
    return "\n".join(
        [
            method.upper(),
            uri,
            canonical_query(query),
            canonical_headers(headers, host, signed),
            ";".join(signed),
            payload_hash,
        ]
    )


def string_to_sign(timestamp: str, scope: Scope, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope.text}\n{digest}"


def parse_scope(credential: str, code: str) -> Scope:
    parts = credential.rsplit("/", 4)
    if len(parts) != 5 or not parts[0] or parts[4] != "aws4_request":
        raise AuthError(code, f"Invalid credential '{credential}'.")
    key, date, region, service, _ = parts
    if not _DATE8.fullmatch(date):
        raise AuthError(code, f"Invalid credential date '{date}'.")
    if service != "s3":
        raise AuthError(code, f"Invalid service '{service}', expecting 's3'.")
    return Scope(key, date, region, service)


def parse_signed_headers(value: str, code: str) -> tuple[str, ...]:
    names = tuple(value.split(";")) if value else ()
    if not names or any(n != n.strip().lower() or not n for n in names):
        raise AuthError(code, "SignedHeaders must be lower-case names separated by ';'.")
    if list(names) != sorted(names):
        raise AuthError(code, "SignedHeaders must be sorted.")
    return names


def parse_authorization(value: str) -> tuple[Scope, tuple[str, ...], str]:
    """Parse ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    code = "AuthorizationHeaderMalformed"
    _, _, rest = value.partition(" ")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, eq, field = item.strip().partition("=")
        if eq:
            fields[name] = field.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise AuthError(code, f"The authorization header is malformed; missing {missing[0]}.")
    signature = fields["Signature"]
    if not _HEX64.fullmatch(signature):
        raise AuthError(code, "The authorization header is malformed; bad Signature.")
    scope = parse_scope(fields["Credential"], code)
    return scope, parse_signed_headers(fields["SignedHeaders"], code), signature


_AMZ_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z")


def parse_amz_date(value: str) -> datetime | None:
    """``20261122T040000Z``; parsed by hand because strptime costs more than the rest of
    the signature check."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


def expected_signature(secret: str, parts: SignedParts, canonical: str) -> str:
    key = signing_key(secret, parts.scope.date, parts.scope.region, parts.scope.service)
    return hmac.new(
        key, string_to_sign(parts.timestamp, parts.scope, canonical).encode(), hashlib.sha256
    ).hexdigest()


class ChunkSigner:
    """The signature chain of an aws-chunked body: each chunk signs over the previous one,
    starting from the request's own (seed) signature, so chunks cannot be reordered,
    dropped or spliced between requests."""

    def __init__(self, key: bytes, timestamp: str, scope: Scope, seed: str) -> None:
        self._key = key
        self._prefix = f"{timestamp}\n{scope.text}\n"
        self._previous = seed

    def next_chunk(self, data_sha256: str) -> str:
        message = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{self._prefix}{self._previous}\n"
            f"{EMPTY_SHA256}\n{data_sha256}"
        )
        self._previous = hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()
        return self._previous

    def trailer(self, canonical_trailers: bytes) -> str:
        digest = hashlib.sha256(canonical_trailers).hexdigest()
        message = f"AWS4-HMAC-SHA256-TRAILER\n{self._prefix}{self._previous}\n{digest}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()
