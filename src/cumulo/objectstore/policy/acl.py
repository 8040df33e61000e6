"""Access control lists: canned ACLs, ``x-amz-grant-*`` headers, the XML form, the check.

S3 semantics kept here (S3 user guide, "Access control list (ACL) overview"):

- five permissions; ``FULL_CONTROL`` implies the other four;
- the owner of a resource may always read and write its ACL, whatever the grants say;
- the ``AllUsers`` group includes anonymous requests, ``AuthenticatedUsers`` any signed one;
- a request sets an ACL with a canned ``x-amz-acl`` *or* explicit grant headers, not both;
- a PutAcl body may not change the owner; at most 100 grants.

``to_stored``/``from_stored`` convert to the plain JSON-able form the metadata store keeps
(``{"owner": [id, name], "grants": [[kind, who, permission], ...]}``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from xml.sax.saxutils import escape

from cumulo.objectstore.policy.errors import PolicyError, malformed_acl

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")
CANNED = (
    "private",
    "public-read",
    "public-read-write",
    "aws-exec-read",
    "authenticated-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
)
GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
MAX_GRANTS = 100
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE = f"{{{XSI_NS}}}type"

Kind = Literal["user", "group"]
# Resolves an e-mail address (emailAddress= grants) to a canonical user id, or None.
EmailResolver = Callable[[str], str | None]


@dataclass(frozen=True)
class Owner:
    id: str
    display_name: str = ""


@dataclass(frozen=True)
class Grant:
    """``kind`` "user" (``who`` is a canonical user id) or "group" (``who`` is its URI)."""

    kind: Kind
    who: str
    permission: str


@dataclass(frozen=True)
class Acl:
    owner: Owner
    grants: tuple[Grant, ...]


# -- building ACLs ---------------------------------------------------------------------------


def canned_acl(name: str, owner: Owner, bucket_owner: Owner | None = None) -> Acl:
    """Expand a canned ACL; ``bucket_owner`` matters for the ``bucket-owner-*`` ones (objects)."""
    if name not in CANNED:
        raise PolicyError(
            "InvalidArgument", f"Invalid canned ACL {name!r}", ArgumentName="x-amz-acl"
        )
    grants = [Grant("user", owner.id, "FULL_CONTROL")]
    extra: dict[str, list[Grant]] = {
        "public-read": [Grant("group", ALL_USERS, "READ")],
        "public-read-write": [
            Grant("group", ALL_USERS, "READ"),
            Grant("group", ALL_USERS, "WRITE"),
        ],
        "authenticated-read": [Grant("group", AUTHENTICATED_USERS, "READ")],
        "log-delivery-write": [
            Grant("group", LOG_DELIVERY, "WRITE"),
            Grant("group", LOG_DELIVERY, "READ_ACP"),
        ],
    }
    grants += extra.get(name, [])
    if bucket_owner is not None and bucket_owner.id != owner.id:
        if name == "bucket-owner-read":
            grants.append(Grant("user", bucket_owner.id, "READ"))
        elif name == "bucket-owner-full-control":
            grants.append(Grant("user", bucket_owner.id, "FULL_CONTROL"))
    return Acl(owner, tuple(grants))


def acl_from_headers(
    headers: Mapping[str, str],
    owner: Owner,
    bucket_owner: Owner | None = None,
    resolve_email: EmailResolver | None = None,
) -> Acl | None:
    """The ACL a request sets through headers, or None when it sets none (keep / private)."""
    explicit = [h for h in GRANT_HEADERS if h in headers]
    if "x-amz-acl" in headers and explicit:
        raise PolicyError(
            "InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed"
        )
    if "x-amz-acl" in headers:
        return canned_acl(headers["x-amz-acl"].strip(), owner, bucket_owner)
    if not explicit:
        return None
    grants: list[Grant] = []
    for header in explicit:
        for kind, value in parse_grantees(headers[header], header):
            grants.append(_grant(kind, value, GRANT_HEADERS[header], resolve_email))
    _check_count(grants)
    return Acl(owner, tuple(grants))


_GRANTEE = re.compile(
    r'\s*(id|uri|emailaddress)\s*=\s*(?:"([^"]*)"|([^",\s]*))\s*(?:,|$)', re.IGNORECASE
)


def parse_grantees(value: str, header: str = "x-amz-grant") -> list[tuple[str, str]]:
    """``id="a", uri="http://...", emailAddress="x@y"`` → [(type, value)], quotes honoured."""
    items: list[tuple[str, str]] = []
    pos, text = 0, value.strip()
    while pos < len(text):
        match = _GRANTEE.match(text, pos)
        if match is None or match.end() == pos:
            raise _bad_grant(header, value)
        item = match.group(2) if match.group(2) is not None else match.group(3)
        if not item:
            raise _bad_grant(header, value)
        items.append((match.group(1).lower(), item))
        pos = match.end()
    if not items:
        raise _bad_grant(header, value)
    return items


def _bad_grant(header: str, value: str) -> PolicyError:
    return PolicyError(
        "InvalidArgument", "Invalid grant header", ArgumentName=header, ArgumentValue=value
    )


def _grant(kind: str, value: str, permission: str, resolve_email: EmailResolver | None) -> Grant:
    if kind == "id":
        return Grant("user", value, permission)
    if kind == "uri":
        if value not in GROUPS:
            raise PolicyError("InvalidArgument", "Invalid group uri", ArgumentValue=value)
        return Grant("group", value, permission)
    user = resolve_email(value) if resolve_email else None
    if user is None:
        raise PolicyError(
            "UnresolvableGrantByEmailAddress",
            "The e-mail address you provided does not match any account on record.",
        )
    return Grant("user", user, permission)


def _check_count(grants: list[Grant]) -> None:
    if len(grants) > MAX_GRANTS:
        raise malformed_acl(f"An ACL may have at most {MAX_GRANTS} grants.")


# -- XML -------------------------------------------------------------------------------------


def parse_acl_xml(
    body: bytes,
    owner: Owner,
    resolve_email: EmailResolver | None = None,
    known_user: Callable[[str], bool] | None = None,
) -> Acl:
    """An ``AccessControlPolicy`` document. The owner it names must be the current owner;
    ``known_user`` (if given) refuses grants to canonical ids that do not exist."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as err:
        raise malformed_acl() from err
    if _local(root.tag) != "AccessControlPolicy":
        raise malformed_acl()
    owner_id = _text(_child(root, "Owner"), "ID")
    if owner_id is None:
        raise malformed_acl()
    if owner_id != owner.id:
        raise PolicyError("AccessDenied", "Access Denied")
    acl_list = _child(root, "AccessControlList")
    grants: list[Grant] = []
    for node in list(acl_list) if acl_list is not None else []:
        if _local(node.tag) != "Grant":
            raise malformed_acl()
        grants.append(_xml_grant(node, resolve_email, known_user))
    _check_count(grants)
    return Acl(owner, tuple(grants))


def _xml_grant(
    node: ET.Element,
    resolve_email: EmailResolver | None,
    known_user: Callable[[str], bool] | None,
) -> Grant:
    grantee = _child(node, "Grantee")
    permission = _text(node, "Permission")
    if grantee is None or permission not in PERMISSIONS:
        raise malformed_acl()
    xsi_type = grantee.get(_XSI_TYPE) or grantee.get("type")
    if xsi_type == "CanonicalUser":
        user = _text(grantee, "ID")
        if not user:
            raise malformed_acl()
        if known_user is not None and not known_user(user):
            raise PolicyError("InvalidArgument", "Invalid id", ArgumentName="CanonicalUser/ID")
        return Grant("user", user, permission)
    if xsi_type == "Group":
        return _grant("uri", _text(grantee, "URI") or "", permission, resolve_email)
    if xsi_type == "AmazonCustomerByEmail":
        return _grant(
            "emailaddress", _text(grantee, "EmailAddress") or "", permission, resolve_email
        )
    raise malformed_acl()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element | None, name: str) -> ET.Element | None:
    if node is None:
        return None
    for child in node:
        if _local(child.tag) == name:
            return child
    return None


def _text(node: ET.Element | None, name: str) -> str | None:
    child = _child(node, name)
    return None if child is None else (child.text or "").strip()


def render_acl_xml(acl: Acl, names: Mapping[str, str] | None = None) -> bytes:
    """The GetBucketAcl / GetObjectAcl body; ``names`` maps user ids to display names."""
    names = dict(names or {})
    names.setdefault(acl.owner.id, acl.owner.display_name)
    grants = "".join(_render_grant(g, names) for g in acl.grants)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<AccessControlPolicy xmlns="{S3_NS}"><Owner><ID>{escape(acl.owner.id)}</ID>'
        f"<DisplayName>{escape(acl.owner.display_name)}</DisplayName></Owner>"
        f"<AccessControlList>{grants}</AccessControlList></AccessControlPolicy>"
    ).encode()


def _render_grant(grant: Grant, names: Mapping[str, str]) -> str:
    if grant.kind == "user":
        name = escape(names.get(grant.who, ""))
        inner = f"<ID>{escape(grant.who)}</ID><DisplayName>{name}</DisplayName>"
        kind = "CanonicalUser"
    else:
        inner, kind = f"<URI>{escape(grant.who)}</URI>", "Group"
    return (
        f'<Grant><Grantee xmlns:xsi="{XSI_NS}" xsi:type="{kind}">{inner}</Grantee>'
        f"<Permission>{grant.permission}</Permission></Grant>"
    )


# -- the check -------------------------------------------------------------------------------


def allowed(acl: Acl, requester: str | None, permission: str) -> bool:
    """Whether ``requester`` (a canonical user id, None for anonymous) has ``permission``."""
    if permission not in PERMISSIONS:
        raise ValueError(permission)
    if (
        requester is not None
        and requester == acl.owner.id
        and permission in ("READ_ACP", "WRITE_ACP")
    ):
        return True
    return any(
        g.permission in (permission, "FULL_CONTROL") and _covers(g, requester) for g in acl.grants
    )


def is_public(acl: Acl) -> bool:
    """An ACL granting anything to AllUsers or AuthenticatedUsers is public (Block Public
    Access, GetBucketPolicyStatus)."""
    return any(g.kind == "group" and g.who in (ALL_USERS, AUTHENTICATED_USERS) for g in acl.grants)


def _covers(grant: Grant, requester: str | None) -> bool:
    if grant.kind == "group":
        return grant.who == ALL_USERS or (
            grant.who == AUTHENTICATED_USERS and requester is not None
        )
    return requester is not None and grant.who == requester


# The ACL permission each S3 action needs, and on what (S3 user guide, "Mapping of ACL
# permissions and access policy permissions").
ACTION_PERMISSION: dict[str, tuple[Literal["bucket", "object"], str]] = {
    "s3:ListBucket": ("bucket", "READ"),
    "s3:ListBucketVersions": ("bucket", "READ"),
    "s3:ListBucketMultipartUploads": ("bucket", "READ"),
    "s3:PutObject": ("bucket", "WRITE"),
    "s3:DeleteObject": ("bucket", "WRITE"),
    "s3:DeleteObjectVersion": ("bucket", "WRITE"),
    "s3:AbortMultipartUpload": ("bucket", "WRITE"),
    "s3:GetBucketAcl": ("bucket", "READ_ACP"),
    "s3:PutBucketAcl": ("bucket", "WRITE_ACP"),
    "s3:GetObject": ("object", "READ"),
    "s3:GetObjectVersion": ("object", "READ"),
    "s3:ListMultipartUploadParts": ("object", "READ"),
    "s3:GetObjectAcl": ("object", "READ_ACP"),
    "s3:GetObjectVersionAcl": ("object", "READ_ACP"),
    "s3:PutObjectAcl": ("object", "WRITE_ACP"),
    "s3:PutObjectVersionAcl": ("object", "WRITE_ACP"),
}


# -- storage form ----------------------------------------------------------------------------


def to_stored(acl: Acl) -> dict[str, Any]:
    return {
        "owner": [acl.owner.id, acl.owner.display_name],
        "grants": [[g.kind, g.who, g.permission] for g in acl.grants],
    }


def from_stored(data: Mapping[str, Any]) -> Acl:
    owner_id, owner_name = data["owner"]
    grants = tuple(Grant(kind, who, perm) for kind, who, perm in data.get("grants", []))
    return Acl(Owner(owner_id, owner_name), grants)
