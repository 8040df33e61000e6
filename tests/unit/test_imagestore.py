"""The Directory image store and the streaming, checksummed download, without a server."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from cumulo.db.models_infra import ImageStore
from cumulo.services.storage.download import Checksum, DownloadFailed, check_url, fetch
from cumulo.services.storage.imagestore import DirectoryStore, StoreUnavailable, backend_for

BODY = b"0123456789abcdef" * 10_000


def serve(body: bytes = BODY, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body))


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_commit_makes_the_file_appear_and_abort_leaves_nothing(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    writer = store.open_writer("a/b/t.qcow2")
    writer.write(b"hello")
    assert not store.exists("a/b/t.qcow2")
    writer.commit()
    assert store.exists("a/b/t.qcow2") and store.size("a/b/t.qcow2") == 5
    aborted = store.open_writer("a/b/u.qcow2")
    aborted.write(b"half")
    aborted.abort()
    assert leftovers(tmp_path) == [tmp_path / "a/b/t.qcow2"]
    store.delete("a/b/t.qcow2")
    store.delete("a/b/t.qcow2")  # a second delete is not an error
    assert leftovers(tmp_path) == []


def test_paths_cannot_leave_the_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        DirectoryStore(tmp_path / "root").open_writer("../escape")


@pytest.mark.parametrize(
    ("text", "algorithm"),
    [
        ("{SHA-256}" + hashlib.sha256(BODY).hexdigest(), "sha256"),
        ("{MD5}" + hashlib.md5(BODY).hexdigest(), "md5"),
        (hashlib.sha1(BODY).hexdigest(), "sha1"),
        (hashlib.sha512(BODY).hexdigest().upper(), "sha512"),
    ],
)
def test_checksum_forms(text: str, algorithm: str) -> None:
    assert Checksum.parse(text).algorithm == algorithm


@pytest.mark.parametrize("text", ["xyz", "abc", "{SHA-3}00", "{SHA-256}" + "0" * 10])
def test_bad_checksums_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Checksum.parse(text)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/y", "http://"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(ValueError):
        check_url(url)


def test_fetch_verifies_and_commits(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    seen: list[int] = []
    size = fetch(
        "http://x/t",
        store.open_writer("t"),
        checksum=Checksum.parse(hashlib.sha256(BODY).hexdigest()),
        max_bytes=10**9,
        transport=serve(),
        progress=lambda done, total: seen.append(done),
    )
    assert size == len(BODY) and (tmp_path / "t").read_bytes() == BODY
    assert seen and seen[-1] == len(BODY)


@pytest.mark.parametrize(
    ("transport", "checksum", "max_bytes", "reason"),
    [
        (serve(), "0" * 64, 10**9, "checksum mismatch"),
        (serve(status=404), None, 10**9, "HTTP 404"),
        (serve(), None, 100, "limit"),
    ],
)
def test_failed_fetch_leaves_nothing(
    tmp_path: Path,
    transport: httpx.MockTransport,
    checksum: str | None,
    max_bytes: int,
    reason: str,
) -> None:
    store = DirectoryStore(tmp_path)
    with pytest.raises(DownloadFailed, match=reason):
        fetch(
            "http://x/t",
            store.open_writer("t"),
            checksum=Checksum.parse(checksum) if checksum else None,
            max_bytes=max_bytes,
            transport=transport,
        )
    assert leftovers(tmp_path) == []


def test_connection_errors_are_download_failures(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(DownloadFailed, match="connection refused"):
        fetch(
            "http://x/t",
            DirectoryStore(tmp_path).open_writer("t"),
            checksum=None,
            max_bytes=10,
            transport=httpx.MockTransport(refuse),
        )
    assert leftovers(tmp_path) == []


def test_only_directory_stores_are_writable(tmp_path: Path) -> None:
    nfs = ImageStore(name="n", provider="NFS", url="nfs://10.0.0.1/x")
    with pytest.raises(StoreUnavailable, match="only Directory"):
        backend_for(nfs)
    local = ImageStore(name="d", provider="Directory", url=f"file://{tmp_path}")
    assert isinstance(backend_for(local), DirectoryStore)
