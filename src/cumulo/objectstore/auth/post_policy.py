"""Browser-form uploads (POST Object): the signed policy document and its conditions.

A form carries a base64 JSON ``policy`` ({"expiration": ..., "conditions": [...]}) signed
with SigV4 (``x-amz-signature`` = HMAC-SHA256 of the base64 text under the day's signing
key) or SigV2 (``signature`` = base64 HMAC-SHA1). S3 then requires (S3 API reference,
"Creating a POST policy"): the policy has not expired; every condition holds —
``{"field": "value"}`` or ``["eq", "$field", "value"]`` exact, ``["starts-with", "$field",
"prefix"]``, ``["content-length-range", min, max]`` on the file size; and every form field
except ``policy``, the signature, ``file`` and ``x-ignore-*`` is named by a condition.
Field names are case-insensitive. A form without a policy is an anonymous upload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cumulo.objectstore.auth import sigv2, sigv4
from cumulo.objectstore.auth.authenticate import Lookup
from cumulo.objectstore.auth.errors import AuthError
from cumulo.objectstore.auth.model import Credentials

_NOT_CONDITIONED = frozenset(
    {"policy", "x-amz-signature", "signature", "file", "awsaccesskeyid", "bucket"}
)
MAX_POLICY_BYTES = 20 * 1024
# S3 takes ISO 8601 with the "T" and a zone ("2026-11-22T12:00:00.000Z"); Python's own
# parser would also take "2026-11-22 12:00:00+00:00", which S3 refuses.
_ISO8601 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


@dataclass(frozen=True)
class PostAuth:
    """The outcome of a POST form's authentication; ``check_length`` enforces the policy's
    content-length-range once the file's size is known (while or after streaming it)."""

    credentials: Credentials | None
    signature_version: str
    length_range: tuple[int, int] | None = None

    def check_length(self, size: int) -> None:
        if self.length_range is None:
            return
        low, high = self.length_range
        if size < low:
            raise AuthError(
                "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"
            )
        if size > high:
            raise AuthError(
                "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
            )


def authenticate_post(
    fields: Mapping[str, str],
    bucket: str,
    lookup: Lookup,
    now: datetime,
    *,
    region: str = "us-east-1",
) -> PostAuth:
    """Verify a POST form (all fields but the file; ``key`` already has ``${filename}``
    substituted, as S3 checks the resulting key)."""
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    form = {k.lower(): v for k, v in fields.items()}
    if "key" not in form:
        raise AuthError(
            "InvalidArgument", "Bucket POST must contain a field named 'key'.", ArgumentName="key"
        )
    if "policy" not in form:
        return PostAuth(None, "anonymous")
    creds, version = _verify_signature(form, lookup, region)
    document = _decode(form["policy"])
    _check_expiration(document, now)
    length_range = _check_conditions(document, form, bucket)
    return PostAuth(creds, version, length_range)


def _verify_signature(
    form: Mapping[str, str], lookup: Lookup, region: str
) -> tuple[Credentials, str]:
    policy = form["policy"]
    if "x-amz-signature" in form:
        return _verify_v4(form, policy, lookup, region), "v4"
    if "signature" in form and "awsaccesskeyid" in form:
        creds = _credentials(lookup, form["awsaccesskeyid"])
        if not sigv2.matches(creds.secret_key, [policy], form["signature"]):
            raise AuthError("SignatureDoesNotMatch")
        return creds, "v2"
    raise AuthError(
        "InvalidArgument",
        "Bucket POST must contain a signature for the policy.",
        ArgumentName="x-amz-signature",
    )


def _verify_v4(form: Mapping[str, str], policy: str, lookup: Lookup, region: str) -> Credentials:
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        if name not in form:
            raise AuthError("InvalidArgument", f"Bucket POST must contain a field named '{name}'.")
    if form["x-amz-algorithm"] != sigv4.ALGORITHM:
        raise AuthError("InvalidArgument", "Unsupported x-amz-algorithm.")
    scope = sigv4.parse_scope(form["x-amz-credential"], "InvalidArgument")
    if region != "*" and scope.region != region:
        raise AuthError(
            "AuthorizationQueryParametersError",
            f"Error parsing the X-Amz-Credential parameter; the region '{scope.region}' is "
            f"wrong; expecting '{region}'",
            Region=region,
        )
    creds = _credentials(lookup, scope.access_key)
    key = sigv4.signing_key(creds.secret_key, scope.date, scope.region, scope.service)
    expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), form["x-amz-signature"].encode()):
        raise AuthError("SignatureDoesNotMatch")
    return creds


def _credentials(lookup: Lookup, access_key: str) -> Credentials:
    creds = lookup(access_key)
    if creds is None:
        raise AuthError("InvalidAccessKeyId", AWSAccessKeyId=access_key)
    return creds


def _invalid_policy(message: str) -> AuthError:
    return AuthError("InvalidPolicyDocument", f"Invalid Policy: {message}")


def _decode(policy: str) -> dict[str, Any]:
    if len(policy) > MAX_POLICY_BYTES * 4 // 3 + 4:
        raise _invalid_policy("Policy document too large.")
    try:
        document = json.loads(base64.b64decode(policy, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise _invalid_policy("Invalid JSON.") from err
    if not isinstance(document, dict):
        raise _invalid_policy("Invalid JSON.")
    if not isinstance(document.get("conditions"), list):
        raise _invalid_policy("Policy missing conditions.")
    return document


def _check_expiration(document: Mapping[str, Any], now: datetime) -> None:
    raw = document.get("expiration")
    if not isinstance(raw, str):
        raise _invalid_policy("Policy missing expiration.")
    try:
        if not _ISO8601.fullmatch(raw):
            raise ValueError(raw)
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as err:
        raise _invalid_policy("Invalid 'expiration' value.") from err
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    if now > expires:
        raise AuthError("AccessDenied", "Invalid according to Policy: Policy expired.")


def _check_conditions(
    document: Mapping[str, Any], form: Mapping[str, str], bucket: str
) -> tuple[int, int] | None:
    values = {**form, "bucket": bucket}
    covered: set[str] = set()
    length_range = None
    for condition in document["conditions"]:
        if isinstance(condition, list) and condition and condition[0] == "content-length-range":
            length_range = _length_range(condition)
            continue
        name, op, expected = _condition(condition)
        covered.add(name)
        actual = values.get(name)
        holds = actual is not None and (
            actual == expected if op == "eq" else actual.startswith(expected)
        )
        if not holds and not (op == "starts-with" and expected == "" and actual is None):
            raise AuthError(
                "AccessDenied",
                f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
            )
    if "bucket" not in covered:
        raise AuthError(
            "AccessDenied", "Invalid according to Policy: Policy Condition failed: bucket"
        )
    extra = sorted(
        k
        for k in form
        if k not in covered and k not in _NOT_CONDITIONED and not k.startswith("x-ignore-")
    )
    if extra:
        raise AuthError(
            "AccessDenied", f"Invalid according to Policy: Extra input fields: {extra[0]}"
        )
    return length_range


def _condition(condition: Any) -> tuple[str, str, str]:
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, value),) = condition.items()
        if isinstance(value, str):
            return name.lower(), "eq", value
    if isinstance(condition, list) and len(condition) == 3:
        op, field, value = condition
        if (
            isinstance(op, str)
            and op.lower() in ("eq", "starts-with")
            and isinstance(field, str)
            and field.startswith("$")
            and isinstance(value, str)
        ):
            return field[1:].lower(), op.lower(), value
    raise _invalid_policy(f"Invalid condition {json.dumps(condition)}.")


def _length_range(condition: list[Any]) -> tuple[int, int]:
    if len(condition) != 3:
        raise _invalid_policy("Invalid content-length-range.")
    try:
        low, high = int(condition[1]), int(condition[2])
    except (TypeError, ValueError) as err:
        raise _invalid_policy("Invalid content-length-range.") from err
    if low < 0 or high < low:
        raise _invalid_policy("Invalid content-length-range.")
    return low, high
