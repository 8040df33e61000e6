"""Guest networks on a simulated Advanced zone through `cs` and libcloud: network offerings,
createNetwork/listNetworks/updateNetwork/restartNetwork/deleteNetwork, VM NICs with
addresses from the network, the default network of an account, concurrency of address
allocation, limits and bad input (error code and nothing changed)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud
from tests.support.netzone import NetZone, add_networking, libcloud_driver
from tests.support.simzone import IMAGE, build, http_files

DEFAULT_ISOLATED = "DefaultIsolatedNetworkOfferingWithSourceNatService"


@pytest.fixture(scope="module")
def net(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetZone]:
    root = tmp_path_factory.mktemp("netfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        sim = build(
            cloud,
            tmp_path_factory.mktemp("network"),
            url,
            hosts=4,
            cpus=16,
            memory_mib=16384,
            offering={"cpunumber": 1, "cpuspeed": 100, "memory": 64},
        )
        yield add_networking(sim, vnis=(7000, 7004))


@pytest.fixture(scope="module")
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def offering_id(cloud: Cloud, name: str = DEFAULT_ISOLATED) -> str:
    found = cloud.call("listNetworkOfferings", name=name)["networkoffering"]
    assert len(found) == 1
    return str(found[0]["id"])


def make_network(net: NetZone, tenant: Tenant, **params: Any) -> dict[str, Any]:
    network: dict[str, Any] = tenant.call(
        "createNetwork",
        name=params.pop("name", uniq("net")),
        displaytext="a network",
        networkofferingid=offering_id(net.sim.cloud),
        zoneid=net.sim.zone["id"],
        **params,
    )["network"]
    return network


def networks_of(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tenant.call("listNetworks", **params).get("network", [])
    return found


def expunge(cloud: Cloud, vm_id: str) -> dict[str, Any]:
    """As the admin: users may not expunge by default."""
    return cloud.wait_job(cloud.call("destroyVirtualMachine", id=vm_id, expunge=True)["jobid"])


def test_default_offerings_are_seeded_with_their_services(cloud: Cloud) -> None:
    offerings = cloud.call("listNetworkOfferings", isdefault=True)["networkoffering"]
    by_name = {o["name"]: o for o in offerings}
    for name in (
        DEFAULT_ISOLATED,
        "DefaultSharedNetworkOffering",
        "DefaultIsolatedNetworkOfferingForVpcNetworks",
    ):
        assert by_name[name]["state"] == "Enabled"
    isolated = by_name[DEFAULT_ISOLATED]
    assert isolated["guestiptype"] == "Isolated" and isolated["availability"] == "Required"
    services = {s["name"]: s for s in isolated["service"]}
    assert {"Dhcp", "Dns", "UserData", "SourceNat", "PortForwarding", "Firewall", "Lb"} <= set(
        services
    )
    assert services["SourceNat"]["provider"] == [{"name": "VirtualRouter"}]
    assert services["SourceNat"]["capability"][0]["value"] == "peraccount"
    vpc = by_name["DefaultIsolatedNetworkOfferingForVpcNetworks"]
    assert vpc["forvpc"] is True and {"name": "VpcVirtualRouter"} in vpc["service"][0]["provider"]
    with_snat = cloud.call("listNetworkOfferings", supportedservices="SourceNat")
    assert DEFAULT_ISOLATED in {o["name"] for o in with_snat["networkoffering"]}
    assert "DefaultSharedNetworkOffering" not in {o["name"] for o in with_snat["networkoffering"]}


def test_network_offering_create_update_delete(cloud: Cloud, tenant: Tenant) -> None:
    name = uniq("no")
    made = cloud.call(
        "createNetworkOffering",
        name=name,
        displaytext="mine",
        guestiptype="Isolated",
        traffictype="GUEST",
        supportedservices="Dhcp,Dns,SourceNat,Firewall",
    )["networkoffering"]
    assert made["state"] == "Disabled" and made["isdefault"] is False
    assert sorted(s["name"] for s in made["service"]) == ["Dhcp", "Dns", "Firewall", "SourceNat"]
    code, _ = error(
        tenant.raw("createNetworkOffering", name=uniq("no"), guestiptype="Isolated"),
        "createNetworkOffering",
    )
    assert code == 432  # admins only
    for bad in (
        {"name": name},  # taken
        {"guestiptype": "Weird"},
        {"supportedservices": "Teleport"},
        {"guestiptype": "Shared", "supportedservices": "SourceNat"},
    ):
        params = {"name": uniq("no"), "guestiptype": "Isolated", "traffictype": "GUEST", **bad}
        code, body = error(cloud.signed("createNetworkOffering", **params), "createNetworkOffering")
        assert code == 431, body
        if "name" not in bad:
            assert cloud.call("listNetworkOfferings", name=params["name"]) == {}
    updated = cloud.call("updateNetworkOffering", id=made["id"], state="Enabled")
    assert updated["networkoffering"]["state"] == "Enabled"
    default = offering_id(cloud)
    code, _ = error(cloud.signed("deleteNetworkOffering", id=default), "deleteNetworkOffering")
    assert code == 431 and offering_id(cloud) == default
    assert cloud.call("deleteNetworkOffering", id=made["id"])["success"] is True
    assert cloud.call("listNetworkOfferings", id=made["id"]) == {}


def test_create_list_update_network(net: NetZone, tenant: Tenant) -> None:
    network = make_network(net, tenant, gateway="10.20.0.1", netmask="255.255.255.0")
    assert (network["state"], network["type"], network["acltype"]) == (
        "Allocated",
        "Isolated",
        "Account",
    )
    assert (network["cidr"], network["gateway"]) == ("10.20.0.0/24", "10.20.0.1")
    assert network["account"] == tenant.name and network["canusefordeploy"] is True
    assert network["networkofferingname"] == DEFAULT_ISOLATED
    assert "broadcasturi" not in network  # no segment until it is implemented
    assert {s["name"] for s in network["service"]} >= {"SourceNat", "Dhcp"}
    listed = networks_of(tenant, id=network["id"])
    assert [n["id"] for n in listed] == [network["id"]]
    assert networks_of(tenant, id=network["id"], supportedservices="SourceNat,Dhcp")
    assert networks_of(tenant, id=network["id"], supportedservices="SecurityGroup") == []
    assert networks_of(tenant, id=network["id"], type="Shared") == []
    assert networks_of(tenant, id=network["id"], canusefordeploy=True)
    assert networks_of(tenant, id=network["id"], issystem=True) == []
    other = make_tenant(tenant.cloud, tenant.domain_id)
    assert networks_of(other, id=network["id"]) == []  # another account's network is hidden
    code, _ = error(other.raw("updateNetwork", id=network["id"], name="x"), "updateNetwork")
    assert code == 531
    job = tenant.cloud.wait_job(
        tenant.call("updateNetwork", id=network["id"], name="renamed", displaytext="new text")[
            "jobid"
        ],
        tenant.keys,
    )
    assert job["jobstatus"] == 1
    assert job["jobresult"]["network"]["name"] == "renamed"
    assert networks_of(tenant, id=network["id"])[0]["displaytext"] == "new text"


def test_create_network_bad_input_changes_nothing(net: NetZone, tenant: Tenant) -> None:
    zone, offering = net.sim.zone["id"], offering_id(net.sim.cloud)
    before = {n["id"] for n in networks_of(tenant)}
    cases = [
        ({"gateway": "10.30.0.1"}, 431),  # netmask missing
        ({"gateway": "10.30.0.0", "netmask": "255.255.255.0"}, 431),  # not a host address
        ({"gateway": "nonsense", "netmask": "255.255.255.0"}, 431),
        (
            {
                "networkofferingid": offering_id(
                    net.sim.cloud, "DefaultIsolatedNetworkOfferingForVpcNetworks"
                )
            },
            431,
        ),
        ({"vlan": "7003"}, 531),  # users can't pick a segment
        ({"networkofferingid": offering_id(net.sim.cloud, "DefaultSharedNetworkOffering")}, 531),
        ({"zoneid": "7d4e3c1a-0000-4000-8000-000000000000"}, 431),
    ]
    for extra, expected in cases:
        params = {"name": uniq("bad"), "networkofferingid": offering, "zoneid": zone, **extra}
        code, body = error(tenant.raw("createNetwork", **params), "createNetwork")
        assert code == expected, (extra, body)
    assert {n["id"] for n in networks_of(tenant)} == before


def test_network_limit_is_enforced(net: NetZone, cloud: Cloud) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    account = tenant.account
    cloud.call(
        "updateResourceLimit",
        account=account["name"],
        domainid=account["domainid"],
        resourcetype=6,
        max=1,
    )
    make_network(net, tenant)
    code, _ = error(
        tenant.raw(
            "createNetwork",
            name="second",
            networkofferingid=offering_id(cloud),
            zoneid=net.sim.zone["id"],
        ),
        "createNetwork",
    )
    assert code == 532
    assert len(networks_of(tenant)) == 1
    assert int(cloud.call("listAccounts", tenant.keys)["account"][0]["networktotal"]) == 1


def test_deploy_on_a_network_gets_a_nic_and_implements_it(net: NetZone, tenant: Tenant) -> None:
    network = make_network(net, tenant, gateway="10.40.0.1", netmask="255.255.255.0")
    job = net.sim.deploy(tenant.keys, networkids=network["id"], name=uniq("vm"))
    assert job["jobstatus"] == 1, job
    vm = job["jobresult"]["virtualmachine"]
    [nic] = vm["nic"]
    assert nic["networkid"] == network["id"] and nic["networkname"] == network["name"]
    assert nic["ipaddress"] == "10.40.0.2"  # lowest free after the gateway
    assert (nic["netmask"], nic["gateway"]) == ("255.255.255.0", "10.40.0.1")
    assert nic["isdefault"] is True and nic["traffictype"] == "Guest"
    assert nic["type"] == "Isolated" and nic["macaddress"].startswith("02:00:")
    implemented = networks_of(tenant, id=network["id"])[0]
    assert implemented["state"] == "Implemented"
    vni = int(implemented["broadcasturi"].removeprefix("vxlan://"))
    assert net.vni_range[0] <= vni <= net.vni_range[1]
    assert nic["broadcasturi"] == implemented["broadcasturi"]
    snat = tenant.call("listPublicIpAddresses", associatednetworkid=network["id"])
    [ip] = snat["publicipaddress"]
    assert ip["issourcenat"] is True and ip["ipaddress"].startswith("203.0.113.")
    second = net.sim.deploy(tenant.keys, networkids=network["id"], ipaddress="10.40.0.50")
    assert second["jobresult"]["virtualmachine"]["nic"][0]["ipaddress"] == "10.40.0.50"
    # the address is taken: asking for it again is refused at once, and no VM is made
    before = tenant.call("listVirtualMachines").get("count", 0)
    code, _ = error(
        tenant.raw(
            "deployVirtualMachine",
            zoneid=net.sim.zone["id"],
            templateid=net.sim.template["id"],
            serviceofferingid=net.sim.offering["id"],
            networkids=network["id"],
            ipaddress="10.40.0.50",
        ),
        "deployVirtualMachine",
    )
    assert code == 431
    assert tenant.call("listVirtualMachines").get("count", 0) == before


def test_deploy_refuses_another_accounts_network(net: NetZone, tenant: Tenant) -> None:
    network = make_network(net, tenant)
    other = make_tenant(tenant.cloud, tenant.domain_id)
    code, _ = error(
        other.raw(
            "deployVirtualMachine",
            zoneid=net.sim.zone["id"],
            templateid=net.sim.template["id"],
            serviceofferingid=net.sim.offering["id"],
            networkids=network["id"],
        ),
        "deployVirtualMachine",
    )
    assert code == 531
    assert other.call("listVirtualMachines") == {}


def test_default_network_is_created_then_reused(net: NetZone, cloud: Cloud) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    first = net.sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    [network] = networks_of(tenant)
    assert network["name"] == f"{tenant.name}-network"
    assert first["nic"][0]["networkid"] == network["id"]
    second = net.sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    assert second["nic"][0]["networkid"] == network["id"]
    assert len(networks_of(tenant)) == 1
    assert first["nic"][0]["ipaddress"] != second["nic"][0]["ipaddress"]


def test_twenty_parallel_deploys_get_distinct_addresses(net: NetZone, cloud: Cloud) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    network = make_network(net, tenant, gateway="10.50.0.1", netmask="255.255.255.0")

    def deploy(_: int) -> dict[str, Any]:
        return net.sim.deploy(tenant.keys, networkids=network["id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        jobs = list(pool.map(deploy, range(20)))
    assert all(j["jobstatus"] == 1 for j in jobs), [j for j in jobs if j["jobstatus"] != 1][:1]
    addresses = [j["jobresult"]["virtualmachine"]["nic"][0]["ipaddress"] for j in jobs]
    macs = [j["jobresult"]["virtualmachine"]["nic"][0]["macaddress"] for j in jobs]
    assert len(set(addresses)) == 20 and len(set(macs)) == 20
    assert sorted(addresses, key=ipaddress.IPv4Address) == [f"10.50.0.{i}" for i in range(2, 22)]


def test_delete_network_refused_while_vms_use_it_then_address_reused(
    net: NetZone, tenant: Tenant
) -> None:
    network = make_network(net, tenant, gateway="10.60.0.1", netmask="255.255.255.0")
    vm = net.sim.deploy(tenant.keys, networkids=network["id"])["jobresult"]["virtualmachine"]
    assert vm["nic"][0]["ipaddress"] == "10.60.0.2"
    code, _ = error(tenant.raw("deleteNetwork", id=network["id"]), "deleteNetwork")
    assert code == 536
    assert networks_of(tenant, id=network["id"])[0]["state"] == "Implemented"
    done = expunge(tenant.cloud, vm["id"])
    assert done["jobstatus"] == 1, done
    again = net.sim.deploy(tenant.keys, networkids=network["id"])["jobresult"]["virtualmachine"]
    assert again["nic"][0]["ipaddress"] == "10.60.0.2"  # released at expunge, taken again
    assert expunge(tenant.cloud, again["id"])["jobstatus"] == 1
    idle = networks_of(tenant, id=network["id"])[0]
    assert idle["state"] == "Shutdown" and "broadcasturi" not in idle  # the last NIC went
    ips = tenant.call("listPublicIpAddresses", associatednetworkid=network["id"])
    assert len(ips["publicipaddress"]) == 1
    deleted = tenant.cloud.wait_job(
        tenant.call("deleteNetwork", id=network["id"])["jobid"], tenant.keys
    )
    assert deleted["jobstatus"] == 1, deleted
    assert networks_of(tenant, id=network["id"]) == []
    gone = tenant.call("listPublicIpAddresses", ipaddress=ips["publicipaddress"][0]["ipaddress"])
    assert gone == {}  # the source NAT address went back to the range


def test_restart_network(net: NetZone, tenant: Tenant) -> None:
    network = make_network(net, tenant)
    job = tenant.cloud.wait_job(
        tenant.call("restartNetwork", id=network["id"], cleanup=True)["jobid"], tenant.keys
    )
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["network"]["id"] == network["id"]
    code, _ = error(
        tenant.raw("restartNetwork", id="7d4e3c1a-0000-4000-8000-000000000000"), "restartNetwork"
    )
    assert code == 431


@pytest.fixture(scope="module")
def tiny(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetZone]:
    """A zone of its own whose guest range holds two VXLAN ids."""
    root = tmp_path_factory.mktemp("tinyfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        sim = build(
            cloud,
            tmp_path_factory.mktemp("tiny"),
            url,
            hosts=1,
            offering={"cpunumber": 1, "cpuspeed": 100, "memory": 64},
        )
        yield add_networking(sim, vnis=(7200, 7201))


def test_segment_ids_run_out_with_533_and_nothing_is_left_running(
    tiny: NetZone, cloud: Cloud
) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    results = []
    for _ in range(3):
        network = make_network(tiny, tenant)
        results.append(tiny.sim.deploy(tenant.keys, networkids=network["id"]))
    assert [r["jobstatus"] for r in results] == [1, 1, 2]
    assert results[-1]["jobresult"]["errorcode"] == 533
    states = [n["state"] for n in networks_of(tenant)]
    assert sorted(states) == ["Allocated", "Implemented", "Implemented"]
    failed = tenant.call("listVirtualMachines", state="Error").get("virtualmachine", [])
    assert len(failed) == 1 and "hostid" not in failed[0]  # nothing runs anywhere


def test_libcloud_lists_and_creates_networks(net: NetZone, tenant: Tenant) -> None:
    driver = libcloud_driver(tenant.cloud, tenant.keys)
    zone = next(loc for loc in driver.list_locations() if loc.id == net.sim.zone["id"])

    class Offering:
        id = offering_id(net.sim.cloud)

    made = driver.ex_create_network("via libcloud", uniq("lc"), Offering(), zone)
    listed = {n.id: n for n in driver.ex_list_networks()}
    assert made.id in listed and listed[made.id].networkofferingid == Offering.id
    assert listed[made.id].extra["state"] == "Allocated"
    driver.ex_delete_network(listed[made.id])
    assert made.id not in {n.id for n in driver.ex_list_networks()}


def test_nics_added_removed_and_made_default(net: NetZone, cloud: Cloud) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    first = make_network(net, tenant, gateway="10.80.0.1", netmask="255.255.255.0")
    second = make_network(net, tenant, gateway="10.81.0.1", netmask="255.255.255.0")
    vm = net.sim.deploy(tenant.keys, networkids=first["id"])["jobresult"]["virtualmachine"]
    added = tenant.cloud.wait_job(
        tenant.call("addNicToVirtualMachine", virtualmachineid=vm["id"], networkid=second["id"])[
            "jobid"
        ],
        tenant.keys,
    )
    assert added["jobstatus"] == 1, added
    nics = {n["networkid"]: n for n in added["jobresult"]["virtualmachine"]["nic"]}
    assert nics[second["id"]]["ipaddress"] == "10.81.0.2"
    assert nics[second["id"]]["isdefault"] is False and nics[second["id"]]["deviceid"] == "1"
    assert networks_of(tenant, id=second["id"])[0]["state"] == "Implemented"  # VM runs
    code, _ = error(
        tenant.raw("addNicToVirtualMachine", virtualmachineid=vm["id"], networkid=second["id"]),
        "addNicToVirtualMachine",
    )
    assert code == 431  # one NIC per network
    default = nics[first["id"]]["id"]
    code, _ = error(
        tenant.raw("removeNicFromVirtualMachine", virtualmachineid=vm["id"], nicid=default),
        "removeNicFromVirtualMachine",
    )
    assert code == 431
    switched = tenant.cloud.wait_job(
        tenant.call(
            "updateDefaultNicForVirtualMachine",
            virtualmachineid=vm["id"],
            nicid=nics[second["id"]]["id"],
        )["jobid"],
        tenant.keys,
    )
    flags = {n["networkid"]: n["isdefault"] for n in switched["jobresult"]["virtualmachine"]["nic"]}
    assert flags == {first["id"]: False, second["id"]: True}
    removed = tenant.cloud.wait_job(
        tenant.call("removeNicFromVirtualMachine", virtualmachineid=vm["id"], nicid=default)[
            "jobid"
        ],
        tenant.keys,
    )
    assert [n["networkid"] for n in removed["jobresult"]["virtualmachine"]["nic"]] == [second["id"]]
    listed = tenant.call("listNics", virtualmachineid=vm["id"])["nic"]
    assert [n["networkid"] for n in listed] == [second["id"]]
    # the removed NIC's address is free again
    other = net.sim.deploy(tenant.keys, networkids=first["id"])["jobresult"]["virtualmachine"]
    assert other["nic"][0]["ipaddress"] == "10.80.0.2"


def test_shared_network_by_admin_used_by_a_tenant(net: NetZone, cloud: Cloud) -> None:
    shared_offering = offering_id(cloud, "DefaultSharedNetworkOffering")
    params = {
        "name": uniq("shared"),
        "networkofferingid": shared_offering,
        "zoneid": net.sim.zone["id"],
        "vlan": "7090",
        "gateway": "172.30.0.1",
        "netmask": "255.255.255.0",
        "startip": "172.30.0.100",
        "endip": "172.30.0.102",
    }
    network = cloud.call("createNetwork", **params)["network"]
    assert (network["type"], network["acltype"], network["state"]) == ("Shared", "Domain", "Setup")
    assert network["broadcasturi"] == "vxlan://7090"
    code, _ = error(cloud.signed("createNetwork", **{**params, "name": "dup"}), "createNetwork")
    assert code == 431  # the segment is taken
    for bad in ({"startip": "172.31.0.5"}, {"startip": "172.30.0.1"}, {"gateway": None}):
        args = {
            k: v for k, v in {**params, "name": uniq("bad"), "vlan": "7091", **bad}.items() if v
        }
        code, body = error(cloud.signed("createNetwork", **args), "createNetwork")
        assert code == 431, (bad, body)
    assert cloud.call("listNetworks", listall=True, name="dup") == {}
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    assert network["id"] in {n["id"] for n in networks_of(tenant)}
    vm = net.sim.deploy(tenant.keys, networkids=network["id"])["jobresult"]["virtualmachine"]
    assert vm["nic"][0]["ipaddress"] == "172.30.0.100" and vm["nic"][0]["type"] == "Shared"


def test_security_groups_on_deploy(net: NetZone, cloud: Cloud) -> None:
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    isolated = make_network(net, tenant)
    web = tenant.call("createSecurityGroup", name=uniq("web"))["securitygroup"]
    base = {
        "zoneid": net.sim.zone["id"],
        "templateid": net.sim.template["id"],
        "serviceofferingid": net.sim.offering["id"],
    }
    code, _ = error(
        tenant.raw(
            "deployVirtualMachine", networkids=isolated["id"], securitygroupids=web["id"], **base
        ),
        "deployVirtualMachine",
    )
    assert code == 431  # the isolated network has no SecurityGroup service
    assert tenant.call("listVirtualMachines") == {}
    shared = cloud.call(
        "createNetwork",
        name=uniq("sgnet"),
        networkofferingid=offering_id(cloud, "DefaultSharedNetworkOfferingWithSGService"),
        zoneid=net.sim.zone["id"],
        vlan="7095",
        gateway="172.31.5.1",
        netmask="255.255.255.0",
        startip="172.31.5.10",
        endip="172.31.5.200",
    )["network"]
    chosen = net.sim.deploy(tenant.keys, networkids=shared["id"], securitygroupnames=web["name"])
    vm = chosen["jobresult"]["virtualmachine"]
    assert [g["name"] for g in vm["securitygroup"]] == [web["name"]]
    plain = net.sim.deploy(tenant.keys, networkids=shared["id"])["jobresult"]["virtualmachine"]
    assert [g["name"] for g in plain["securitygroup"]] == ["default"]
    listed = tenant.call("listSecurityGroups", virtualmachineid=vm["id"])["securitygroup"]
    assert [g["id"] for g in listed] == [web["id"]] and listed[0]["virtualmachinecount"] == 1
    code, _ = error(tenant.raw("deleteSecurityGroup", id=web["id"]), "deleteSecurityGroup")
    assert code == 536  # a VM is in it
