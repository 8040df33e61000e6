"""The long-lived parts one server process shares between requests and job workers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from sqlalchemy import select

from cumulo import __version__
from cumulo.common.secretbox import SecretBox, load_or_create_key
from cumulo.common.settings import Settings
from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.models import ManagementServer
from cumulo.services.config import ConfigStore
from cumulo.services.identity.auth import KeyCache
from cumulo.services.identity.roles import RuleCache


@dataclass
class Runtime:
    settings: Settings
    db: Database
    box: SecretBox
    config: ConfigStore = field(default_factory=ConfigStore)
    rules: RuleCache = field(default_factory=RuleCache)
    keys: KeyCache | None = None
    server_id: int = 0
    server_uuid: str = ""
    server_name: str = ""

    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = KeyCache(self.box, self.settings.api.key_cache_seconds)

    @property
    def key_cache(self) -> KeyCache:
        assert self.keys is not None
        return self.keys

    def register_server(self) -> None:
        """One row per running server process: jobs name the server that ran them."""
        name = f"{socket.gethostname()}:{os.getpid()}"
        with self.db.write() as session:
            row = ManagementServer(name=name, pid=os.getpid(), version=__version__)
            session.add(row)
            session.flush()
            self.server_id, self.server_uuid, self.server_name = row.id, row.uuid, name

    def heartbeat_server(self) -> None:
        with self.db.write() as session:
            row = session.scalar(
                select(ManagementServer).where(ManagementServer.id == self.server_id)
            )
            if row is not None:
                row.last_seen = utcnow()


def open_runtime(settings: Settings) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url, settings.database.pool_size, settings.database.echo)
    return Runtime(
        settings=settings, db=db, box=SecretBox(load_or_create_key(settings.master_key_file))
    )
