"""Time in one place: aware UTC datetimes inside, CloudStack's format on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written as UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_wire(value: datetime | None) -> str | None:
    """CloudStack dates look like 2013-04-10T16:52:06-0700."""
    if value is None:
        return None
    return aware(value).strftime("%Y-%m-%dT%H:%M:%S%z")
