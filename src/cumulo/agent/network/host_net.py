"""A guest network's segment on one host: the bridge ``brvx<VNI>`` and its VXLAN device.

VXLAN in unicast mode (compute-probe §6: no 802.1Q, no VLAN filtering, no kernel OVS here):
the device is created with ``nolearning`` and one all-zero forwarding entry per other host
that has the network (``00:00:00:00:00:00 dst <remote VTEP>``: head-end replication of
broadcast and unknown unicast), programmed from the database by the server, so no multicast
underlay is needed. Every call compares what is there with what is wanted and changes only
the difference: ensure twice is a no-op, and a deleted device comes back on the next ensure.
Names come from the VNI only, so whatever the agent made can be found again and removed.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from cumulo.agent.drivers.base import DriverError

VXLAN_PORT = 4789
ZERO_MAC = "00:00:00:00:00:00"


def bridge_name(vni: int) -> str:
    return f"brvx{vni}"


def vxlan_name(vni: int) -> str:
    return f"vxlan{vni}"


@dataclass(frozen=True)
class Ip:
    """Runs ``ip``/``bridge`` (in ``netns`` when given) and reads their JSON."""

    netns: str | None = None

    def _prefix(self, tool: str) -> list[str]:
        return [tool, *(("-n", self.netns) if self.netns else ())]

    def run(self, *args: str, tool: str = "ip", check: bool = True) -> str:
        done = subprocess.run(
            [*self._prefix(tool), *args], capture_output=True, text=True, timeout=30, check=False
        )
        if check and done.returncode != 0:
            raise DriverError(f"{tool} {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def json(self, *args: str, tool: str = "ip") -> list[dict[str, Any]]:
        out = self.run("-j", *args, tool=tool, check=False)
        try:
            data = json.loads(out) if out.strip() else []
        except json.JSONDecodeError:
            return []
        return data if isinstance(data, list) else []

    def link(self, name: str) -> dict[str, Any] | None:
        found = self.json("-d", "link", "show", "dev", name)
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        return self.link(name) is not None


def _kind(link: dict[str, Any]) -> str:
    return str(link.get("linkinfo", {}).get("info_kind", ""))


def _vxlan_matches(link: dict[str, Any], vni: int, local: str) -> bool:
    data = link.get("linkinfo", {}).get("info_data", {})
    return (
        _kind(link) == "vxlan"
        and data.get("id") == vni
        and data.get("local") == local
        and not data.get("learning", False)
    )


def ensure_segment(ip: Ip, vni: int, local: str, peers: tuple[str, ...]) -> dict[str, Any]:
    """Bridge, VXLAN device and forwarding entries for ``vni`` as wanted; what changed."""
    bridge, vxlan = bridge_name(vni), vxlan_name(vni)
    changed: list[str] = []
    link = ip.link(bridge)
    if link is not None and _kind(link) != "bridge":
        raise DriverError(f"{bridge} exists and is not a bridge")
    if link is None:
        ip.run("link", "add", bridge, "type", "bridge")
        changed.append(bridge)
    ip.run("link", "set", bridge, "up")
    vx = ip.link(vxlan)
    if vx is not None and not _vxlan_matches(vx, vni, local):
        ip.run("link", "del", vxlan)  # another VTEP address or learning: make it again
        vx = None
    if vx is None:
        ip.run(
            "link", "add", vxlan, "type", "vxlan", "id", str(vni), "local", local,
            "dstport", str(VXLAN_PORT), "nolearning",
        )  # fmt: skip
        changed.append(vxlan)
        vx = ip.link(vxlan)
    if vx is None or vx.get("master") != bridge:
        ip.run("link", "set", vxlan, "master", bridge)
    ip.run("link", "set", vxlan, "up")
    have = set(fdb_peers(ip, vni))
    want = set(peers) - {local}
    for dst in sorted(want - have):
        ip.run("fdb", "append", ZERO_MAC, "dev", vxlan, "dst", dst, tool="bridge")
        changed.append(f"fdb {dst}")
    for dst in sorted(have - want):
        ip.run("fdb", "del", ZERO_MAC, "dev", vxlan, "dst", dst, tool="bridge", check=False)
        changed.append(f"-fdb {dst}")
    return {"bridge": bridge, "vxlan": vxlan, "peers": sorted(want), "changed": changed}


def fdb_peers(ip: Ip, vni: int) -> list[str]:
    """The remote VTEPs the all-zero entry of ``vni``'s VXLAN device floods to."""
    return [
        str(e["dst"])
        for e in ip.json("fdb", "show", "dev", vxlan_name(vni), tool="bridge")
        if e.get("mac") == ZERO_MAC and e.get("dst")
    ]


def remove_segment(ip: Ip, vni: int) -> bool:
    """Remove the VXLAN device and the bridge; False when the bridge still has ports
    (a VM tap or a router leg still uses it: it stays)."""
    bridge = bridge_name(vni)
    ports = [
        str(p.get("ifname"))
        for p in ip.json("link", "show", "master", bridge)
        if p.get("ifname") != vxlan_name(vni)
    ]
    if ports and ip.exists(bridge):
        return False
    ip.run("link", "del", vxlan_name(vni), check=False)
    ip.run("link", "del", bridge, check=False)
    return True


def segments(ip: Ip) -> list[int]:
    """The VNIs this host has a ``brvx<VNI>`` bridge for."""
    vnis = []
    for link in ip.json("link", "show", "type", "bridge"):
        name = str(link.get("ifname", ""))
        if name.startswith("brvx") and name[4:].isdigit():
            vnis.append(int(name[4:]))
    return sorted(vnis)
