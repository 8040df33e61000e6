"""Data volumes on simulated hosts through the real `cs` client: create (fixed, custom),
attach (lazily placed on a pool at first attach; device ids 1, 2, 4 …), detach, resize,
migrate, delete, update, list filters and tags; injected host faults on every new agent
command; and counts that stay exact over a long mixed sequence."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files, uniq

GIB = 1024**3


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    root = tmp_path_factory.mktemp("volfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        yield build(cloud, tmp_path_factory.mktemp("volwork"), url)


@pytest.fixture(scope="module")
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


@pytest.fixture(scope="module")
def offerings(cloud: Cloud) -> dict[str, dict[str, Any]]:
    fixed = cloud.call("createDiskOffering", name=uniq("do5"), displaytext="5 GB", disksize=5)[
        "diskoffering"
    ]
    custom = cloud.call(
        "createDiskOffering", name=uniq("docustom"), displaytext="custom", customized=True
    )["diskoffering"]
    return {"fixed": fixed, "custom": custom}


def counts(cloud: Cloud, tenant: Tenant) -> dict[str, int]:
    account = cloud.call("listAccounts", tenant.keys)["account"][0]
    return {"volume": int(account["volumetotal"]), "primary": int(account["primarystoragetotal"])}


def pool_allocated(sim: SimZone, pool_id: str | None = None) -> int:
    pool = sim.call("listStoragePools", id=pool_id or sim.pool["id"])["storagepool"][0]
    return int(pool["disksizeallocated"])


def volumes(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tenant.call("listVolumes", **params).get("volume", [])
    return found


def create(sim: SimZone, tenant: Tenant, offering: dict[str, Any], **params: Any) -> dict[str, Any]:
    submitted = tenant.call(
        "createVolume", zoneid=sim.zone["id"], diskofferingid=offering["id"], **params
    )
    job = sim.cloud.wait_job(submitted["jobid"], tenant.keys)
    assert job["jobstatus"] == 1, job
    volume: dict[str, Any] = job["jobresult"]["volume"]
    assert volume["id"] == submitted["id"]
    return volume


def run(sim: SimZone, tenant: Tenant, command: str, **params: Any) -> dict[str, Any]:
    """Submit an async command as the tenant and wait for its job (any outcome)."""
    submitted = tenant.call(command, **params)
    return sim.cloud.wait_job(submitted["jobid"], tenant.keys)


def ok(job: dict[str, Any]) -> dict[str, Any]:
    assert job["jobstatus"] == 1, job
    volume: dict[str, Any] = job["jobresult"]["volume"]
    return volume


def failed(job: dict[str, Any]) -> tuple[int, str]:
    assert job["jobstatus"] == 2, job
    return int(job["jobresult"]["errorcode"]), str(job["jobresult"]["errortext"])


def running_vm(sim: SimZone, tenant: Tenant, **params: Any) -> dict[str, Any]:
    job = sim.deploy(tenant.keys, **params)
    assert job["jobstatus"] == 1, job
    vm: dict[str, Any] = job["jobresult"]["virtualmachine"]
    return vm


@contextmanager
def mock(sim: SimZone, name: str, value: str = "result:fail") -> Iterator[dict[str, Any]]:
    made = sim.call("configureSimulator", name=name, value=value, zoneid=sim.zone["id"])
    try:
        yield made["simulatormock"]
    finally:
        sim.call("cleanupSimulatorMock", id=made["simulatormock"]["id"])


# --- create --------------------------------------------------------------------------------


def test_create_fixed_and_custom_volumes_are_allocated_and_counted(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    before = counts(sim.cloud, tenant)
    fixed = tenant.cs.createVolume(
        name=uniq("data"),
        zoneid=sim.zone["id"],
        diskofferingid=offerings["fixed"]["id"],
        fetch_result=True,
    )["volume"]
    assert (fixed["state"], fixed["type"], fixed["size"]) == ("Allocated", "DATADISK", 5 * GIB)
    assert "storageid" not in fixed and "virtualmachineid" not in fixed
    assert fixed["diskofferingid"] == offerings["fixed"]["id"]
    custom = create(sim, tenant, offerings["custom"], size=3)
    assert custom["size"] == 3 * GIB and custom["name"].startswith("DATA-")
    after = counts(sim.cloud, tenant)
    assert after == {"volume": before["volume"] + 2, "primary": before["primary"] + 8}
    listed = volumes(tenant, id=fixed["id"])
    assert [v["id"] for v in listed] == [fixed["id"]] and listed[0]["state"] == "Allocated"


@pytest.mark.parametrize(
    ("kind", "params", "code"),
    [
        ("custom", {}, 431),  # a custom offering needs a size
        ("fixed", {"size": 7}, 431),  # a fixed one takes none
        ("custom", {"size": 100000}, 431),  # over custom.diskoffering.size.max
        ("bogus", {}, 431),  # no such offering
    ],
)
def test_bad_create_is_refused_and_writes_nothing(
    sim: SimZone,
    tenant: Tenant,
    offerings: dict[str, dict[str, Any]],
    kind: str,
    params: dict[str, Any],
    code: int,
) -> None:
    before = counts(sim.cloud, tenant)
    name = uniq("bad")
    offering = offerings[kind]["id"] if kind in offerings else str(uuid.uuid4())
    resp = tenant.raw(
        "createVolume", name=name, zoneid=sim.zone["id"], diskofferingid=offering, **params
    )
    status, body = error(resp, "createVolume")
    assert status == code and body["errortext"], body
    assert volumes(tenant, name=name) == []
    assert counts(sim.cloud, tenant) == before


def test_volume_limit_is_532_and_nothing_is_written(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    sim.call(
        "updateResourceLimit",
        account=tenant.name,
        domainid=tenant.domain_id,
        resourcetype=10,
        max=4,
    )
    resp = tenant.raw(
        "createVolume",
        name=uniq("big"),
        zoneid=sim.zone["id"],
        diskofferingid=offerings["fixed"]["id"],
    )
    status, body = error(resp, "createVolume")
    assert status == 532, body
    assert volumes(tenant) == [] and counts(sim.cloud, tenant) == {"volume": 0, "primary": 0}


# --- attach and detach -------------------------------------------------------------------------


def test_attach_places_the_volume_on_a_pool_and_skips_device_3(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    vm = running_vm(sim, tenant)
    allocated = pool_allocated(sim)
    made = [create(sim, tenant, offerings["custom"], size=1) for _ in range(3)]
    devices = []
    for volume in made:
        attached = tenant.cs.attachVolume(
            id=volume["id"], virtualmachineid=vm["id"], fetch_result=True
        )["volume"]
        assert attached["state"] == "Ready" and attached["virtualmachineid"] == vm["id"]
        assert attached["vmname"] == vm["name"] and attached["vmstate"] == "Running"
        assert "storageid" in attached  # placed at first attach
        devices.append(attached["deviceid"])
    assert devices == [1, 2, 4]
    assert pool_allocated(sim) == allocated + 3 * GIB
    listed = volumes(tenant, virtualmachineid=vm["id"])
    assert sorted(v["type"] for v in listed) == ["DATADISK"] * 3 + ["ROOT"]
    detached = ok(run(sim, tenant, "detachVolume", id=made[1]["id"]))
    assert detached["state"] == "Ready" and "virtualmachineid" not in detached
    assert "deviceid" not in detached
    # the freed device id is taken again; an explicit one in use or 3 is refused
    status, body = error(
        tenant.raw("attachVolume", id=made[1]["id"], virtualmachineid=vm["id"], deviceid=3),
        "attachVolume",
    )
    assert status == 431 and "3" in body["errortext"]
    again = ok(run(sim, tenant, "attachVolume", id=made[1]["id"], virtualmachineid=vm["id"]))
    assert again["deviceid"] == 2
    assert pool_allocated(sim) == allocated + 3 * GIB  # a re-attach places nothing new
    by_device = ok(run(sim, tenant, "detachVolume", virtualmachineid=vm["id"], deviceid=4))
    assert by_device["id"] == made[2]["id"]


def test_attach_to_a_stopped_vm_and_start_it(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    vm = running_vm(sim, tenant)
    stopped = tenant.cs.stopVirtualMachine(id=vm["id"], fetch_result=True)["virtualmachine"]
    assert stopped["state"] == "Stopped"
    volume = create(sim, tenant, offerings["fixed"])
    attached = ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    assert attached["state"] == "Ready" and attached["deviceid"] == 1
    started = tenant.cs.startVirtualMachine(id=vm["id"], fetch_result=True)["virtualmachine"]
    assert started["state"] == "Running"
    assert volumes(tenant, id=volume["id"])[0]["vmstate"] == "Running"


def test_bad_attach_and_detach_are_refused_and_change_nothing(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    other = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    theirs = running_vm(sim, other)
    mine = create(sim, tenant, offerings["fixed"])
    my_vm = running_vm(sim, tenant)
    cases = [
        ("attachVolume", {"id": mine["id"], "virtualmachineid": theirs["id"]}, 531),
        ("attachVolume", {"id": mine["id"], "virtualmachineid": str(uuid.uuid4())}, 431),
        ("attachVolume", {"id": mine["id"], "virtualmachineid": my_vm["id"], "deviceid": 0}, 431),
        ("detachVolume", {"id": mine["id"]}, 431),  # not attached
        ("detachVolume", {}, 431),
    ]
    root = volumes(tenant, virtualmachineid=my_vm["id"], type="ROOT")[0]
    cases.append(("detachVolume", {"id": root["id"]}, 431))
    for command, params, code in cases:
        status, body = error(tenant.raw(command, **params), command)
        assert status == code and body["errortext"], (command, params, body)
    assert volumes(tenant, id=mine["id"])[0]["state"] == "Allocated"
    assert "virtualmachineid" not in volumes(tenant, id=mine["id"])[0]
    assert volumes(other, virtualmachineid=theirs["id"])[0]["type"] == "ROOT"
    assert len(volumes(other, virtualmachineid=theirs["id"])) == 1


def test_attach_to_a_vm_in_another_zone_is_refused(
    sim: SimZone,
    tenant: Tenant,
    offerings: dict[str, dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("zone2files")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        other = build(sim.cloud, tmp_path_factory.mktemp("zone2"), url, hosts=1)
        vm = running_vm(other, tenant)
    volume = create(sim, tenant, offerings["fixed"])
    status, body = error(
        tenant.raw("attachVolume", id=volume["id"], virtualmachineid=vm["id"]), "attachVolume"
    )
    assert status == 431 and "zone" in body["errortext"]
    assert volumes(tenant, id=volume["id"])[0]["state"] == "Allocated"


# --- delete ------------------------------------------------------------------------------------


def test_delete_refused_while_attached_then_gives_everything_back(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    vm = running_vm(sim, tenant)
    volume = create(sim, tenant, offerings["fixed"])
    ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    before, allocated = counts(sim.cloud, tenant), pool_allocated(sim)
    status, body = error(tenant.raw("deleteVolume", id=volume["id"]), "deleteVolume")
    assert status == 431 and "attached" in body["errortext"]
    assert volumes(tenant, id=volume["id"])[0]["virtualmachineid"] == vm["id"]
    assert counts(sim.cloud, tenant) == before
    ok(run(sim, tenant, "detachVolume", id=volume["id"]))
    assert tenant.cs.deleteVolume(id=volume["id"])["success"] is True
    assert volumes(tenant, id=volume["id"]) == []
    assert counts(sim.cloud, tenant) == {
        "volume": before["volume"] - 1,
        "primary": before["primary"] - 5,
    }
    assert pool_allocated(sim) == allocated - 5 * GIB
    events = sim.call("listEvents", type="VOLUME.DELETE", listall=True).get("event", [])
    assert any(e.get("resourceid") == volume["id"] for e in events) or events


def test_data_volumes_outlive_their_vm(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    vm = running_vm(sim, tenant)
    volume = create(sim, tenant, offerings["fixed"])
    ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    job = sim.cloud.wait_job(sim.call("destroyVirtualMachine", id=vm["id"], expunge=True)["jobid"])
    assert job["jobstatus"] == 1, job
    left = volumes(tenant, id=volume["id"])[0]
    assert left["state"] == "Ready" and "virtualmachineid" not in left


# --- resize and migrate --------------------------------------------------------------------------


def test_resize_grows_shrinks_with_shrinkok_and_respects_limits(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    vm = running_vm(sim, tenant)
    volume = create(sim, tenant, offerings["custom"], size=2)
    ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    base, allocated = counts(sim.cloud, tenant), pool_allocated(sim)
    grown = tenant.cs.resizeVolume(id=volume["id"], size=4, fetch_result=True)["volume"]
    assert grown["size"] == 4 * GIB and grown["state"] == "Ready"
    assert counts(sim.cloud, tenant)["primary"] == base["primary"] + 2
    assert pool_allocated(sim) == allocated + 2 * GIB
    status, body = error(tenant.raw("resizeVolume", id=volume["id"], size=1), "resizeVolume")
    assert status == 431 and "shrinkok" in body["errortext"]
    status, _ = error(tenant.raw("resizeVolume", id=volume["id"], size=4), "resizeVolume")
    assert status == 431  # no change
    status, _ = error(
        tenant.raw("resizeVolume", id=volume["id"], diskofferingid=str(uuid.uuid4())),
        "resizeVolume",
    )
    assert status == 431
    shrunk = ok(run(sim, tenant, "resizeVolume", id=volume["id"], size=1, shrinkok=True))
    assert shrunk["size"] == GIB
    assert pool_allocated(sim) == allocated - GIB
    root_gib = base["primary"] - 2
    sim.call(
        "updateResourceLimit",
        account=tenant.name,
        domainid=tenant.domain_id,
        resourcetype=10,
        max=root_gib + 3,
    )
    status, body = error(tenant.raw("resizeVolume", id=volume["id"], size=5), "resizeVolume")
    assert status == 532, body
    assert volumes(tenant, id=volume["id"])[0]["size"] == GIB
    assert counts(sim.cloud, tenant)["primary"] == root_gib + 1
    sim.call(
        "updateResourceLimit",
        account=tenant.name,
        domainid=tenant.domain_id,
        resourcetype=10,
        max=-1,
    )
    fixed = create(sim, tenant, offerings["fixed"])
    status, _ = error(tenant.raw("resizeVolume", id=fixed["id"], size=6), "resizeVolume")
    assert status == 431  # a fixed offering needs a new offering, not a size


def test_migrate_moves_a_detached_volume_between_pools(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    vm = running_vm(sim, tenant)
    volume = create(sim, tenant, offerings["fixed"])
    placed = ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    source = placed["storageid"]
    target = sim.call(
        "createStoragePool",
        zoneid=sim.zone["id"],
        podid=sim.pod["id"],
        clusterid=sim.cluster["id"],
        name=uniq("ps2"),
        url=f"sim://{uniq('ps2')}",
        scope="cluster",
    )["storagepool"]
    status, _ = error(
        sim.cloud.signed("migrateVolume", None, volumeid=volume["id"], storageid=target["id"]),
        "migrateVolume",
    )
    assert status == 431  # attached to a running VM: offline only
    status, _ = error(
        tenant.raw("migrateVolume", volumeid=volume["id"], storageid=target["id"]),
        "migrateVolume",
    )
    assert status == 432  # not for users
    ok(run(sim, tenant, "detachVolume", id=volume["id"]))
    src_before, dst_before = pool_allocated(sim, source), pool_allocated(sim, target["id"])
    job = sim.cloud.wait_job(
        sim.call("migrateVolume", volumeid=volume["id"], storageid=target["id"])["jobid"]
    )
    moved = ok(job)
    assert moved["storageid"] == target["id"] and moved["state"] == "Ready"
    assert pool_allocated(sim, source) == src_before - 5 * GIB
    assert pool_allocated(sim, target["id"]) == dst_before + 5 * GIB
    reattached = ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    assert reattached["storageid"] == target["id"]


# --- faults ------------------------------------------------------------------------------------


def test_host_faults_fail_cleanly_and_give_everything_back(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    vm = running_vm(sim, tenant)
    volume = create(sim, tenant, offerings["custom"], size=2)
    before, allocated = counts(sim.cloud, tenant), pool_allocated(sim)
    for kind in ("CreateCommand", "AttachCommand"):
        with mock(sim, kind):
            code, text = failed(
                run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"])
            )
        assert code == 530 and kind in text, text
        now = volumes(tenant, id=volume["id"])[0]
        assert now["state"] == "Allocated" and "storageid" not in now, (kind, now)
        assert "virtualmachineid" not in now
        assert counts(sim.cloud, tenant) == before and pool_allocated(sim) == allocated
    ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    attached_alloc = pool_allocated(sim)
    with mock(sim, "ResizeVolumeCommand"):
        code, text = failed(run(sim, tenant, "resizeVolume", id=volume["id"], size=3))
    assert code == 530 and "ResizeVolumeCommand" in text
    now = volumes(tenant, id=volume["id"])[0]
    assert (now["state"], now["size"]) == ("Ready", 2 * GIB)
    assert counts(sim.cloud, tenant) == before and pool_allocated(sim) == attached_alloc
    with mock(sim, "DettachCommand"):
        code, text = failed(run(sim, tenant, "detachVolume", id=volume["id"]))
    assert code == 530 and "DettachCommand" in text
    now = volumes(tenant, id=volume["id"])[0]
    assert now["state"] == "Ready" and now["virtualmachineid"] == vm["id"]


# --- update, list, tags -----------------------------------------------------------------------


def test_update_list_filters_and_tags(
    sim: SimZone, tenant: Tenant, offerings: dict[str, dict[str, Any]]
) -> None:
    volume = create(sim, tenant, offerings["fixed"], name=uniq("filt"))
    renamed = ok(run(sim, tenant, "updateVolume", id=volume["id"], name=uniq("renamed")))
    assert renamed["name"] != volume["name"]
    job = run(
        sim,
        tenant,
        "createTags",
        resourcetype="Volume",
        resourceids=volume["id"],
        **{"tags[0].key": "tier", "tags[0].value": "gold"},
    )
    assert job["jobstatus"] == 1, job
    tagged = volumes(tenant, **{"tags[0].key": "tier", "tags[0].value": "gold"})
    assert [v["id"] for v in tagged] == [volume["id"]]
    assert tagged[0]["tags"][0]["value"] == "gold"
    assert [v["id"] for v in volumes(tenant, name=renamed["name"])] == [volume["id"]]
    assert volume["id"] in [v["id"] for v in volumes(tenant, keyword=renamed["name"][-6:])]
    assert all(v["type"] == "DATADISK" for v in volumes(tenant, type="DATADISK"))
    assert all(v["state"] == "Allocated" for v in volumes(tenant, state="Allocated"))
    assert volume["id"] in [
        v["id"] for v in volumes(tenant, diskofferingid=offerings["fixed"]["id"])
    ]
    ids = volumes(tenant, ids=volume["id"])
    assert [v["id"] for v in ids] == [volume["id"]]
    status, _ = error(tenant.raw("listVolumes", storageid=sim.pool["id"]), "listVolumes")
    assert status == 531  # admin-only filter
    by_pool = sim.call("listVolumes", storageid=sim.pool["id"], listall=True).get("volume", [])
    assert all(v["storageid"] == sim.pool["id"] for v in by_pool) and by_pool
    other = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    assert volumes(other, id=volume["id"]) == []
    admin_view = sim.call("listVolumes", id=volume["id"], listall=True)["volume"]
    assert admin_view[0]["account"] == tenant.name


# --- counts over a long mixed sequence --------------------------------------------------------


def truth(sim: SimZone, tenant: Tenant) -> dict[str, int]:
    listed = volumes(tenant, listall=True)
    return {"volume": len(listed), "primary": sum(int(v["size"]) for v in listed) // GIB}


def test_counts_stay_exact_over_a_long_mixed_sequence(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    vm = running_vm(sim, tenant)
    made = [create(sim, tenant, offerings["custom"], size=n) for n in (1, 2, 3, 4)]
    made.append(create(sim, tenant, offerings["fixed"]))
    steps: list[tuple[str, dict[str, Any]]] = [
        ("attachVolume", {"id": made[0]["id"], "virtualmachineid": vm["id"]}),
        ("attachVolume", {"id": made[1]["id"], "virtualmachineid": vm["id"]}),
        ("resizeVolume", {"id": made[1]["id"], "size": 6}),
        ("resizeVolume", {"id": made[2]["id"], "size": 5}),  # still Allocated
        ("detachVolume", {"id": made[0]["id"]}),
        ("resizeVolume", {"id": made[0]["id"], "size": 1, "shrinkok": True}),  # no change: 431
        ("attachVolume", {"id": made[4]["id"], "virtualmachineid": vm["id"]}),
        ("resizeVolume", {"id": made[1]["id"], "size": 2, "shrinkok": True}),
        ("detachVolume", {"id": made[1]["id"]}),
    ]
    for command, params in steps:
        resp = tenant.raw(command, **params)
        if resp.status_code == 200:
            sim.cloud.wait_job(resp.json()[f"{command.lower()}response"]["jobid"], tenant.keys)
        assert counts(sim.cloud, tenant) == truth(sim, tenant), (command, params)
    with mock(sim, "ResizeVolumeCommand"):
        failed(run(sim, tenant, "resizeVolume", id=made[1]["id"], size=9))
    assert tenant.cs.deleteVolume(id=made[0]["id"])["success"]
    assert tenant.cs.deleteVolume(id=made[3]["id"])["success"]
    ok(run(sim, tenant, "detachVolume", id=made[4]["id"]))
    assert tenant.cs.deleteVolume(id=made[4]["id"])["success"]
    assert counts(sim.cloud, tenant) == truth(sim, tenant)
    sim.call("updateResourceCount", domainid=tenant.domain_id, account=tenant.name)
    assert counts(sim.cloud, tenant) == truth(sim, tenant)


# --- libcloud ------------------------------------------------------------------------------------


def test_libcloud_volume_and_snapshot_calls(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    """apache-libcloud's CloudStack driver: create, attach, list, snapshot, detach, destroy."""
    from tests.integration.test_libcloud_vms import driver

    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    vm = running_vm(sim, tenant)
    drv = driver(sim.cloud, tenant.keys)
    location = next(loc for loc in drv.list_locations() if loc.id == sim.zone["id"])
    node = next(n for n in drv.list_nodes() if n.id == vm["id"])
    name = uniq("lcvol")
    volume = drv.create_volume(
        size=2, name=name, location=location, ex_volume_type=offerings["custom"]["name"]
    )
    assert volume.name == name and volume.size == 2
    assert drv.attach_volume(node, volume) is True
    on_node = drv.list_volumes(node=node)
    assert volume.id in [v.id for v in on_node] and len(on_node) == 2
    snap = drv.create_volume_snapshot(volume)
    assert snap.id in [s.id for s in drv.list_snapshots()]
    assert drv.destroy_volume_snapshot(snap) is True
    # libcloud's list_snapshots cannot read an empty list (CloudStack omits the key), so ask
    assert tenant.call("listSnapshots", id=snap.id) == {}
    assert drv.detach_volume(volume) is True
    assert drv.destroy_volume(volume) is True
    assert volume.id not in [v.id for v in drv.list_volumes()]


# --- upload --------------------------------------------------------------------------------------


def _qcow2(virtual_gib: int) -> bytes:
    """A qcow2 header naming a virtual size, padded: enough for the size to be read."""
    import struct

    header = b"QFI\xfb" + struct.pack(">IQIIQ", 3, 0, 0, 16, virtual_gib * GIB)
    return header + b"\0" * 4096


def test_upload_volume_from_a_url_then_attach(
    sim: SimZone, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import hashlib
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    found = sim.call("listImageStores", zoneid=sim.zone["id"])["imagestore"][0]
    store = Path(unquote(urlparse(found["url"]).path))
    image = _qcow2(2)
    digest = hashlib.sha256(image).hexdigest()
    with http_files({"disk.qcow2": image}, tmp_path_factory.mktemp("upload")) as url:
        bad = run(
            sim,
            tenant,
            "uploadVolume",
            name=uniq("bad"),
            zoneid=sim.zone["id"],
            format="QCOW2",
            url=f"{url}/disk.qcow2",
            checksum="0" * 64,
        )
        code, text = failed(bad)
        assert code == 530 and "checksum" in text
        broken = volumes(tenant, id=bad["jobinstanceid"])[0]
        assert broken["state"] == "UploadError"
        assert sorted(store.rglob(f"{broken['id']}*")) == []
        assert tenant.cs.deleteVolume(id=broken["id"])["success"]
        before = counts(sim.cloud, tenant)
        good = ok(
            run(
                sim,
                tenant,
                "uploadVolume",
                name=uniq("up"),
                zoneid=sim.zone["id"],
                format="QCOW2",
                url=f"{url}/disk.qcow2",
                checksum=digest,
            )
        )
    assert (good["state"], good["size"]) == ("Uploaded", 2 * GIB)
    uploaded = sorted(store.rglob(f"{good['id']}.qcow2"))
    assert len(uploaded) == 1 and uploaded[0].read_bytes() == image
    assert counts(sim.cloud, tenant) == {
        "volume": before["volume"] + 1,
        "primary": before["primary"] + 2,
    }
    status, _ = error(
        tenant.raw(
            "uploadVolume",
            name=uniq("x"),
            zoneid=sim.zone["id"],
            format="QCOW2",
            url="file:///etc/passwd",
        ),
        "uploadVolume",
    )
    assert status == 431
    vm = running_vm(sim, tenant)
    attached = ok(run(sim, tenant, "attachVolume", id=good["id"], virtualmachineid=vm["id"]))
    assert attached["state"] == "Ready" and attached["size"] == 2 * GIB
    assert sorted(store.rglob(f"{good['id']}.qcow2")) == []  # the upload copy is gone


def test_root_volume_grows_online_and_never_shrinks(sim: SimZone) -> None:
    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    vm = running_vm(sim, tenant)
    root = volumes(tenant, virtualmachineid=vm["id"], type="ROOT")[0]
    before = counts(sim.cloud, tenant)
    grown = ok(run(sim, tenant, "resizeVolume", id=root["id"], size=root["size"] // GIB + 2))
    assert grown["size"] == root["size"] + 2 * GIB and grown["vmstate"] == "Running"
    assert counts(sim.cloud, tenant)["primary"] == before["primary"] + 2
    status, body = error(
        tenant.raw("resizeVolume", id=root["id"], size=1, shrinkok=True), "resizeVolume"
    )
    assert status == 431 and "ROOT" in body["errortext"]
    assert volumes(tenant, id=root["id"])[0]["size"] == grown["size"]
    status, _ = error(tenant.raw("deleteVolume", id=root["id"]), "deleteVolume")
    assert status == 431
