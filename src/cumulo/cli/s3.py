"""The ``cumulo s3`` command: serve the S3 API (settings in the ``[s3]`` section), and
``cumulo s3 admin …``: the admin API's client (users, limits, usage; see cli/s3admin.py)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from cumulo.common.settings import Settings


def register(sub: Any) -> None:
    """Add this module's subcommands to the top-level parser's subparsers."""
    s3 = sub.add_parser("s3", help="run the S3 object store")
    s3.add_argument("--host", help="listen address (default: s3.host, loopback)")
    s3.add_argument("--port", type=int, help="listen port (default: s3.port, 7480)")
    s3.set_defaults(fn=cmd_s3)
    from cumulo.cli import s3admin

    sub3 = s3.add_subparsers(dest="s3_cmd")
    admin = sub3.add_parser("admin", help="S3 users, limits and usage through the admin API")
    s3admin.register(admin)
    admin.set_defaults(fn=s3admin.cmd_admin)


def cmd_s3(settings: Settings, args: argparse.Namespace) -> int:
    from cumulo.objectstore.server import serve

    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if updates:
        settings = settings.model_copy(update={"s3": settings.s3.model_copy(update=updates)})
    asyncio.run(serve(settings))
    return 0
