"""The Debian cloud image: built with debootstrap, boots under TCG, cloud-init applies the
metadata service's hostname, SSH key and user data (slow: minutes of building and booting)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cumulo.agent.drivers.qemu import QemuDriver, RunDir
from cumulo.agent.images.debian import build_debian
from cumulo.agentrpc.messages import DiskSpec, NicSpec, VmSpec
from tests.agent.conftest import wait_ready
from tests.agent.hostns import host_namespace

pytestmark = [
    pytest.mark.vm,
    pytest.mark.net,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("debootstrap") is None,
        reason="needs root and debootstrap",
    ),
]

USER_DATA = """#cloud-config
runcmd:
  - [sh, -c, "echo CLOUD-INIT-RUNCMD > /dev/ttyS0"]
"""


def test_the_debian_image_boots_and_cloud_init_applies_metadata(
    tmp_path_factory: pytest.TempPathFactory, state_dir: Path, pool: Path, tmp_path: Path
) -> None:
    image = build_debian(tmp_path_factory.mktemp("debian-image"))
    try:
        _boot_and_check(image.disk, state_dir, pool, tmp_path)
    finally:
        shutil.rmtree(image.directory)  # half a gigabyte: not kept among pytest's temp dirs


def _boot_and_check(disk: Path, state_dir: Path, pool: Path, tmp_path: Path) -> None:
    short = uuid.uuid4().hex[:6]
    with host_namespace(tmp_path) as host:
        host.set_metadata(
            {
                "instance-id": f"i-2-{short}-VM",
                "local-hostname": f"deb-{short}",
                "availability-zone": "zone1",
                "public-keys": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE test@{short}",
            },
            user_data=USER_DATA,
        )
        driver = QemuDriver(state_dir, accelerator="tcg", netns=host.name)
        spec = VmSpec(
            name=f"i-2-{short}-VM",
            uuid=str(uuid.uuid4()),
            vcpus=1,
            cpu_mhz=1000,
            memory_mib=512,
            disks=(DiskSpec("root", 0, str(pool / f"{short}.qcow2"), 0, str(disk)),),
            nics=(NicSpec("n1", "52:54:00:fa:09:01", "br0"),),
        )
        driver.start(spec)
        serial = RunDir(driver.vms_dir / spec.name).serial
        ready = wait_ready(serial, timeout=1200)
        assert f"host=deb-{short}" in ready, ready
        assert "CLOUD-INIT-RUNCMD" in serial.read_text(errors="replace")
        ip = ready.split(" ip=")[1].split()[0]
        assert "SSH-2.0-OpenSSH" in _banner(host.name, ip, 22)
        driver.destroy(spec.name, (spec.disks[0].path,))


def _banner(ns: str, ip: str, port: int) -> str:
    code = (
        "import socket,sys; s=socket.create_connection((sys.argv[1], int(sys.argv[2])), 10);"
        "print(s.recv(64).decode(errors='replace'))"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code, ip, str(port)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout
