"""The other real clients, unchanged: awscli (s3 and s3api), s3cmd and rclone, each with a
real workload verified byte for byte. A client that is not installed skips its test."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cloud import Keys

AWS = shutil.which("aws", path="/usr/bin") or shutil.which("aws")
RCLONE = shutil.which("rclone")
S3CMD = shutil.which("s3cmd", path=str(Path(os.sys.executable).parent)) or shutil.which("s3cmd")  # type: ignore[attr-defined]


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "sub" / "b.bin").write_bytes(os.urandom(200_000))
    (root / "sub" / "deeper" / "c with space.txt").write_bytes(b"gamma")
    (root / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # multipart for awscli


def _same_tree(a: Path, b: Path) -> None:
    left = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    right = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert left == right
    for rel in left:
        assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def _run(cmd: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (cmd, out.stdout[-2000:], out.stderr[-2000:])
    return out.stdout


@pytest.mark.skipif(AWS is None, reason="awscli is not installed")
def test_awscli(s3_server: Any, alice_keys: Keys, tmp_path: Path) -> None:
    assert AWS is not None
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": alice_keys.api_key,
        "AWS_SECRET_ACCESS_KEY": alice_keys.secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = [AWS, "--endpoint-url", s3_server.endpoint]
    bucket = f"aws-{uuid.uuid4().hex[:12]}"
    src, back = tmp_path / "src", tmp_path / "back"
    _tree(src)
    _run([*aws, "s3", "mb", f"s3://{bucket}"], env)
    assert bucket in _run([*aws, "s3", "ls"], env)
    _run([*aws, "s3", "cp", str(src / "a.txt"), f"s3://{bucket}/single/a.txt"], env)
    _run([*aws, "s3", "sync", str(src), f"s3://{bucket}/tree"], env)
    listed = _run([*aws, "s3", "ls", "--recursive", f"s3://{bucket}/tree/"], env)
    assert "c with space.txt" in listed and "big.bin" in listed
    _run([*aws, "s3", "sync", f"s3://{bucket}/tree", str(back)], env)
    _same_tree(src, back)
    url = _run([*aws, "s3", "presign", f"s3://{bucket}/single/a.txt"], env).strip()
    assert httpx.get(url).content == b"alpha\n"
    head = _run([*aws, "s3api", "head-object", "--bucket", bucket, "--key", "tree/big.bin"], env)
    assert '"ContentLength": 9437184' in head
    _run([*aws, "s3", "rb", "--force", f"s3://{bucket}"], env)
    assert bucket not in _run([*aws, "s3", "ls"], env)


@pytest.mark.skipif(S3CMD is None, reason="s3cmd is not installed")
def test_s3cmd(s3_server: Any, alice_keys: Keys, tmp_path: Path) -> None:
    assert S3CMD is not None
    host = f"127.0.0.1:{s3_server.port}"
    cfg = tmp_path / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {alice_keys.api_key}\nsecret_key = {alice_keys.secret}\n"
        f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\n"
        "bucket_location = us-east-1\nsignature_v2 = False\n"
    )
    s3cmd = [S3CMD, "-c", str(cfg)]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    bucket = f"s3cmd-{uuid.uuid4().hex[:12]}"
    src, back = tmp_path / "src", tmp_path / "back"
    _tree(src)
    _run([*s3cmd, "mb", f"s3://{bucket}"], env)
    _run([*s3cmd, "sync", f"{src}/", f"s3://{bucket}/tree/"], env)
    assert "c with space.txt" in _run([*s3cmd, "ls", "-r", f"s3://{bucket}"], env)
    back.mkdir()
    _run([*s3cmd, "sync", f"s3://{bucket}/tree/", f"{back}/"], env)
    _same_tree(src, back)
    _run([*s3cmd, "del", "-r", "--force", f"s3://{bucket}"], env)
    _run([*s3cmd, "rb", f"s3://{bucket}"], env)
    assert bucket not in _run([*s3cmd, "ls"], env)


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed")
def test_rclone(s3_server: Any, alice_keys: Keys, s3: Any, tmp_path: Path) -> None:
    assert RCLONE is not None
    # Debian's rclone 1.60 fails when AWS_CA_BUNDLE is set (reference, ecosystem §2).
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(
        {
            "HOME": str(tmp_path),
            "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
            "RCLONE_CONFIG_CUMULO_TYPE": "s3",
            "RCLONE_CONFIG_CUMULO_PROVIDER": "Other",
            "RCLONE_CONFIG_CUMULO_ACCESS_KEY_ID": alice_keys.api_key,
            "RCLONE_CONFIG_CUMULO_SECRET_ACCESS_KEY": alice_keys.secret,
            "RCLONE_CONFIG_CUMULO_ENDPOINT": s3_server.endpoint,
            "RCLONE_CONFIG_CUMULO_REGION": "us-east-1",
            "RCLONE_CONFIG_CUMULO_FORCE_PATH_STYLE": "true",
        }
    )
    bucket = f"rclone-{uuid.uuid4().hex[:12]}"
    src, back = tmp_path / "src", tmp_path / "back"
    _tree(src)
    s3.create_bucket(Bucket=bucket)
    try:
        _run([RCLONE, "copy", str(src), f"cumulo:{bucket}/tree"], env)
        _run([RCLONE, "check", str(src), f"cumulo:{bucket}/tree"], env)
        (src / "a.txt").write_bytes(b"changed\n")
        (src / "sub" / "b.bin").unlink()
        _run([RCLONE, "sync", str(src), f"cumulo:{bucket}/tree"], env)
        _run([RCLONE, "check", str(src), f"cumulo:{bucket}/tree"], env)
        _run([RCLONE, "copy", f"cumulo:{bucket}/tree", str(back)], env)
        _same_tree(src, back)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        assert "tree/sub/b.bin" not in keys
    finally:
        _run([RCLONE, "purge", f"cumulo:{bucket}"], env)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
