"""S3 request authentication (SigV4, SigV2, presigned URLs) and body integrity checks.

The S3 front door builds a ``RequestView``, calls ``authenticate`` with a key lookup, and
streams the body through ``AuthResult.payload``; errors carry their S3 code and status.
Browser-form uploads (POST Object) go through ``authenticate_post``.
"""

from cumulo.objectstore.auth.authenticate import ANY_REGION, authenticate
from cumulo.objectstore.auth.errors import AuthError, ChecksumError
from cumulo.objectstore.auth.model import AuthResult, Credentials, RequestView
from cumulo.objectstore.auth.payload import PayloadCheck
from cumulo.objectstore.auth.post_policy import PostAuth, authenticate_post

__all__ = [
    "ANY_REGION",
    "AuthError",
    "AuthResult",
    "ChecksumError",
    "Credentials",
    "PayloadCheck",
    "PostAuth",
    "RequestView",
    "authenticate",
    "authenticate_post",
]
