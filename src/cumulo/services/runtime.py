"""The long-lived parts one server process shares between requests and job workers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, update
from sqlalchemy.engine import make_url

from cumulo import __version__
from cumulo.agentrpc.hub import Hub
from cumulo.common.secretbox import SecretBox, load_or_create_key
from cumulo.common.settings import Settings, ensure_data_dir
from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.migrate import SchemaBehind, require_current
from cumulo.db.models import ManagementServer
from cumulo.services.config import ConfigStore
from cumulo.services.identity.auth import KeyCache
from cumulo.services.identity.roles import RuleCache
from cumulo.services.infra.sim_mocks import MockBook

# A server whose heartbeat (every 10 s) is this old is marked Down by the others.
DOWN_AFTER = 60


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
    hub: Hub = field(default_factory=Hub)
    sim_mocks: MockBook | None = None

    def __post_init__(self) -> None:
        if self.keys is None:
            self.keys = KeyCache(self.box, self.settings.api.key_cache_seconds)
        if self.sim_mocks is None:
            self.sim_mocks = MockBook(self.db)

    @property
    def mocks(self) -> MockBook:
        assert self.sim_mocks is not None
        return self.sim_mocks

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
        """Mark ourselves alive, and servers silent for DOWN_AFTER seconds Down (they died
        without saying so: kill -9, a lost machine)."""
        now = utcnow()
        with self.db.write() as session:
            session.execute(
                update(ManagementServer)
                .where(ManagementServer.id == self.server_id)
                .values(last_seen=now, state="Up")
            )
            session.execute(
                update(ManagementServer)
                .where(
                    ManagementServer.state == "Up",
                    ManagementServer.last_seen < now - timedelta(seconds=DOWN_AFTER),
                )
                .values(state="Down")
            )

    def deregister_server(self) -> None:
        with self.db.write() as session:
            session.execute(
                update(ManagementServer)
                .where(ManagementServer.id == self.server_id)
                .values(state="Down", last_seen=utcnow())
            )


def open_runtime(settings: Settings, *, require_schema: bool = False) -> Runtime:
    """The shared parts of a process. With ``require_schema``, a database that is missing or
    behind is refused before anything (data directory, master key) is created."""
    if require_schema:
        _check_schema(settings)
    ensure_data_dir(settings)
    db = Database(settings.database_url, settings.database.pool_size, settings.database.echo)
    return Runtime(
        settings=settings, db=db, box=SecretBox(load_or_create_key(settings.master_key_file))
    )


def _check_schema(settings: Settings) -> None:
    url = make_url(settings.database_url)
    if settings.is_sqlite and url.database and not Path(url.database).exists():
        raise SchemaBehind(
            f"there is no database at {url.database}: run 'cumulo db upgrade' (or 'cumulo init')"
        )
    engine = create_engine(settings.database_url)
    try:
        require_current(engine)
    finally:
        engine.dispose()
