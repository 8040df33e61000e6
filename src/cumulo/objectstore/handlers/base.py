"""What every handler gets: the service's parts, the request, who signed it, and helpers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread

from cumulo.common.settings import S3Settings
from cumulo.objectstore.auth import Credentials, PayloadCheck
from cumulo.objectstore.blobs import BlobStore
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.http import S3Request
from cumulo.objectstore.identity import Principal
from cumulo.objectstore.meta.store import Bucket, MetaStore
from cumulo.objectstore.meta.uploads import UploadStore

T = TypeVar("T")
ANONYMOUS = Principal("anonymous", "anonymous", "", False)
SMALL_BODY_LIMIT = 2 * 1024 * 1024


@dataclass
class Service:
    settings: S3Settings
    meta: MetaStore
    uploads: UploadStore
    blobs: BlobStore
    # Key lookup, for the few checks outside the auth layer (POST form signatures).
    lookup: Callable[[str], Credentials | None] | None = None
    # Whether a canonical user id names someone (grants to nobody are refused).
    owner_exists: Callable[[str], bool] | None = None
    # A grantee's display name, and whom an e-mail grant names (None: nobody).
    display_name: Callable[[str], str | None] | None = None
    resolve_email: Callable[[str], str | None] | None = None


@dataclass
class Ctx:
    svc: Service
    req: S3Request
    principal: Principal | None
    payload: PayloadCheck
    request_id: str
    # The bucket this request resolved, for the CORS headers the front door adds.
    loaded_bucket: Bucket | None = None
    # Decoded payload bytes read so far (usage statistics).
    bytes_in: int = 0

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a metadata call in a worker thread: it may wait on the database's lock."""
        return await to_thread.run_sync(partial(fn, *args, **kwargs))

    async def body(self) -> AsyncIterator[bytes]:
        """The decoded, verified payload; the check raises at the end if anything is off.
        Its bytes are what usage reports count as bytes in (no aws-chunked framing)."""
        async for chunk in self.payload.stream(self.req.raw_body()):
            self.bytes_in += len(chunk)
            yield chunk

    async def small_body(self) -> bytes:
        """A configuration body (XML, JSON): bounded, so it may be held in memory."""
        out = bytearray()
        async for chunk in self.body():
            out += chunk
            if len(out) > SMALL_BODY_LIMIT:
                raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
        return bytes(out)

    @property
    def bucket_name(self) -> str:
        assert self.req.bucket is not None
        return self.req.bucket

    @property
    def key(self) -> str:
        assert self.req.key is not None
        return self.req.key

    async def bucket(self) -> Bucket:
        found = await self.run(self.svc.meta.get_bucket, self.bucket_name)
        if found is None:
            raise S3Error("NoSuchBucket", BucketName=self.bucket_name)
        expected = self.req.headers.get("x-amz-expected-bucket-owner")
        if expected is not None and expected != found.owner_id:
            raise S3Error("AccessDenied")
        self.loaded_bucket = found
        return found

    def owner(self) -> Principal:
        """Who owns what this request writes: the signer, or the anonymous user (an upload
        an ACL or policy let through)."""
        return self.principal if self.principal is not None else ANONYMOUS

    def is_bucket_owner(self, bucket: Bucket) -> bool:
        return self.principal is not None and self.principal.owner_id == bucket.owner_id


def quote_etag(etag: str) -> str:
    return f'"{etag}"'


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
