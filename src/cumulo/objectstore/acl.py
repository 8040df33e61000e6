"""Access control lists: canned ACLs, x-amz-grant-* headers, the XML form, and the check.

An ACL is stored as ``{"owner": [id, name], "grants": [[kind, who, permission], ...]}`` where
kind is "user" (who = canonical id) or "group" (who = the group URI).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.identity import Principal
from cumulo.objectstore.xml import XSI, Node

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
PERMISSIONS = ("FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
GRANT_HEADERS = {
    "x-amz-grant-full-control": "FULL_CONTROL",
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
}

Acl = dict[str, Any]


def canned(name: str, owner_id: str, owner_name: str, bucket_owner: str | None = None) -> Acl:
    grants: list[list[str]] = [["user", owner_id, "FULL_CONTROL"]]
    if name == "public-read":
        grants.append(["group", ALL_USERS, "READ"])
    elif name == "public-read-write":
        grants += [["group", ALL_USERS, "READ"], ["group", ALL_USERS, "WRITE"]]
    elif name == "authenticated-read":
        grants.append(["group", AUTH_USERS, "READ"])
    elif name == "bucket-owner-read" and bucket_owner and bucket_owner != owner_id:
        grants.append(["user", bucket_owner, "READ"])
    elif name == "bucket-owner-full-control" and bucket_owner and bucket_owner != owner_id:
        grants.append(["user", bucket_owner, "FULL_CONTROL"])
    elif name == "log-delivery-write":
        grants += [["group", LOG_DELIVERY, "WRITE"], ["group", LOG_DELIVERY, "READ_ACP"]]
    elif name not in ("private", "bucket-owner-read", "bucket-owner-full-control"):
        raise S3Error("InvalidArgument", ArgumentName="x-amz-acl", ArgumentValue=name)
    return {"owner": [owner_id, owner_name], "grants": grants}


def from_headers(
    headers: Mapping[str, str], owner_id: str, owner_name: str, bucket_owner: str | None = None
) -> Acl:
    """The ACL a request asks for: a canned x-amz-acl, explicit grants, or private."""
    explicit = [h for h in GRANT_HEADERS if h in headers]
    if "x-amz-acl" in headers and explicit:
        raise S3Error(
            "InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed"
        )
    if not explicit:
        return canned(headers.get("x-amz-acl", "private"), owner_id, owner_name, bucket_owner)
    grants = [
        [*_grantee(item.strip()), GRANT_HEADERS[h]]
        for h in explicit
        for item in headers[h].split(",")
        if item.strip()
    ]
    return {"owner": [owner_id, owner_name], "grants": grants}


def _grantee(item: str) -> list[str]:
    kind, _, value = item.partition("=")
    value = value.strip().strip('"')
    kind = kind.strip().lower()
    if kind == "id":
        return ["user", value]
    if kind == "uri":
        return ["group", value]
    if kind == "emailaddress":
        raise S3Error("NotImplemented", "Grants by email address are not supported")
    raise S3Error("InvalidArgument", ArgumentName="x-amz-grant", ArgumentValue=item)


def allowed(acl: Acl, who: Principal | None, permission: str) -> bool:
    owner = acl.get("owner", [None])[0]
    if who is not None and owner == who.owner_id and permission in ("READ_ACP", "WRITE_ACP"):
        return True
    for kind, grantee, perm in acl.get("grants", []):
        if perm not in (permission, "FULL_CONTROL"):
            continue
        if kind == "group" and grantee == ALL_USERS:
            return True
        if kind == "group" and grantee == AUTH_USERS and who is not None:
            return True
        if kind == "user" and who is not None and grantee == who.owner_id:
            return True
    return False


def render(acl: Acl, names: Mapping[str, str] | None = None) -> Node:
    owner_id, owner_name = acl["owner"]
    names = names or {}
    grants = [
        Node(
            "Grant",
            [
                _grantee_node(kind, who, names.get(who, owner_name if who == owner_id else who)),
                Node("Permission", perm),
            ],
        )
        for kind, who, perm in acl["grants"]
    ]
    return Node(
        "AccessControlPolicy",
        [
            Node("Owner", [Node("ID", owner_id), Node("DisplayName", owner_name)]),
            Node("AccessControlList", grants),
        ],
    )


def _grantee_node(kind: str, who: str, name: str) -> Node:
    xsi_type = "CanonicalUser" if kind == "user" else "Group"
    children = (
        [Node("ID", who), Node("DisplayName", name)] if kind == "user" else [Node("URI", who)]
    )
    return Node("Grantee", children, **{f"{{{XSI}}}type": xsi_type})


def parse(root: ET.Element, owner_id: str, owner_name: str) -> Acl:
    """An AccessControlPolicy body; the owner may not be changed by it."""
    owner = root.find("Owner/ID")
    if owner is not None and (owner.text or "") != owner_id:
        raise S3Error("AccessDenied")
    grants = []
    for grant in root.findall("AccessControlList/Grant"):
        perm = (grant.findtext("Permission") or "").strip()
        if perm not in PERMISSIONS:
            raise S3Error("MalformedACLError")
        if grant.findtext("Grantee/ID"):
            grants.append(["user", (grant.findtext("Grantee/ID") or "").strip(), perm])
        elif grant.findtext("Grantee/URI"):
            grants.append(["group", (grant.findtext("Grantee/URI") or "").strip(), perm])
        else:
            raise S3Error("MalformedACLError")
    return {"owner": [owner_id, owner_name], "grants": grants}
