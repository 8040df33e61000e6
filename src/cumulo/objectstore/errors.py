"""S3 errors as one table: code → HTTP status and default message.

Handlers raise ``S3Error(code)``; the front door (``app.py``) renders the XML body with the
request's resource and id. No handler builds an error body itself.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Error parsing the query parameters."),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (
        409,
        "Your previous request to create the named bucket succeeded and you already own it.",
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
    ),
    "ExpiredToken": (400, "The provided token has expired."),
    "IllegalLocationConstraintException": (400, "The specified location-constraint is not valid."),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    ),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (
        403,
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 or checksum you specified is not valid."),
    "InvalidURI": (400, "Couldn't parse the specified URI."),
    "KeyTooLongError": (400, "Your key is too long."),
    "InvalidPart": (400, "One or more of the specified parts could not be found."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "InvalidTag": (400, "The tag provided was not a valid tag."),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",  # noqa: E501
    ),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
    ),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
    ),
    "MalformedACLError": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",  # noqa: E501
    ),
    "MalformedPolicy": (400, "Policies must be valid JSON."),
    "MalformedTrailerError": (400, "The request contained trailing data that was not well-formed."),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MetadataTooLarge": (400, "Your metadata headers exceed the maximum allowed metadata size."),
    "UnexpectedContent": (400, "This request does not support content."),
    "BadRequest": (400, "Bad Request"),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "MissingSecurityHeader": (400, "Your request is missing a required header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist"),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist"),
    "NoSuchPublicAccessBlockConfiguration": (
        404,
        "The public access block configuration was not found",
    ),
    "NoSuchTagSet": (404, "The TagSet does not exist"),
    "NoSuchUpload": (
        404,
        "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.",  # noqa: E501
    ),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "NotImplemented": (
        501,
        "A header or query you provided implies functionality that is not implemented.",
    ),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold."),
    "QuotaExceeded": (403, "The quota has been exceeded."),
    "TooManyBuckets": (400, "You have attempted to create more buckets than allowed."),
    "InvalidBucketState": (409, "The request is not valid with the current state of the bucket."),
    "InvalidRetentionPeriod": (400, "The retention period must be a positive integer."),
    "ObjectLockConfigurationNotFoundError": (
        404,
        "Object Lock configuration does not exist for this bucket",
    ),
    "NoSuchObjectLockConfiguration": (
        404,
        "The specified object does not have a ObjectLock configuration",
    ),
    # The admin API's (radosgw's admin-ops names).
    "NoSuchUser": (404, "The specified user does not exist."),
    "NoSuchResource": (404, "The specified admin resource does not exist."),
    "UserAlreadyExists": (409, "The specified user already exists."),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the server's time is too large.",
    ),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided.",
    ),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    ),
    "ServiceUnavailable": (503, "Please reduce your request rate."),
}


class S3Error(Exception):
    """An S3 error; ``extra`` adds elements (e.g. BucketName, Key, ArgumentName) to the body."""

    def __init__(self, code: str, message: str | None = None, **extra: str) -> None:
        status, default = ERRORS.get(code, (400, code))
        super().__init__(message or default)
        self.code = code
        self.status = status
        self.message = message or default
        self.extra = extra
        # Response headers an error still carries (x-amz-delete-marker, x-amz-version-id).
        self.headers: list[tuple[str, str]] = []

    def with_headers(self, *headers: tuple[str, str]) -> S3Error:
        self.headers.extend(headers)
        return self


def error_xml(err: S3Error, resource: str, request_id: str) -> bytes:
    fields = [("Code", err.code), ("Message", err.message), *err.extra.items()]
    fields += [("Resource", resource), ("RequestId", request_id), ("HostId", request_id)]
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{body}</Error>'.encode()
