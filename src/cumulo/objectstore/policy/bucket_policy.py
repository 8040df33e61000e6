"""Bucket policies: parse and validate the JSON document, evaluate it for one request.

Evaluation follows the IAM order for a resource policy on its own: an explicit ``Deny``
that matches wins; otherwise a matching ``Allow`` allows; otherwise the policy makes no
decision and the caller falls back to ACLs / ownership (S3's "Bucket policy, then ACL").
Validation refuses what S3 refuses with ``MalformedPolicy``: unknown fields, a statement
without Effect, Principal, Action or Resource, an action S3 does not have, a resource
outside the bucket the policy is attached to, a bad condition operator or value.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cumulo.objectstore.policy.conditions import (
    Condition,
    holds,
    parse_conditions,
    substitute,
    wildcard,
)
from cumulo.objectstore.policy.errors import PolicyError, malformed_policy

Decision = Literal["Allow", "Deny"] | None
MAX_POLICY_BYTES = 20 * 1024
VERSIONS = ("2012-10-17", "2008-10-17")
ARN_PREFIX = "arn:aws:s3:::"
ANYONE = "*"

# The S3 actions a bucket policy may name (S3 "Actions, resources, and condition keys").
S3_ACTIONS = frozenset(
    {
        "AbortMultipartUpload",
        "BypassGovernanceRetention",
        "CreateBucket",
        "DeleteBucket",
        "DeleteBucketOwnershipControls",
        "DeleteBucketPolicy",
        "DeleteBucketWebsite",
        "DeleteObject",
        "DeleteObjectTagging",
        "DeleteObjectVersion",
        "DeleteObjectVersionTagging",
        "GetAccelerateConfiguration",
        "GetAnalyticsConfiguration",
        "GetBucketAcl",
        "GetBucketCORS",
        "GetBucketLocation",
        "GetBucketLogging",
        "GetBucketNotification",
        "GetBucketObjectLockConfiguration",
        "GetBucketOwnershipControls",
        "GetBucketPolicy",
        "GetBucketPolicyStatus",
        "GetBucketPublicAccessBlock",
        "GetBucketRequestPayment",
        "GetBucketTagging",
        "GetBucketVersioning",
        "GetBucketWebsite",
        "GetEncryptionConfiguration",
        "GetInventoryConfiguration",
        "GetLifecycleConfiguration",
        "GetMetricsConfiguration",
        "GetObject",
        "GetObjectAcl",
        "GetObjectAttributes",
        "GetObjectLegalHold",
        "GetObjectRetention",
        "GetObjectTagging",
        "GetObjectTorrent",
        "GetObjectVersion",
        "GetObjectVersionAcl",
        "GetObjectVersionAttributes",
        "GetObjectVersionForReplication",
        "GetObjectVersionTagging",
        "GetObjectVersionTorrent",
        "GetReplicationConfiguration",
        "ListAllMyBuckets",
        "ListBucket",
        "ListBucketMultipartUploads",
        "ListBucketVersions",
        "ListMultipartUploadParts",
        "ObjectOwnerOverrideToBucketOwner",
        "PutAccelerateConfiguration",
        "PutAnalyticsConfiguration",
        "PutBucketAcl",
        "PutBucketCORS",
        "PutBucketLogging",
        "PutBucketNotification",
        "PutBucketObjectLockConfiguration",
        "PutBucketOwnershipControls",
        "PutBucketPolicy",
        "PutBucketPublicAccessBlock",
        "PutBucketRequestPayment",
        "PutBucketTagging",
        "PutBucketVersioning",
        "PutBucketWebsite",
        "PutEncryptionConfiguration",
        "PutInventoryConfiguration",
        "PutLifecycleConfiguration",
        "PutMetricsConfiguration",
        "PutObject",
        "PutObjectAcl",
        "PutObjectLegalHold",
        "PutObjectRetention",
        "PutObjectTagging",
        "PutObjectVersionAcl",
        "PutObjectVersionTagging",
        "PutReplicationConfiguration",
        "ReplicateDelete",
        "ReplicateObject",
        "ReplicateTags",
        "RestoreObject",
    }
)
_S3_ACTION_NAMES = tuple(f"s3:{a}" for a in sorted(S3_ACTIONS))
_STATEMENT_FIELDS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = frozenset({"AWS", "CanonicalUser", "Service", "Federated"})
_IAM_ARN = re.compile(r"arn:aws:iam::[^:]*:(root|user/.+|role/.+|group/.+)")


@dataclass(frozen=True)
class Statement:
    """One statement; ``principals`` None means the statement names ``*`` (anyone)."""

    sid: str | None
    effect: Literal["Allow", "Deny"]
    principals: frozenset[str] | None
    not_principal: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class BucketPolicy:
    version: str
    statements: tuple[Statement, ...]
    id: str | None = None

    @property
    def variables(self) -> bool:
        """Policy variables (``${aws:username}``) exist only in the 2012-10-17 language."""
        return self.version == "2012-10-17"


@dataclass(frozen=True)
class PolicyRequest:
    """What a request asks, in policy terms.

    ``principals``: every identifier the requester answers to (its canonical id, and
    ``arn:aws:iam::<account>:root`` / ``...:user/<name>`` forms); empty for anonymous.
    ``context``: condition keys (any case) → values, e.g. ``aws:SourceIp``,
    ``aws:SecureTransport`` ("true"/"false"), ``s3:prefix``, ``s3:x-amz-acl``.
    """

    action: str
    resource: str
    principals: frozenset[str] = frozenset()
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)


def resource_arn(bucket: str, key: str | None = None) -> str:
    return f"{ARN_PREFIX}{bucket}" if key is None else f"{ARN_PREFIX}{bucket}/{key}"


def account_principal(account: str) -> str:
    """The ARN form IAM normalises a bare account id to."""
    return f"arn:aws:iam::{account}:root"


# -- parsing -------------------------------------------------------------------------------


def parse_policy(document: str | bytes, bucket: str) -> BucketPolicy:
    """Parse and validate a bucket policy for ``bucket``; raise MalformedPolicy."""
    raw = document.encode() if isinstance(document, str) else document
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError("PolicyTooLarge", "Policy exceeds the maximum allowed document size.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise malformed_policy(
            "Policies must be valid JSON and the first byte must be '{'"
        ) from err
    if not isinstance(data, dict):
        raise malformed_policy("Policies must be valid JSON and the first byte must be '{'")
    unknown = set(data) - {"Version", "Id", "Statement"}
    if unknown:
        raise malformed_policy(f"Unknown field {sorted(unknown)[0]}")
    version = data.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise malformed_policy("The policy must contain a valid version string")
    if "Id" in data and not isinstance(data["Id"], str):
        raise malformed_policy("Id must be a string")
    statements = _statement_list(data.get("Statement"))
    parsed = tuple(_statement(s, bucket) for s in statements)
    sids = [s.sid for s in parsed if s.sid is not None]
    if len(sids) != len(set(sids)):
        raise malformed_policy("Statement IDs (SID) in a single policy must be unique.")
    return BucketPolicy(version, parsed, data.get("Id"))


def _statement_list(value: Any) -> list[Any]:
    if value is None:
        raise malformed_policy("Missing required field Statement")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise malformed_policy("Could not parse the policy: Statement is empty!")
    return items


def _statement(data: Any, bucket: str) -> Statement:
    if not isinstance(data, dict):
        raise malformed_policy("Statement must be an object")
    unknown = set(data) - _STATEMENT_FIELDS
    if unknown:
        raise malformed_policy(f"Unknown field {sorted(unknown)[0]}")
    sid = data.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise malformed_policy("Statement IDs (SID) must be strings.")
    effect = data.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise malformed_policy(
            "Missing required field Effect" if effect is None else "Invalid effect"
        )
    principals, not_principal = _principals(data)
    actions, not_action = _either(data, "Action", "NotAction")
    resources, not_resource = _either(data, "Resource", "NotResource")
    for action in actions:
        _check_action(action)
    for resource in resources:
        _check_resource(resource, bucket)
    conditions = parse_conditions(data["Condition"]) if "Condition" in data else ()
    return Statement(
        sid,
        effect,
        principals,
        not_principal,
        actions,
        not_action,
        resources,
        not_resource,
        conditions,
    )


def _either(data: dict[str, Any], name: str, negated: str) -> tuple[tuple[str, ...], bool]:
    if (name in data) == (negated in data):
        raise malformed_policy(f"Missing required field {name}")
    field_name = name if name in data else negated
    value = data[field_name]
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str) and i for i in items):
        raise malformed_policy(f"Invalid {field_name}")
    return tuple(items), field_name == negated


def _principals(data: dict[str, Any]) -> tuple[frozenset[str] | None, bool]:
    if ("Principal" in data) == ("NotPrincipal" in data):
        raise malformed_policy("Missing required field Principal")
    negated = "NotPrincipal" in data
    value = data["NotPrincipal" if negated else "Principal"]
    if value == ANYONE:
        return None, negated
    if not isinstance(value, dict) or not value:
        raise malformed_policy("Invalid principal in policy")
    found: set[str] = set()
    for kind, ids in value.items():
        items = ids if isinstance(ids, list) else [ids]
        if kind not in _PRINCIPAL_TYPES or not items:
            raise malformed_policy("Invalid principal in policy")
        for item in items:
            if not isinstance(item, str) or not item:
                raise malformed_policy("Invalid principal in policy")
            if item == ANYONE and kind == "AWS":
                return None, negated
            found.add(_principal_id(kind, item))
    return frozenset(found), negated


def _principal_id(kind: str, value: str) -> str:
    if kind != "AWS":
        return value
    if value.startswith("arn:"):
        if not _IAM_ARN.fullmatch(value):
            raise malformed_policy("Invalid principal in policy")
        return value
    if ":" in value or "/" in value:
        raise malformed_policy("Invalid principal in policy")
    return account_principal(value)


def _check_action(action: str) -> None:
    if action == "*":
        return
    service, colon, name = action.partition(":")
    if not colon or service.lower() != "s3" or not name:
        raise malformed_policy("Policy has invalid action")
    pattern = wildcard(f"s3:{name}", ignore_case=True)
    if not any(pattern.fullmatch(known) for known in _S3_ACTION_NAMES):
        raise malformed_policy("Policy has invalid action")


def _check_resource(resource: str, bucket: str) -> None:
    """``*`` or ``arn:aws:s3:<region>:<account>:<bucket>[/<key>]`` naming this bucket. Region
    and account are empty in S3 ARNs; a wildcard there (``arn:aws:s3::*:bucket``, as radosgw
    tenants write it) is accepted because it matches the empty field."""
    if resource == "*":
        return
    parts = resource.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] != "aws" or parts[2] != "s3":
        raise malformed_policy("Policy has invalid resource")
    if not all(wildcard(field).fullmatch("") for field in parts[3:5]):
        raise malformed_policy("Policy has invalid resource")
    bucket_part = parts[5].split("/", 1)[0]
    if not bucket_part or not wildcard(bucket_part).fullmatch(bucket):
        raise malformed_policy("Policy has invalid resource")


# -- evaluation ----------------------------------------------------------------------------


def evaluate(policy: BucketPolicy, request: PolicyRequest) -> Decision:
    """Deny if a matching statement denies, Allow if one allows, else None (no decision)."""
    context = {k.lower(): list(v) for k, v in request.context.items()}
    allowed = False
    for statement in policy.statements:
        if not _applies(statement, request, context, policy.variables):
            continue
        if statement.effect == "Deny":
            return "Deny"
        allowed = True
    return "Allow" if allowed else None


def _applies(
    statement: Statement,
    request: PolicyRequest,
    context: Mapping[str, Sequence[str]],
    variables: bool,
) -> bool:
    return (
        _principal_matches(statement, request.principals)
        and _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource, context, variables)
        and all(holds(c, context, variables=variables) for c in statement.conditions)
    )


def _principal_matches(statement: Statement, who: frozenset[str]) -> bool:
    listed = statement.principals is None or bool(statement.principals & who)
    return not listed if statement.not_principal else listed


def _action_matches(statement: Statement, action: str) -> bool:
    found = any(
        a == "*" or wildcard(a, ignore_case=True).fullmatch(action) for a in statement.actions
    )
    return not found if statement.not_action else found


def _resource_matches(
    statement: Statement, resource: str, context: Mapping[str, Sequence[str]], variables: bool
) -> bool:
    found = False
    for pattern in statement.resources:
        text = substitute(pattern, context) if variables else pattern
        if text is not None and (text == "*" or wildcard(text).fullmatch(resource)):
            found = True
            break
    return not found if statement.not_resource else found


# -- "is this public?" (GetBucketPolicyStatus, Block Public Access) -------------------------

# Condition keys that pin a statement to known callers; with a positive operator on one of
# them a statement for "*" is not public (S3 user guide, "The meaning of 'public'").
_RESTRICTING_KEYS = frozenset(
    {
        "aws:sourceip",
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:userid",
        "s3:dataaccesspointarn",
        "s3:dataaccesspointaccount",
    }
)
_POSITIVE_OPERATORS = frozenset({"StringEquals", "StringLike", "ArnEquals", "ArnLike", "IpAddress"})


def is_public(policy: BucketPolicy) -> bool:
    """Whether some Allow statement grants anyone (``*`` or a NotPrincipal) access without
    a condition that fixes who may call (source IP, VPC, account, ARN...)."""
    return any(_public_statement(s) for s in policy.statements)


def _public_statement(statement: Statement) -> bool:
    if statement.effect != "Allow":
        return False
    if statement.principals is not None and not statement.not_principal:
        return False
    return not any(_restricting(c) for c in statement.conditions)


def _restricting(condition: Condition) -> bool:
    if condition.key not in _RESTRICTING_KEYS or condition.operator not in _POSITIVE_OPERATORS:
        return False
    if condition.operator == "IpAddress":
        # a network wider than /8 (IPv4) or /32 (IPv6) still counts as the public
        return all(not _wide_network(v) for v in condition.values)
    return "*" not in "".join(condition.values)


def _wide_network(value: str) -> bool:
    network = ipaddress.ip_network(value, strict=False)
    return network.prefixlen < (8 if network.version == 4 else 32)
