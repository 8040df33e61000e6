"""The object store's own tables, on their own ``MetaData`` (its own database by default).

Keys compare byte-wise as S3 lists them (UTF-8 binary order): SQLite's default TEXT collation
already does, PostgreSQL needs the "C" collation on key columns.

An object *version* row appears only once its bytes are durable and checked: the row is the
commit point, so a reader never sees a partial object. Its bytes are a manifest (a JSON list of
``[blob_id, size]``): one blob for a plain PUT, the parts' blobs for a completed multipart
upload, so completing copies no data.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def _key_type() -> String:
    return String(1024).with_variant(String(1024, collation="C"), "postgresql")


# The schema version of this store (see migrate.py): one row.
schema_version = Table(
    "s3_schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

buckets = Table(
    "s3_buckets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    Column("owner_id", String(64), nullable=False, index=True),
    Column("owner_name", String(255), nullable=False),
    Column("region", String(64), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    # "" (never enabled), "Enabled" or "Suspended".
    Column("versioning", String(16), nullable=False, default=""),
    Column("acl", JSON, nullable=False),
    Column("policy", Text),
    Column("cors", Text),
    Column("lifecycle", Text),
    Column("tags", JSON),
    # PublicAccessBlockConfiguration as {"BlockPublicAcls": bool, ...} (schema version 2).
    Column("public_access_block", JSON),
    # Object lock: None (never enabled) or {"rule": default retention or None} (version 4).
    Column("object_lock", JSON),
    # Usage counters of current and noncurrent versions, kept in the writing transaction.
    Column("object_count", BigInteger, nullable=False, default=0),
    Column("byte_count", BigInteger, nullable=False, default=0),
)

objects = Table(
    "s3_objects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("bucket_id", ForeignKey("s3_buckets.id"), nullable=False),
    Column("key", _key_type(), nullable=False),
    # "null" for versions written while versioning was never enabled or suspended.
    Column("version_id", String(64), nullable=False),
    Column("is_latest", Boolean, nullable=False),
    Column("delete_marker", Boolean, nullable=False, default=False),
    Column("size", BigInteger, nullable=False, default=0),
    Column("etag", String(64), nullable=False, default=""),
    Column("content_type", String(255), nullable=False, default=""),
    # User metadata (x-amz-meta-*) and the other stored headers (Content-Encoding, …).
    Column("meta", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("checksums", JSON, nullable=False),
    Column("manifest", JSON, nullable=False),
    # Part sizes of a multipart object, for GET ?partNumber= and the ETag's part count.
    Column("parts", JSON),
    Column("owner_id", String(64), nullable=False),
    Column("owner_name", String(255), nullable=False),
    Column("acl", JSON, nullable=False),
    Column("tags", JSON),
    Column("storage_class", String(32), nullable=False, default="STANDARD"),
    Column("modified", DateTime(timezone=True), nullable=False),
    UniqueConstraint("bucket_id", "key", "version_id", name="uq_s3_objects_version"),
    Index("ix_s3_objects_latest", "bucket_id", "is_latest", "key"),
)

uploads = Table(
    "s3_uploads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("upload_id", String(64), nullable=False, unique=True),
    Column("bucket_id", ForeignKey("s3_buckets.id"), nullable=False),
    Column("key", _key_type(), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("owner_name", String(255), nullable=False),
    Column("content_type", String(255), nullable=False, default=""),
    Column("meta", JSON, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("acl", JSON, nullable=False),
    Column("tags", JSON),
    Column("storage_class", String(32), nullable=False, default="STANDARD"),
    Column("initiated", DateTime(timezone=True), nullable=False),
    Index("ix_s3_uploads_bucket_key", "bucket_id", "key"),
)

parts = Table(
    "s3_parts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("upload_id", ForeignKey("s3_uploads.id", ondelete="CASCADE"), nullable=False),
    Column("part_number", Integer, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("etag", String(64), nullable=False),
    Column("blob_id", String(64), nullable=False),
    Column("checksums", JSON, nullable=False),
    Column("modified", DateTime(timezone=True), nullable=False),
    UniqueConstraint("upload_id", "part_number", name="uq_s3_parts_number"),
)

# Blobs no version or part refers to any more, reclaimed by the collector after a leeway.
garbage = Table(
    "s3_garbage",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("blob_id", String(64), nullable=False),
    Column("dead_since", DateTime(timezone=True), nullable=False, index=True),
)

# Access counters per account, bucket, operation and hour (Riak CS's access statistics).
usage = Table(
    "s3_usage",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("bucket", String(63), nullable=False, default=""),
    Column("operation", String(64), nullable=False),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("count", BigInteger, nullable=False, default=0),
    Column("bytes_in", BigInteger, nullable=False, default=0),
    Column("bytes_out", BigInteger, nullable=False, default=0),
    UniqueConstraint("owner_id", "bucket", "operation", "hour", name="uq_s3_usage_slot"),
)

# S3-only users (the admin API's): the key pair is theirs, the secret sealed with the cloud's
# SecretBox exactly as CloudStack users' secret keys are (schema version 3).
users = Table(
    "s3_users",
    metadata,
    Column("id", Integer, primary_key=True),
    # The canonical id: what buckets, ACLs and usage rows name as owner.
    Column("canonical_id", String(64), nullable=False, unique=True),
    Column("key_id", String(64), nullable=False, unique=True),
    Column("secret_enc", Text, nullable=False),
    Column("name", String(255), nullable=False),
    Column("email", String(255), nullable=False, unique=True),
    # "enabled" or "disabled".
    Column("status", String(16), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created", DateTime(timezone=True), nullable=False),
)

# Per-owner limits (S3-only users and cloud accounts alike); NULL means unlimited. The row
# is also the lock that serialises a limited owner's writers on PostgreSQL (schema version 3).
limits = Table(
    "s3_limits",
    metadata,
    Column("owner_id", String(64), primary_key=True),
    Column("max_buckets", BigInteger),
    Column("max_bytes", BigInteger),
    Column("max_objects", BigInteger),
)
