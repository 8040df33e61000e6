"""Errors the cloud raises, each carrying its CloudStack wire codes.

The front door maps them once (``api/cloudstack/envelope.py``); no handler builds an error
body. ``errorcode`` doubles as the HTTP status (CS ApiErrorCode); ``cserrorcode`` is the Java
exception class code from CSExceptionErrorCode that clients such as marvin print.
"""

from __future__ import annotations


class CloudError(Exception):
    errorcode = 530
    cserrorcode = 4250  # CloudRuntimeException

    def __init__(self, text: str, *, uuids: list[str] | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.uuids = uuids or []


class BadRequest(CloudError):
    errorcode = 400
    cserrorcode = 9999


class Unauthorized(CloudError):
    errorcode = 401
    cserrorcode = 9999


class MethodNotAllowed(CloudError):
    errorcode = 405
    cserrorcode = 9999


class Throttled(CloudError):
    errorcode = 429
    cserrorcode = 9999


class ParamError(CloudError):
    """InvalidParameterValueException: a parameter is missing, malformed or out of range."""

    errorcode = 431
    cserrorcode = 4350


class UnsupportedAction(CloudError):
    """The command does not exist or the caller's role may not run it."""

    errorcode = 432
    cserrorcode = 9999


class PermissionDenied(CloudError):
    errorcode = 531
    cserrorcode = 4365


class ResourceLimitExceeded(CloudError):
    errorcode = 532
    cserrorcode = 4370


class InsufficientCapacity(CloudError):
    errorcode = 533
    cserrorcode = 4310


class ResourceUnavailable(CloudError):
    errorcode = 534
    cserrorcode = 4380


class ResourceAllocation(CloudError):
    errorcode = 535
    cserrorcode = 4370


class ResourceInUse(CloudError):
    errorcode = 536
    cserrorcode = 4365


class InternalError(CloudError):
    errorcode = 530
    cserrorcode = 4250


class NotFound(ParamError):
    """CloudStack answers a lookup of an unknown or invisible id with 431, not 404."""
