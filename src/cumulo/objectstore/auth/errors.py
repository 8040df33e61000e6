"""Authentication and integrity failures, each carrying its S3 error code and HTTP status.

The S3 front door maps these to XML once (``objectstore/errors.py``); nothing here renders a
body. ``extra`` holds the additional elements S3 puts in some error bodies (``Region`` for a
wrong-region scope, ``HeadersNotSigned``, ``StringToSign`` and ``CanonicalRequest`` for a
signature mismatch) so clients can debug their signers the way they do against AWS.
"""

from __future__ import annotations

# Status codes and default messages of the codes this package raises (S3 API reference,
# "Error responses"). Codes not listed default to 400.
_STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "MissingContentLength": 411,
}

_DEFAULT_MESSAGE: dict[str, str] = {
    "AccessDenied": "Access Denied",
    "SignatureDoesNotMatch": (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    ),
    "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
    "RequestTimeTooSkewed": (
        "The difference between the request time and the current time is too large."
    ),
    "BadDigest": "The Content-MD5 or checksum you specified did not match what we received.",
    "InvalidDigest": "The Content-MD5 or checksum you specified is not valid.",
    "XAmzContentSHA256Mismatch": (
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    ),
    "IncompleteBody": (
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    ),
    "MissingContentLength": "You must provide the Content-Length HTTP header.",
    "MaxMessageLengthExceeded": "Your request was too big.",
}


class AuthError(Exception):
    """A request that must be refused before (or while) its body is accepted."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        http_status: int | None = None,
        **extra: str,
    ) -> None:
        self.code = code
        self.message = message or _DEFAULT_MESSAGE.get(code, code)
        self.http_status = http_status if http_status is not None else _STATUS.get(code, 400)
        self.extra: dict[str, str] = dict(extra)
        super().__init__(f"{code}: {self.message}")


class ChecksumError(AuthError):
    """The body did not match what the request declared (digest, length, chunk signature).

    Raised from ``PayloadCheck.stream`` at the latest when the body ends, so a handler
    commits nothing it has not seen verified.
    """
