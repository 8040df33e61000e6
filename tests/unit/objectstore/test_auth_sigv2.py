"""SigV2 (header and query) as botocore's HmacV1Auth / HmacV1QueryAuth sign it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from cumulo.objectstore.auth import AuthError, RequestView, authenticate
from tests.unit.objectstore.s3sign import (
    CREDS,
    capture,
    client,
    drain,
    lookup,
    now,
    pieces,
    presigned,
)

KEY = "photos/2026 ü+x.jpg"


def _v2(style: str = "path"):  # type: ignore[no-untyped-def]
    return client(signature_version="s3", style=style)


def _bucket(style: str) -> str | None:
    return "bkt" if style == "virtual" else None


def _refused(view: RequestView, code: str, *, bucket: str | None = None, **kw: object) -> AuthError:
    with pytest.raises(AuthError) as info:
        authenticate(view, lookup, kw.pop("at", now()), virtual_host_bucket=bucket)  # type: ignore[arg-type]
    assert info.value.code == code, info.value
    return info.value


@pytest.mark.parametrize("style", ["path", "virtual"])
@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("put_object", {"Bucket": "bkt", "Key": KEY, "Body": b"data", "Metadata": {"a": "b"}}),
        ("get_object_acl", {"Bucket": "bkt", "Key": KEY, "VersionId": "v+1"}),
        ("list_objects", {"Bucket": "bkt", "Prefix": "photos/", "Delimiter": "/"}),
        ("get_bucket_versioning", {"Bucket": "bkt"}),
        ("delete_objects", {"Bucket": "bkt", "Delete": {"Objects": [{"Key": "a"}]}}),
    ],
)
def test_header_auth_accepted(style: str, operation: str, params: dict[str, object]) -> None:
    wire = capture(_v2(style), operation, **params)
    assert wire.view.headers["authorization"].startswith("AWS ")
    result = authenticate(wire.view, lookup, now(), virtual_host_bucket=_bucket(style))
    assert result.credentials == CREDS and result.signature_version == "v2"
    assert result.region is None
    drain(lambda: result.payload.stream(pieces(wire.body)))


def test_virtual_host_needs_the_bucket() -> None:
    wire = capture(_v2("virtual"), "get_object", Bucket="bkt", Key=KEY)
    _refused(wire.view, "SignatureDoesNotMatch")
    _refused(wire.view, "SignatureDoesNotMatch", bucket="other")


def test_header_tamper_refused() -> None:
    wire = capture(_v2(), "put_object", Bucket="bkt", Key=KEY, Body=b"x", ContentType="text/plain")
    for index in range(len(wire.view.raw_path)):
        path = wire.view.raw_path
        tampered = path[:index] + chr(ord(path[index]) ^ 1) + path[index + 1 :]
        _refused(replace(wire.view, raw_path=tampered), "SignatureDoesNotMatch")
    _refused(wire.with_headers(**{"content-type": "text/plaio"}).view, "SignatureDoesNotMatch")
    _refused(wire.with_headers(**{"x-amz-meta-new": "1"}).view, "SignatureDoesNotMatch")
    _refused(replace(wire.view, method="POST"), "SignatureDoesNotMatch")
    _refused(replace(wire.view, query=[("acl", "")]), "SignatureDoesNotMatch")
    auth = wire.view.headers["authorization"]
    _refused(wire.with_headers(authorization=auth[:-3] + "AAA").view, "SignatureDoesNotMatch")
    # a query parameter that is not a sub-resource is not signed in V2 (as in S3)
    extra = replace(wire.view, query=[("x-id", "PutObject")])
    assert authenticate(extra, lookup, now()).credentials == CREDS


def test_header_skew_unknown_key_and_malformed() -> None:
    wire = capture(_v2(), "get_object", Bucket="bkt", Key=KEY)
    _refused(wire.view, "RequestTimeTooSkewed", at=now() + timedelta(minutes=16))
    with pytest.raises(AuthError) as info:
        authenticate(wire.view, lambda k: None, now())
    assert info.value.code == "InvalidAccessKeyId"
    _refused(wire.with_headers(authorization="AWS nocolon").view, "InvalidArgument")
    headers = {k: v for k, v in wire.view.headers.items() if k != "date"}
    _refused(replace(wire.view, headers=headers), "AccessDenied")


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_query_auth_accepted_until_expiry(style: str) -> None:
    wire = presigned(_v2(style), "get_object", 300, Bucket="bkt", Key=KEY)
    bucket = _bucket(style)
    result = authenticate(wire.view, lookup, now(), virtual_host_bucket=bucket)
    assert result.credentials == CREDS and result.signature_version == "v2"
    error = _refused(wire.view, "AccessDenied", bucket=bucket, at=now() + timedelta(seconds=400))
    assert error.message == "Request has expired"


def test_query_auth_tamper_refused() -> None:
    wire = presigned(_v2(), "get_object", 300, Bucket="bkt", Key=KEY, ResponseContentType="a/b")
    query = wire.view.query
    for position, (name, value) in enumerate(query):
        if name == "AWSAccessKeyId":
            continue
        for index in range(len(value)):
            flipped = value[:index] + chr(ord(value[index]) ^ 1) + value[index + 1 :]
            changed = [*query[:position], (name, flipped), *query[position + 1 :]]
            with pytest.raises(AuthError):
                authenticate(replace(wire.view, query=changed), lookup, now())
    for absent in ("Expires", "Signature", "AWSAccessKeyId"):
        missing = [(k, v) for k, v in query if k != absent]
        _refused(replace(wire.view, query=missing), "AccessDenied")


def _with_header(name: str, value: str) -> RequestView:
    """Add a header before signing, as ceph/s3-tests does (before-call)."""
    s3 = _v2()
    s3.meta.events.register(
        "before-call.s3.PutObject", lambda **kw: kw["params"]["headers"].update({name: value})
    )
    return capture(s3, "put_object", Bucket="bkt", Key="foo", Body=b"bar").view


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("Bad Date", "AccessDenied"),
        ("", "AccessDenied"),
        ("Tue, 07 Jul 1950 21:53:04 GMT", "AccessDenied"),
        ("Tue, 07 Jul 2010 21:53:04 GMT", "RequestTimeTooSkewed"),
        ("Tue, 07 Jul 9999 21:53:04 GMT", "RequestTimeTooSkewed"),
    ],
)
def test_signed_bad_amz_date(value: str, code: str) -> None:
    """x-amz-date takes precedence over Date and must itself be a valid, current time."""
    error = _refused(_with_header("x-amz-date", value), code)
    assert error.http_status == 403


def test_signed_good_amz_date_accepted() -> None:
    from email.utils import formatdate

    view = _with_header("x-amz-date", formatdate(usegmt=True))
    assert authenticate(view, lookup, now()).credentials == CREDS
