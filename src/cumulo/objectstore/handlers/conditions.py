"""Conditional requests (If-Match and friends) and the Range header, as S3 applies them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from cumulo.common.time import aware
from cumulo.objectstore.errors import S3Error


def http_date(value: datetime) -> str:
    # PostgreSQL hands back the session's time zone; HTTP dates are GMT.
    return format_datetime(aware(value).astimezone(UTC).replace(microsecond=0), usegmt=True)


def _parse_date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return aware(parsedate_to_datetime(raw))
    except (TypeError, ValueError):
        return None  # S3 ignores a date it cannot read


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or etag in tags


def check_read(headers: Mapping[str, str], etag: str, modified: datetime) -> None:
    """GET/HEAD preconditions (RFC 7232 order): 412 PreconditionFailed or 304 NotModified."""
    modified = aware(modified).replace(microsecond=0)
    if_match = headers.get("if-match")
    if if_match is not None:
        if not _etag_matches(if_match, etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")
    else:
        since = _parse_date(headers.get("if-unmodified-since"))
        if since is not None and modified > since:
            raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
    if_none = headers.get("if-none-match")
    if if_none is not None:
        if _etag_matches(if_none, etag):
            raise S3Error("NotModified")
    else:
        since = _parse_date(headers.get("if-modified-since"))
        if since is not None and modified <= since:
            raise S3Error("NotModified")


def check_write(headers: Mapping[str, str], current_etag: str | None) -> None:
    """PUT preconditions: ``If-None-Match: *`` (create only) and ``If-Match`` (replace only)."""
    if_none = headers.get("if-none-match")
    if if_none is not None and current_etag is not None and _etag_matches(if_none, current_etag):
        raise S3Error("PreconditionFailed", Condition="If-None-Match")
    if_match = headers.get("if-match")
    if if_match is not None:
        if current_etag is None:
            raise S3Error("NoSuchKey")
        if not _etag_matches(if_match, current_etag):
            raise S3Error("PreconditionFailed", Condition="If-Match")


def parse_range(raw: str | None, size: int) -> tuple[int, int] | None:
    """A single byte range as (start, end exclusive); None means the whole object (no header,
    a header S3 ignores, or several ranges, which S3 answers with the whole object)."""
    if not raw or not raw.startswith("bytes=") or "," in raw:
        return None
    first, sep, last = raw[6:].strip().partition("-")
    if not sep:
        return None
    try:
        if first == "":
            if not last:
                return None
            length = int(last)
            if length == 0:
                raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=raw)
            return max(size - length, 0), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size:
        raise S3Error("InvalidRange", ActualObjectSize=str(size), RangeRequested=raw)
    if end <= start:
        return None
    return start, min(end, size)
