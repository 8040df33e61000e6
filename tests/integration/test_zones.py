"""Building a zone the way a deployment script does, through the real ``cs`` client.

createZone → createPhysicalNetwork → addTrafficType x3 → updatePhysicalNetwork Enabled →
updateNetworkServiceProvider VirtualRouter Enabled → createPod → createVlanIpRange →
addCluster → updateZone Enabled; then every list, the refusals while children exist, and the
deletes in reverse order. The server is shared: every name carries a random suffix and each
zone uses its own addresses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from cs import CloudStack
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.integration.tenants import client, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud, Keys


def admin(cloud: Cloud) -> CloudStack:
    return client(cloud, cloud.admin)


def new_zone(cloud: Cloud, **extra: Any) -> dict[str, Any]:
    zone: dict[str, Any] = admin(cloud).createZone(
        name=uniq("zone"), networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2", **extra
    )["zone"]
    return zone


@dataclass
class BuiltZone:
    zone: dict[str, Any]
    network: dict[str, Any]
    traffic: list[dict[str, Any]]
    pod: dict[str, Any]
    ip_range: dict[str, Any]
    cluster: dict[str, Any]


def build_zone(cloud: Cloud) -> BuiltZone:
    """The deployment order, each step through ``cs`` (async steps polled to their result)."""
    cs = admin(cloud)
    zone = new_zone(cloud)
    network = cs.createPhysicalNetwork(
        zoneid=zone["id"],
        name=uniq("pn"),
        isolationmethods="VXLAN",
        vlan="5000-5999",
        fetch_result=True,
    )["physicalnetwork"]
    traffic = [
        cs.addTrafficType(
            physicalnetworkid=network["id"],
            traffictype=kind,
            kvmnetworklabel=f"br-{kind.lower()}",
            fetch_result=True,
        )["traffictype"]
        for kind in ("Guest", "Public", "Management")
    ]
    cs.updatePhysicalNetwork(id=network["id"], state="Enabled", fetch_result=True)
    router = cs.listNetworkServiceProviders(physicalnetworkid=network["id"], name="VirtualRouter")
    assert router["count"] == 1 and router["networkserviceprovider"][0]["state"] == "Disabled"
    enabled = cs.updateNetworkServiceProvider(
        id=router["networkserviceprovider"][0]["id"], state="Enabled", fetch_result=True
    )["networkserviceprovider"]
    assert enabled["state"] == "Enabled"
    pod = cs.createPod(
        zoneid=zone["id"],
        name=uniq("pod"),
        gateway="192.168.10.1",
        netmask="255.255.255.0",
        startip="192.168.10.10",
        endip="192.168.10.50",
    )["pod"]
    ip_range = cs.createVlanIpRange(
        zoneid=zone["id"],
        vlan="untagged",
        gateway="172.16.0.1",
        netmask="255.255.255.0",
        startip="172.16.0.10",
        endip="172.16.0.20",
        forvirtualnetwork="true",
    )["vlan"]
    added = cs.addCluster(
        zoneid=zone["id"],
        podid=pod["id"],
        clustername=uniq("cl"),
        hypervisor="Simulator",
        clustertype="CloudManaged",
    )
    assert added["count"] == 1 and len(added["cluster"]) == 1
    zone = cs.updateZone(id=zone["id"], allocationstate="Enabled")["zone"]
    return BuiltZone(zone, network, traffic, pod, ip_range, added["cluster"][0])


def test_a_whole_advanced_zone_is_built_listed_and_torn_down(cloud: Cloud) -> None:
    built = build_zone(cloud)
    cs = admin(cloud)
    zid = built.zone["id"]

    assert built.zone["allocationstate"] == "Enabled"
    assert built.zone["networktype"] == "Advanced" and built.zone["type"] == "Core"
    listed = cs.listZones(id=zid)["zone"]
    assert [z["name"] for z in listed] == [built.zone["name"]]
    assert listed[0]["dns1"] == "8.8.8.8" and listed[0]["internaldns1"] == "10.0.0.2"

    nets = cs.listPhysicalNetworks(zoneid=zid)["physicalnetwork"]
    assert [(n["id"], n["state"], n["isolationmethods"], n["vlan"]) for n in nets] == [
        (built.network["id"], "Enabled", "VXLAN", "5000-5999")
    ]
    kinds = cs.listTrafficTypes(physicalnetworkid=built.network["id"])["traffictype"]
    assert sorted(t["traffictype"] for t in kinds) == ["Guest", "Management", "Public"]
    assert {t["kvmnetworklabel"] for t in kinds} == {"br-guest", "br-public", "br-management"}
    providers = cs.listNetworkServiceProviders(physicalnetworkid=built.network["id"])
    states = {p["name"]: p["state"] for p in providers["networkserviceprovider"]}
    assert states["VirtualRouter"] == "Enabled"
    assert {states[n] for n in ("SecurityGroupProvider", "InternalLbVm", "VpcVirtualRouter")} == {
        "Disabled"
    }

    pods = cs.listPods(zoneid=zid)["pod"]
    assert [(p["id"], p["startip"], p["endip"]) for p in pods] == [
        (built.pod["id"], ["192.168.10.10"], ["192.168.10.50"])
    ]
    clusters = cs.listClusters(zoneid=zid)["cluster"]
    assert [(c["id"], c["podid"], c["hypervisortype"]) for c in clusters] == [
        (built.cluster["id"], built.pod["id"], "Simulator")
    ]
    assert clusters[0]["cpuovercommitratio"] == "1.0"
    ranges = cs.listVlanIpRanges(zoneid=zid)["vlan"]
    assert len(ranges) == 1
    r = ranges[0]
    assert (r["startip"], r["endip"], r["description"]) == (
        "172.16.0.10",
        "172.16.0.20",
        "172.16.0.10-172.16.0.20",
    )
    assert r["physicalnetworkid"] == built.network["id"] and r["forvirtualnetwork"] is True
    hypervisors = cs.listHypervisors(zoneid=zid)["hypervisor"]
    assert hypervisors == [{"name": "Simulator"}]

    _refusals_while_children_exist(cloud, built)
    _teardown_in_reverse_order(cloud, built)


def _refusals_while_children_exist(cloud: Cloud, built: BuiltZone) -> None:
    for command, target in (
        ("deleteZone", built.zone["id"]),
        ("deletePod", built.pod["id"]),
        ("deletePhysicalNetwork", built.network["id"]),
    ):
        code, body = error(cloud.signed(command, id=target), command)
        assert code == 536, body
        assert "cannot be deleted" in body["errortext"] or "not deletable" in body["errortext"]
    cs = admin(cloud)
    assert cs.listZones(id=built.zone["id"])["count"] == 1
    assert cs.listPods(id=built.pod["id"])["count"] == 1
    assert cs.listPhysicalNetworks(id=built.network["id"])["count"] == 1


def _teardown_in_reverse_order(cloud: Cloud, built: BuiltZone) -> None:
    cs = admin(cloud)
    zid = built.zone["id"]
    assert cs.deleteCluster(id=built.cluster["id"])["success"] is True
    assert cs.deleteVlanIpRange(id=built.ip_range["id"])["success"] is True
    assert cs.deletePod(id=built.pod["id"])["success"] is True
    for t in built.traffic:
        cs.deleteTrafficType(id=t["id"], fetch_result=True)
    assert cs.listTrafficTypes(physicalnetworkid=built.network["id"]) == {}
    cs.deletePhysicalNetwork(id=built.network["id"], fetch_result=True)
    assert cs.deleteZone(id=zid)["success"] is True
    for lister in ("listClusters", "listPods", "listVlanIpRanges", "listPhysicalNetworks"):
        assert getattr(cs, lister)(zoneid=zid) == {}, lister
    assert cs.listZones(id=zid) == {}


def test_zone_building_writes_cloudstack_events(cloud: Cloud) -> None:
    built = build_zone(cloud)
    events = admin(cloud).listEvents(listall="true", pagesize=500, page=1)["event"]

    def of(resource: str) -> set[tuple[str, str]]:
        return {(e["type"], e["state"]) for e in events if e.get("resourceid") == resource}

    assert {("ZONE.CREATE", "Completed"), ("ZONE.EDIT", "Completed")} <= of(built.zone["id"])
    assert {("PHYSICAL.NETWORK.CREATE", "Scheduled"), ("PHYSICAL.NETWORK.CREATE", "Completed"),
            ("PHYSICAL.NETWORK.UPDATE", "Completed")} <= of(built.network["id"])  # fmt: skip
    assert ("TRAFFIC.TYPE.CREATE", "Completed") in of(built.traffic[0]["id"])
    assert ("POD.CREATE", "Completed") in of(built.pod["id"])
    assert ("VLAN.IP.RANGE.CREATE", "Completed") in of(built.ip_range["id"])


def _libcloud(cloud: Cloud, keys: Keys) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        keys.api_key, keys.secret, host="127.0.0.1", port=cloud.port, path="/client/api",
        secure=False,
    )  # fmt: skip


def test_a_disabled_zone_is_invisible_to_users_and_visible_to_admins(cloud: Cloud) -> None:
    user = make_tenant(cloud)
    zone = new_zone(cloud)
    assert zone["allocationstate"] == "Disabled"
    assert user.cs.listZones(id=zone["id"]) == {}
    assert admin(cloud).listZones(id=zone["id"])["count"] == 1
    assert zone["id"] in {loc.id for loc in _libcloud(cloud, cloud.admin).list_locations()}
    user_zones = user.cs.listZones().get("zone", [])
    assert zone["id"] not in {z["id"] for z in user_zones}

    admin(cloud).updateZone(id=zone["id"], allocationstate="Enabled")
    assert [z["id"] for z in user.cs.listZones(id=zone["id"])["zone"]] == [zone["id"]]
    assert zone["id"] in {loc.id for loc in _libcloud(cloud, user.keys).list_locations()}
    shown = user.cs.listZones(id=zone["id"])["zone"][0]
    assert "internaldns1" not in shown  # an operator fact, hidden from users


def test_a_dedicated_zone_is_seen_by_its_domain_only(cloud: Cloud) -> None:
    domain = make_domain(cloud)
    child = make_domain(cloud, parent=domain["id"])
    inside = make_tenant(cloud, domain_id=child["id"])
    outside = make_tenant(cloud)
    zone = new_zone(cloud, domainid=domain["id"], allocationstate="Enabled")
    assert zone["domainid"] == domain["id"] and zone["domainname"] == domain["name"]
    assert outside.cs.listZones(id=zone["id"]) == {}
    assert inside.cs.listZones(id=zone["id"])["count"] == 1
    assert admin(cloud).listZones(domainid=domain["id"])["zone"][0]["id"] == zone["id"]


def test_users_may_not_build_zones(cloud: Cloud) -> None:
    user = make_tenant(cloud)
    name = uniq("zone")
    for command, params in (
        ("createZone", {"name": name, "networktype": "Advanced", "internaldns1": "10.0.0.2"}),
        ("listPods", {}),
        ("listClusters", {}),
        ("listPhysicalNetworks", {}),
        ("listVlanIpRanges", {}),
    ):
        code, _ = error(user.raw(command, **params), command)
        assert code == 432, command
    assert admin(cloud).listZones(name=name) == {}


def test_bad_zone_input_is_refused_and_writes_nothing(cloud: Cloud) -> None:
    name = uniq("zone")
    base = {"name": name, "networktype": "Advanced", "internaldns1": "10.0.0.2"}
    for bad in (
        {"internaldns1": ""},
        {"networktype": "Fancy"},
        {"dns1": "not-an-ip"},
        {"guestcidraddress": "10.1.0.0/40"},
        {"allocationstate": "Sideways"},
    ):
        code, body = error(cloud.signed("createZone", **{**base, **bad}), "createZone")
        assert code == 431, (bad, body)
    assert admin(cloud).listZones(name=name) == {}
    zone = admin(cloud).createZone(**base)["zone"]
    code, body = error(cloud.signed("createZone", **base), "createZone")
    assert code == 431 and "already exists" in body["errortext"]
    assert admin(cloud).listZones(name=name)["count"] == 1
    assert zone["name"] == name


def test_bad_pod_and_cluster_input_is_refused_and_writes_nothing(cloud: Cloud) -> None:
    zone = new_zone(cloud)
    ok = {
        "zoneid": zone["id"],
        "name": uniq("pod"),
        "gateway": "192.168.20.1",
        "netmask": "255.255.255.0",
        "startip": "192.168.20.10",
        "endip": "192.168.20.20",
    }
    for bad in (
        {"gateway": "192.168.20.300"},
        {"netmask": "255.0.255.0"},
        {"startip": "192.168.21.10"},
        {"startip": "192.168.20.30"},  # start after end
        {"startip": "192.168.20.1"},  # the gateway inside the range
        {"zoneid": str(uuid.uuid4())},
        {"name": ""},
    ):
        code, body = error(cloud.signed("createPod", **{**ok, **bad}), "createPod")
        assert code == 431, (bad, body)
    assert admin(cloud).listPods(zoneid=zone["id"]) == {}
    pod = admin(cloud).createPod(**ok)["pod"]
    overlap = {**ok, "name": uniq("pod"), "startip": "192.168.20.15", "endip": "192.168.20.40"}
    code, _ = error(cloud.signed("createPod", **overlap), "createPod")
    assert code == 431
    assert admin(cloud).listPods(zoneid=zone["id"])["count"] == 1

    cluster = {"zoneid": zone["id"], "podid": pod["id"], "clustername": uniq("cl")}
    for bad in (
        {"hypervisor": "XenServer"},
        {"hypervisor": "KVM", "cpuovercommitratio": "0.5"},
        {"hypervisor": "KVM", "podid": str(uuid.uuid4())},
        {},
    ):
        code, body = error(cloud.signed("addCluster", **{**cluster, **bad}), "addCluster")
        assert code == 431, (bad, body)
    assert admin(cloud).listClusters(zoneid=zone["id"]) == {}
    made = admin(cloud).addCluster(**cluster, hypervisor="kvm", cpuovercommitratio="2")
    assert made["cluster"][0]["hypervisortype"] == "KVM"
    assert made["cluster"][0]["cpuovercommitratio"] == "2.0"
    assert admin(cloud).listClusters(zoneid=zone["id"], hypervisor="KVM")["count"] == 1


def test_bad_ip_ranges_are_refused_and_write_nothing(cloud: Cloud) -> None:
    zone = new_zone(cloud)
    ok = {
        "zoneid": zone["id"],
        "gateway": "172.20.0.1",
        "netmask": "255.255.255.0",
        "startip": "172.20.0.10",
        "endip": "172.20.0.20",
    }
    for bad in (
        {"startip": "172.20.0.999"},
        {"endip": "172.20.1.5"},
        {"startip": "172.20.0.30"},
        {"gateway": ""},
        {"zoneid": str(uuid.uuid4())},
        {"vlan": "5000"},
    ):
        code, body = error(cloud.signed("createVlanIpRange", **{**ok, **bad}), "createVlanIpRange")
        assert code == 431, (bad, body)
    assert admin(cloud).listVlanIpRanges(zoneid=zone["id"]) == {}
    first = admin(cloud).createVlanIpRange(**ok)["vlan"]
    assert first["vlan"] == "vlan://untagged" and first["cidr"] == "172.20.0.0/24"
    overlap = {**ok, "startip": "172.20.0.20", "endip": "172.20.0.25"}
    code, body = error(cloud.signed("createVlanIpRange", **overlap), "createVlanIpRange")
    assert code == 431 and "overlaps" in body["errortext"]
    assert admin(cloud).listVlanIpRanges(zoneid=zone["id"])["count"] == 1
    # The same addresses in another zone are another zone's business.
    other = new_zone(cloud)
    admin(cloud).createVlanIpRange(**{**ok, "zoneid": other["id"]})


def test_bad_physical_network_input_is_refused_and_writes_nothing(cloud: Cloud) -> None:
    zone = new_zone(cloud)
    name = uniq("pn")
    for bad in (
        {"isolationmethods": "MPLS"},
        {"vlan": "200-100"},
        {"isolationmethods": "VLAN", "vlan": "4000-5000"},
        {"zoneid": str(uuid.uuid4())},
    ):
        params = {"zoneid": zone["id"], "name": name, **bad}
        code, body = error(cloud.signed("createPhysicalNetwork", **params), "createPhysicalNetwork")
        assert code == 431, (bad, body)
    assert admin(cloud).listPhysicalNetworks(zoneid=zone["id"]) == {}
    net = admin(cloud).createPhysicalNetwork(zoneid=zone["id"], name=name, fetch_result=True)
    pn = net["physicalnetwork"]
    assert pn["state"] == "Disabled" and pn["isolationmethods"] == "VXLAN"
    admin(cloud).addTrafficType(physicalnetworkid=pn["id"], traffictype="Guest", fetch_result=True)
    code, body = error(
        cloud.signed("addTrafficType", physicalnetworkid=pn["id"], traffictype="Guest"),
        "addTrafficType",
    )
    assert code == 431 and "already" in body["errortext"]
    code, _ = error(
        cloud.signed("addTrafficType", physicalnetworkid=pn["id"], traffictype="Bogus"),
        "addTrafficType",
    )
    assert code == 431
    assert admin(cloud).listTrafficTypes(physicalnetworkid=pn["id"])["count"] == 1
    code, _ = error(
        cloud.signed("updatePhysicalNetwork", id=pn["id"], state="On"), "updatePhysicalNetwork"
    )
    assert code == 431
    assert (
        admin(cloud).listPhysicalNetworks(id=pn["id"])["physicalnetwork"][0]["state"] == "Disabled"
    )


def test_list_zones_filters(cloud: Cloud) -> None:
    a, b = new_zone(cloud), new_zone(cloud)
    cs = admin(cloud)
    assert {z["id"] for z in cs.listZones(ids=f"{a['id']},{b['id']}")["zone"]} == {a["id"], b["id"]}
    assert [z["id"] for z in cs.listZones(name=a["name"])["zone"]] == [a["id"]]
    assert [z["id"] for z in cs.listZones(keyword=b["name"][-8:])["zone"]] == [b["id"]]
    assert cs.listZones(id=a["id"], networktype="Basic") == {}
    names = {h["name"] for h in cs.listHypervisors()["hypervisor"]}
    assert names == {"Simulator", "KVM"}


def test_cluster_overprovisioning_is_a_cluster_scoped_setting(cloud: Cloud) -> None:
    """updateConfiguration with clusterid writes the factor placement reads, on the cluster."""
    built = build_zone(cloud)
    cs, cid = admin(cloud), built.cluster["id"]
    name = "cpu.overprovisioning.factor"
    shown = cs.updateConfiguration(name=name, value="3", clusterid=cid)["configuration"]
    assert shown["scope"] == "cluster"
    assert cs.listClusters(id=cid)["cluster"][0]["cpuovercommitratio"] == "3.0"
    listed = cs.listConfigurations(name=name, clusterid=cid)["configuration"]
    assert [c["value"] for c in listed] == ["3.0"]
    code, _ = error(
        cloud.signed("updateConfiguration", name=name, value="0.5", clusterid=cid),
        "updateConfiguration",
    )
    assert code == 431
    code, _ = error(
        cloud.signed("updateConfiguration", name="mem.overprovisioning.factor", value="x",
                     clusterid=cid),
        "updateConfiguration",
    )  # fmt: skip
    assert code == 431
    cluster = cs.listClusters(id=cid)["cluster"][0]
    assert (cluster["cpuovercommitratio"], cluster["memoryovercommitratio"]) == ("3.0", "1.0")
    code, _ = error(
        cloud.signed("updateConfiguration", name="default.page.size", value="5", clusterid=cid),
        "updateConfiguration",
    )
    assert code == 431  # only the cluster-scoped settings have a cluster value
    reset = cs.resetConfiguration(name=name, clusterid=cid)["configuration"]
    assert reset["value"] == "1.0"
    assert cs.listClusters(id=cid)["cluster"][0]["cpuovercommitratio"] == "1.0"
    # The global value stays what it was.
    assert cs.listConfigurations(name=name)["configuration"][0]["value"] == "1.0"


def test_async_create_replies_with_id_and_jobid(cloud: Cloud) -> None:
    """createPhysicalNetwork and addTrafficType are async-create in CloudStack: the reply is
    exactly {id, jobid}, the row exists at once, and the job names it as its instance."""
    zone = new_zone(cloud)
    resp = cloud.signed("createPhysicalNetwork", zoneid=zone["id"], name=uniq("pn"))
    assert resp.status_code == 200, resp.text
    body = resp.json()["createphysicalnetworkresponse"]
    assert sorted(body) == ["id", "jobid"]
    assert cloud.call("listPhysicalNetworks", id=body["id"])["count"] == 1
    job = cloud.wait_job(body["jobid"])
    assert (job["jobstatus"], job["jobinstanceid"], job["jobinstancetype"]) == (
        1,
        body["id"],
        "PhysicalNetwork",
    )
    assert job["jobresult"]["physicalnetwork"]["id"] == body["id"]
    resp = cloud.signed("addTrafficType", physicalnetworkid=body["id"], traffictype="Guest")
    added = resp.json()["addtraffictyperesponse"]
    assert sorted(added) == ["id", "jobid"]
    result = cloud.wait_job(added["jobid"])["jobresult"]["traffictype"]
    assert (result["id"], result["physicalnetworkid"]) == (added["id"], body["id"])


def test_provider_elements_are_configured_the_marvin_way(cloud: Cloud) -> None:
    """deployDataCenter enables each element (configure*Element) before its provider."""
    cs = admin(cloud)
    zone = new_zone(cloud)
    pn = cs.createPhysicalNetwork(zoneid=zone["id"], name=uniq("pn"), fetch_result=True)
    pn_id = pn["physicalnetwork"]["id"]
    providers = {
        p["name"]: p
        for p in cs.listNetworkServiceProviders(physicalnetworkid=pn_id)["networkserviceprovider"]
    }
    for name, lister, configure, key in (
        ("VirtualRouter", "listVirtualRouterElements", "configureVirtualRouterElement",
         "virtualrouterelement"),
        ("VpcVirtualRouter", "listVirtualRouterElements", "configureVirtualRouterElement",
         "virtualrouterelement"),
        ("InternalLbVm", "listInternalLoadBalancerElements",
         "configureInternalLoadBalancerElement", "internalloadbalancerelement"),
    ):  # fmt: skip
        nsp = providers[name]
        elements = getattr(cs, lister)(nspid=nsp["id"])[key]
        assert [(e["nspid"], e["enabled"]) for e in elements] == [(nsp["id"], False)]
        done = getattr(cs, configure)(id=elements[0]["id"], enabled="true", fetch_result=True)
        assert done[key]["enabled"] is True
        assert getattr(cs, lister)(id=elements[0]["id"])[key][0]["enabled"] is True
        cs.updateNetworkServiceProvider(id=nsp["id"], state="Enabled", fetch_result=True)
    states = {
        p["name"]: p["state"]
        for p in cs.listNetworkServiceProviders(physicalnetworkid=pn_id)["networkserviceprovider"]
    }
    assert states["VirtualRouter"] == states["InternalLbVm"] == "Enabled"
    assert states["SecurityGroupProvider"] == "Disabled"
    # An internal LB element is not a virtual router element.
    lb = cs.listInternalLoadBalancerElements(nspid=providers["InternalLbVm"]["id"])
    code, _ = error(
        cloud.signed(
            "configureVirtualRouterElement",
            id=lb["internalloadbalancerelement"][0]["id"],
            enabled="false",
        ),
        "configureVirtualRouterElement",
    )
    assert code == 431


def test_updates_rename_and_disable_with_the_same_rules_as_creates(cloud: Cloud) -> None:
    cs = admin(cloud)
    taken, zone = new_zone(cloud), new_zone(cloud)
    code, _ = error(cloud.signed("updateZone", id=zone["id"], name=taken["name"]), "updateZone")
    assert code == 431
    assert cs.listZones(id=zone["id"])["zone"][0]["name"] == zone["name"]
    renamed = cs.updateZone(id=zone["id"], name=uniq("zone"), dns2="1.1.1.1")["zone"]
    assert renamed["dns2"] == "1.1.1.1" and renamed["allocationstate"] == "Disabled"

    pod = cs.createPod(zoneid=zone["id"], name=uniq("pod"))["pod"]
    assert "startip" not in pod
    moved = cs.updatePod(
        id=pod["id"],
        gateway="10.50.0.1",
        netmask="255.255.255.0",
        startip="10.50.0.10",
        endip="10.50.0.20",
        allocationstate="Disabled",
    )["pod"]
    assert (moved["startip"], moved["allocationstate"]) == (["10.50.0.10"], "Disabled")
    code, _ = error(cloud.signed("updatePod", id=pod["id"], endip="10.51.0.5"), "updatePod")
    assert code == 431
    assert cs.listPods(id=pod["id"])["pod"][0]["endip"] == ["10.50.0.20"]

    cluster = cs.addCluster(
        zoneid=zone["id"], podid=pod["id"], clustername=uniq("cl"), hypervisor="Simulator"
    )["cluster"][0]
    changed = cs.updateCluster(id=cluster["id"], allocationstate="Disabled")["cluster"]
    assert changed["allocationstate"] == "Disabled" and changed["name"] == cluster["name"]
    assert cs.listClusters(zoneid=zone["id"], allocationstate="Disabled")["count"] == 1
    code, _ = error(
        cloud.signed("updateCluster", id=cluster["id"], allocationstate="Gone"), "updateCluster"
    )
    assert code == 431


def test_showcapacities_adds_each_places_capacity(cloud: Cloud) -> None:
    """A host of 4 x 1000 MHz in a cluster over-committing CPU twice shows 8000 MHz at every
    level; without showcapacities (or for a user) no capacity is shown."""
    built = build_zone(cloud)
    cs = admin(cloud)
    cs.updateConfiguration(
        name="cpu.overprovisioning.factor", value="2", clusterid=built.cluster["id"]
    )
    cs.addHost(
        zoneid=built.zone["id"],
        podid=built.pod["id"],
        clusterid=built.cluster["id"],
        hypervisor="Simulator",
        url=f"http://sim/c/{uniq('h')}?cpunumber=4&cpuspeed=1000&memory=4096",
        username="root",
        password="password",
    )
    for lister, key, target in (
        ("listZones", "zone", built.zone["id"]),
        ("listPods", "pod", built.pod["id"]),
        ("listClusters", "cluster", built.cluster["id"]),
    ):
        shown = getattr(cs, lister)(id=target, showcapacities="true")[key][0]
        cpu = [c for c in shown["capacity"] if c["name"] == "CPU"]
        assert [c["capacitytotal"] for c in cpu] == [8000], (lister, shown["capacity"])
        assert "capacity" not in getattr(cs, lister)(id=target)[key][0]
    user = make_tenant(cloud)
    seen = user.cs.listZones(id=built.zone["id"], showcapacities="true")["zone"][0]
    assert "capacity" not in seen
