"""A network namespace standing for a hypervisor host: bridge, DHCP and metadata service.

Nothing in it routes anywhere: the namespace has no default route and no link out, so guest
traffic never leaves the machine (compute-probe §7). Every probe of a guest address runs
inside the namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("metadata_server.py")


@dataclass
class HostNs:
    name: str
    gateway: str
    data_file: Path

    def set_metadata(self, meta: dict[str, str], user_data: str | None = None) -> None:
        data: dict[str, Any] = {"meta-data": meta}
        if user_data is not None:
            data["user-data"] = user_data
        self.data_file.write_text(json.dumps(data))

    def get(self, url: str, timeout: float = 15) -> str | None:
        """Fetch from inside the namespace (never from the root namespace)."""
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, "busybox", "wget", "-q", "-O", "-", url],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        return done.stdout if done.returncode == 0 else None

    def link(self, dev: str) -> dict[str, Any] | None:
        out = subprocess.run(
            ["ip", "-n", self.name, "-j", "link", "show", "dev", dev],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        links = json.loads(out) if out.strip() else []
        return links[0] if links else None


@contextmanager
def host_namespace(tmp: Path) -> Iterator[HostNs]:
    name = f"cmt{uuid.uuid4().hex[:6]}"
    octet = int(uuid.uuid4().int % 200) + 20
    host = HostNs(name, f"10.251.{octet}.1", tmp / "metadata.json")
    host.set_metadata({})
    procs: list[subprocess.Popen[bytes]] = []
    _ip("netns", "add", name)
    try:
        for cmd in (
            ("link", "set", "lo", "up"),
            ("link", "add", "br0", "type", "bridge"),
            ("addr", "add", f"{host.gateway}/24", "dev", "br0"),
            ("link", "set", "br0", "up"),
        ):
            _ip("-n", name, *cmd)
        procs.append(_dnsmasq(name, host.gateway, octet, tmp))
        procs.append(_metadata_server(host))
        yield host
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", name], check=False)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _dnsmasq(ns: str, gateway: str, octet: int, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, "dnsmasq", "--conf-file=/dev/null", "--keep-in-foreground",
         "--port=0", "--interface=br0", "--bind-interfaces", f"--listen-address={gateway}",
         f"--dhcp-range=10.251.{octet}.10,10.251.{octet}.100,255.255.255.0,1h", "--no-ping",
         "--dhcp-authoritative", f"--dhcp-leasefile={tmp / 'leases'}",
         f"--pid-file={tmp / 'dnsmasq.pid'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _metadata_server(host: HostNs) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.name, sys.executable, str(SERVER), host.gateway,
         str(host.data_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while host.get(f"http://{host.gateway}/latest/meta-data/", timeout=5) is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the metadata server did not start")
        time.sleep(0.1)
    return proc
