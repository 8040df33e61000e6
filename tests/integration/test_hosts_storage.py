"""Simulated hosts, maintenance through async jobs, capacity, primary storage and image
stores, against the real server with the real ``cs`` client.

The server is shared by the whole session: each test builds its own zone > pod > cluster
with random names and only counts what lives inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from tests.integration.tenants import USER, client, error, make_tenant, uniq
from tests.support.cloud import Cloud

MIB = 1024 * 1024


@dataclass
class Site:
    zone: dict[str, Any]
    pod: dict[str, Any]
    cluster: dict[str, Any]


def admin(cloud: Cloud) -> CloudStack:
    return client(cloud, cloud.admin)


def new_site(cloud: Cloud, hypervisor: str = "Simulator", **cluster: Any) -> Site:
    cs = admin(cloud)
    zone = cs.createZone(
        name=uniq("zone"), networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2"
    )["zone"]
    pod = cs.createPod(zoneid=zone["id"], name=uniq("pod"))["pod"]
    made = cs.addCluster(
        zoneid=zone["id"],
        podid=pod["id"],
        clustername=uniq("cl"),
        hypervisor=hypervisor,
        **cluster,
    )["cluster"]
    return Site(zone, pod, made[0] if isinstance(made, list) else made)


def add_sim_hosts(cloud: Cloud, site: Site, name: str, **options: Any) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    body = admin(cloud).addHost(
        zoneid=site.zone["id"],
        podid=site.pod["id"],
        clusterid=site.cluster["id"],
        hypervisor="Simulator",
        url=f"http://sim/{site.cluster['name']}/{name}" + (f"?{query}" if query else ""),
        username="root",
        password="never-stored-pw",
    )
    assert body["count"] == len(body["host"])
    hosts: list[dict[str, Any]] = body["host"]
    return hosts


def hosts_in(cloud: Cloud, site: Site, **filters: Any) -> list[dict[str, Any]]:
    return admin(cloud).listHosts(clusterid=site.cluster["id"], fetch_list=True, **filters)


def capacity_by_type(cloud: Cloud, **where: Any) -> dict[int, dict[str, Any]]:
    rows = admin(cloud).listCapacity(fetch_list=True, **where)
    return {row["type"]: row for row in rows}


def test_a_simulated_cluster_of_hosts_shows_its_capacity(cloud: Cloud) -> None:
    site = new_site(cloud, cpuovercommitratio="2")
    added = add_sim_hosts(cloud, site, "h", count=5, cpunumber=4, cpuspeed=2000, memory=8192)
    assert [h["name"] for h in added] == ["h", "h-2", "h-3", "h-4", "h-5"]
    listed = hosts_in(cloud, site)
    assert sorted(h["id"] for h in listed) == sorted(h["id"] for h in added)
    for h in listed:
        assert (h["state"], h["resourcestate"], h["type"], h["hypervisor"]) == (
            "Up",
            "Enabled",
            "Routing",
            "Simulator",
        )
        assert (h["cpunumber"], h["cpuspeed"], h["memorytotal"]) == (4, 2000, 8192 * MIB)
        assert (h["zoneid"], h["podid"], h["clusterid"]) == (
            site.zone["id"],
            site.pod["id"],
            site.cluster["id"],
        )
        assert h["cpuallocated"] == "0%" and h["ipaddress"]
    by_type = capacity_by_type(cloud, zoneid=site.zone["id"])
    assert by_type[1]["capacitytotal"] == 5 * 4 * 2000 * 2  # cpu, times the overcommit ratio
    assert by_type[0]["capacitytotal"] == 5 * 8192 * MIB
    assert by_type[0]["capacityused"] == 0 and by_type[0]["percentused"] == "0"
    assert by_type[1]["zonename"] == site.zone["name"] and by_type[1]["name"] == "CPU"
    per_cluster = capacity_by_type(cloud, clusterid=site.cluster["id"], type=0)
    assert list(per_cluster) == [0]
    assert per_cluster[0]["clusterid"] == site.cluster["id"]


def test_the_host_password_never_reaches_the_log(cloud: Cloud) -> None:
    add_sim_hosts(cloud, new_site(cloud), "pw")
    assert "never-stored-pw" not in cloud.log_path.read_text(errors="replace")


def test_maintenance_round_trip_through_jobs_and_capacity(cloud: Cloud) -> None:
    site = new_site(cloud)
    first, _second = add_sim_hosts(cloud, site, "m", count=2, cpunumber=2, cpuspeed=1000)
    cs = admin(cloud)
    host = cs.prepareHostForMaintenance(id=first["id"], fetch_result=True)["host"]
    assert host["resourcestate"] == "Maintenance"
    assert hosts_in(cloud, site, id=first["id"])[0]["resourcestate"] == "Maintenance"
    # A host in maintenance no longer counts (CloudStack disables its capacity rows).
    assert capacity_by_type(cloud, zoneid=site.zone["id"])[1]["capacitytotal"] == 2000
    events = cs.listEvents(
        type="MAINT.PREPARE", resourceid=first["id"], resourcetype="Host", fetch_list=True
    )
    assert {e["state"] for e in events} >= {"Completed"}
    assert {e["resourcename"] for e in events} == {first["name"]}
    host = cs.cancelHostMaintenance(id=first["id"], fetch_result=True)["host"]
    assert host["resourcestate"] == "Enabled"
    assert capacity_by_type(cloud, zoneid=site.zone["id"])[1]["capacitytotal"] == 4000


def test_illegal_transition_is_refused_and_changes_nothing(cloud: Cloud) -> None:
    site = new_site(cloud)
    (host,) = add_sim_hosts(cloud, site, "illegal")
    code, body = error(
        cloud.signed("cancelHostMaintenance", id=host["id"]), "cancelHostMaintenance"
    )
    assert code == 431 and "Enabled" in body["errortext"]
    assert hosts_in(cloud, site, id=host["id"])[0]["resourcestate"] == "Enabled"
    code, _ = error(cloud.signed("deleteHost", id=host["id"]), "deleteHost")
    assert code == 530
    assert len(hosts_in(cloud, site)) == 1


def test_update_disable_and_delete_host(cloud: Cloud) -> None:
    site = new_site(cloud)
    (host,) = add_sim_hosts(cloud, site, "u")
    cs = admin(cloud)
    updated = cs.updateHost(id=host["id"], hosttags="gpu,ssd", allocationstate="Disable")["host"]
    assert (updated["hosttags"], updated["resourcestate"]) == ("gpu,ssd", "Disabled")
    assert [h["id"] for h in hosts_in(cloud, site, hosttags="ssd")] == [host["id"]]
    assert hosts_in(cloud, site, resourcestate="Enabled") == []
    assert capacity_by_type(cloud, zoneid=site.zone["id"]) == {}
    assert cs.deleteHost(id=host["id"], forced=True)["success"] is True
    assert hosts_in(cloud, site) == []


def test_kvm_host_without_an_address_is_refused_and_nothing_is_written(cloud: Cloud) -> None:
    """KVM hosts join through the agent (tests/integration/test_agent.py); the URL must still
    name the host's address."""
    site = new_site(cloud, hypervisor="KVM")
    resp = cloud.signed(
        "addHost",
        zoneid=site.zone["id"],
        podid=site.pod["id"],
        clusterid=site.cluster["id"],
        hypervisor="KVM",
        url="10.0.0.50",
        username="root",
        password="secret-kvm-pw",
    )
    code, body = error(resp, "addHost")
    assert code == 431 and "http://<host-address>" in body["errortext"]
    assert hosts_in(cloud, site) == []


def test_host_hypervisor_must_match_the_cluster(cloud: Cloud) -> None:
    site = new_site(cloud, hypervisor="KVM")
    resp = cloud.signed(
        "addHost",
        zoneid=site.zone["id"],
        podid=site.pod["id"],
        clusterid=site.cluster["id"],
        hypervisor="Simulator",
        url="http://sim/x/h",
    )
    assert error(resp, "addHost")[0] == 431
    assert hosts_in(cloud, site) == []


def test_host_commands_are_for_root_admins(cloud: Cloud) -> None:
    user = make_tenant(cloud, account_type=USER)
    assert error(user.raw("listHosts"), "listHosts")[0] == 432
    assert error(user.raw("listCapacity"), "listCapacity")[0] == 432


def test_primary_storage_create_list_maintain_delete(cloud: Cloud) -> None:
    site = new_site(cloud)
    cs = admin(cloud)
    name = uniq("ps")
    pool = cs.createStoragePool(
        zoneid=site.zone["id"],
        podid=site.pod["id"],
        clusterid=site.cluster["id"],
        name=name,
        url=f"sim://{name}",
        scope="cluster",
        tags="ssd",
    )["storagepool"]
    assert (pool["state"], pool["scope"], pool["hypervisor"], pool["tags"]) == (
        "Up",
        "CLUSTER",
        "Simulator",
        "ssd",
    )
    assert pool["disksizetotal"] == 1024**4 and pool["clusterid"] == site.cluster["id"]
    zone_pool = cs.createStoragePool(
        zoneid=site.zone["id"],
        name=uniq("zps"),
        url=f"nfs://10.1.1.1/{name}",
        scope="zone",
        hypervisor="Simulator",
        capacitybytes=1000,
    )["storagepool"]
    assert (zone_pool["scope"], zone_pool["type"], zone_pool["ipaddress"]) == (
        "ZONE",
        "NetworkFilesystem",
        "10.1.1.1",
    )
    listed = cs.listStoragePools(zoneid=site.zone["id"], fetch_list=True)
    assert sorted(p["id"] for p in listed) == sorted([pool["id"], zone_pool["id"]])
    storage = capacity_by_type(cloud, zoneid=site.zone["id"], type=2)[2]
    assert storage["capacitytotal"] == 1024**4 + 1000

    dup = cloud.signed(
        "createStoragePool",
        zoneid=site.zone["id"],
        name=uniq("d"),
        url=f"sim://{name}",
        podid=site.pod["id"],
        clusterid=site.cluster["id"],
    )
    assert error(dup, "createStoragePool")[0] == 431
    assert len(cs.listStoragePools(zoneid=site.zone["id"], fetch_list=True)) == 2

    maint = cs.enableStorageMaintenance(id=pool["id"], fetch_result=True)["storagepool"]
    assert maint["state"] == "Maintenance"
    assert capacity_by_type(cloud, zoneid=site.zone["id"], type=2)[2]["capacitytotal"] == 1000
    back = cs.cancelStorageMaintenance(id=pool["id"], fetch_result=True)["storagepool"]
    assert back["state"] == "Up"
    resp = cloud.signed("cancelStorageMaintenance", id=pool["id"])
    assert error(resp, "cancelStorageMaintenance")[0] == 431

    assert cs.updateStoragePool(id=pool["id"], enabled=False)["storagepool"]["state"] == "Disabled"
    for p in (pool, zone_pool):
        assert cs.deleteStoragePool(id=p["id"])["success"] is True
    assert cs.listStoragePools(zoneid=site.zone["id"], fetch_list=True) == []


def test_image_stores_add_list_update_delete(cloud: Cloud) -> None:
    site = new_site(cloud)
    cs = admin(cloud)
    name = uniq("is")
    store = cs.addImageStore(
        name=name,
        provider="NFS",
        zoneid=site.zone["id"],
        url=f"nfs://10.2.2.2/export/{name}",
        **{"details[0].key": "note", "details[0].value": "x"},
    )["imagestore"]
    assert (store["name"], store["providername"], store["protocol"], store["scope"]) == (
        name,
        "NFS",
        "nfs",
        "ZONE",
    )
    assert store["zoneid"] == site.zone["id"] and store["readonly"] is False
    assert [s["id"] for s in cs.listImageStores(zoneid=site.zone["id"], fetch_list=True)] == [
        store["id"]
    ]
    s3 = cloud.signed("addImageStore", name=uniq("s3"), provider="S3", url="http://s3.local")
    code, body = error(s3, "addImageStore")
    assert code == 431 and "addImageStoreS3" in body["errortext"]
    assert len(cs.listImageStores(zoneid=site.zone["id"], fetch_list=True)) == 1
    assert cs.updateImageStore(id=store["id"], readonly=True)["imagestore"]["readonly"] is True
    assert cs.deleteImageStore(id=store["id"])["success"] is True
    assert cs.listImageStores(id=store["id"], fetch_list=True) == []


def test_unknown_ids_are_431(cloud: Cloud) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(CloudStackApiException) as info:
        admin(cloud).prepareHostForMaintenance(id=missing)
    assert info.value.error["errorcode"] == 431


def test_add_secondary_storage_is_an_nfs_image_store(cloud: Cloud) -> None:
    site = new_site(cloud)
    cs = admin(cloud)
    url = f"nfs://10.3.3.3/export/{uniq('sec')}"
    store = cs.addSecondaryStorage(url=url, zoneid=site.zone["id"])["secondarystorage"]
    assert (store["url"], store["providername"], store["zoneid"]) == (url, "NFS", site.zone["id"])
    again = cloud.signed("addSecondaryStorage", url=url, zoneid=site.zone["id"])
    assert error(again, "addSecondaryStorage")[0] == 431
    assert [s["id"] for s in cs.listImageStores(zoneid=site.zone["id"], fetch_list=True)] == [
        store["id"]
    ]


def test_a_new_cluster_name_makes_the_cluster_unless_the_add_fails(cloud: Cloud) -> None:
    site = new_site(cloud)
    cs = admin(cloud)
    name = uniq("auto")
    body = cs.addHost(
        zoneid=site.zone["id"],
        podid=site.pod["id"],
        clustername=name,
        hypervisor="Simulator",
        url=f"http://sim/{name}/h",
    )
    (cluster,) = cs.listClusters(podid=site.pod["id"], name=name, fetch_list=True)
    assert cluster["hypervisortype"] == "Simulator"
    assert body["host"][0]["clusterid"] == cluster["id"]
    refused = uniq("kvm")
    resp = cloud.signed(
        "addHost",
        zoneid=site.zone["id"],
        podid=site.pod["id"],
        clustername=refused,
        hypervisor="KVM",
        url="10.0.0.9",  # not http://<address>: refused after the cluster was made
    )
    assert error(resp, "addHost")[0] == 431
    assert cs.listClusters(podid=site.pod["id"], name=refused, fetch_list=True) == []
