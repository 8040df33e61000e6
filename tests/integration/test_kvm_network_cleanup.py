"""Nothing of a guest network is left on real hosts once it is no longer needed (issue 7).

The cloud is ``tests/support/kvmnet.kvm_stack``: two host namespaces without a default route,
QEMU agents, VXLAN between them. Checked, each step ending with a leak check that lists
``ip link``, the router namespaces, ``nft list tables`` and our processes on both hosts:

- restartNetwork without cleanup re-applies the router in place (same namespace, same
  dnsmasq); with cleanup it is built again from scratch (a new namespace and dnsmasq), and
  the guests are reachable after both;
- the last VMs stopped: router, bridges and VXLAN devices go on both hosts; the network GC
  (network.gc.interval / network.gc.wait) shuts the idle network down (its VXLAN id goes
  back), and the next VM start implements it again and brings the router back;
- VMs expunged and the network deleted: nothing at all is left;
- a host put in maintenance hands its router to another host of the network; once its last
  VM is stopped nothing of the network is left on it, and deleteHost leaves it so.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.images.tiny import TinyImage, build_tiny
from cumulo.agent.network import commands as network_commands
from cumulo.agent.network.host_net import Ip
from cumulo.agent.network.router_ns import Router
from cumulo.agentrpc.messages import ReleaseSegment
from tests.agent.test_host_net import config as router_cfg
from tests.agent.test_host_net import running
from tests.integration.test_agent import wait_for
from tests.support.kvmnet import (
    Stack,
    dnsmasq_pids,
    guest_ip,
    guest_links,
    job,
    kvm_stack,
    leaks,
    no_leaks,
    ns_get,
    router_namespaces,
    sh,
)
from tests.support.simzone import uniq

pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    return build_tiny(tmp_path_factory.mktemp("tiny-cleanup-images"))


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory, tiny: TinyImage) -> Iterator[Stack]:
    with kvm_stack(tmp_path_factory.mktemp, tiny) as built:
        yield built


def _ns_inode(ns: str) -> int:
    """The network namespace behind ``/run/netns/<ns>``: a rebuilt one has another inode."""
    try:
        return os.stat(f"/run/netns/{ns}").st_ino
    except OSError:
        return -1  # between teardown and rebuild


def _network(stack: Stack, network_id: str) -> dict[str, Any]:
    found: dict[str, Any] = stack.cloud.call("listNetworks", id=network_id, listall=True)[
        "network"
    ][0]
    return found


def _isolated_network(stack: Stack) -> tuple[dict[str, Any], str]:
    """A new isolated network with source NAT, and its router namespace's name (removed by
    the stack at the end whatever happens)."""
    name = "DefaultIsolatedNetworkOfferingWithSourceNatService"
    offering = stack.cloud.call("listNetworkOfferings", name=name)["networkoffering"][0]
    network: dict[str, Any] = stack.cloud.call(
        "createNetwork", name=uniq("cln"), displaytext="cleanup", zoneid=stack.zone["id"],
        networkofferingid=offering["id"], gateway=f"{stack.lab.guest_prefix}.1",
        netmask="255.255.255.0",
    )["network"]  # fmt: skip
    stack.router_namespaces.append(f"cr-{network['id']}")
    return network, f"cr-{network['id']}"


def _deploy(stack: Stack, network: dict[str, Any], host: int) -> dict[str, Any]:
    vm: dict[str, Any] = job(stack.cloud, "deployVirtualMachine", zoneid=stack.zone["id"],
                             templateid=stack.template["id"],
                             serviceofferingid=stack.offering["id"], networkids=network["id"],
                             hostid=stack.hosts[host]["id"],
                             name=uniq("gc"))["virtualmachine"]  # fmt: skip
    return vm


def _serial(stack: Stack, vm: dict[str, Any], host: int) -> str:
    path = stack.states[host] / "vms" / vm["instancename"] / "serial.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _ready(stack: Stack, vm: dict[str, Any], host: int, before: str = "") -> None:
    """The guest printed its ready line with the address the cloud gave (in a serial log
    other than ``before``: QEMU starts the file again on every boot)."""
    state: Path = stack.states[host]

    def ready() -> bool:
        log = _serial(stack, vm, host)
        return log != before and guest_ip(state, vm["instancename"]) is not None

    wait_for(ready, 240, f"{vm['name']} ready")
    assert guest_ip(state, vm["instancename"]) == vm["nic"][0]["ipaddress"]


def _reachable(router_ns: str, vms: list[dict[str, Any]]) -> None:
    for vm in vms:
        want = f"hostname={vm['name']}\n"
        wait_for(lambda v=vm, w=want: ns_get(router_ns, f"http://{v['nic'][0]['ipaddress']}/",
                                             5) == w, 90, f"{vm['name']} reachable")  # fmt: skip


def test_restart_gc_and_delete_leave_nothing_on_the_hosts(stack: Stack) -> None:
    c = stack.cloud.call
    network, router_ns = _isolated_network(stack)
    vms = [_deploy(stack, network, 0), _deploy(stack, network, 1)]
    for index, vm in enumerate(vms):
        _ready(stack, vm, index)
    _reachable(router_ns, vms)

    # restartNetwork without cleanup: the same namespace and dnsmasq, rules applied again
    inode, dnsmasq = _ns_inode(router_ns), dnsmasq_pids(stack.states)
    assert len(dnsmasq) == 1
    applied = _applied_generation(stack, network["id"])
    job(stack.cloud, "restartNetwork", id=network["id"], cleanup=False)
    wait_for(lambda: _applied_generation(stack, network["id"]) == applied + 1, 60, "re-applied")
    assert _ns_inode(router_ns) == inode and dnsmasq_pids(stack.states) == dnsmasq
    _reachable(router_ns, vms)
    # with cleanup: a new namespace and a new dnsmasq, the old ones gone
    job(stack.cloud, "restartNetwork", id=network["id"], cleanup=True)
    wait_for(lambda: router_ns in router_namespaces() and _ns_inode(router_ns) != inode, 60,
             "router namespace built again")  # fmt: skip
    wait_for(lambda: dnsmasq_pids(stack.states) not in ([], dnsmasq), 60, "a new dnsmasq")
    assert len(dnsmasq_pids(stack.states)) == 1, "the old dnsmasq went with the old namespace"
    _reachable(router_ns, vms)
    (router,) = c("listRouters", networkid=network["id"], listall=True)["router"]
    assert router["state"] == "Running"

    # the last VMs stopped: nothing of the network stays on the hosts; the GC then shuts the
    # idle network down, and a VM start brings it (and its router) back
    c("updateConfiguration", name="network.gc.interval", value="2")
    c("updateConfiguration", name="network.gc.wait", value="4")
    for vm in vms:
        job(stack.cloud, "stopVirtualMachine", id=vm["id"])
    assert _network(stack, network["id"])["state"] == "Implemented", "not before the GC wait"
    no_leaks(stack, [network["id"]])
    vni = _network(stack, network["id"])["vlan"]
    wait_for(lambda: _network(stack, network["id"])["state"] == "Shutdown", 60, "network GC")
    assert "vlan" not in _network(stack, network["id"]), "the VXLAN id went back"
    assert not any(leaks(stack, [network["id"]]).values())
    before = _serial(stack, vms[0], 0)
    job(stack.cloud, "startVirtualMachine", id=vms[0]["id"])
    assert _network(stack, network["id"])["state"] == "Implemented"
    assert _network(stack, network["id"]).get("vlan") is not None, vni
    _ready(stack, vms[0], 0, before)
    _reachable(router_ns, vms[:1])

    # expunged and deleted: nothing left at all
    for vm in vms:
        job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", id=network["id"])
    no_leaks(stack, [network["id"]])
    assert not c("listRouters", networkid=network["id"], listall=True).get("router")
    assert not Path(f"/etc/netns/{router_ns}").exists()


def _applied_generation(stack: Stack, network_id: str) -> int:
    """The router generation the agent last applied (its ``applied.json``)."""
    for path in stack.states[0].glob(f"routers/{network_id}/applied.json"):
        return int(json.loads(path.read_text())["generation"])
    return -1


def test_a_host_in_maintenance_hands_its_router_over_and_a_deleted_host_keeps_nothing(
    stack: Stack,
) -> None:
    c = stack.cloud.call
    network, router_ns = _isolated_network(stack)
    vms = [_deploy(stack, network, 0), _deploy(stack, network, 1)]
    for index, vm in enumerate(vms):
        _ready(stack, vm, index)
    host_a, host_b = (h["id"] for h in stack.hosts)
    assert c("listRouters", networkid=network["id"], listall=True)["router"][0]["hostid"] == host_a

    # host a into maintenance: the router moves to host b, the guests stay reachable
    job(stack.cloud, "prepareHostForMaintenance", id=host_a)
    wait_for(
        lambda: c("listRouters", networkid=network["id"], listall=True)["router"][0].get("hostid")
        == host_b,
        60, "router moved off the host in maintenance",
    )  # fmt: skip
    _reachable(router_ns, vms)
    ns_a = stack.lab.hosts[0][0]
    assert not {n for n in guest_links(ns_a) if n.startswith(("crg", "crp"))}, "old legs gone"
    # its last VM stopped: nothing of the network is left on host a; then it is deleted
    job(stack.cloud, "stopVirtualMachine", id=vms[0]["id"])
    wait_for(lambda: not guest_links(ns_a), 60, f"nothing left on {ns_a}")
    assert sh("ip", "netns", "exec", ns_a, "nft", "list", "tables").strip() == ""
    c("deleteHost", id=host_a)
    assert not c("listHosts", id=host_a).get("host")
    _reachable(router_ns, vms[1:])

    for vm in vms:
        job(stack.cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    job(stack.cloud, "deleteNetwork", id=network["id"])
    no_leaks(stack, [network["id"]])


def test_a_released_segment_takes_a_stale_router_of_this_agent_with_it(tmp_path: Path) -> None:
    """A router left on a host (its DestroyRouter lost while the agent was down) goes when
    the server releases the network's segment there; only routers in this agent's state
    directory are touched."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    host_ns = f"clh{uuid.uuid4().hex[:8]}"
    network_id = str(uuid.uuid4())
    host = Ip(host_ns)
    try:
        sh("ip", "netns", "add", host_ns)
        host.run("link", "set", "lo", "up")
        router = Router(network_id, tmp_path, host)
        router.apply(router_cfg(network_id, 6177), None, "10.239.9.1", ())
        pid = int((router.run_dir / "dnsmasq.pid").read_text())
        assert router.ns in router_namespaces() and running(pid)
        other = tmp_path / "routers" / str(uuid.uuid4())  # another network's: stays
        other.mkdir()
        (other / "vni").write_text("6178")
        answer = network_commands.run(ReleaseSegment(str(uuid.uuid4()), 6177), tmp_path, host_ns)
        assert answer["removed"] is True and len(answer["stale_routers"]) == 1, answer
        assert router.ns not in router_namespaces() and not running(pid)
        assert guest_links(host_ns) == set() and not router.run_dir.exists()
        assert other.exists()
    finally:
        Router(network_id, tmp_path, host).destroy()
        sh("ip", "netns", "del", host_ns, check=False)
