"""The S3 service's metadata, read for the cloud's usage ledger: the adapter the management
server's entry point hands ``services.usage.object_storage``.

Services may import ``db`` only, never ``objectstore``; an entry point may know both. This
adapter opens the S3 metadata database (``settings.s3_meta_url``) and reads it through
``objectstore/report.py``'s seam, turning its rows into the service's plain records.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect

from cumulo.common.settings import Settings
from cumulo.db.engine import Database
from cumulo.objectstore import report
from cumulo.objectstore.meta.schema import buckets, usage
from cumulo.services.usage import object_storage as osu


class S3MetaSource:
    """Reads on demand; ``None`` while the S3 service has never created its tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _ready(self) -> bool:
        names = set(inspect(self._db.read_engine).get_table_names())
        return {usage.name, buckets.name} <= names

    def access(self, start: datetime, end: datetime) -> list[osu.AccessCount] | None:
        if not self._ready():
            return None
        return [
            osu.AccessCount(owner, r.hour, r.bucket, r.operation, r.count, r.bytes_in, r.bytes_out)
            for owner, r in report.access_rows(self._db, start, end)
        ]

    def storage(self) -> list[osu.StoredBucket] | None:
        if not self._ready():
            return None
        return [
            osu.StoredBucket(owner, b.bucket, b.bytes) for owner, b in report.storage_rows(self._db)
        ]


def wire_object_storage(settings: Settings) -> S3MetaSource:
    """Meter object storage from this server: its usage thread and aggregation runs read the
    S3 metadata database named by the settings."""
    source = S3MetaSource(Database(settings.s3_meta_url, pool_size=2))
    osu.register(source)
    return source
