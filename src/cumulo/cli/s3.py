"""The `cumulo s3` commands (filled in by the s3 work; registered by cli.main)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add this module's subcommands to the top-level parser's subparsers."""
    del sub


def _unused(_: argparse.Namespace) -> None:
    """Placeholder so the module's imports stay in use until its commands land."""
