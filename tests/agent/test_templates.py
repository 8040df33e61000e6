"""The template cache on a pool: downloaded once, checksum-verified, never half-written."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.storage.qcow2 import is_qcow2, qemu_img
from cumulo.agent.storage.templates import parse_checksum, prepare_template

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img missing")


def _qcow2(path: Path, size: str = "16M", backing: Path | None = None) -> str:
    extra = ["-b", str(backing), "-F", "qcow2"] if backing else []
    qemu_img("create", "-q", "-f", "qcow2", *extra, str(path), size)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pool_files(pool: Path) -> list[str]:
    return sorted(p.name for p in pool.rglob("*") if p.is_file())


def test_a_template_is_downloaded_once_and_verified(tmp_path: Path) -> None:
    source = tmp_path / "src.qcow2"
    digest = _qcow2(source)
    pool = tmp_path / "pool"
    path = prepare_template("tmpl-1", source.as_uri(), f"{{SHA-256}}{digest}", str(pool))
    assert Path(path) == pool / "templates" / "tmpl-1.qcow2" and is_qcow2(Path(path))
    assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest
    source.unlink()  # cached by template id: the source is not read again
    assert prepare_template("tmpl-1", source.as_uri(), digest, str(pool)) == path
    assert _pool_files(pool) == ["tmpl-1.qcow2"]


def test_a_checksum_mismatch_is_refused_and_leaves_no_file(tmp_path: Path) -> None:
    source = tmp_path / "src.qcow2"
    _qcow2(source)
    pool = tmp_path / "pool"
    with pytest.raises(DriverError, match="checksum mismatch"):
        prepare_template("tmpl-2", source.as_uri(), "0" * 64, str(pool))
    assert _pool_files(pool) == []
    with pytest.raises(DriverError, match="checksum mismatch"):
        prepare_template("tmpl-2", source.as_uri(), "{MD5}" + "0" * 32, str(pool))
    assert _pool_files(pool) == []


def test_a_raw_template_is_stored_as_qcow2(tmp_path: Path) -> None:
    source = tmp_path / "disk.raw"
    source.write_bytes(b"\0" * (1 << 20))
    pool = tmp_path / "pool"
    path = Path(prepare_template("tmpl-3", source.as_uri(), "", str(pool)))
    assert is_qcow2(path) and _pool_files(pool) == ["tmpl-3.qcow2"]


def test_a_qcow2_with_a_backing_file_is_refused(tmp_path: Path) -> None:
    """Its backing file could name any file on the host, for the VM to read."""
    base = tmp_path / "base.qcow2"
    _qcow2(base)
    evil = tmp_path / "evil.qcow2"
    _qcow2(evil, backing=base)
    pool = tmp_path / "pool"
    with pytest.raises(DriverError, match="backing file"):
        prepare_template("tmpl-4", evil.as_uri(), "", str(pool))
    assert _pool_files(pool) == []


def test_bad_urls_ids_and_checksums_are_refused(tmp_path: Path) -> None:
    pool = str(tmp_path / "pool")
    with pytest.raises(DriverError, match="scheme"):
        prepare_template("t5", "ftp://example.invalid/x", "", pool)
    with pytest.raises(DriverError, match="invalid template id"):
        prepare_template("../t5", (tmp_path / "x").as_uri(), "", pool)
    with pytest.raises(DriverError, match="cannot download"):
        prepare_template("t5", (tmp_path / "missing").as_uri(), "", pool)
    with pytest.raises(DriverError, match="unsupported template checksum"):
        parse_checksum("xyz")
    assert parse_checksum("{SHA-512}" + "a" * 128) == ("sha512", "a" * 128)
    assert parse_checksum("A" * 40) == ("sha1", "a" * 40)
    assert _pool_files(tmp_path / "pool") == []
