"""AWS Signature Version 4 for an S3 *client* (header auth and presigned query strings).

The image store talks to S3 (Cumulo's own or an external one) without boto3 at runtime, so
the few signing steps it needs live here. Streamed bodies are signed as UNSIGNED-PAYLOAD.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote

UNSIGNED = "UNSIGNED-PAYLOAD"
ALGORITHM = "AWS4-HMAC-SHA256"


def uri_encode(value: str, safe: str = "-_.~") -> str:
    return quote(value, safe=safe)


def canonical_query(params: dict[str, str]) -> str:
    """Query string sorted by encoded key, every key and value URI-encoded."""
    pairs = sorted((uri_encode(k), uri_encode(v)) for k, v in params.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _sign(secret: str, when: datetime, region: str, canonical: str) -> str:
    day = when.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        [
            ALGORITHM,
            when.strftime("%Y%m%dT%H%M%SZ"),
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    return hmac.new(_signing_key(secret, day, region), to_sign.encode(), hashlib.sha256).hexdigest()


def sign_headers(
    method: str,
    host: str,
    path: str,
    params: dict[str, str],
    access_key: str,
    secret_key: str,
    region: str,
    payload_hash: str = UNSIGNED,
    when: datetime | None = None,
) -> dict[str, str]:
    """Headers (Authorization and friends) for a request signed in the header."""
    when = when or datetime.now(UTC)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp}
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            uri_encode(path, safe="/-_.~"),
            canonical_query(params),
            "".join(f"{n}:{headers[n]}\n" for n in names),
            ";".join(names),
            payload_hash,
        ]
    )
    signature = _sign(secret_key, when, region, canonical)
    scope = f"{when.strftime('%Y%m%d')}/{region}/s3/aws4_request"
    auth = (
        f"{ALGORITHM} Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return {"Authorization": auth, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp}


def presign(
    method: str,
    host: str,
    path: str,
    params: dict[str, str],
    access_key: str,
    secret_key: str,
    region: str,
    ttl_s: int,
    when: datetime | None = None,
) -> str:
    """The signed query string (without '?') for a presigned URL valid ttl_s seconds."""
    when = when or datetime.now(UTC)
    scope = f"{when.strftime('%Y%m%d')}/{region}/s3/aws4_request"
    query = dict(params)
    query.update(
        {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{access_key}/{scope}",
            "X-Amz-Date": when.strftime("%Y%m%dT%H%M%SZ"),
            "X-Amz-Expires": str(ttl_s),
            "X-Amz-SignedHeaders": "host",
        }
    )
    canonical = "\n".join(
        [
            method,
            uri_encode(path, safe="/-_.~"),
            canonical_query(query),
            f"host:{host}\n",
            "host",
            UNSIGNED,
        ]
    )
    query["X-Amz-Signature"] = _sign(secret_key, when, region, canonical)
    return canonical_query(query)
