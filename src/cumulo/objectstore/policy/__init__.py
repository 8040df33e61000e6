"""Access-control documents of the S3 service, as pure functions the handlers call.

``bucket_policy``: parse/validate/evaluate bucket policies (explicit Deny, then Allow, else
no decision). ``acl``: canned ACLs, grant headers, the XML form and the permission check.
``cors``: the CORS configuration document and preflight / response matching. ``request``:
a request's policy action (``s3_action``) and condition keys (``condition_context``). Errors are
``PolicyError`` (an ``AuthError``: code, message, http_status), mapped once at the front door.
"""

from cumulo.objectstore.policy.acl import (
    Acl,
    Grant,
    Owner,
    acl_from_headers,
    allowed,
    canned_acl,
    parse_acl_xml,
    render_acl_xml,
)
from cumulo.objectstore.policy.bucket_policy import (
    BucketPolicy,
    PolicyRequest,
    evaluate,
    parse_policy,
    resource_arn,
)
from cumulo.objectstore.policy.cors import (
    CorsRule,
    parse_cors_xml,
    preflight,
    render_cors_xml,
    response_headers,
)
from cumulo.objectstore.policy.errors import PolicyError
from cumulo.objectstore.policy.request import condition_context, s3_action

__all__ = [
    "Acl",
    "BucketPolicy",
    "CorsRule",
    "Grant",
    "Owner",
    "PolicyError",
    "PolicyRequest",
    "acl_from_headers",
    "allowed",
    "canned_acl",
    "condition_context",
    "evaluate",
    "parse_acl_xml",
    "parse_cors_xml",
    "parse_policy",
    "preflight",
    "render_acl_xml",
    "render_cors_xml",
    "resource_arn",
    "response_headers",
    "s3_action",
]
