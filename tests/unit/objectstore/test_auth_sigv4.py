"""SigV4 (header and presigned) as real boto3 signs it: accepted, and every tamper refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from cumulo.objectstore.auth import ANY_REGION, AuthError, RequestView, authenticate
from tests.unit.objectstore.s3sign import (
    ACCESS,
    CREDS,
    Wire,
    capture,
    client,
    drain,
    lookup,
    now,
    pieces,
    presigned,
)

KEY = "dir one/ünïcode+plus~tilde=eq&amp;(x).txt"


def _refused(view: RequestView, code: str, **kw: object) -> AuthError:
    with pytest.raises(AuthError) as info:
        authenticate(view, lookup, kw.pop("at", now()), **kw)  # type: ignore[arg-type]
    assert info.value.code == code, info.value
    return info.value


def _flip(text: str, index: int) -> str:
    return text[:index] + chr(ord(text[index]) ^ 1) + text[index + 1 :]


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("style", ["path", "virtual"])
def test_boto3_put_object_default_settings_accepted(https: bool, style: str) -> None:
    body = b"payload " * 5000
    wire = capture(client(https=https, style=style), "put_object", Bucket="bkt", Key=KEY, Body=body)
    result = authenticate(wire.view, lookup, now())
    assert result.credentials == CREDS
    assert result.signature_version == "v4"
    assert result.region == "us-east-1"
    assert drain(lambda: result.payload.stream(pieces(wire.body, 1000))) == body
    assert set(result.payload.checksums) == {"md5", "crc32"}
    if https:  # boto3 default over TLS: aws-chunked with a trailing CRC32
        assert wire.view.headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("list_objects_v2", {"Bucket": "bkt", "Prefix": "a b/ü&=", "Delimiter": "/"}),
        ("list_buckets", {}),
        ("get_object", {"Bucket": "bkt", "Key": KEY, "Range": "bytes=0-9"}),
        ("head_object", {"Bucket": "bkt", "Key": KEY, "VersionId": "v1/+="}),
        ("delete_objects", {"Bucket": "bkt", "Delete": {"Objects": [{"Key": "a"}]}}),
        ("put_bucket_acl", {"Bucket": "bkt", "ACL": "public-read"}),
        ("copy_object", {"Bucket": "bkt", "Key": "dst", "CopySource": {"Bucket": "s", "Key": KEY}}),
        ("create_multipart_upload", {"Bucket": "bkt", "Key": KEY, "ChecksumAlgorithm": "SHA256"}),
        (
            "upload_part",
            {"Bucket": "b", "Key": KEY, "UploadId": "u+1", "PartNumber": 2, "Body": b"x"},
        ),
    ],
)
@pytest.mark.parametrize("style", ["path", "virtual"])
def test_boto3_operations_accepted(operation: str, params: dict[str, object], style: str) -> None:
    wire = capture(client(style=style), operation, **params)
    result = authenticate(wire.view, lookup, now())
    assert result.credentials == CREDS
    drain(lambda: result.payload.stream(pieces(wire.body)))


def test_unsigned_payload_accepted_and_body_unchecked_by_sha() -> None:
    s3 = client(payload_signing_enabled=False)
    wire = capture(s3, "put_object", Bucket="bkt", Key="k", Body=b"abc")
    assert wire.view.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    result = authenticate(wire.view, lookup, now())
    assert drain(lambda: result.payload.stream(pieces(wire.body))) == b"abc"


def _put_wire() -> Wire:
    return capture(
        client(),
        "put_object",
        Bucket="bkt",
        Key=KEY,
        Body=b"hello",
        Metadata={"colour": "blue"},
        ContentType="text/plain",
        ACL="private",
    )


def test_every_path_byte_tamper_refused() -> None:
    wire = _put_wire()
    path = wire.view.raw_path
    for index in range(len(path)):
        tampered = replace(wire.view, raw_path=_flip(path, index))
        _refused(tampered, "SignatureDoesNotMatch")


def test_every_query_byte_tamper_refused() -> None:
    wire = capture(client(), "list_objects_v2", Bucket="bkt", Prefix="pré fix/", MaxKeys=7)
    query = wire.view.query
    for position, (name, value) in enumerate(query):
        for index in range(len(name)):
            changed = [*query[:position], (_flip(name, index), value), *query[position + 1 :]]
            _refused(replace(wire.view, query=changed), "SignatureDoesNotMatch")
        for index in range(len(value)):
            changed = [*query[:position], (name, _flip(value, index)), *query[position + 1 :]]
            _refused(replace(wire.view, query=changed), "SignatureDoesNotMatch")
    added = replace(wire.view, query=[*query, ("start-after", "x")])
    _refused(added, "SignatureDoesNotMatch")
    dropped = replace(wire.view, query=query[1:])
    _refused(dropped, "SignatureDoesNotMatch")


def test_every_signed_header_byte_tamper_refused() -> None:
    wire = _put_wire()
    signed = wire.view.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
    names = [n for n in signed.split(";") if n != "x-amz-date"]
    assert {"host", "content-type", "x-amz-meta-colour", "x-amz-acl"} <= set(names)
    for name in names:
        value = wire.view.headers[name]
        for index in range(len(value)):
            tampered = wire.with_headers(**{name: _flip(value, index)})
            with pytest.raises(AuthError) as info:
                authenticate(tampered.view, lookup, now())
            assert info.value.code in {"SignatureDoesNotMatch", "InvalidArgument"}, (name, index)


def test_date_and_signature_tamper_refused() -> None:
    wire = _put_wire()
    stamp = wire.view.headers["x-amz-date"]
    _refused(
        wire.with_headers(**{"x-amz-date": _flip(stamp, len(stamp) - 2)}).view,
        "SignatureDoesNotMatch",
    )
    auth = wire.view.headers["authorization"]
    for index in range(len(auth) - 64, len(auth)):
        with pytest.raises(AuthError) as info:
            authenticate(wire.with_headers(authorization=_flip(auth, index)).view, lookup, now())
        assert info.value.code in {"SignatureDoesNotMatch", "AuthorizationHeaderMalformed"}
    # the hex digit case changes nothing in hex but must still not verify as another value
    swapped = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    _refused(wire.with_headers(authorization=swapped).view, "SignatureDoesNotMatch")


def test_unsigned_amz_header_refused() -> None:
    wire = _put_wire().with_headers(**{"x-amz-meta-extra": "sneaky"})
    error = _refused(wire.view, "AccessDenied")
    assert error.extra["HeadersNotSigned"] == "x-amz-meta-extra"


def test_unsigned_ordinary_header_allowed() -> None:
    wire = _put_wire().with_headers(**{"x-forwarded-for": "10.0.0.1"})
    assert authenticate(wire.view, lookup, now()).credentials == CREDS


def test_wrong_secret_unknown_key_wrong_region() -> None:
    wire = _put_wire()
    with pytest.raises(AuthError) as info:
        authenticate(wire.view, lambda k: replace(CREDS, secret_key="other"), now())
    assert info.value.code == "SignatureDoesNotMatch"
    assert "CanonicalRequest" in info.value.extra and info.value.http_status == 403
    with pytest.raises(AuthError) as info:
        authenticate(wire.view, lambda k: None, now())
    assert info.value.code == "InvalidAccessKeyId" and info.value.http_status == 403
    error = _refused(wire.view, "AuthorizationHeaderMalformed", region="eu-west-1")
    assert error.extra["Region"] == "eu-west-1"
    assert authenticate(wire.view, lookup, now(), region=ANY_REGION).region == "us-east-1"


def test_unknown_key_reported_as_such() -> None:
    wire = _put_wire()
    auth = wire.view.headers["authorization"].replace(ACCESS, "AKIDNOBODY")
    _refused(wire.with_headers(authorization=auth).view, "InvalidAccessKeyId")


def test_clock_skew() -> None:
    wire = _put_wire()
    assert authenticate(wire.view, lookup, now() + timedelta(minutes=14)).credentials
    assert authenticate(wire.view, lookup, now() - timedelta(minutes=14)).credentials
    error = _refused(wire.view, "RequestTimeTooSkewed", at=now() + timedelta(minutes=16))
    assert error.http_status == 403
    _refused(wire.view, "RequestTimeTooSkewed", at=now() - timedelta(minutes=16))
    _refused(
        wire.view,
        "RequestTimeTooSkewed",
        at=now() + timedelta(minutes=2),
        max_skew=timedelta(minutes=1),
    )


def test_missing_or_bad_date_and_content_sha() -> None:
    wire = _put_wire()
    headers = dict(wire.view.headers)
    del headers["x-amz-date"]
    _refused(replace(wire.view, headers=headers), "AccessDenied")
    headers = dict(wire.view.headers)
    del headers["x-amz-content-sha256"]
    _refused(replace(wire.view, headers=headers), "InvalidRequest")
    _refused(wire.with_headers(**{"x-amz-content-sha256": "nonsense"}).view, "InvalidArgument")


@pytest.mark.parametrize(
    "auth",
    [
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, Signature=ab",
        "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/s3/aws4_request, SignedHeaders=host, "
        "Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, "
        "SignedHeaders=host, Signature=" + "a" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, "
        "SignedHeaders=x-amz-date;host, Signature=" + "a" * 64,
    ],
)
def test_malformed_authorization(auth: str) -> None:
    wire = _put_wire().with_headers(authorization=auth)
    error = _refused(wire.view, "AuthorizationHeaderMalformed")
    assert error.http_status == 400


def test_unsupported_or_mixed_auth() -> None:
    wire = _put_wire()
    _refused(wire.with_headers(authorization="Bearer xyz").view, "InvalidArgument")
    _refused(wire.with_headers(authorization="").view, "AccessDenied")
    mixed = replace(wire.view, query=[("X-Amz-Signature", "a" * 64)])
    _refused(mixed, "InvalidArgument")


def test_anonymous_request() -> None:
    view = RequestView("GET", "/bkt/key", [], {"host": "s3.cumulo.test"}, "s3.cumulo.test")
    result = authenticate(view, lookup, now())
    assert result.credentials is None and result.signature_version == "anonymous"
    assert drain(lambda: result.payload.stream(pieces(b""))) == b""


# -- presigned URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_presigned_get_accepted_until_expiry(style: str) -> None:
    wire = presigned(
        client(style=style), "get_object", 600, Bucket="bkt", Key=KEY, ResponseContentType="a/b"
    )
    result = authenticate(wire.view, lookup, now())
    assert result.credentials == CREDS and result.signature_version == "v4"
    assert authenticate(wire.view, lookup, now() + timedelta(seconds=590)).credentials
    error = _refused(wire.view, "AccessDenied", at=now() + timedelta(seconds=620))
    assert error.message == "Request has expired"
    _refused(wire.view, "AccessDenied", at=now() - timedelta(minutes=20))


def test_presigned_put_accepted() -> None:
    wire = presigned(client(), "put_object", 600, Bucket="bkt", Key=KEY)
    view = replace(wire.view, headers={**wire.view.headers, "content-length": "3"})
    result = authenticate(view, lookup, now())
    assert drain(lambda: result.payload.stream(pieces(b"abc"))) == b"abc"


def test_presigned_tamper_refused() -> None:
    wire = presigned(client(), "get_object", 600, Bucket="bkt", Key=KEY)
    for index in range(len(wire.view.raw_path)):
        _refused(
            replace(wire.view, raw_path=_flip(wire.view.raw_path, index)), "SignatureDoesNotMatch"
        )
    query = wire.view.query
    for position, (name, value) in enumerate(query):
        if name in {"X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential"}:
            continue
        for index in range(len(value)):
            changed = [*query[:position], (name, _flip(value, index)), *query[position + 1 :]]
            with pytest.raises(AuthError):
                authenticate(replace(wire.view, query=changed), lookup, now())
    signature = dict(query)["X-Amz-Signature"]
    changed = [(k, v if k != "X-Amz-Signature" else _flip(signature, 5)) for k, v in query]
    _refused(replace(wire.view, query=changed), "SignatureDoesNotMatch")
    _refused(replace(wire.view, query=[*query, ("versionId", "1")]), "SignatureDoesNotMatch")
    _refused(wire.with_headers(**{"x-amz-meta-a": "b"}).view, "AccessDenied")


def test_presign_expires_limits() -> None:
    week = presigned(client(), "get_object", 604800, Bucket="bkt", Key="k")
    assert authenticate(week.view, lookup, now() + timedelta(days=6, hours=23)).credentials
    for expires in (604801, -7, 0):  # ceph/s3-tests: all 403
        out_of_range = presigned(client(), "get_object", expires, Bucket="bkt", Key="k")
        error = _refused(out_of_range.view, "AccessDenied", at=now() + timedelta(seconds=1))
        assert error.http_status == 403
    query = [(k, v) for k, v in week.view.query if k != "X-Amz-Date"]
    _refused(replace(week.view, query=query), "AuthorizationQueryParametersError")
    query = [(k, "5s" if k == "X-Amz-Expires" else v) for k, v in week.view.query]
    _refused(replace(week.view, query=query), "AuthorizationQueryParametersError")


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_non_ascii_header_values_latin1_or_utf8_on_the_wire(signature_version: str) -> None:
    """botocore sends 'é' as the Latin-1 byte; SDKs in other languages send UTF-8 bytes.
    The server reads header bytes as Latin-1, so both readings must verify."""
    s3 = client(signature_version=signature_version)
    s3.meta.events.register(  # as ceph/s3-tests test_object_set_get_unicode_metadata does
        "before-call.s3.PutObject",
        lambda **kw: kw["params"]["headers"].update({"x-amz-meta-m": "Hello Wörld é"}),
    )
    wire = capture(s3, "put_object", Bucket="bkt", Key="k", Body=b"x")
    value = wire.view.headers["x-amz-meta-m"]
    assert authenticate(wire.view, lookup, now()).credentials == CREDS
    as_utf8_bytes = value.encode("utf-8").decode("latin-1")
    assert authenticate(wire.with_headers(**{"x-amz-meta-m": as_utf8_bytes}).view, lookup, now())
    with pytest.raises(AuthError) as info:
        authenticate(wire.with_headers(**{"x-amz-meta-m": "Hello Wörld è"}).view, lookup, now())
    assert info.value.code == "SignatureDoesNotMatch"


def test_random_damage_to_credentials_only_ever_raises_auth_errors() -> None:
    """Mutated Authorization headers, dates and presign parameters never crash the parser."""
    import random

    rng = random.Random(4)
    header_wire = _put_wire()
    url_wire = presigned(client(), "get_object", 600, Bucket="bkt", Key=KEY)
    v2_wire = capture(client(signature_version="s3"), "get_object", Bucket="bkt", Key=KEY)
    alphabet = "AWS4-HMAC-SHA256 Credential=/,;=: \t0123456789abcdefXYZ%\x00\u00e9"

    def mutate(text: str) -> str:
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(chars) + 1)
            action = rng.choice(("insert", "delete", "overwrite"))
            if action == "insert" or not chars:
                chars.insert(position, rng.choice(alphabet))
            elif action == "delete":
                del chars[min(position, len(chars) - 1)]
            else:
                chars[min(position, len(chars) - 1)] = rng.choice(alphabet)
        return "".join(chars)

    refused: set[str] = set()
    for _ in range(300):
        views = [
            header_wire.with_headers(
                authorization=mutate(header_wire.view.headers["authorization"])
            ).view,
            header_wire.with_headers(
                **{"x-amz-date": mutate(header_wire.view.headers["x-amz-date"])}
            ).view,
            v2_wire.with_headers(authorization=mutate(v2_wire.view.headers["authorization"])).view,
            v2_wire.with_headers(date=mutate(v2_wire.view.headers["date"])).view,
        ]
        position = rng.randrange(len(url_wire.view.query))
        name, value = url_wire.view.query[position]
        query = list(url_wire.view.query)
        query[position] = (name, mutate(value))
        views.append(replace(url_wire.view, query=query))
        for view in views:
            try:
                authenticate(view, lookup, now())
            except AuthError as err:
                refused.add(err.code)
    assert {"SignatureDoesNotMatch", "AuthorizationHeaderMalformed", "AccessDenied"} <= refused
