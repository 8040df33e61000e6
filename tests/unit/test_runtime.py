"""Management server rows: a server that stops heartbeating is marked Down by the others."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from cumulo.common.settings import load_settings
from cumulo.common.time import utcnow
from cumulo.db.migrate import upgrade
from cumulo.db.models import ManagementServer
from cumulo.services.runtime import DOWN_AFTER, open_runtime


def test_silent_servers_are_marked_down_and_a_stopped_one_says_so(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    upgrade(settings.database_url)
    alive, dead = open_runtime(settings), open_runtime(settings)
    alive.register_server()
    dead.register_server()
    with alive.db.write() as session:
        session.execute(
            update(ManagementServer)
            .where(ManagementServer.id == dead.server_id)
            .values(last_seen=utcnow() - timedelta(seconds=DOWN_AFTER + 5))
        )
    alive.heartbeat_server()
    with alive.db.read() as session:
        states = dict(session.execute(select(ManagementServer.id, ManagementServer.state)).all())
    assert states == {alive.server_id: "Up", dead.server_id: "Down"}
    alive.deregister_server()
    with alive.db.read() as session:
        state = session.scalar(
            select(ManagementServer.state).where(ManagementServer.id == alive.server_id)
        )
    assert state == "Down"
    alive.db.dispose()
    dead.db.dispose()
