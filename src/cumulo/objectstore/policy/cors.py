"""Bucket CORS: the ``CORSConfiguration`` document and the matching S3 does with it.

S3 picks the first rule whose AllowedOrigin matches the request's Origin (one ``*``
wildcard allowed per origin), whose AllowedMethod lists the method (exactly, upper-case)
and, for a preflight, whose AllowedHeader patterns cover every header named in
``Access-Control-Request-Headers`` (case-insensitive). A preflight that matches nothing is a
403; an ordinary request that matches nothing simply gets no CORS headers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from cumulo.objectstore.policy.conditions import wildcard
from cumulo.objectstore.policy.errors import PolicyError, malformed_xml

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
_RULE_FIELDS = frozenset(
    {"ID", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "ExposeHeader", "MaxAgeSeconds"}
)

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class CorsRule:
    allowed_origins: tuple[str, ...]
    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    id: str | None = None

    def origin_matches(self, origin: str) -> str | None:
        """The AllowedOrigin that matches ``origin``, if any."""
        for pattern in self.allowed_origins:
            if pattern == "*" or wildcard(pattern).fullmatch(origin):
                return pattern
        return None

    def headers_allowed(self, names: Sequence[str]) -> bool:
        patterns = [wildcard(h, ignore_case=True) for h in self.allowed_headers]
        return all(any(p.fullmatch(name) for p in patterns) for name in names)


# -- the document ----------------------------------------------------------------------------


def parse_cors_xml(body: bytes) -> tuple[CorsRule, ...]:
    """Parse and validate a PutBucketCors body (MalformedXML / InvalidRequest as S3)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise malformed_xml() from err
    if _local(root.tag) != "CORSConfiguration":
        raise malformed_xml()
    rules = []
    for node in root:
        if _local(node.tag) != "CORSRule":
            raise malformed_xml()
        rules.append(_rule(node))
    if not rules or len(rules) > MAX_RULES:
        raise malformed_xml()
    return tuple(rules)


def _rule(node: ET.Element) -> CorsRule:
    fields: dict[str, list[str]] = {}
    for child in node:
        name = _local(child.tag)
        if name not in _RULE_FIELDS:
            raise malformed_xml()
        fields.setdefault(name, []).append((child.text or "").strip())
    origins = tuple(fields.get("AllowedOrigin", []))
    methods = tuple(fields.get("AllowedMethod", []))
    if not origins or not methods:
        raise malformed_xml()
    for method in methods:
        if method not in METHODS:
            raise PolicyError(
                "InvalidRequest",
                f"Found unsupported HTTP method in CORS config. Unsupported method is {method}",
            )
    _at_most_one_wildcard("AllowedOrigin", origins)
    headers = tuple(fields.get("AllowedHeader", []))
    _at_most_one_wildcard("AllowedHeader", headers)
    return CorsRule(
        origins,
        methods,
        headers,
        tuple(fields.get("ExposeHeader", [])),
        _max_age(fields.get("MaxAgeSeconds", [])),
        _single(fields.get("ID", [])),
    )


def _at_most_one_wildcard(kind: str, values: tuple[str, ...]) -> None:
    for value in values:
        if value.count("*") > 1:
            raise PolicyError(
                "InvalidRequest", f'{kind} "{value}" can not have more than one wildcard.'
            )


def _max_age(values: list[str]) -> int | None:
    if not values:
        return None
    if len(values) > 1 or not values[0].isdigit():
        raise malformed_xml()
    return int(values[0])


def _single(values: list[str]) -> str | None:
    if len(values) > 1 or (values and len(values[0]) > 255):
        raise malformed_xml()
    return values[0] if values else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def render_cors_xml(rules: Sequence[CorsRule]) -> bytes:
    """The GetBucketCors body, elements in the order S3 returns them."""
    parts = []
    for rule in rules:
        items = [("ID", rule.id)] if rule.id is not None else []
        items += [("AllowedHeader", h) for h in rule.allowed_headers]
        items += [("AllowedMethod", m) for m in rule.allowed_methods]
        items += [("AllowedOrigin", o) for o in rule.allowed_origins]
        items += [("ExposeHeader", h) for h in rule.expose_headers]
        if rule.max_age_seconds is not None:
            items.append(("MaxAgeSeconds", str(rule.max_age_seconds)))
        parts.append(
            "<CORSRule>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in items) + "</CORSRule>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration xmlns="{S3_NS}">'
        + "".join(parts)
        + "</CORSConfiguration>"
    ).encode()


# -- matching --------------------------------------------------------------------------------


def find_rule(
    rules: Sequence[CorsRule], origin: str, method: str, request_headers: Sequence[str] = ()
) -> tuple[CorsRule, str] | None:
    """The first rule allowing this origin, method and headers, with the origin pattern."""
    names = [h.strip().lower() for h in request_headers if h.strip()]
    for rule in rules:
        pattern = rule.origin_matches(origin)
        if pattern is not None and method in rule.allowed_methods and rule.headers_allowed(names):
            return rule, pattern
    return None


def preflight(rules: Sequence[CorsRule] | None, headers: Mapping[str, str]) -> Headers:
    """Answer an OPTIONS preflight (``headers`` lower-case); raise the S3 error otherwise."""
    origin = headers.get("origin")
    if not origin:
        raise PolicyError("BadRequest", "Insufficient information. Origin request header needed.")
    method = headers.get("access-control-request-method", "")
    if method not in METHODS:
        raise PolicyError("BadRequest", f"Invalid Access-Control-Request-Method: {method}")
    if not rules:
        raise PolicyError(
            "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", http_status=403
        )
    requested = [h.strip() for h in headers.get("access-control-request-headers", "").split(",")]
    requested = [h for h in requested if h]
    found = find_rule(rules, origin, method, requested)
    if found is None:
        raise PolicyError(
            "AccessForbidden",
            "CORSResponse: This CORS request is not allowed. This is usually because the "
            "evalution of Origin, request method / Access-Control-Request-Method or "
            "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
            http_status=403,
        )
    rule, pattern = found
    out = _common(rule, pattern, origin)
    if requested:
        out.append(("Access-Control-Allow-Headers", ", ".join(h.lower() for h in requested)))
    return out


def response_headers(rules: Sequence[CorsRule] | None, origin: str | None, method: str) -> Headers:
    """CORS headers for an ordinary request (none without Origin or a matching rule)."""
    if not origin or not rules:
        return []
    found = find_rule(rules, origin, method)
    if found is None:
        return []
    return _common(found[0], found[1], origin)


def _common(rule: CorsRule, pattern: str, origin: str) -> Headers:
    out: Headers = [
        ("Access-Control-Allow-Origin", "*" if pattern == "*" else origin),
        ("Access-Control-Allow-Methods", ", ".join(rule.allowed_methods)),
    ]
    if pattern != "*":
        out.append(("Access-Control-Allow-Credentials", "true"))
    if rule.expose_headers:
        out.append(("Access-Control-Expose-Headers", ", ".join(rule.expose_headers)))
    if rule.max_age_seconds is not None:
        out.append(("Access-Control-Max-Age", str(rule.max_age_seconds)))
    out.append(("Vary", VARY))
    return out
