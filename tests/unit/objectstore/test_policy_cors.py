"""CORS: the configuration as boto3 sends it, validation, preflight and response matching."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.parsers import create_parser

from cumulo.objectstore.policy import (
    CorsRule,
    PolicyError,
    parse_cors_xml,
    preflight,
    render_cors_xml,
    response_headers,
)
from tests.unit.objectstore.s3sign import capture, client


def _body(*rules: dict[str, Any]) -> bytes:
    wire = capture(
        client(), "put_bucket_cors", Bucket="b", CORSConfiguration={"CORSRules": list(rules)}
    )
    return wire.body


RULES = (
    {
        "ID": "site",
        "AllowedOrigins": ["https://www.example.com", "https://*.example.org"],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["x-amz-*", "Content-Type"],
        "ExposeHeaders": ["ETag", "x-amz-request-id"],
        "MaxAgeSeconds": 3000,
    },
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]},
)


def _rules() -> tuple[CorsRule, ...]:
    return parse_cors_xml(_body(*RULES))


def test_parse_boto3_document() -> None:
    rules = _rules()
    assert rules[0] == CorsRule(
        allowed_origins=("https://www.example.com", "https://*.example.org"),
        allowed_methods=("GET", "PUT"),
        allowed_headers=("x-amz-*", "Content-Type"),
        expose_headers=("ETag", "x-amz-request-id"),
        max_age_seconds=3000,
        id="site",
    )
    assert rules[1] == CorsRule(("*",), ("GET",))


def test_rendered_document_parses_in_boto3_and_round_trips() -> None:
    rules = _rules()
    body = render_cors_xml(rules)
    model = client().meta.service_model.operation_model("GetBucketCors")
    parsed = create_parser("rest-xml").parse(
        {"status_code": 200, "headers": {}, "body": body}, model.output_shape
    )
    assert parsed["CORSRules"] == list(RULES)
    assert parse_cors_xml(body) == rules


def _preflight(
    origin: str | None, method: str | None, headers: str | None = None, rules: Any = "default"
) -> dict[str, str]:
    request = {}
    if origin is not None:
        request["origin"] = origin
    if method is not None:
        request["access-control-request-method"] = method
    if headers is not None:
        request["access-control-request-headers"] = headers
    return dict(preflight(_rules() if rules == "default" else rules, request))


def test_preflight_exact_origin_with_headers() -> None:
    answer = _preflight("https://www.example.com", "PUT", "X-Amz-Meta-Owner, content-type")
    assert answer["Access-Control-Allow-Origin"] == "https://www.example.com"
    assert answer["Access-Control-Allow-Methods"] == "GET, PUT"
    assert answer["Access-Control-Allow-Headers"] == "x-amz-meta-owner, content-type"
    assert answer["Access-Control-Expose-Headers"] == "ETag, x-amz-request-id"
    assert answer["Access-Control-Max-Age"] == "3000"
    assert answer["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in answer["Vary"]


def test_preflight_wildcards() -> None:
    sub = _preflight("https://cdn.example.org", "GET")
    assert sub["Access-Control-Allow-Origin"] == "https://cdn.example.org"
    star = _preflight("http://anything.test", "GET")
    assert star["Access-Control-Allow-Origin"] == "*"
    assert star["Access-Control-Allow-Methods"] == "GET"
    assert "Access-Control-Allow-Credentials" not in star


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("http://anything.test", "PUT", None),  # only rule 1 allows PUT, for other origins
        ("https://www.example.com", "DELETE", None),
        ("https://www.example.com", "PUT", "x-custom"),  # header not allowed
        ("http://anything.test", "GET", "x-amz-meta-a"),  # rule 2 allows no headers
        ("https://evil.example.org.attacker.test", "PUT", None),
    ],
)
def test_preflight_refused(origin: str, method: str, headers: str | None) -> None:
    with pytest.raises(PolicyError) as info:
        _preflight(origin, method, headers)
    assert info.value.code == "AccessForbidden" and info.value.http_status == 403


def test_preflight_bad_requests_and_no_configuration() -> None:
    for origin, method in (
        (None, "GET"),
        ("https://a", None),
        ("https://a", "get"),
        ("https://a", "TRACE"),
    ):
        with pytest.raises(PolicyError) as info:
            _preflight(origin, method)
        assert info.value.http_status == 400
    with pytest.raises(PolicyError) as info:
        _preflight("https://a", "GET", rules=None)
    assert info.value.code == "AccessForbidden"


def test_s3_tests_origin_cases() -> None:
    """The origin patterns of ceph/s3-tests test_cors_origin_response."""
    rules = parse_cors_xml(
        _body(
            {"AllowedMethods": ["GET"], "AllowedOrigins": ["*suffix"]},
            {"AllowedMethods": ["GET"], "AllowedOrigins": ["start*end"]},
            {"AllowedMethods": ["GET"], "AllowedOrigins": ["prefix*"]},
            {"AllowedMethods": ["PUT"], "AllowedOrigins": ["*.put"]},
        )
    )

    def origin_for(origin: str, method: str = "GET") -> str | None:
        return dict(response_headers(rules, origin, method)).get("Access-Control-Allow-Origin")

    assert origin_for("foo.suffix") == "foo.suffix"
    assert origin_for("foo.bar") is None
    assert origin_for("foo.suffix.get") is None
    assert origin_for("startend") == "startend"
    assert origin_for("start1end") == "start1end"
    assert origin_for("start12end") == "start12end"
    assert origin_for("0start12end") is None
    assert origin_for("prefix") == "prefix"
    assert origin_for("prefix.suffix") == "prefix.suffix"
    assert origin_for("bla.prefix") is None
    assert origin_for("foo.put") is None
    assert origin_for("foo.put", "PUT") == "foo.put"
    assert response_headers(rules, None, "GET") == []
    assert response_headers(None, "foo.suffix", "GET") == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"<CORSConfiguration/>", "MalformedXML"),
        (b"not xml", "MalformedXML"),
        (
            b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>x-*-*</AllowedHeader></CORSRule></CORSConfiguration>",
            "InvalidRequest",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><MaxAgeSeconds>-1</MaxAgeSeconds></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
        (
            b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><Bogus/></CORSRule></CORSConfiguration>",
            "MalformedXML",
        ),
    ],
)
def test_invalid_configurations(body: bytes, code: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_cors_xml(body)
    assert info.value.code == code and info.value.http_status == 400


def test_rule_limit() -> None:
    rule = {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}
    assert len(parse_cors_xml(_body(*[rule] * 100))) == 100
    with pytest.raises(PolicyError):
        parse_cors_xml(_body(*[rule] * 101))
