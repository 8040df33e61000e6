"""ACLs as the handlers store them: the policy library's ACLs in their stored (JSON) form.

The rules (canned ACLs, grant headers, the XML, the check) live in ``objectstore.policy.acl``;
this module only converts between its values and the ``{"owner": [id, name], "grants":
[[kind, who, permission], ...]}`` dictionaries kept in the metadata rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cumulo.objectstore.identity import Principal
from cumulo.objectstore.policy import acl as rules

Acl = dict[str, Any]


def _owner(owner_id: str, owner_name: str = "") -> rules.Owner:
    return rules.Owner(owner_id, owner_name)


def canned(name: str, owner_id: str, owner_name: str, bucket_owner: str | None = None) -> Acl:
    bucket = _owner(bucket_owner) if bucket_owner else None
    return rules.to_stored(rules.canned_acl(name, _owner(owner_id, owner_name), bucket))


def from_headers(
    headers: Mapping[str, str],
    owner_id: str,
    owner_name: str,
    bucket_owner: str | None = None,
    resolve_email: rules.EmailResolver | None = None,
) -> Acl:
    """The ACL a request asks for: a canned x-amz-acl, explicit grants, or private."""
    owner = _owner(owner_id, owner_name)
    bucket = _owner(bucket_owner) if bucket_owner else None
    found = rules.acl_from_headers(headers, owner, bucket, resolve_email)
    return rules.to_stored(found if found is not None else rules.canned_acl("private", owner))


def headers_set_acl(headers: Mapping[str, str]) -> bool:
    return "x-amz-acl" in headers or any(h in headers for h in rules.GRANT_HEADERS)


def allowed(acl: Acl, who: Principal | None, permission: str) -> bool:
    return rules.allowed(rules.from_stored(acl), who.owner_id if who else None, permission)


def render(acl: Acl, names: Mapping[str, str] | None = None) -> bytes:
    """Group grants first, then users, as radosgw lists them (clients index into the list)."""
    parsed = rules.from_stored(acl)
    ordered = sorted(parsed.grants, key=lambda g: g.kind != "group")
    return rules.render_acl_xml(rules.Acl(parsed.owner, tuple(ordered)), names)


def parse(
    body: bytes, owner_id: str, owner_name: str, resolve_email: rules.EmailResolver | None = None
) -> Acl:
    """An AccessControlPolicy body; the owner may not be changed by it."""
    return rules.to_stored(rules.parse_acl_xml(body, _owner(owner_id, owner_name), resolve_email))


def grantee_ids(stored: Acl) -> list[str]:
    """The user ids an ACL's grants name (whose display names a rendering wants)."""
    return [who for kind, who, _ in stored.get("grants", []) if kind == "user"]
