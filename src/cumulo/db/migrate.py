"""Schema migrations with Alembic, driven from code so no alembic.ini needs to be found."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaBehind(RuntimeError):
    """The database is older than this code; serving it could corrupt data."""


def _config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(_config(url), revision)


def known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(_config("sqlite://")).walk_revisions()}


def require_current(engine: Engine) -> None:
    """Refuse to serve a database this code does not match, saying which side to upgrade."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if current is not None and current not in known_revisions():
        raise SchemaBehind(
            f"database schema {current} is newer than this Cumulo (which knows up to {head}): "
            "upgrade Cumulo on this server"
        )
    raise SchemaBehind(
        f"database schema is at {current or 'nothing'} but this Cumulo needs {head}: "
        "run 'cumulo db upgrade' first"
    )
