"""Pieces that need no server: schema versions, the listing scan, the form reader, ranges
and conditions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from cumulo.objectstore.errors import S3Error
from cumulo.objectstore.handlers.conditions import check_read, parse_range
from cumulo.objectstore.handlers.form import FormReader
from cumulo.objectstore.handlers.listing import collect
from cumulo.objectstore.meta.migrate import HEAD, current_version, upgrade


def test_schema_upgrade_is_idempotent_and_refuses_newer(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    assert upgrade(engine) == HEAD
    assert upgrade(engine) == HEAD
    with engine.begin() as conn:
        assert current_version(conn) == HEAD
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
        assert {"s3_buckets", "s3_objects", "s3_uploads", "s3_parts", "s3_garbage"} <= tables
        conn.execute(text("UPDATE s3_schema_version SET version = :v"), {"v": HEAD + 1})
    with pytest.raises(RuntimeError, match="newer"):
        upgrade(engine)


def _fetch(keys: list[str]) -> Any:
    def fetch(prefix: str, after: str | None, limit: int) -> list[Any]:
        found = [k for k in sorted(keys) if k.startswith(prefix) and (after is None or k > after)]
        return [SimpleNamespace(key=k) for k in found[:limit]]

    return fetch


def test_collect_rolls_up_prefixes_and_pages() -> None:
    keys = ["a", "b/1", "b/2", "b/3/x", "c", "d/1"]
    page = collect(_fetch(keys), "", "/", None, 10)
    assert [i if isinstance(i, str) else i.key for i in page.items] == ["a", "b/", "c", "d/"]
    first = collect(_fetch(keys), "", "/", None, 2)
    assert first.truncated and first.last == "b/"
    rest = collect(_fetch(keys), "", "/", first.last, 10)
    assert [i if isinstance(i, str) else i.key for i in rest.items] == ["c", "d/"]
    nested = collect(_fetch(keys), "b/", "/", None, 10)
    assert [i if isinstance(i, str) else i.key for i in nested.items] == ["b/1", "b/2", "b/3/"]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("chunk", [1, 7, 64, 100_000])
def test_form_reader_streams_the_file(chunk: int) -> None:
    boundary = b"XyZ"
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="key"\r\n\r\nk1\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + b"0123456789\r\n--Xy" * 50 + b"\r\n--XyZ--\r\n"
    )

    async def run() -> tuple[str, bytes]:
        reader = FormReader(_chunks(body, chunk), boundary)
        await reader.start()
        part = await reader.next_part()
        assert part is not None and part["name"] == "key"
        key = (await reader.value()).decode()
        part = await reader.next_part()
        assert part is not None and part["filename"] == "f.txt"
        data = b"".join([c async for c in reader.stream()])
        assert await reader.next_part() is None
        return key, data

    key, data = asyncio.run(run())
    assert key == "k1" and data == b"0123456789\r\n--Xy" * 50


def test_ranges_and_conditions() -> None:
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=0-1,4-5", 100) is None
    assert parse_range("items=0-1", 100) is None
    with pytest.raises(S3Error):
        parse_range("bytes=100-", 100)
    modified = datetime(2026, 1, 1, tzinfo=UTC)
    check_read({"if-match": '"abc"'}, "abc", modified)
    with pytest.raises(S3Error) as err:
        check_read({"if-none-match": '"abc"'}, "abc", modified)
    assert err.value.code == "NotModified"
    with pytest.raises(S3Error) as err:
        check_read({"if-match": '"zzz"'}, "abc", modified)
    assert err.value.code == "PreconditionFailed"


def test_schema_v2_adds_the_column_to_a_v1_database(tmp_path: Path) -> None:
    """A database made by schema version 1 (no public_access_block column) is upgraded."""
    from cumulo.objectstore.meta import migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        migrate.schema.metadata.create_all(conn)
        conn.execute(text("ALTER TABLE s3_buckets DROP COLUMN public_access_block"))
        conn.execute(text("INSERT INTO s3_schema_version (id, version) VALUES (1, 1)"))
    assert upgrade(engine) == HEAD >= 2
    with engine.begin() as conn:
        cols = {r[1] for r in conn.execute(text("PRAGMA table_info(s3_buckets)"))}
        assert "public_access_block" in cols


def test_schema_v3_adds_users_and_limits_to_a_v2_database(tmp_path: Path) -> None:
    """A version-2 database (no s3_users, no s3_limits) gains both tables, empty."""
    from cumulo.objectstore.meta import migrate

    engine = create_engine(f"sqlite:///{tmp_path / 'v2.db'}")
    with engine.begin() as conn:
        migrate.schema.metadata.create_all(conn)
        conn.execute(text("DROP TABLE s3_users"))
        conn.execute(text("DROP TABLE s3_limits"))
        conn.execute(text("INSERT INTO s3_schema_version (id, version) VALUES (1, 2)"))
    assert upgrade(engine) == HEAD >= 3
    with engine.begin() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM s3_users")).scalar() == 0
        assert conn.execute(text("SELECT COUNT(*) FROM s3_limits")).scalar() == 0
        assert current_version(conn) == HEAD
