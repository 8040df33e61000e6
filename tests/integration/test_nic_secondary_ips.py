# ruff: noqa: F811  (the ``net`` and ``tenant`` fixtures are imported and used by name)
"""NIC secondary IPs through `cs` on a simulated zone: addIpToNic reserves an address of
the network (the one asked for, or the lowest free), listNics shows it under
``secondaryip``, port forwarding and static NAT may target it (``vmguestip``), and
removeIpFromNic is refused while a rule uses it, then gives the address back. Bad input is
refused with its code and leaves the NIC as it was."""

from __future__ import annotations

from typing import Any

from tests.integration.tenants import Tenant, error, uniq
from tests.integration.test_networks import make_network, net, tenant  # noqa: F401
from tests.support.netzone import NetZone


def _secondary(tenant: Tenant, vm_id: str) -> list[dict[str, Any]]:
    [nic] = tenant.call("listNics", virtualmachineid=vm_id)["nic"]
    found: list[dict[str, Any]] = nic["secondaryip"]
    return found


def _job(tenant: Tenant, command: str, **params: Any) -> dict[str, Any]:
    done = tenant.cloud.wait_job(tenant.call(command, **params)["jobid"], tenant.keys)
    assert done["jobstatus"] == 1, done
    result: dict[str, Any] = done["jobresult"]
    return result


def test_secondary_ips_reserved_listed_targeted_and_removed(net: NetZone, tenant: Tenant) -> None:
    network = make_network(net, tenant, gateway="10.47.0.1", netmask="255.255.255.0")
    made = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
    assert made["jobstatus"] == 1, made
    vm = made["jobresult"]["virtualmachine"]
    [nic] = vm["nic"]
    assert nic["ipaddress"] == "10.47.0.2"

    asked = _job(tenant, "addIpToNic", nicid=nic["id"], ipaddress="10.47.0.40")
    assert asked["nicsecondaryip"]["ipaddress"] == "10.47.0.40"
    assert asked["nicsecondaryip"]["nicid"] == nic["id"]
    assert asked["nicsecondaryip"]["virtualmachineid"] == vm["id"]
    lowest = _job(tenant, "addIpToNic", nicid=nic["id"])["nicsecondaryip"]
    assert lowest["ipaddress"] == "10.47.0.3", "the lowest free address of the network"
    assert [s["ipaddress"] for s in _secondary(tenant, vm["id"])] == ["10.47.0.40", "10.47.0.3"]

    # reserved in IPAM: a VM asking for it is refused, the next VM skips it
    for bad in ("10.47.0.40", "10.48.0.9", "10.47.0.1", "nonsense"):
        code, _ = error(tenant.raw("addIpToNic", nicid=nic["id"], ipaddress=bad), "addIpToNic")
        assert code == 431, bad
    assert len(_secondary(tenant, vm["id"])) == 2
    other = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
    assert other["jobresult"]["virtualmachine"]["nic"][0]["ipaddress"] == "10.47.0.4"

    # port forwarding and static NAT to the secondary address
    snat = tenant.call("listPublicIpAddresses", associatednetworkid=network["id"])
    snat_id = snat["publicipaddress"][0]["id"]
    rule = _job(tenant, "createPortForwardingRule", ipaddressid=snat_id, privateport=80,
                publicport=8080, protocol="tcp", virtualmachineid=vm["id"],
                vmguestip="10.47.0.40")["portforwardingrule"]  # fmt: skip
    assert rule["vmguestip"] == "10.47.0.40"
    code, _ = error(
        tenant.raw(
            "createPortForwardingRule",
            ipaddressid=snat_id,
            privateport=81,
            publicport=8081,
            protocol="tcp",
            virtualmachineid=vm["id"],
            vmguestip="10.47.0.99",
        ),
        "createPortForwardingRule",
    )
    assert code == 431, "not an address of the VM"
    public = _job(tenant, "associateIpAddress", networkid=network["id"])["ipaddress"]
    tenant.call("enableStaticNat", ipaddressid=public["id"], virtualmachineid=vm["id"],
                vmguestip="10.47.0.3")  # fmt: skip
    listed = tenant.call("listPublicIpAddresses", id=public["id"])["publicipaddress"][0]
    assert listed["vmipaddress"] == "10.47.0.3"

    # removing a targeted address is refused; untargeted, it goes back to the network
    for secondary in _secondary(tenant, vm["id"]):
        code, _ = error(tenant.raw("removeIpFromNic", id=secondary["id"]), "removeIpFromNic")
        assert code == 431
    assert len(_secondary(tenant, vm["id"])) == 2
    _job(tenant, "deletePortForwardingRule", id=rule["id"])
    _job(tenant, "disableStaticNat", ipaddressid=public["id"])
    for secondary in _secondary(tenant, vm["id"]):
        assert _job(tenant, "removeIpFromNic", id=secondary["id"])["success"] is True
    assert _secondary(tenant, vm["id"]) == []
    again = _job(tenant, "addIpToNic", nicid=nic["id"], ipaddress="10.47.0.40")
    assert again["nicsecondaryip"]["ipaddress"] == "10.47.0.40", "given back to the network"

    # expunge releases it with the primary
    net.sim.cloud.wait_job(
        net.sim.cloud.call("destroyVirtualMachine", id=vm["id"], expunge=True)["jobid"]
    )
    again_vm = net.sim.deploy(tenant.keys, networkids=network["id"], ipaddress="10.47.0.40")
    assert again_vm["jobstatus"] == 1, again_vm
