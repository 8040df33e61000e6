"""A guest NIC on a bridge inside a namespace the test creates (no route out of it).

The namespace stands for a host: dnsmasq gives the guest its address and a small HTTP
server on the DHCP server's address plays the virtual router's metadata service.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.qemu import QemuDriver, RunDir, tap_name
from cumulo.agent.images.tiny import TinyImage
from cumulo.agentrpc.messages import NicSpec
from tests.agent.conftest import vm_spec, wait_ready

pytestmark = [
    pytest.mark.vm,
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq missing"),
]


@dataclass
class HostNs:
    name: str
    gateway: str
    metadata: Path


@pytest.fixture
def host_ns(tmp_path: Path) -> Iterator[HostNs]:
    name = f"cmt{uuid.uuid4().hex[:6]}"
    octet = int(uuid.uuid4().int % 200) + 20
    gateway = f"10.251.{octet}.1"
    md = tmp_path / "md" / "latest"
    (md / "meta-data").mkdir(parents=True)
    procs: list[subprocess.Popen[bytes]] = []
    _sh(f"ip netns add {name}")
    try:
        for cmd in (
            "link set lo up",
            "link add br0 type bridge",
            f"addr add {gateway}/24 dev br0",
            "link set br0 up",
        ):
            _sh(f"ip -n {name} {cmd}")
        procs.append(_dnsmasq(name, gateway, octet, tmp_path))
        procs.append(_metadata_server(name, gateway, tmp_path / "md"))
        yield HostNs(name, gateway, md)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


def _sh(command: str) -> None:
    subprocess.run(command.split(), check=True, capture_output=True)


def _dnsmasq(ns: str, gateway: str, octet: int, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, "dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground",
         "--port=0", "--interface=br0", "--bind-interfaces", f"--listen-address={gateway}",
         f"--dhcp-range=10.251.{octet}.10,10.251.{octet}.100,255.255.255.0,1h", "--no-ping",
         "--dhcp-authoritative", f"--dhcp-leasefile={tmp / 'leases'}",
         f"--pid-file={tmp / 'dnsmasq.pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _metadata_server(ns: str, gateway: str, root: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", "80",
         "--bind", gateway, "--directory", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while _ns_get(ns, f"http://{gateway}/latest/") is None:
        assert time.monotonic() < deadline, "metadata server did not start"
        time.sleep(0.1)
    return proc


def _ns_get(ns: str, url: str) -> str | None:
    """Fetch from inside the namespace (never from the root namespace: compute-probe §7)."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "busybox", "wget", "-q", "-O", "-", url],
        capture_output=True, text=True, timeout=15, check=False,
    )  # fmt: skip
    return done.stdout if done.returncode == 0 else None


def _link(ns: str, dev: str) -> dict[str, object] | None:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "link", "show", "dev", dev], capture_output=True, text=True
    ).stdout
    links = json.loads(out) if out.strip() else []
    return links[0] if links else None


def test_a_guest_on_a_bridge_gets_dhcp_and_applies_metadata(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    (host_ns.metadata / "meta-data" / "local-hostname").write_text("md-web-7\n")
    (host_ns.metadata / "meta-data" / "public-keys").write_text("ssh-ed25519 AAAAC3Nz test@c\n")
    (host_ns.metadata / "user-data").write_text("#!/bin/sh\necho user-data-ran\n")
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    spec = vm_spec(tiny_image, pool, nics=(NicSpec("n1", "52:54:00:FA:07:01", "br0"),))
    driver.start(spec)
    tap = tap_name(spec.name, 0)
    link = _link(host_ns.name, tap)
    assert link is not None and link.get("master") == "br0"
    ready = wait_ready(RunDir(driver.vms_dir / spec.name).serial, timeout=120)
    assert "host=md-web-7" in ready, ready
    ip = ready.split(" ip=")[1].split("/")[0]
    assert ip.startswith(host_ns.gateway.rsplit(".", 1)[0] + ".")
    assert _ns_get(host_ns.name, f"http://{ip}/") == "hostname=md-web-7\n"
    assert "test@c" in (_ns_get(host_ns.name, f"http://{ip}/ssh-key") or "")
    assert (_ns_get(host_ns.name, f"http://{ip}/user-data.out") or "").strip() == "user-data-ran"
    stats = driver.stats((spec.name,))[0]
    assert stats.net_rx_bytes > 0 and stats.net_tx_bytes > 0
    driver.stop(spec.name, timeout_s=30)
    assert _link(host_ns.name, tap) is None  # the tap went with the VM
    driver.destroy(spec.name, (spec.disks[0].path,))


def test_a_missing_bridge_fails_clearly_and_leaves_no_tap(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    spec = vm_spec(tiny_image, pool, nics=(NicSpec("n1", "52:54:00:fa:07:02", "nobr0"),))
    with pytest.raises(DriverError, match="bridge nobr0 does not exist"):
        driver.start(spec)
    assert _link(host_ns.name, tap_name(spec.name, 0)) is None
    assert driver.status(spec.name).power != "Running"
    driver.destroy(spec.name, (spec.disks[0].path,))
    assert driver.list_vms() == []
