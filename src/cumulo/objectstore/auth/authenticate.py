"""Who sent this request: the one entry point the S3 front door calls.

The order of checks follows S3 so clients see the same error S3 would give them: the form
of the credentials first (malformed header or query → 400), then the key
(``InvalidAccessKeyId``), then time (skew or presign expiry), then the signature. All
signature comparisons are constant-time. The body is not read here: the returned
``PayloadCheck`` verifies it while the handler streams it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from cumulo.objectstore.auth import sigv2, sigv4
from cumulo.objectstore.auth.errors import AuthError
from cumulo.objectstore.auth.model import AuthResult, Credentials, RequestView
from cumulo.objectstore.auth.payload import (
    STREAMING_MODES,
    STREAMING_SIGNED,
    STREAMING_SIGNED_TRAILER,
    UNSIGNED_PAYLOAD,
    payload_check,
)

Lookup = Callable[[str], Credentials | None]
DEFAULT_SKEW = timedelta(minutes=15)
ANY_REGION = "*"
_V4_QUERY = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_V4_QUERY_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_V2_QUERY = ("AWSAccessKeyId", "Signature")
_QPE = "AuthorizationQueryParametersError"
_AHM = "AuthorizationHeaderMalformed"


def authenticate(
    req: RequestView,
    lookup: Lookup,
    now: datetime,
    *,
    max_skew: timedelta = DEFAULT_SKEW,
    region: str = "us-east-1",
    virtual_host_bucket: str | None = None,
) -> AuthResult:
    """Authenticate a request signed with SigV4 or SigV2 (header or query), or anonymous.

    ``region`` is the region SigV4 scopes must name (``"*"`` accepts any).
    ``virtual_host_bucket`` is the bucket the front door took from the Host header, if it
    did: SigV2 signs ``/bucket/key`` whatever the addressing style (SigV4 needs nothing).
    Raises ``AuthError`` (or ``ChecksumError`` for a malformed Content-MD5).
    """
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    header = req.headers.get("authorization")
    names = {k for k, _ in req.query}
    v4_query = any(n in names for n in _V4_QUERY)
    v2_query = not v4_query and any(n in names for n in _V2_QUERY)
    if header is not None and (v4_query or v2_query):
        raise AuthError("InvalidArgument", "Only one auth mechanism allowed.")
    if header is not None:
        if not header.strip():
            raise AuthError("AccessDenied", "Access Denied")
        if header.startswith(sigv4.ALGORITHM + " "):
            return _v4_header(req, header, lookup, now, max_skew, region)
        if header.startswith("AWS "):
            return _v2_header(req, header, lookup, now, max_skew, virtual_host_bucket)
        raise AuthError("InvalidArgument", "Unsupported Authorization Type")
    if v4_query:
        return _v4_query(req, lookup, now, max_skew, region)
    if v2_query:
        return _v2_query(req, lookup, now, virtual_host_bucket)
    payload = payload_check(req.headers, content_sha256=_unsigned_content_sha256(req.headers))
    return AuthResult(None, payload, None, "anonymous")


# -- SigV4 ---------------------------------------------------------------------------------


def _v4_header(
    req: RequestView,
    header: str,
    lookup: Lookup,
    now: datetime,
    max_skew: timedelta,
    region: str,
) -> AuthResult:
    scope, signed, signature = sigv4.parse_authorization(header)
    _check_region(scope, region, _AHM)
    timestamp, when = _v4_time(req.headers)
    if scope.date != timestamp[:8]:
        raise AuthError(_AHM, "Invalid credential date. Date is not the same as X-Amz-Date.")
    content_sha256 = _v4_content_sha256(req.headers)
    _check_amz_headers_signed(req.headers, signed)
    creds = _credentials(lookup, scope.access_key)
    _check_skew(when, now, max_skew)
    parts = sigv4.SignedParts(scope, signed, signature, timestamp)
    _verify_v4(req, creds, parts, req.query, content_sha256)
    return _v4_result(req, creds, parts, content_sha256)


def _v4_query(
    req: RequestView, lookup: Lookup, now: datetime, max_skew: timedelta, region: str
) -> AuthResult:
    params = _query_params(req.query, _V4_QUERY_REQUIRED)
    if params["X-Amz-Algorithm"] != sigv4.ALGORITHM:
        raise AuthError(_QPE, 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    expires = _presign_expires(params["X-Amz-Expires"])
    timestamp = params["X-Amz-Date"]
    when = sigv4.parse_amz_date(timestamp)
    if when is None:
        raise AuthError(
            _QPE, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        )
    scope = sigv4.parse_scope(params["X-Amz-Credential"], _QPE)
    _check_region(scope, region, _QPE)
    if scope.date != timestamp[:8]:
        raise AuthError(_QPE, "Invalid credential date. Date is not the same as X-Amz-Date.")
    signed = sigv4.parse_signed_headers(params["X-Amz-SignedHeaders"], _QPE)
    signature = params["X-Amz-Signature"]
    _check_amz_headers_signed(req.headers, signed)
    creds = _credentials(lookup, scope.access_key)
    _check_presign_window(when, expires, now, max_skew)
    content_sha256 = req.headers.get("x-amz-content-sha256", UNSIGNED_PAYLOAD)
    _check_content_sha256_value(content_sha256)
    parts = sigv4.SignedParts(scope, signed, signature, timestamp)
    query = [(k, v) for k, v in req.query if k != "X-Amz-Signature"]
    _verify_v4(req, creds, parts, query, content_sha256)
    return _v4_result(req, creds, parts, content_sha256)


def _v4_result(
    req: RequestView, creds: Credentials, parts: sigv4.SignedParts, content_sha256: str
) -> AuthResult:
    signer = None
    if content_sha256 in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        scope = parts.scope
        key = sigv4.signing_key(creds.secret_key, scope.date, scope.region, scope.service)
        signer = sigv4.ChunkSigner(key, parts.timestamp, scope, parts.signature)
    payload = payload_check(req.headers, content_sha256=content_sha256, signer=signer)
    return AuthResult(creds, payload, parts.scope.region, "v4")


def _verify_v4(
    req: RequestView,
    creds: Credentials,
    parts: sigv4.SignedParts,
    query: list[tuple[str, str]],
    content_sha256: str,
) -> None:
    found = False
    first = ""
    variants = [
        (uri, headers)
        for uri in sigv4.canonical_uri_candidates(req.raw_path)
        for headers in _header_variants(req.headers)
    ]
    for uri, headers in variants:
        canonical = sigv4.canonical_request(
            req.method, uri, query, headers, req.host, parts.signed_headers, content_sha256
        )
        first = first or canonical
        expected = sigv4.expected_signature(creds.secret_key, parts, canonical)
        found |= _same(expected, parts.signature)
    if not found:
        raise AuthError(
            "SignatureDoesNotMatch",
            AWSAccessKeyId=creds.access_key,
            SignatureProvided=parts.signature,
            StringToSign=sigv4.string_to_sign(parts.timestamp, parts.scope, first),
            CanonicalRequest=first,
        )


def _v4_time(headers: Mapping[str, str]) -> tuple[str, datetime]:
    """The signing time: ``x-amz-date`` (ISO 8601 basic) or else the ``Date`` header."""
    if "x-amz-date" in headers:
        value = headers["x-amz-date"].strip()
        when = sigv4.parse_amz_date(value)
        if when is None:
            raise _no_date()
        return value, when
    when = _http_date(headers.get("date"))
    if when is None:
        raise _no_date()
    return when.strftime(sigv4.AMZ_DATE_FORMAT), when


def _v4_content_sha256(headers: Mapping[str, str]) -> str:
    value = headers.get("x-amz-content-sha256")
    if value is None:
        raise AuthError(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    _check_content_sha256_value(value)
    return value


def _check_content_sha256_value(value: str) -> None:
    if value in STREAMING_MODES or value == UNSIGNED_PAYLOAD:
        return
    if sigv4.HEX64_ANY_CASE.fullmatch(value):
        return
    raise AuthError(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-* value, "
        "or a valid sha256 value.",
    )


def _presign_expires(value: str) -> int:
    """A presign lifetime in seconds, at most a week. Out-of-range values are refused with
    403 AccessDenied, as ceph/s3-tests expect of S3 (test_object_raw_get_x_amz_expires_*)."""
    digits = value[1:] if value.startswith("-") else value
    if not digits.isdigit() or not digits.isascii():
        raise AuthError(_QPE, "X-Amz-Expires should be a number")
    expires = int(value)
    if expires < 0:
        raise AuthError("AccessDenied", "X-Amz-Expires must be non-negative")
    if expires > sigv4.MAX_PRESIGN_EXPIRES:
        raise AuthError(
            "AccessDenied", "X-Amz-Expires must be less than a week (in seconds) that is 604800"
        )
    return expires


def _check_presign_window(when: datetime, expires: int, now: datetime, max_skew: timedelta) -> None:
    if now < when - max_skew:
        raise AuthError("AccessDenied", "Request is not valid yet")
    if now > when + timedelta(seconds=expires):
        err = AuthError("AccessDenied", "Request has expired")
        err.extra["X-Amz-Expires"] = str(expires)
        err.extra["Expires"] = (when + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%SZ")
        err.extra["ServerTime"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        raise err


def _check_region(scope: sigv4.Scope, region: str, code: str) -> None:
    if region != ANY_REGION and scope.region != region:
        raise AuthError(
            code,
            f"The authorization header is malformed; the region '{scope.region}' is wrong; "
            f"expecting '{region}'",
            Region=region,
        )


# -- SigV2 ---------------------------------------------------------------------------------


def _v2_header(
    req: RequestView,
    header: str,
    lookup: Lookup,
    now: datetime,
    max_skew: timedelta,
    bucket: str | None,
) -> AuthResult:
    key, colon, signature = header[4:].strip().partition(":")
    if not colon or not key or not signature:
        raise AuthError(
            "InvalidArgument",
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
        )
    # x-amz-date, when present, is the request time (and must be valid), else Date.
    stamp = req.headers["x-amz-date"] if "x-amz-date" in req.headers else req.headers.get("date")
    when = _http_date(stamp)
    if when is None:
        raise _no_date()
    creds = _credentials(lookup, key)
    _check_skew(when, now, max_skew)
    # With x-amz-date present the guide signs an empty Date line; botocore signs the Date
    # header it also sends. Both name the same request, so both are accepted.
    dates = {req.headers.get("date", "").strip()}
    if "x-amz-date" in req.headers:
        dates.add("")
    _verify_v2(req, req.headers, creds, sorted(dates), signature, bucket)
    return _v2_result(req, creds)


def _v2_query(req: RequestView, lookup: Lookup, now: datetime, bucket: str | None) -> AuthResult:
    params = dict(req.query)
    if not all(params.get(k) for k in ("AWSAccessKeyId", "Signature", "Expires")):
        raise AuthError(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
            "parameters",
        )
    expires_text = params["Expires"]
    if not expires_text.isdigit() or not expires_text.isascii():
        raise AuthError("AccessDenied", "Invalid date (should be seconds since epoch)")
    creds = _credentials(lookup, params["AWSAccessKeyId"])
    if now.timestamp() > int(expires_text):
        raise AuthError("AccessDenied", "Request has expired", Expires=expires_text)
    headers = _v2_query_headers(req)
    _verify_v2(req, headers, creds, [expires_text], params["Signature"], bucket)
    return _v2_result(req, creds)


def _v2_query_headers(req: RequestView) -> dict[str, str]:
    """Headers a presigned V2 URL signed: sent as headers, or folded into the query string
    (botocore's HmacV1QueryAuth puts Content-Type, Content-MD5 and x-amz-* there)."""
    headers = dict(req.headers)
    for name, value in req.query:
        lower = name.lower()
        signed_kind = lower.startswith("x-amz-") or lower in ("content-type", "content-md5")
        if signed_kind and lower not in headers:
            headers[lower] = value
    return headers


def _verify_v2(
    req: RequestView,
    headers: Mapping[str, str],
    creds: Credentials,
    dates: list[str],
    signature: str,
    bucket: str | None,
) -> None:
    texts = [
        sigv2.string_to_sign(
            req.method, variant, date, sigv2.canonical_resource(p, req.query, bucket)
        )
        for p in _v2_paths(req.raw_path, bucket)
        for date in dates
        for variant in _header_variants(headers)
    ]
    if not sigv2.matches(creds.secret_key, texts, signature):
        raise AuthError(
            "SignatureDoesNotMatch",
            AWSAccessKeyId=creds.access_key,
            SignatureProvided=signature,
            StringToSign=texts[0],
        )


def _header_variants(headers: Mapping[str, str]) -> list[Mapping[str, str]]:
    """Header values arrive as bytes and are read as Latin-1. Clients sign text: botocore
    sends non-ASCII values Latin-1 encoded, others (Go, Java SDKs, curl) as UTF-8 bytes; the
    second reading is tried too when some value is non-ASCII and valid UTF-8."""
    utf8: dict[str, str] = {}
    for name, value in headers.items():
        if not value.isascii():
            try:
                utf8[name] = value.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
    return [headers, {**headers, **utf8}] if utf8 else [headers]


def _v2_paths(raw_path: str, bucket: str | None) -> list[str]:
    """Path-style bucket requests (``/bkt``) are signed as ``/bkt/`` by botocore and as sent
    by others; both name the bucket itself."""
    paths = sigv4.canonical_uri_candidates(raw_path)
    if bucket is None and raw_path.count("/") == 1 and len(raw_path) > 1:
        paths.append(raw_path + "/")
    return paths


def _v2_result(req: RequestView, creds: Credentials) -> AuthResult:
    payload = payload_check(req.headers, content_sha256=_unsigned_content_sha256(req.headers))
    return AuthResult(creds, payload, None, "v2")


# -- shared --------------------------------------------------------------------------------


def _unsigned_content_sha256(headers: Mapping[str, str]) -> str | None:
    """The payload mode of a request without SigV4: signed chunks cannot be checked."""
    value = headers.get("x-amz-content-sha256")
    if value is None:
        return None
    _check_content_sha256_value(value)
    if value in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER):
        raise AuthError("InvalidRequest", f"{value} requires AWS Signature Version 4.")
    return value


def _query_params(query: list[tuple[str, str]], required: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in query:
        if name in required and name in params:
            raise AuthError(_QPE, f"Duplicate query parameter {name}.")
        params.setdefault(name, value)
    if not all(name in params for name in required):
        raise AuthError(
            _QPE,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, "
            "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and "
            "X-Amz-Expires parameters.",
        )
    return params


def _check_amz_headers_signed(headers: Mapping[str, str], signed: tuple[str, ...]) -> None:
    """S3 refuses x-amz-* headers outside the signature: they change what a request does
    (metadata, ACLs, copy sources), so an unsigned one could be added in transit."""
    unsigned = sorted(h for h in headers if h.startswith("x-amz-") and h not in signed)
    if unsigned:
        raise AuthError(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            HeadersNotSigned=", ".join(unsigned),
        )


def _credentials(lookup: Lookup, access_key: str) -> Credentials:
    creds = lookup(access_key)
    if creds is None:
        raise AuthError("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    return creds


def _check_skew(when: datetime, now: datetime, max_skew: timedelta) -> None:
    if abs(now - when) > max_skew:
        raise AuthError(
            "RequestTimeTooSkewed",
            RequestTime=when.strftime("%Y%m%dT%H%M%SZ"),
            ServerTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            MaxAllowedSkewMilliseconds=str(int(max_skew.total_seconds() * 1000)),
        )


def _http_date(value: str | None) -> datetime | None:
    """RFC 7231 dates (and ISO 8601 basic, which some V2 clients put in x-amz-date)."""
    if not value:
        return None
    value = value.strip()
    basic = sigv4.parse_amz_date(value)
    if basic is not None:
        return basic
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    # S3 answers AccessDenied (not RequestTimeTooSkewed) for dates before the epoch.
    return parsed if parsed.year >= 1970 else None


def _same(expected: str, provided: str) -> bool:
    return hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace"))


def _no_date() -> AuthError:
    return AuthError(
        "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
    )
