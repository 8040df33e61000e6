"""Multipart uploads and their parts.

Completing an upload is one transaction: the chosen parts' blobs become the new version's
manifest (no data is copied), the parts not chosen go to the collector, and the upload row
disappears, so an upload is either still open or completed, never half-completed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.meta.schema import garbage, objects, parts, uploads
from cumulo.objectstore.meta.store import (
    Bucket,
    MetaStore,
    NewVersion,
    _bury,
    _count,
    _drop_upload,
    _locked_bucket,
    _next_version_id,
    _retire,
    _version_values,
)
from cumulo.objectstore.meta.users import check_stored

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class UploadInfo:
    owner_id: str
    owner_name: str
    content_type: str
    meta: dict[str, str]
    headers: dict[str, str]
    acl: dict[str, Any]
    tags: dict[str, str] | None
    storage_class: str


def multipart_etag(part_etags: list[str]) -> str:
    """S3's ETag of a multipart object: md5 of the parts' binary md5s, dash, part count."""
    digest = hashlib.md5(b"".join(bytes.fromhex(e) for e in part_etags), usedforsecurity=False)
    return f"{digest.hexdigest()}-{len(part_etags)}"


class UploadStore:
    def __init__(self, meta: MetaStore) -> None:
        self.db = meta.db

    def create(self, bucket: Bucket, key: str, info: UploadInfo) -> str:
        upload_id = uuid.uuid4().hex
        with self.db.write() as s:
            s.execute(
                insert(uploads).values(
                    upload_id=upload_id,
                    bucket_id=bucket.id,
                    key=key,
                    initiated=utcnow(),
                    **info.__dict__,
                )
            )
        return upload_id

    def get(self, bucket: Bucket, key: str, upload_id: str) -> Row[Any]:
        with self.db.read() as s:
            return _upload(s, bucket, key, upload_id)

    def put_part(
        self,
        bucket: Bucket,
        key: str,
        upload_id: str,
        number: int,
        blob: tuple[str, int, str, dict[str, str]],
    ) -> None:
        """Record a part (blob id, size, etag, checksums); a part uploaded again replaces the
        old one, whose blob goes to the collector."""
        blob_id, size, etag, checksums = blob
        with self.db.write() as s:
            up = _upload(s, bucket, key, upload_id)
            old = s.execute(
                select(parts.c.id, parts.c.blob_id).where(
                    parts.c.upload_id == up.id, parts.c.part_number == number
                )
            ).first()
            if old is not None:
                s.execute(delete(parts).where(parts.c.id == old.id))
                _bury(s, [old.blob_id], utcnow())
            s.execute(
                insert(parts).values(
                    upload_id=up.id,
                    part_number=number,
                    size=size,
                    etag=etag,
                    blob_id=blob_id,
                    checksums=checksums,
                    modified=utcnow(),
                )
            )
            s.execute(delete(garbage).where(garbage.c.blob_id == blob_id))

    def list_parts(
        self, bucket: Bucket, key: str, upload_id: str, after: int, limit: int
    ) -> tuple[Row[Any], list[Row[Any]]]:
        with self.db.read() as s:
            up = _upload(s, bucket, key, upload_id)
            stmt = (
                select(parts)
                .where(parts.c.upload_id == up.id, parts.c.part_number > after)
                .order_by(parts.c.part_number)
                .limit(limit)
            )
            return up, list(s.execute(stmt))

    def list_uploads(
        self, bucket: Bucket, prefix: str, key_marker: str | None, limit: int
    ) -> list[Row[Any]]:
        cond = [uploads.c.bucket_id == bucket.id]
        if prefix:
            cond.append(uploads.c.key >= prefix)
        if key_marker:
            cond.append(uploads.c.key > key_marker)
        stmt = select(uploads).where(*cond).order_by(uploads.c.key, uploads.c.id).limit(limit)
        with self.db.read() as s:
            return [r for r in s.execute(stmt) if r.key.startswith(prefix)]

    def abort(self, bucket: Bucket, key: str, upload_id: str) -> None:
        with self.db.write() as s:
            _drop_upload(s, _upload(s, bucket, key, upload_id).id)

    def complete(
        self, bucket: Bucket, key: str, upload_id: str, chosen: list[tuple[int, str]]
    ) -> tuple[str, str, int]:
        """Complete with the client's (part number, etag) list; returns (etag, version id,
        size)."""
        with self.db.write() as s:
            up = _upload(s, bucket, key, upload_id)
            stmt = select(parts).where(parts.c.upload_id == up.id)
            have = {r.part_number: r for r in s.execute(stmt)}
            used = _check_parts(chosen, have)
            b = _locked_bucket(s, bucket.name)
            version_id = _next_version_id(b)
            etag = multipart_etag([r.etag for r in used])
            new = _version_from_upload(up, used, etag)
            _retire(s, b, key, version_id)
            s.execute(insert(objects).values(**_version_values(b, key, version_id, new)))
            _count(s, b.id, 1, new.size)
            check_stored(s, b.owner_id)
            unused = [r.blob_id for n, r in have.items() if n not in {u.part_number for u in used}]
            _bury(s, unused, utcnow())
            s.execute(delete(parts).where(parts.c.upload_id == up.id))
            s.execute(delete(uploads).where(uploads.c.id == up.id))
            return etag, version_id, new.size


def _upload(s: Session, bucket: Bucket, key: str, upload_id: str) -> Row[Any]:
    row = s.execute(
        select(uploads).where(
            uploads.c.upload_id == upload_id,
            uploads.c.bucket_id == bucket.id,
            uploads.c.key == key,
        )
    ).first()
    if row is None:
        raise S3Error("NoSuchUpload", UploadId=upload_id)
    return row


def _check_parts(chosen: list[tuple[int, str]], have: dict[int, Row[Any]]) -> list[Row[Any]]:
    if not chosen:
        raise S3Error("MalformedXML")
    numbers = [n for n, _ in chosen]
    if numbers != sorted(numbers):
        raise S3Error("InvalidPartOrder")
    # A part listed twice (uploaded again meanwhile) counts once, as its last listing.
    chosen = list({n: (n, e) for n, e in chosen}.values())
    used = []
    for number, etag in chosen:
        row = have.get(number)
        if row is None or etag.strip('"') != row.etag:
            raise S3Error("InvalidPart", PartNumber=str(number), ETag=etag)
        used.append(row)
    for row in used[:-1]:
        if row.size < MIN_PART_SIZE:
            raise S3Error(
                "EntityTooSmall",
                ProposedSize=str(row.size),
                MinSizeAllowed=str(MIN_PART_SIZE),
                PartNumber=str(row.part_number),
            )
    return used


def _version_from_upload(up: Row[Any], used: list[Row[Any]], etag: str) -> NewVersion:
    return NewVersion(
        size=sum(r.size for r in used),
        etag=etag,
        content_type=up.content_type,
        meta=up.meta,
        headers=up.headers,
        manifest=[[r.blob_id, r.size] for r in used],
        owner_id=up.owner_id,
        owner_name=up.owner_name,
        acl=up.acl,
        parts=[r.size for r in used],
        tags=up.tags,
        storage_class=up.storage_class,
    )
