"""ACLs: canned expansion, grant headers and XML as boto3 sends them, the permission check."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.parsers import create_parser

from cumulo.objectstore.policy import (
    Acl,
    Grant,
    Owner,
    PolicyError,
    acl_from_headers,
    allowed,
    canned_acl,
    parse_acl_xml,
    render_acl_xml,
)
from cumulo.objectstore.policy.acl import (
    ALL_USERS,
    AUTHENTICATED_USERS,
    LOG_DELIVERY,
    PERMISSIONS,
    from_stored,
    to_stored,
)
from tests.unit.objectstore.s3sign import capture, client

OWNER = Owner("owner-id", "owner")
BUCKET_OWNER = Owner("bucket-owner-id", "bob")
OTHER = "someone-else"


def _grants(acl: Acl) -> set[tuple[str, str, str]]:
    return {(g.kind, g.who, g.permission) for g in acl.grants}


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("private", set()),
        ("public-read", {("group", ALL_USERS, "READ")}),
        ("public-read-write", {("group", ALL_USERS, "READ"), ("group", ALL_USERS, "WRITE")}),
        ("authenticated-read", {("group", AUTHENTICATED_USERS, "READ")}),
        ("bucket-owner-read", {("user", BUCKET_OWNER.id, "READ")}),
        ("bucket-owner-full-control", {("user", BUCKET_OWNER.id, "FULL_CONTROL")}),
        (
            "log-delivery-write",
            {("group", LOG_DELIVERY, "WRITE"), ("group", LOG_DELIVERY, "READ_ACP")},
        ),
    ],
)
def test_canned_acls(name: str, extra: set[tuple[str, str, str]]) -> None:
    acl = canned_acl(name, OWNER, BUCKET_OWNER)
    assert acl.owner == OWNER
    assert _grants(acl) == {("user", OWNER.id, "FULL_CONTROL")} | extra


def test_bucket_owner_acls_collapse_when_same_owner() -> None:
    acl = canned_acl("bucket-owner-full-control", OWNER, OWNER)
    assert _grants(acl) == {("user", OWNER.id, "FULL_CONTROL")}


def test_unknown_canned_acl() -> None:
    with pytest.raises(PolicyError) as info:
        canned_acl("public", OWNER)
    assert info.value.code == "InvalidArgument"


def test_permission_check_semantics() -> None:
    private = canned_acl("private", OWNER)
    for permission in PERMISSIONS:
        assert allowed(private, OWNER.id, permission)  # FULL_CONTROL implies everything
        assert not allowed(private, OTHER, permission)
        assert not allowed(private, None, permission)
    public = canned_acl("public-read", OWNER)
    assert allowed(public, None, "READ") and allowed(public, OTHER, "READ")
    assert not allowed(public, None, "WRITE") and not allowed(public, None, "READ_ACP")
    authenticated = canned_acl("authenticated-read", OWNER)
    assert allowed(authenticated, OTHER, "READ") and not allowed(authenticated, None, "READ")
    # the owner keeps READ_ACP and WRITE_ACP even with no grant at all
    empty = Acl(OWNER, ())
    assert allowed(empty, OWNER.id, "READ_ACP") and allowed(empty, OWNER.id, "WRITE_ACP")
    assert not allowed(empty, OWNER.id, "READ")
    granted = Acl(OWNER, (Grant("user", OTHER, "WRITE_ACP"),))
    assert allowed(granted, OTHER, "WRITE_ACP") and not allowed(granted, OTHER, "READ_ACP")
    with pytest.raises(ValueError):
        allowed(empty, OTHER, "DELETE")


def _headers_from_boto3(**params: Any) -> dict[str, str]:
    wire = capture(client(), "put_object", Bucket="b", Key="k", Body=b"", **params)
    return dict(wire.view.headers)


def test_grant_headers_as_boto3_sends_them() -> None:
    headers = _headers_from_boto3(
        GrantRead=f'id="{OTHER}", uri="{ALL_USERS}"',
        GrantFullControl=f"id={BUCKET_OWNER.id}",
        GrantWriteACP='emailAddress="carol@example.com"',
    )
    acl = acl_from_headers(headers, OWNER, resolve_email={"carol@example.com": "carol-id"}.get)
    assert acl is not None
    assert _grants(acl) == {
        ("user", OTHER, "READ"),
        ("group", ALL_USERS, "READ"),
        ("user", BUCKET_OWNER.id, "FULL_CONTROL"),
        ("user", "carol-id", "WRITE_ACP"),
    }


def test_grant_header_errors() -> None:
    both = _headers_from_boto3(ACL="public-read", GrantRead=f'id="{OTHER}"')
    with pytest.raises(PolicyError) as info:
        acl_from_headers(both, OWNER)
    assert info.value.code == "InvalidRequest"
    for bad in ('nobody="x"', 'id="unterminated', 'uri="http://example.com/group"', "id=a junk"):
        with pytest.raises(PolicyError) as info:
            acl_from_headers({"x-amz-grant-read": bad}, OWNER)
        assert info.value.code == "InvalidArgument", bad
    with pytest.raises(PolicyError) as info:
        acl_from_headers(
            {"x-amz-grant-read": 'emailAddress="x@y"'}, OWNER, resolve_email=lambda e: None
        )
    assert info.value.code == "UnresolvableGrantByEmailAddress"
    assert acl_from_headers({}, OWNER) is None
    canned = acl_from_headers(_headers_from_boto3(ACL="public-read"), OWNER)
    assert canned is not None and ("group", ALL_USERS, "READ") in _grants(canned)


def _policy_body(owner_id: str, grants: list[dict[str, Any]]) -> bytes:
    policy = {"Owner": {"ID": owner_id, "DisplayName": "x"}, "Grants": grants}
    wire = capture(client(), "put_bucket_acl", Bucket="b", AccessControlPolicy=policy)
    return wire.body


def test_access_control_policy_xml_from_boto3() -> None:
    body = _policy_body(
        OWNER.id,
        [
            {"Grantee": {"Type": "CanonicalUser", "ID": OWNER.id}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
            {"Grantee": {"Type": "CanonicalUser", "ID": OTHER}, "Permission": "WRITE_ACP"},
            {
                "Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "c@x"},
                "Permission": "READ_ACP",
            },
        ],
    )
    acl = parse_acl_xml(body, OWNER, resolve_email={"c@x": "carol-id"}.get)
    assert acl.grants == (
        Grant("user", OWNER.id, "FULL_CONTROL"),
        Grant("group", ALL_USERS, "READ"),
        Grant("user", OTHER, "WRITE_ACP"),
        Grant("user", "carol-id", "READ_ACP"),
    )


def test_access_control_policy_xml_errors() -> None:
    good = {"Grantee": {"Type": "CanonicalUser", "ID": OTHER}, "Permission": "READ"}
    with pytest.raises(PolicyError) as info:
        parse_acl_xml(_policy_body("not-the-owner", [good]), OWNER)
    assert info.value.code == "AccessDenied"
    with pytest.raises(PolicyError) as info:
        parse_acl_xml(_policy_body(OWNER.id, [good]), OWNER, known_user=lambda u: False)
    assert info.value.code == "InvalidArgument"
    bad_perm = _policy_body(OWNER.id, [{**good, "Permission": "READ"}]).replace(
        b">READ<", b">SUPER<"
    )
    group_no_uri = _policy_body(
        OWNER.id, [{"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]
    )
    group_no_uri = group_no_uri.replace(ALL_USERS.encode(), b"")
    for body in (b"<nope", b"<Other/>", bad_perm, group_no_uri.replace(b"<URI></URI>", b"")):
        with pytest.raises(PolicyError) as info:
            parse_acl_xml(body, OWNER)
        assert info.value.code in {"MalformedACLError", "InvalidArgument"}, body
    too_many = _policy_body(OWNER.id, [good] * 101)
    with pytest.raises(PolicyError) as info:
        parse_acl_xml(too_many, OWNER)
    assert info.value.code == "MalformedACLError"


def test_rendered_acl_parses_in_boto3() -> None:
    acl = Acl(
        OWNER,
        (
            Grant("user", OWNER.id, "FULL_CONTROL"),
            Grant("group", ALL_USERS, "READ"),
            Grant("user", OTHER, "WRITE"),
        ),
    )
    body = render_acl_xml(acl, {OTHER: "Other & Co"})
    model = client().meta.service_model.operation_model("GetBucketAcl")
    parsed = create_parser("rest-xml").parse(
        {"status_code": 200, "headers": {}, "body": body}, model.output_shape
    )
    assert parsed["Owner"] == {"ID": OWNER.id, "DisplayName": OWNER.display_name}
    assert parsed["Grants"] == [
        {
            "Grantee": {"ID": OWNER.id, "DisplayName": "owner", "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        },
        {"Grantee": {"URI": ALL_USERS, "Type": "Group"}, "Permission": "READ"},
        {
            "Grantee": {"ID": OTHER, "DisplayName": "Other & Co", "Type": "CanonicalUser"},
            "Permission": "WRITE",
        },
    ]
    assert parse_acl_xml(body, OWNER) == acl  # round trip


def test_stored_form_round_trip() -> None:
    acl = canned_acl("public-read-write", OWNER)
    stored = to_stored(acl)
    assert stored == {
        "owner": [OWNER.id, OWNER.display_name],
        "grants": [
            ["user", OWNER.id, "FULL_CONTROL"],
            ["group", ALL_USERS, "READ"],
            ["group", ALL_USERS, "WRITE"],
        ],
    }
    assert from_stored(stored) == acl


def test_public_acls() -> None:
    from cumulo.objectstore.policy.acl import is_public

    assert is_public(canned_acl("public-read", OWNER))
    assert is_public(canned_acl("public-read-write", OWNER))
    assert is_public(canned_acl("authenticated-read", OWNER))
    assert not is_public(canned_acl("private", OWNER))
    assert not is_public(canned_acl("bucket-owner-full-control", OWNER, BUCKET_OWNER))
    assert not is_public(canned_acl("log-delivery-write", OWNER))
