"""The ``cumulo`` command: run the cloud's processes, administer it, and call its API.

Operator commands (``up``, ``server``, ``agent``, ``s3``, ``db``, ``zone``, ``image``) are
argparse subcommands here; anything else (``list zones``, ``api listApis``, ``profile``,
``shell`` …) is the CloudMonkey-style client in ``client_commands``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from cumulo.common.logging import configure_logging
from cumulo.common.settings import Settings, ensure_data_dir, load_settings


def cmd_db_upgrade(settings: Settings, _: argparse.Namespace) -> int:
    from cumulo.db.migrate import upgrade

    ensure_data_dir(settings)
    upgrade(settings.database_url)
    print(f"database at {_safe_url(settings.database_url)} is up to date")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def init_cloud(settings: Settings) -> str | None:
    """Migrate, create the first rows, and on first run the admin's password and keys."""
    from cumulo.cli.client import write_private
    from cumulo.db.migrate import upgrade
    from cumulo.db.models import User
    from cumulo.services.identity.bootstrap import ensure_cloud
    from cumulo.services.identity.keys import register_keys
    from cumulo.services.runtime import open_runtime

    ensure_data_dir(settings)
    upgrade(settings.database_url)
    rt = open_runtime(settings)
    try:
        with rt.db.write() as session:
            password = ensure_cloud(session)
            if password is None:
                return None
            session.flush()
            admin = session.query(User).filter(User.is_default.is_(True)).one()
            api_key, secret = register_keys(session, rt.box, admin)
    finally:
        rt.db.dispose()
    write_private(settings.admin_password_file, password + "\n")
    endpoint = f"http://{settings.api.host}:{settings.api.port}/client/api"
    write_private(
        settings.data_dir / "admin.ini",
        f"[cloudstack]\nendpoint = {endpoint}\nkey = {api_key}\nsecret = {secret}\n",
    )
    return password


def cmd_init(settings: Settings, _: argparse.Namespace) -> int:
    password = init_cloud(settings)
    _print_welcome(settings, password)
    return 0


def _print_welcome(settings: Settings, password: str | None) -> None:
    api = settings.api
    print(f"Cumulo API:      http://{api.host}:{api.port}/client/api")
    print(f"Dashboard:       http://{api.host}:{api.port}/client/")
    print("Log in as:       admin (domain ROOT)")
    if password is not None:
        print(f"Admin password:  {password}   (shown once; also in {settings.admin_password_file})")
    else:
        print(f"Admin password:  in {settings.admin_password_file}")
    print(f"API keys (cs):   CLOUDSTACK_CONFIG={settings.data_dir / 'admin.ini'} cs listUsers")
    sys.stdout.flush()


def cmd_server(settings: Settings, _: argparse.Namespace) -> int:
    from cumulo.api.server import ManagementServer
    from cumulo.cli.wiring import wire_simulator
    from cumulo.db.migrate import SchemaBehind

    try:
        server = ManagementServer(settings)
    except SchemaBehind as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return 2
    wire_simulator(server.rt)
    from cumulo.cli.s3_metering import wire_object_storage

    wire_object_storage(settings)  # object storage in the usage ledger (docs/usage.md)
    asyncio.run(server.serve())
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from cumulo.cli import box

    password = init_cloud(settings)
    _print_welcome(settings, password)
    return box.run(settings)


def cmd_zone_apply(_: Settings, args: argparse.Namespace) -> int:
    from cumulo.cli.client import ApiError, Client, load_credentials
    from cumulo.cli.zone import ZoneApplier, ZoneFileError, load

    try:
        spec = load(Path(args.file))
        client = Client(load_credentials(Path(args.credentials) if args.credentials else None))
        zone_id = ZoneApplier(client).apply(spec)
    except (ZoneFileError, ApiError, FileNotFoundError) as err:
        print(f"cumulo: {err}", file=sys.stderr)
        return 1
    print(f"zone {spec['name']} is {zone_id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cumulo",
        description="Run and administer a Cumulo cloud. API commands: `cumulo help`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "up",
        help="run a whole cloud on this machine",
        description="Run a whole cloud on this machine: migrate the database, create the admin "
        "on first run (password shown once), then supervise the management server, the S3 "
        "service and, when QEMU is installed, a local KVM host with a ready zone 'box'. "
        "Settings: docs/configuration.md.",
    ).set_defaults(fn=cmd_up)
    sub.add_parser(
        "server",
        help="run a management server",
        description="Run one management server process (the CloudStack API, the dashboard, "
        "agent connections and job workers) on the configured database. Any number can run "
        "on one PostgreSQL database; run `cumulo db upgrade` first.",
    ).set_defaults(fn=cmd_server)
    sub.add_parser(
        "init",
        help="migrate the database and create the admin on first run",
        description="Migrate the database and, on first run, create the admin account with "
        "a random password and API keys (written 0600 to the data directory).",
    ).set_defaults(fn=cmd_init)
    db = sub.add_parser("db", help="database administration").add_subparsers(
        dest="db_cmd", required=True
    )
    db.add_parser(
        "upgrade",
        help="apply every pending migration",
        description="Apply every pending database migration (safe to run again; servers "
        "refuse to start on a database behind their code).",
    ).set_defaults(fn=cmd_db_upgrade)
    zone = sub.add_parser("zone", help="describe and build zones").add_subparsers(
        dest="zone_cmd", required=True
    )
    apply = zone.add_parser(
        "apply",
        help="create what a zone file describes and is missing",
        description="Create, through the public API, what a zone's YAML description holds and "
        "the cloud lacks (zone, physical networks, pods, clusters, hosts, storage); running it "
        "again changes nothing. Format: docs/zones.md.",
    )
    apply.add_argument("file", help="the zone's YAML description")
    apply.add_argument(
        "--credentials", help="a cs-style ini file (default: CLOUDSTACK_* or <data_dir>/admin.ini)"
    )
    apply.set_defaults(fn=cmd_zone_apply)
    from cumulo.cli import agent, image, s3

    for module in (agent, image, s3):
        module.register(sub)
    return parser


OPERATOR_COMMANDS = frozenset({"up", "server", "init", "db", "zone", "agent", "image", "s3"})


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] not in OPERATOR_COMMANDS and words[0] not in ("-h", "--help"):
        from cumulo.cli.client_commands import run

        return run(words)
    if not words:
        from cumulo.cli.client_commands import USAGE_TEXT

        sys.stdout.write(USAGE_TEXT)
        return 2
    args = build_parser().parse_args(words)
    settings = load_settings()
    configure_logging(settings.log.level, settings.log.format, settings.log.file)
    fn: Callable[[Settings, argparse.Namespace], int] = args.fn
    return fn(settings, args)
