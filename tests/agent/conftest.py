"""Fixtures for the real-VM tests: the tiny image (built once), drivers, VMs and cleanup.

Every QEMU these tests start lives under a state directory the fixture owns; teardown kills
exactly those (by the pid in their run dir, checked against the process's command line)
and deletes their taps, so a failed test leaks no process, tap or file.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.drivers.qemu import QemuDriver, RunDir, live_pid
from cumulo.agent.images.tiny import TinyImage, build_tiny
from cumulo.agentrpc.messages import DiskSpec, NicSpec, VmSpec

TOOLS = ("qemu-system-x86_64", "qemu-img", "mkfs.fat", "syslinux", "mcopy", "mkfs.ext4")


def _missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@pytest.fixture(scope="session")
def tiny_image(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/apt-packages.txt)")
    return build_tiny(tmp_path_factory.mktemp("images"))


@pytest.fixture
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("st")
    yield path
    kill_vms(path)


@pytest.fixture
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pool")


@pytest.fixture
def driver(state_dir: Path, tiny_image: TinyImage) -> Iterator[QemuDriver]:
    drv = QemuDriver(state_dir, accelerator="tcg")
    yield drv
    for vm in drv.list_vms():
        drv.destroy(vm.name)


def kill_vms(state_dir: Path) -> None:
    """SIGKILL every QEMU started under ``state_dir`` (only those: the pid must name it)."""
    vms = state_dir / "vms"
    if not vms.is_dir():
        return
    for run_root in vms.iterdir():
        if not run_root.is_dir():
            continue
        pid = live_pid(RunDir(run_root))
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


def vm_spec(
    tiny: TinyImage,
    pool: Path,
    *,
    nics: tuple[NicSpec, ...] = (),
    boot: dict[str, str] | None = None,
    hostname: str = "",
) -> VmSpec:
    """A 1-vCPU, 128 MiB VM whose root disk is a fresh clone of the tiny image."""
    short = uuid.uuid4().hex[:6]
    return VmSpec(
        name=f"i-2-{short}-VM",
        uuid=str(uuid.uuid4()),
        vcpus=1,
        cpu_mhz=1000,
        memory_mib=128,
        disks=(DiskSpec(f"vol-{short}", 0, str(pool / f"root-{short}.qcow2"), 0, str(tiny.disk)),),
        nics=nics,
        boot=boot or {},
        hostname=hostname or f"vm-{short}",
    )


def wait_ready(log: Path, count: int = 1, timeout: float = 90.0) -> str:
    """The ``count``-th readiness line of the serial log, waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        lines = [ln for ln in text.splitlines() if ln.startswith("GUEST-READY")]
        if len(lines) >= count:
            return lines[count - 1]
        time.sleep(0.1)
    raise AssertionError(f"no GUEST-READY #{count} in {log}: {text[-800:]!r}")
