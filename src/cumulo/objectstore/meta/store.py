"""Buckets and object versions: the reads and the transactions that change them.

Every method is synchronous (the app runs them in a worker thread) and is one transaction, so
a version becomes visible, replaces its predecessor and moves the usage counters atomically.
Blobs that stop being referenced go to ``s3_garbage`` in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cumulo.common.time import aware, utcnow
from cumulo.db.engine import Database
from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.meta.schema import buckets, garbage, objects, parts, uploads
from cumulo.objectstore.meta.users import check_bucket_count, check_stored

NULL_VERSION = "null"
# How long a blob being written may stay unreferenced before a crash is assumed.
INTENT_LEEWAY = timedelta(days=1)


@dataclass(frozen=True)
class Bucket:
    id: int
    name: str
    owner_id: str
    owner_name: str
    region: str
    created: datetime
    versioning: str
    acl: dict[str, Any]
    policy: str | None = None
    cors: str | None = None
    public_access_block: dict[str, bool] | None = None
    object_lock: dict[str, Any] | None = None


@dataclass
class NewVersion:
    """What a writer hands over once the bytes are durable and checked."""

    size: int
    etag: str
    content_type: str
    meta: dict[str, str]
    headers: dict[str, str]
    manifest: list[list[Any]]
    owner_id: str
    owner_name: str
    acl: dict[str, Any]
    checksums: dict[str, str] = field(default_factory=dict)
    parts: list[int] | None = None
    tags: dict[str, str] | None = None
    storage_class: str = "STANDARD"


def new_version_id() -> str:
    return uuid.uuid4().hex


def _bucket(row: Row[Any]) -> Bucket:
    return Bucket(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        owner_name=row.owner_name,
        region=row.region,
        created=aware(row.created),
        versioning=row.versioning,
        acl=row.acl,
        policy=row.policy,
        cors=row.cors,
        public_access_block=row.public_access_block,
        object_lock=row.object_lock,
    )


def blob_ids(manifest: list[list[Any]]) -> list[str]:
    return [str(entry[0]) for entry in manifest]


class MetaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- buckets ----------------------------------------------------------------------------

    def list_buckets(self, owner_id: str) -> list[Bucket]:
        stmt = select(buckets).where(buckets.c.owner_id == owner_id).order_by(buckets.c.name)
        with self.db.read() as s:
            return [_bucket(r) for r in s.execute(stmt)]

    def get_bucket(self, name: str) -> Bucket | None:
        with self.db.read() as s:
            row = s.execute(select(buckets).where(buckets.c.name == name)).first()
        return _bucket(row) if row else None

    def create_bucket(
        self, name: str, owner_id: str, owner_name: str, region: str, acl: dict[str, Any]
    ) -> None:
        try:
            with self.db.write() as s:
                existing = s.execute(select(buckets).where(buckets.c.name == name)).first()
                if existing is not None:
                    raise _exists(existing.owner_id == owner_id, name)
                check_bucket_count(s, owner_id)
                s.execute(
                    insert(buckets).values(
                        name=name,
                        owner_id=owner_id,
                        owner_name=owner_name,
                        region=region,
                        created=utcnow(),
                        versioning="",
                        acl=acl,
                        object_count=0,
                        byte_count=0,
                    )
                )
        except IntegrityError as err:  # a racing create on PostgreSQL
            raise _exists(False, name) from err

    def delete_bucket(self, bucket: Bucket) -> None:
        with self.db.write() as s:
            has_object = s.scalar(
                select(objects.c.id).where(objects.c.bucket_id == bucket.id).limit(1)
            )
            if has_object is not None:
                raise S3Error("BucketNotEmpty", BucketName=bucket.name)
            abort_all_uploads(s, bucket.id)
            s.execute(delete(buckets).where(buckets.c.id == bucket.id))

    def set_bucket_field(self, bucket: Bucket, **values: Any) -> None:
        with self.db.write() as s:
            s.execute(update(buckets).where(buckets.c.id == bucket.id).values(**values))

    def bucket_field(self, bucket: Bucket, name: str) -> Any:
        with self.db.read() as s:
            return s.scalar(select(buckets.c[name]).where(buckets.c.id == bucket.id))

    # --- versions ---------------------------------------------------------------------------

    def get_version(self, bucket: Bucket, key: str, version_id: str | None = None) -> Row[Any]:
        """The latest version (which may be a delete marker), or the one named."""
        cond = [objects.c.bucket_id == bucket.id, objects.c.key == key]
        cond.append(
            objects.c.is_latest.is_(True)
            if version_id is None
            else objects.c.version_id == version_id
        )
        with self.db.read() as s:
            row = s.execute(select(objects).where(*cond)).first()
        if row is None:
            if version_id is not None:
                raise S3Error("NoSuchVersion", Key=key, VersionId=version_id)
            raise S3Error("NoSuchKey", Key=key)
        return row

    def intend(self, blob_id: str) -> None:
        """Record a blob about to be written, so a crash before its version commits leaves a
        garbage row that reclaims it (the version's commit removes the row)."""
        with self.db.write() as s:
            s.execute(insert(garbage).values(blob_id=blob_id, dead_since=utcnow() + INTENT_LEEWAY))

    def forget(self, blob_ids_: Sequence[str]) -> None:
        """A blob was discarded before it was committed: its intent row is no longer needed."""
        with self.db.write() as s:
            _bury(s, blob_ids_, utcnow())

    def put_version(self, bucket_name: str, key: str, new: NewVersion) -> tuple[str, str]:
        """Make ``new`` the key's latest version; returns (version id, bucket versioning)."""
        try:
            with self.db.write() as s:
                bucket = _locked_bucket(s, bucket_name)
                version_id = _next_version_id(bucket)
                _retire(s, bucket, key, version_id)
                s.execute(insert(objects).values(**_version_values(bucket, key, version_id, new)))
                _count(s, bucket.id, 1, new.size)
                # After the changes, so an overwrite is charged only its difference.
                check_stored(s, bucket.owner_id)
                s.execute(delete(garbage).where(garbage.c.blob_id.in_(blob_ids(new.manifest))))
                return version_id, bucket.versioning
        except S3Error as err:
            if err.code == "QuotaExceeded":  # the bytes are durable but will never be named
                self.forget(blob_ids(new.manifest))
            raise

    def update_version(self, row: Row[Any], **values: Any) -> None:
        with self.db.write() as s:
            s.execute(update(objects).where(objects.c.id == row.id).values(**values))

    def delete_object(
        self,
        bucket_name: str,
        key: str,
        version_id: str | None,
        protect: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[bool, str | None]:
        """DeleteObject; returns (the result is or was a delete marker, its version id).
        ``protect`` sees the stored headers of a version about to be deleted, in the same
        transaction, and raises to keep it (object lock)."""
        with self.db.write() as s:
            bucket = _locked_bucket(s, bucket_name)
            if version_id is not None:
                if protect is not None:
                    found = s.scalar(
                        select(objects.c.headers).where(
                            objects.c.bucket_id == bucket.id,
                            objects.c.key == key,
                            objects.c.version_id == version_id,
                        )
                    )
                    if found is not None:
                        protect(dict(found))
                return _delete_exact(s, bucket, key, version_id)
            if bucket.versioning == "":
                _delete_rows(s, bucket.id, [objects.c.key == key])
                return False, None
            marker_id = _next_version_id(bucket)
            _retire(s, bucket, key, marker_id)
            s.execute(insert(objects).values(**_marker_values(bucket, key, marker_id)))
            return True, marker_id

    def list_latest(
        self, bucket: Bucket, prefix: str, after: str | None, limit: int
    ) -> list[Row[Any]]:
        """Up to ``limit`` current, non-deleted versions with keys after ``after``, in order."""
        cond = [
            objects.c.bucket_id == bucket.id,
            objects.c.is_latest.is_(True),
            objects.c.delete_marker.is_(False),
        ]
        cond += _key_range(prefix, after)
        stmt = select(objects).where(*cond).order_by(objects.c.key).limit(limit)
        with self.db.read() as s:
            return [r for r in s.execute(stmt) if r.key.startswith(prefix)]

    def list_versions(
        self, bucket: Bucket, prefix: str, after: str | None, limit: int
    ) -> list[Row[Any]]:
        """Every version, keys in order and newest first within a key."""
        cond = [objects.c.bucket_id == bucket.id, *_key_range(prefix, after)]
        stmt = (
            select(objects)
            .where(*cond)
            .order_by(objects.c.key, objects.c.is_latest.desc(), objects.c.id.desc())
            .limit(limit)
        )
        with self.db.read() as s:
            return [r for r in s.execute(stmt) if r.key.startswith(prefix)]

    # --- garbage ----------------------------------------------------------------------------

    def dead_blobs(self, now: datetime, leeway: timedelta, limit: int = 1000) -> list[Row[Any]]:
        stmt = select(garbage).where(garbage.c.dead_since < now - leeway).limit(limit)
        with self.db.read() as s:
            return list(s.execute(stmt))

    def drop_garbage(self, ids: Sequence[int]) -> None:
        with self.db.write() as s:
            s.execute(delete(garbage).where(garbage.c.id.in_(ids)))

    def bucket_usage(self, bucket: Bucket) -> tuple[int, int]:
        with self.db.read() as s:
            row = s.execute(
                select(buckets.c.object_count, buckets.c.byte_count).where(
                    buckets.c.id == bucket.id
                )
            ).one()
        return int(row[0]), int(row[1])


def abort_all_uploads(s: Session, bucket_id: int) -> None:
    ids = list(s.scalars(select(uploads.c.id).where(uploads.c.bucket_id == bucket_id)))
    for upload_pk in ids:
        _drop_upload(s, upload_pk)


def _drop_upload(s: Session, upload_pk: int) -> None:
    blobs = list(s.scalars(select(parts.c.blob_id).where(parts.c.upload_id == upload_pk)))
    _bury(s, blobs, utcnow())
    s.execute(delete(parts).where(parts.c.upload_id == upload_pk))
    s.execute(delete(uploads).where(uploads.c.id == upload_pk))


def _exists(own: bool, name: str) -> S3Error:
    code = "BucketAlreadyOwnedByYou" if own else "BucketAlreadyExists"
    return S3Error(code, BucketName=name)


def _locked_bucket(s: Session, name: str) -> Bucket:
    """Re-read the bucket inside the write transaction (its versioning may have changed);
    on PostgreSQL the row lock serialises writers of one bucket's counters."""
    stmt = select(buckets).where(buckets.c.name == name)
    if s.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = s.execute(stmt).first()
    if row is None:
        raise S3Error("NoSuchBucket", BucketName=name)
    return _bucket(row)


def _next_version_id(bucket: Bucket) -> str:
    return new_version_id() if bucket.versioning == "Enabled" else NULL_VERSION


def _retire(s: Session, bucket: Bucket, key: str, version_id: str) -> None:
    """The key's current version stops being latest; a "null" version being replaced goes."""
    if version_id == NULL_VERSION:
        _delete_rows(s, bucket.id, [objects.c.key == key, objects.c.version_id == NULL_VERSION])
    s.execute(
        update(objects)
        .where(
            objects.c.bucket_id == bucket.id,
            objects.c.key == key,
            objects.c.is_latest.is_(True),
        )
        .values(is_latest=False)
    )


def _delete_rows(s: Session, bucket_id: int, cond: list[Any]) -> list[Row[Any]]:
    rows = list(s.execute(select(objects).where(objects.c.bucket_id == bucket_id, *cond)))
    if not rows:
        return rows
    s.execute(delete(objects).where(objects.c.id.in_([r.id for r in rows])))
    live = [r for r in rows if not r.delete_marker]
    _count(s, bucket_id, -len(live), -sum(r.size for r in live))
    _bury(s, [b for r in live for b in blob_ids(r.manifest)], utcnow())
    return rows


def _delete_exact(s: Session, bucket: Bucket, key: str, version_id: str) -> tuple[bool, str]:
    rows = _delete_rows(s, bucket.id, [objects.c.key == key, objects.c.version_id == version_id])
    if rows and rows[0].is_latest:
        newest = s.scalar(
            select(func.max(objects.c.id)).where(
                objects.c.bucket_id == bucket.id, objects.c.key == key
            )
        )
        if newest is not None:
            s.execute(update(objects).where(objects.c.id == newest).values(is_latest=True))
    return (bool(rows[0].delete_marker) if rows else False), version_id


def _bury(s: Session, ids: Sequence[str], when: datetime) -> None:
    """Hand blobs to the collector (replacing any intent row so each blob has one row)."""
    if not ids:
        return
    s.execute(delete(garbage).where(garbage.c.blob_id.in_(list(ids))))
    s.execute(insert(garbage), [{"blob_id": b, "dead_since": when} for b in ids])


def _count(s: Session, bucket_id: int, objects_: int, bytes_: int) -> None:
    if objects_ == 0 and bytes_ == 0:
        return
    s.execute(
        update(buckets)
        .where(buckets.c.id == bucket_id)
        .values(
            object_count=buckets.c.object_count + objects_,
            byte_count=buckets.c.byte_count + bytes_,
        )
    )


def _key_range(prefix: str, after: str | None) -> list[Any]:
    cond: list[Any] = []
    if prefix:
        cond.append(objects.c.key >= prefix)
        upper = _successor(prefix)
        if upper is not None:
            cond.append(objects.c.key < upper)
    if after is not None:
        cond.append(objects.c.key > after)
    return [and_(*cond)] if cond else []


def _successor(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with ``prefix``."""
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return None
    return prefix[:-1] + chr(last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000)


def _version_values(bucket: Bucket, key: str, version_id: str, new: NewVersion) -> dict[str, Any]:
    return {
        "bucket_id": bucket.id,
        "key": key,
        "version_id": version_id,
        "is_latest": True,
        "delete_marker": False,
        "size": new.size,
        "etag": new.etag,
        "content_type": new.content_type,
        "meta": new.meta,
        "headers": new.headers,
        "checksums": new.checksums,
        "manifest": new.manifest,
        "parts": new.parts,
        "owner_id": new.owner_id,
        "owner_name": new.owner_name,
        "acl": new.acl,
        "tags": new.tags,
        "storage_class": new.storage_class,
        "modified": utcnow(),
    }


def _marker_values(bucket: Bucket, key: str, version_id: str) -> dict[str, Any]:
    return {
        "bucket_id": bucket.id,
        "key": key,
        "version_id": version_id,
        "is_latest": True,
        "delete_marker": True,
        "size": 0,
        "etag": "",
        "content_type": "",
        "meta": {},
        "headers": {},
        "checksums": {},
        "manifest": [],
        "owner_id": bucket.owner_id,
        "owner_name": bucket.owner_name,
        "acl": {},
        "modified": utcnow(),
    }
