"""A guest NIC on a bridge inside a namespace the test creates (no route out of it).

The namespace stands for a host: dnsmasq gives the guest its address and a small HTTP
server on the DHCP server's address plays the virtual router's metadata service.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.qemu import QemuDriver, RunDir, tap_name
from cumulo.agent.images.tiny import TinyImage
from cumulo.agentrpc.messages import NicSpec
from tests.agent.conftest import vm_spec, wait_ready
from tests.agent.hostns import HostNs, host_namespace

pytestmark = [
    pytest.mark.vm,
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq missing"),
]


@pytest.fixture
def host_ns(tmp_path: Path) -> Iterator[HostNs]:
    with host_namespace(tmp_path) as host:
        yield host


def test_a_guest_on_a_bridge_gets_dhcp_and_applies_metadata(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    host_ns.set_metadata(
        {"local-hostname": "md-web-7", "public-keys": "ssh-ed25519 AAAAC3Nz test@c"},
        user_data="#!/bin/sh\necho user-data-ran\n",
    )
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    spec = vm_spec(tiny_image, pool, nics=(NicSpec("n1", "52:54:00:FA:07:01", "br0"),))
    driver.start(spec)
    tap = tap_name(spec.name, 0)
    link = host_ns.link(tap)
    assert link is not None and link.get("master") == "br0"
    ready = wait_ready(RunDir(driver.vms_dir / spec.name).serial, timeout=120)
    assert "host=md-web-7" in ready, ready
    ip = ready.split(" ip=")[1].split("/")[0]
    assert ip.startswith(host_ns.gateway.rsplit(".", 1)[0] + ".")
    assert host_ns.get(f"http://{ip}/") == "hostname=md-web-7\n"
    assert "test@c" in (host_ns.get(f"http://{ip}/ssh-key") or "")
    assert (host_ns.get(f"http://{ip}/user-data.out") or "").strip() == "user-data-ran"
    stats = driver.stats((spec.name,))[0]
    assert stats.net_rx_bytes > 0 and stats.net_tx_bytes > 0
    driver.stop(spec.name, timeout_s=30)
    assert host_ns.link(tap) is None  # the tap went with the VM
    driver.destroy(spec.name, (spec.disks[0].path,))


def test_a_missing_bridge_fails_clearly_and_leaves_no_tap(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    spec = vm_spec(tiny_image, pool, nics=(NicSpec("n1", "52:54:00:fa:07:02", "nobr0"),))
    with pytest.raises(DriverError, match="bridge nobr0 does not exist"):
        driver.start(spec)
    assert host_ns.link(tap_name(spec.name, 0)) is None
    assert driver.status(spec.name).power != "Running"
    driver.destroy(spec.name, (spec.disks[0].path,))
    assert driver.list_vms() == []
