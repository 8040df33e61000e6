"""Errors of the access-control documents, with their S3 code and status.

``PolicyError`` has the same shape as ``auth.AuthError`` (code, message, http_status,
extra) and derives from it, so the S3 front door's single error mapping renders both.
"""

from __future__ import annotations

from cumulo.objectstore.auth.errors import AuthError


class PolicyError(AuthError):
    """A bucket policy, ACL or CORS document (or a CORS request) that S3 would refuse."""


def malformed_policy(message: str) -> PolicyError:
    return PolicyError("MalformedPolicy", message)


def malformed_acl(
    message: str = "The XML you provided was not well-formed or did not "
    "validate against our published schema.",
) -> PolicyError:
    return PolicyError("MalformedACLError", message)


def malformed_xml(
    message: str = "The XML you provided was not well-formed or did not "
    "validate against our published schema.",
) -> PolicyError:
    return PolicyError("MalformedXML", message)
