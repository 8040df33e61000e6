"""The values crossing the boundary between the S3 front door and this package.

``RequestView`` is deliberately not a Starlette request: signatures are computed over the
request exactly as received (raw path, header values), and a plain frozen value keeps the
signers pure functions that unit tests can feed from botocore's signers directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cumulo.objectstore.auth.payload import PayloadCheck


@dataclass(frozen=True)
class Credentials:
    """A key pair and whoever it belongs to (``principal`` is opaque to this package)."""

    access_key: str
    secret_key: str
    principal: Any


@dataclass(frozen=True)
class RequestView:
    """An HTTP request as the signer saw it.

    ``raw_path`` is the percent-encoded path exactly as received (S3 signs it without
    re-encoding); ``query`` holds the decoded pairs in order; ``headers`` has lower-case
    names, repeated headers joined with ``,`` as HTTP allows; ``host`` is used when the
    headers carry no ``host`` (HTTP/2 ``:authority``).
    """

    method: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    host: str


@dataclass(frozen=True)
class AuthResult:
    """Who signed the request and how its body is to be checked.

    ``credentials`` is None for an anonymous request; ``region`` is the region of the
    SigV4 credential scope (None for SigV2 and anonymous); ``signature_version`` is
    ``"v4"``, ``"v2"`` or ``"anonymous"``.
    """

    credentials: Credentials | None
    payload: PayloadCheck
    region: str | None
    signature_version: str
