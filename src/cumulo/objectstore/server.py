"""One ``cumulo s3`` process: the metadata store, the blob backend, identity, and uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn
from sqlalchemy import event

from cumulo.common.secretbox import SecretBox, load_or_create_key
from cumulo.common.settings import Settings, ensure_data_dir
from cumulo.db.engine import Database
from cumulo.objectstore.admin import Admin
from cumulo.objectstore.app import S3App
from cumulo.objectstore.blobs.fs import FsBlobStore
from cumulo.objectstore.console_cors import ConsoleCors
from cumulo.objectstore.gc import run_collector
from cumulo.objectstore.handlers.base import Service
from cumulo.objectstore.identity import CloudIdentity, Identities
from cumulo.objectstore.lifecycle import run_lifecycle
from cumulo.objectstore.meta.migrate import upgrade
from cumulo.objectstore.meta.store import MetaStore
from cumulo.objectstore.meta.uploads import UploadStore
from cumulo.objectstore.meta.users import UserStore
from cumulo.objectstore.usage import UsageMeter, run_flusher

log = logging.getLogger(__name__)


def open_meta(settings: Settings) -> Database:
    """The metadata database, migrated. On SQLite each commit is fsynced (synchronous=FULL):
    a PUT is acknowledged only once its version row would survive a power cut."""
    db = Database(settings.s3_meta_url, settings.database.pool_size, settings.database.echo)
    if db.is_sqlite:
        for engine in (db.engine, db.read_engine):
            event.listen(engine, "connect", _full_sync)
    upgrade(db.engine)
    return db


def _full_sync(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def build_service(settings: Settings) -> tuple[Service, Identities]:
    ensure_data_dir(settings)
    meta_db = open_meta(settings)
    meta = MetaStore(meta_db)
    svc = Service(
        settings=settings.s3,
        meta=meta,
        uploads=UploadStore(meta),
        blobs=FsBlobStore(settings.s3_blob_dir),
    )
    cloud_db = Database(settings.database_url, settings.database.pool_size)
    box = SecretBox(load_or_create_key(settings.master_key_file))
    identity = Identities(UserStore(meta_db, box), CloudIdentity(cloud_db, box))
    svc.lookup = identity.lookup
    svc.owner_exists = identity.owner_exists
    svc.display_name = identity.display_name
    svc.resolve_email = identity.owner_by_email
    return svc, identity


async def serve(settings: Settings) -> None:
    svc, identity = build_service(settings)
    meter = UsageMeter(svc.meta.db)
    config = uvicorn.Config(
        ConsoleCors(
            S3App(svc, identity, meter, Admin(identity.users, identity, meter)),
            settings.s3_console_origins,
        ),
        host=settings.s3.host,
        port=settings.s3.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        h11_max_incomplete_event_size=64 * 1024,
    )
    server = uvicorn.Server(config)
    tasks = [
        asyncio.create_task(run_collector(svc)),
        asyncio.create_task(run_flusher(meter, settings.s3.usage_flush_seconds)),
        asyncio.create_task(
            run_lifecycle(
                svc, settings.s3.lifecycle_interval_seconds, settings.s3.lifecycle_day_seconds
            )
        ),
    ]
    try:
        await server.serve()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        svc.meta.db.dispose()
