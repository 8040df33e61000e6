"""Domain commands: list, list children, create, update, delete."""

from __future__ import annotations


def wire_path(path: str) -> str:
    """Domains store "/" and "/a/b/"; CloudStack shows "ROOT" and "ROOT/a/b"."""
    return "ROOT" + path.rstrip("/")
