"""From an S3 request to policy terms: its action name and its condition-key context.

One table maps (method, bucket/object, sub-resource) to the action a bucket policy names
(S3 user guide, "Actions, resources, and condition keys for Amazon S3"), so handlers never
spell action names themselves. ``condition_context`` collects the global ``aws:*`` keys and
the S3 ``s3:*`` keys that policies commonly test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl

# sub-resource → {method: (bucket action, object action)}; "" is an action that does not exist
_SUBRESOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "acl": {"GET": ("GetBucketAcl", "GetObjectAcl"), "PUT": ("PutBucketAcl", "PutObjectAcl")},
    "policy": {
        "GET": ("GetBucketPolicy", ""),
        "PUT": ("PutBucketPolicy", ""),
        "DELETE": ("DeleteBucketPolicy", ""),
    },
    "policyStatus": {"GET": ("GetBucketPolicyStatus", "")},
    "cors": {
        "GET": ("GetBucketCORS", ""),
        "PUT": ("PutBucketCORS", ""),
        "DELETE": ("PutBucketCORS", ""),
    },
    "versioning": {"GET": ("GetBucketVersioning", ""), "PUT": ("PutBucketVersioning", "")},
    "versions": {"GET": ("ListBucketVersions", "")},
    "location": {"GET": ("GetBucketLocation", "")},
    "uploads": {"GET": ("ListBucketMultipartUploads", ""), "POST": ("", "PutObject")},
    "lifecycle": {
        "GET": ("GetLifecycleConfiguration", ""),
        "PUT": ("PutLifecycleConfiguration", ""),
        "DELETE": ("PutLifecycleConfiguration", ""),
    },
    "tagging": {
        "GET": ("GetBucketTagging", "GetObjectTagging"),
        "PUT": ("PutBucketTagging", "PutObjectTagging"),
        "DELETE": ("PutBucketTagging", "DeleteObjectTagging"),
    },
    "website": {
        "GET": ("GetBucketWebsite", ""),
        "PUT": ("PutBucketWebsite", ""),
        "DELETE": ("DeleteBucketWebsite", ""),
    },
    "logging": {"GET": ("GetBucketLogging", ""), "PUT": ("PutBucketLogging", "")},
    "notification": {"GET": ("GetBucketNotification", ""), "PUT": ("PutBucketNotification", "")},
    "encryption": {
        "GET": ("GetEncryptionConfiguration", ""),
        "PUT": ("PutEncryptionConfiguration", ""),
        "DELETE": ("PutEncryptionConfiguration", ""),
    },
    "object-lock": {
        "GET": ("GetBucketObjectLockConfiguration", ""),
        "PUT": ("PutBucketObjectLockConfiguration", ""),
    },
    "replication": {
        "GET": ("GetReplicationConfiguration", ""),
        "PUT": ("PutReplicationConfiguration", ""),
        "DELETE": ("PutReplicationConfiguration", ""),
    },
    "requestPayment": {
        "GET": ("GetBucketRequestPayment", ""),
        "PUT": ("PutBucketRequestPayment", ""),
    },
    "accelerate": {
        "GET": ("GetAccelerateConfiguration", ""),
        "PUT": ("PutAccelerateConfiguration", ""),
    },
    "ownershipControls": {
        "GET": ("GetBucketOwnershipControls", ""),
        "PUT": ("PutBucketOwnershipControls", ""),
        "DELETE": ("PutBucketOwnershipControls", ""),
    },
    "publicAccessBlock": {
        "GET": ("GetBucketPublicAccessBlock", ""),
        "PUT": ("PutBucketPublicAccessBlock", ""),
        "DELETE": ("PutBucketPublicAccessBlock", ""),
    },
    "retention": {"GET": ("", "GetObjectRetention"), "PUT": ("", "PutObjectRetention")},
    "legal-hold": {"GET": ("", "GetObjectLegalHold"), "PUT": ("", "PutObjectLegalHold")},
    "restore": {"POST": ("", "RestoreObject")},
    "attributes": {"GET": ("", "GetObjectAttributes")},
    "torrent": {"GET": ("", "GetObjectTorrent")},
    "delete": {"POST": ("DeleteObject", "")},
}
# Object actions that have a per-version form when the request names a versionId.
_VERSIONED = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectAcl": "GetObjectVersionAcl",
    "PutObjectAcl": "PutObjectVersionAcl",
    "GetObjectTagging": "GetObjectVersionTagging",
    "PutObjectTagging": "PutObjectVersionTagging",
    "DeleteObjectTagging": "DeleteObjectVersionTagging",
    "GetObjectAttributes": "GetObjectVersionAttributes",
}
_PLAIN_BUCKET = {
    "GET": "ListBucket",
    "HEAD": "ListBucket",
    "PUT": "CreateBucket",
    "DELETE": "DeleteBucket",
    "POST": "PutObject",
}
_PLAIN_OBJECT = {
    "GET": "GetObject",
    "HEAD": "GetObject",
    "PUT": "PutObject",
    "DELETE": "DeleteObject",
}


def s3_action(
    method: str, bucket: str | None, key: str | None, query: Sequence[tuple[str, str]]
) -> str | None:
    """The ``s3:...`` action of a request, or None when no policy action applies."""
    method = method.upper()
    if bucket is None:
        return "s3:ListAllMyBuckets" if method == "GET" else None
    names = {k for k, _ in query}
    version = any(k == "versionId" and v for k, v in query)
    if key:
        if "uploadId" in names:
            return {"GET": "s3:ListMultipartUploadParts", "DELETE": "s3:AbortMultipartUpload"}.get(
                method, "s3:PutObject"
            )
        action = _subresource_action(method, names, 1) or _PLAIN_OBJECT.get(method, "")
        if version:
            action = _VERSIONED.get(action, action)
    else:
        action = _subresource_action(method, names, 0) or _PLAIN_BUCKET.get(method, "")
    return f"s3:{action}" if action else None


def _subresource_action(method: str, names: set[str], index: int) -> str:
    for name, methods in _SUBRESOURCES.items():
        if name in names and method in methods:
            return methods[method][index]
    return ""


# -- condition keys ----------------------------------------------------------------------------

_HEADER_KEYS = (
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
)
_QUERY_KEYS = {"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"}


def condition_context(
    headers: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    *,
    source_ip: str | None,
    secure: bool,
    now: datetime,
    signature_version: str,
    username: str | None = None,
    userid: str | None = None,
    existing_tags: Mapping[str, str] | None = None,
    post_form: bool = False,
) -> dict[str, list[str]]:
    """The condition keys of one request (``headers`` lower-case, ``query`` decoded pairs).

    ``signature_version`` is ``AuthResult.signature_version`` ("v4", "v2", "anonymous");
    ``existing_tags`` are the stored tags of the object acted on (``s3:ExistingObjectTag``).
    """
    now = now.astimezone(UTC)
    context: dict[str, list[str]] = {
        "aws:securetransport": ["true" if secure else "false"],
        "aws:currenttime": [now.strftime("%Y-%m-%dT%H:%M:%SZ")],
        "aws:epochtime": [str(int(now.timestamp()))],
        "aws:principaltype": ["Anonymous" if signature_version == "anonymous" else "User"],
    }
    _put(context, "aws:sourceip", source_ip)
    _put(context, "aws:referer", headers.get("referer"))
    _put(context, "aws:useragent", headers.get("user-agent"))
    _put(context, "aws:username", username)
    _put(context, "aws:userid", userid)
    for name in _HEADER_KEYS:
        _put(context, f"s3:{name}", headers.get(name))
    for name, value in query:
        if name in _QUERY_KEYS:
            context[_QUERY_KEYS[name]] = [value]
        elif name == "versionId":
            context["s3:versionid"] = [value]
    _auth_keys(context, headers, signature_version, post_form)
    _tag_keys(context, headers.get("x-amz-tagging"), existing_tags)
    return context


# The request headers that are condition keys (``s3:<header>``), for the handlers' context.
HEADER_KEYS = _HEADER_KEYS


def _put(context: dict[str, list[str]], key: str, value: str | None) -> None:
    if value is not None:
        context[key] = [value]


def _auth_keys(
    context: dict[str, list[str]],
    headers: Mapping[str, str],
    signature_version: str,
    post_form: bool,
) -> None:
    if signature_version == "anonymous":
        return
    context["s3:signatureversion"] = ["AWS4-HMAC-SHA256" if signature_version == "v4" else "AWS"]
    if post_form:
        kind = "POST"
    elif "authorization" in headers:
        kind = "REST-HEADER"
    else:
        kind = "REST-QUERY-STRING"
    context["s3:authtype"] = [kind]


def _tag_keys(
    context: dict[str, list[str]], tagging: str | None, existing: Mapping[str, str] | None
) -> None:
    if tagging is not None:
        tags = parse_qsl(tagging, keep_blank_values=True)
        for key, value in tags:
            context[f"s3:requestobjecttag/{key.lower()}"] = [value]
        context["s3:requestobjecttagkeys"] = [k for k, _ in tags]
    for key, value in (existing or {}).items():
        context[f"s3:existingobjecttag/{key.lower()}"] = [value]
