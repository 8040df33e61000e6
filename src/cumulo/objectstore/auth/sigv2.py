"""AWS Signature Version 2 for S3 (``Authorization: AWS key:sig`` and query-string auth).

StringToSign (S3 developer guide, "Signing and authenticating REST requests"):

    METHOD \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
    CanonicalizedAmzHeaders CanonicalizedResource

The resource is ``/bucket/key`` even for virtual-host requests (the client puts the bucket
from the Host back in front of the path), followed by the signed sub-resources in sorted
order. Still used by s3cmd with ``signature_v2`` and by old SDKs and tools.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

# Query parameters that are part of the signed resource. The union of the S3 guide's list
# and what botocore's HmacV1Auth signs; a client that signs more or fewer fails either way.
SUB_RESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "encryption",
        "inventory",
        "legal-hold",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "publicAccessBlock",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "retention",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)


def canonical_resource(raw_path: str, query: Iterable[tuple[str, str]], bucket: str | None) -> str:
    path = raw_path or "/"
    resource = f"/{bucket}{path}" if bucket else path
    subs = sorted((k, v) for k, v in query if k in SUB_RESOURCES)
    if subs:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)
    return resource


def canonical_amz_headers(headers: Mapping[str, str]) -> str:
    amz = sorted((k, v.strip()) for k, v in headers.items() if k.startswith("x-amz-"))
    return "".join(f"{k}:{v}\n" for k, v in amz)


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    date_line: str,
    resource: str,
) -> str:
    return (
        f"{method.upper()}\n{headers.get('content-md5', '').strip()}\n"
        f"{headers.get('content-type', '').strip()}\n{date_line}\n"
        f"{canonical_amz_headers(headers)}{resource}"
    )


def sign(secret: str, text: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def matches(secret: str, texts: Iterable[str], provided: str) -> bool:
    """True when the signature matches one of the accepted string-to-sign variants.

    Every variant is computed and compared in constant time, so timing reveals neither the
    signature nor which variant was tried.
    """
    found = False
    for text in texts:
        found |= hmac.compare_digest(sign(secret, text).encode(), provided.encode())
    return found
