"""The tiny guest builder: idempotent, reachable from the CLI, and usable as a probe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cumulo.agent.drivers.qemu import READY_MARKER, boot_until_marker, probe_accelerator
from cumulo.agent.images.tiny import TinyImage, build_tiny

pytestmark = pytest.mark.vm


def test_a_rebuild_with_unchanged_inputs_changes_nothing(tiny_image: TinyImage) -> None:
    before = tiny_image.disk.stat().st_mtime_ns
    again = build_tiny(tiny_image.directory.parent)
    assert not again.created and again.sha256 == tiny_image.sha256
    assert again.disk.stat().st_mtime_ns == before
    manifest = json.loads((tiny_image.directory / "tiny.json").read_text())
    assert manifest["sha256"] == tiny_image.sha256 and manifest["kernel_package"].endswith(".deb")


def test_a_damaged_image_is_rebuilt(tiny_image: TinyImage, tmp_path: Path) -> None:
    out = tmp_path / "images"
    (out / "tiny").mkdir(parents=True)
    for name in ("tiny.qcow2", "vmlinuz", "initrd.gz", "tiny.json"):
        (out / "tiny" / name).write_bytes((tiny_image.directory / name).read_bytes())
    (out / "tiny" / "tiny.qcow2").write_bytes(b"truncated")
    rebuilt = build_tiny(out, cache_dir=tiny_image.directory.parent / "cache")
    assert rebuilt.created and rebuilt.disk.stat().st_size > 1 << 20


def test_the_cli_builds_into_the_given_directory(tiny_image: TinyImage) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from cumulo.cli.main import main; raise SystemExit(main())",
         "image", "build", "tiny", "--out", str(tiny_image.directory.parent)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"up to date: {tiny_image.disk}" in done.stdout
    assert tiny_image.sha256 in done.stdout


@pytest.mark.slow
def test_the_accelerator_probe_boots_the_tiny_guest_and_caches_its_answer(
    tiny_image: TinyImage, tmp_path: Path
) -> None:
    boot = tiny_image.direct_boot(with_disk=False)
    tcg = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg,tb-size=32", "-m", "128",
           "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot"]  # fmt: skip
    tcg += ["-kernel", boot["kernel"], "-initrd", boot["initrd"], "-append", boot["cmdline"]]
    assert boot_until_marker(tcg, READY_MARKER, 60) is not None  # the probe guest itself boots
    answer = probe_accelerator(tmp_path, boot, timeout_s=15)
    if not os.path.exists("/dev/kvm"):
        assert answer == "tcg"
        return
    cached = json.loads((tmp_path / "accelerator.json").read_text())
    assert cached["accelerator"] == answer in ("kvm", "tcg")
    began = time.monotonic()
    assert probe_accelerator(tmp_path, boot, timeout_s=15) == answer
    assert time.monotonic() - began < 2  # answered from the cache, no second boot
