"""Guest networking on a simulated zone: a physical network carrying Guest and Public traffic
with a VXLAN id range, and a public VLAN IP range, added to a SimZone through the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.support.cloud import Cloud, Keys
from tests.support.simzone import SimZone, uniq

PUBLIC = {"gateway": "203.0.113.1", "netmask": "255.255.255.0"}


@dataclass
class NetZone:
    sim: SimZone
    physical: dict[str, Any]
    public_range: dict[str, Any]
    vni_range: tuple[int, int]


def add_networking(
    sim: SimZone, *, vnis: tuple[int, int] = (7000, 7099), public: tuple[int, int] = (10, 60)
) -> NetZone:
    c = sim.cloud.call
    zid = sim.zone["id"]
    physical = c(
        "createPhysicalNetwork",
        zoneid=zid,
        name=uniq("pn"),
        isolationmethods="VXLAN",
        vlan=f"{vnis[0]}-{vnis[1]}",
    )
    physical = sim.cloud.wait_job(physical["jobid"])["jobresult"]["physicalnetwork"]
    for kind in ("Guest", "Public"):
        job = c("addTrafficType", physicalnetworkid=physical["id"], traffictype=kind)
        sim.cloud.wait_job(job["jobid"])
    sim.cloud.wait_job(c("updatePhysicalNetwork", id=physical["id"], state="Enabled")["jobid"])
    rng = c(
        "createVlanIpRange",
        zoneid=zid,
        physicalnetworkid=physical["id"],
        vlan="untagged",
        forvirtualnetwork=True,
        startip=f"203.0.113.{public[0]}",
        endip=f"203.0.113.{public[1]}",
        **PUBLIC,
    )["vlan"]
    return NetZone(sim, physical, rng, vnis)


def libcloud_driver(cloud: Cloud, keys: Keys) -> Any:
    """libcloud's CloudStack driver signed with ``keys``, over plain HTTP on loopback (or on
    the address a real-host test's server listens on)."""
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        keys.api_key,
        keys.secret,
        host=getattr(cloud, "address", "") or "127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )
