"""VM snapshots on simulated hosts through the real `cs` client: the vmsnapshot object, the
snapshot tree (current/parent), CloudStack's state rules for create and revert, the
vmsnapshot.max limit, refusals while volume or VM snapshots run, host failures ending in a
final state, list filters and account scoping, and bad input (error code and nothing changed).

libcloud 3.9.1's CloudStack driver has no VM-snapshot calls (only volume snapshots,
``create_volume_snapshot``/``ex_create_snapshot``), so `cs` is the client here.

The last test runs on a real KVM host (TCG) with test_kvm_volumes' zone and helpers: data is
written through the VM's own block layer (HMP ``qemu-io`` on the hot-plugged data disk) and
read back from the file; snapshots are read from the qcow2 files with ``qemu-img snapshot
-l``. The memory snapshot's marker is the guest itself: after the revert the same QEMU runs
on without booting again (no new GUEST-INIT/READY on its serial console) while its disk is
back to the snapshot's content.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.sim import SimDisk, SimDriver
from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.integration.test_agent import wait_for
from tests.integration.test_kvm_vms import qemu_pids, ready_count, serial
from tests.integration.test_kvm_volumes import (  # noqa: F401  (fixtures)
    Kvm,
    client,
    deploy,
    file_has,
    host_netns,
    kvm,
    qemu_io,
    qmp,
    result,
    tiny,
    wait,
)
from tests.integration.test_snapshots import failed, mock, ok, run
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files, uniq

FIELDS = {
    "id",
    "name",
    "displayname",
    "state",
    "type",
    "current",
    "virtualmachineid",
    "virtualmachinename",
    "created",
    "account",
    "domainid",
    "domain",
    "zoneid",
    "hypervisor",
}


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    root = tmp_path_factory.mktemp("vmsnapfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        yield build(cloud, tmp_path_factory.mktemp("vmsnapwork"), url)


@pytest.fixture()
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def running_vm(sim: SimZone, tenant: Tenant) -> dict[str, Any]:
    return ok(sim.deploy(tenant.keys), "virtualmachine")


def snaps(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tenant.call("listVMSnapshot", **params).get("vmSnapshot", [])
    return found


def take(sim: SimZone, tenant: Tenant, vm: dict[str, Any], **params: Any) -> dict[str, Any]:
    return ok(
        run(sim, tenant, "createVMSnapshot", virtualmachineid=vm["id"], **params), "vmsnapshot"
    )


def stop(sim: SimZone, tenant: Tenant, vm: dict[str, Any]) -> None:
    assert ok(run(sim, tenant, "stopVirtualMachine", id=vm["id"]), "virtualmachine")["state"] == (
        "Stopped"
    )


def events(cloud: Cloud, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cloud.call(
        "listEvents", type=kind, listall=True, pagesize=500
    ).get("event", [])
    return found


@contextmanager
def vm_snapshot_max(cloud: Cloud, value: int) -> Iterator[None]:
    old = cloud.call("listConfigurations", name="vmsnapshot.max")["configuration"][0]["value"]
    cloud.call("updateConfiguration", name="vmsnapshot.max", value=str(value))
    try:
        yield
    finally:
        cloud.call("updateConfiguration", name="vmsnapshot.max", value=old)


def test_take_list_revert_delete_keeps_the_tree(sim: SimZone, tenant: Tenant) -> None:
    vm = running_vm(sim, tenant)
    first = tenant.cs.createVMSnapshot(
        virtualmachineid=vm["id"], name="before-upgrade", description="clean", fetch_result=True
    )["vmsnapshot"]
    assert set(first) >= FIELDS, first
    assert first["displayname"] == "before-upgrade" and first["description"] == "clean"
    assert first["state"] == "Ready" and first["type"] == "Disk" and first["current"] is True
    assert first["virtualmachineid"] == vm["id"] and first["account"] == tenant.name
    assert first["name"].startswith("i-") and "parent" not in first
    second = take(sim, tenant, vm, name="after-upgrade")
    assert second["parent"] == first["id"] and second["parentName"] == "before-upgrade"
    listed = {s["id"]: s for s in snaps(tenant, virtualmachineid=vm["id"])}
    assert set(listed) == {first["id"], second["id"]}
    assert listed[first["id"]]["current"] is False and listed[second["id"]]["current"] is True

    # A disk-only snapshot reverts a stopped VM only (CloudStack's rule): nothing changes.
    status, body = error(
        tenant.raw("revertToVMSnapshot", vmsnapshotid=first["id"]), "revertToVMSnapshot"
    )
    assert status == 431 and "Stopped" in body["errortext"], body
    assert snaps(tenant, vmsnapshotid=first["id"])[0]["current"] is False

    stop(sim, tenant, vm)
    reverted = tenant.cs.revertToVMSnapshot(vmsnapshotid=first["id"], fetch_result=True)
    assert reverted["virtualmachine"]["id"] == vm["id"]
    assert reverted["virtualmachine"]["state"] == "Stopped"
    listed = {s["id"]: s for s in snaps(tenant, virtualmachineid=vm["id"])}
    assert listed[first["id"]]["current"] is True and listed[second["id"]]["current"] is False
    assert all(s["state"] == "Ready" for s in listed.values())
    third = take(sim, tenant, vm, name="branch")  # a stopped VM: offline snapshot
    assert third["parent"] == first["id"]

    # Deleting the parent hands its children to its parent (none) and keeps the current one.
    assert tenant.cs.deleteVMSnapshot(vmsnapshotid=first["id"], fetch_result=True)["success"]
    listed = {s["id"]: s for s in snaps(tenant, virtualmachineid=vm["id"])}
    assert set(listed) == {second["id"], third["id"]}
    assert "parent" not in listed[second["id"]] and "parent" not in listed[third["id"]]
    assert listed[third["id"]]["current"] is True
    assert tenant.cs.deleteVMSnapshot(vmsnapshotid=third["id"], fetch_result=True)["success"]
    assert [s["id"] for s in snaps(tenant, virtualmachineid=vm["id"])] == [second["id"]]

    for kind, resource in (
        ("VMSNAPSHOT.CREATE", second["id"]),
        ("VMSNAPSHOT.DELETE", first["id"]),
        ("VMSNAPSHOT.REVERTTOVMSNAPSHOT", first["id"]),
    ):
        mine = [e for e in events(sim.cloud, kind) if e.get("resourceid") == resource]
        assert any(e["state"] == "Completed" for e in mine), (kind, mine)


def test_memory_snapshot_needs_a_running_vm_and_reverts_it_running(
    sim: SimZone, tenant: Tenant
) -> None:
    vm = running_vm(sim, tenant)
    mem = take(sim, tenant, vm, name="live", snapshotmemory=True)
    assert mem["type"] == "DiskAndMemory" and mem["state"] == "Ready"
    reverted = tenant.cs.revertToVMSnapshot(vmsnapshotid=mem["id"], fetch_result=True)
    assert reverted["virtualmachine"]["state"] == "Running"
    stop(sim, tenant, vm)
    status, body = error(
        tenant.raw("createVMSnapshot", virtualmachineid=vm["id"], snapshotmemory=True),
        "createVMSnapshot",
    )
    assert status == 431 and "Running" in body["errortext"], body
    assert [s["id"] for s in snaps(tenant, virtualmachineid=vm["id"])] == [mem["id"]]


def test_bad_input_is_refused_and_nothing_changes(
    sim: SimZone, tenant: Tenant, cloud: Cloud
) -> None:
    vm = running_vm(sim, tenant)
    other = make_tenant(cloud, make_domain(cloud)["id"])
    theirs = running_vm(sim, other)
    kept = take(sim, other, theirs, name="theirs")
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("createVMSnapshot", {}, 431),
        ("createVMSnapshot", {"virtualmachineid": "not-a-uuid"}, 431),
        ("createVMSnapshot", {"virtualmachineid": kept["id"]}, 431),  # a snapshot id, not a VM
        ("createVMSnapshot", {"virtualmachineid": theirs["id"]}, 531),
        ("createVMSnapshot", {"virtualmachineid": vm["id"], "name": "x" * 300}, 431),
        ("revertToVMSnapshot", {"vmsnapshotid": kept["id"]}, 531),
        ("deleteVMSnapshot", {"vmsnapshotid": kept["id"]}, 531),
        ("deleteVMSnapshot", {}, 431),
        ("revertToVMSnapshot", {"vmsnapshotid": vm["id"]}, 431),
        ("listVMSnapshot", {"vmsnapshotid": kept["id"], "vmsnapshotids": kept["id"]}, 431),
    ]
    for command, params, code in cases:
        status, body = error(tenant.raw(command, **params), command)
        assert status == code, (command, params, body)
    assert snaps(tenant, listall=True) == []
    assert [s["id"] for s in snaps(other)] == [kept["id"]]
    assert snaps(other)[0]["state"] == "Ready"
    # The other account's snapshot is invisible to this one, even by id.
    assert snaps(tenant, vmsnapshotid=kept["id"]) == []


def test_a_vm_that_is_not_running_or_stopped_is_refused(sim: SimZone, tenant: Tenant) -> None:
    vm = running_vm(sim, tenant)
    assert ok(run(sim, tenant, "destroyVirtualMachine", id=vm["id"]), "virtualmachine")
    status, body = error(
        tenant.raw("createVMSnapshot", virtualmachineid=vm["id"]), "createVMSnapshot"
    )
    assert status == 431 and "Destroyed" in body["errortext"], body
    assert snaps(tenant, listall=True) == []


def test_vmsnapshot_max_per_vm(sim: SimZone, tenant: Tenant, cloud: Cloud) -> None:
    vm = running_vm(sim, tenant)
    other_vm = running_vm(sim, tenant)
    with vm_snapshot_max(cloud, 2):
        take(sim, tenant, vm)
        take(sim, tenant, vm)
        status, body = error(
            tenant.raw("createVMSnapshot", virtualmachineid=vm["id"]), "createVMSnapshot"
        )
        assert status == 530, body
        assert "can just have : 2 VM snapshots" in body["errortext"], body
        assert len(snaps(tenant, virtualmachineid=vm["id"])) == 2
        take(sim, tenant, other_vm)  # the limit is per VM
    assert len(snaps(tenant, virtualmachineid=other_vm["id"])) == 1


def test_refused_while_a_volume_or_vm_snapshot_runs(sim: SimZone, tenant: Tenant) -> None:
    vm = running_vm(sim, tenant)
    root = tenant.call("listVolumes", virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    with mock(sim, "BackupSnapshotCommand", "wait:3000"):
        job = tenant.call("createSnapshot", volumeid=root["id"])
        status, body = error(
            tenant.raw("createVMSnapshot", virtualmachineid=vm["id"]), "createVMSnapshot"
        )
        sim.cloud.wait_job(job["jobid"], tenant.keys)
    assert status == 431 and "volume snapshot" in body["errortext"], body
    assert snaps(tenant, virtualmachineid=vm["id"]) == []

    with mock(sim, "CreateVMSnapshotCommand", "wait:3000"):
        job = tenant.call("createVMSnapshot", virtualmachineid=vm["id"], name="slow")
        time.sleep(0.5)
        status, body = error(
            tenant.raw("createVMSnapshot", virtualmachineid=vm["id"]), "createVMSnapshot"
        )
        done = sim.cloud.wait_job(job["jobid"], tenant.keys)
    assert status == 431 and "vm snapshot" in body["errortext"], body
    assert ok(done, "vmsnapshot")["state"] == "Ready"
    assert [s["displayname"] for s in snaps(tenant, virtualmachineid=vm["id"])] == ["slow"]


def test_host_failures_end_in_a_final_state(sim: SimZone, tenant: Tenant) -> None:
    vm = running_vm(sim, tenant)
    with mock(sim, "CreateVMSnapshotCommand"):
        code, text = failed(run(sim, tenant, "createVMSnapshot", virtualmachineid=vm["id"]))
    assert code == 530, text
    [broken] = snaps(tenant, virtualmachineid=vm["id"])
    assert broken["state"] == "Error" and broken["current"] is False
    good = take(sim, tenant, vm, name="good")
    assert "parent" not in good  # an Error snapshot is never a parent
    stop(sim, tenant, vm)
    with mock(sim, "RevertToVMSnapshotCommand"):
        code, text = failed(run(sim, tenant, "revertToVMSnapshot", vmsnapshotid=good["id"]))
    assert code == 530, text
    assert snaps(tenant, vmsnapshotid=good["id"])[0]["state"] == "Ready"
    with mock(sim, "DeleteVMSnapshotCommand"):
        code, text = failed(run(sim, tenant, "deleteVMSnapshot", vmsnapshotid=good["id"]))
    assert code == 530, text
    assert snaps(tenant, vmsnapshotid=good["id"])[0]["state"] == "Ready"
    status, body = error(
        tenant.raw("revertToVMSnapshot", vmsnapshotid=broken["id"]), "revertToVMSnapshot"
    )
    assert status == 431 and "Ready" in body["errortext"], body
    assert ok(run(sim, tenant, "deleteVMSnapshot", vmsnapshotid=broken["id"]), "success") is True
    assert [s["id"] for s in snaps(tenant, virtualmachineid=vm["id"])] == [good["id"]]


def test_list_filters_and_scoping(sim: SimZone, tenant: Tenant, cloud: Cloud) -> None:
    vm = running_vm(sim, tenant)
    vm2 = running_vm(sim, tenant)
    tag = uniq("alpha")
    a = take(sim, tenant, vm, name=tag)
    b = take(sim, tenant, vm, name="beta")
    c = take(sim, tenant, vm2, name="gamma")
    tenant.cs.createTags(
        resourceids=c["id"],
        resourcetype="VMSnapshot",
        tags=[{"key": "tier", "value": "gold"}],
        fetch_result=True,
    )

    def ids(**params: Any) -> set[str]:
        return {s["id"] for s in snaps(tenant, **params)}

    assert ids() == {a["id"], b["id"], c["id"]}
    assert ids(vmsnapshotid=a["id"]) == {a["id"]}
    assert ids(vmsnapshotids=f"{a['id']},{c['id']}") == {a["id"], c["id"]}
    assert ids(virtualmachineid=vm2["id"]) == {c["id"]}
    assert ids(name=tag) == {a["id"]}
    assert ids(keyword=tag[:-3]) == {a["id"]}
    assert ids(state="Ready") == {a["id"], b["id"], c["id"]}
    assert ids(state="Error") == set()
    assert ids(**{"tags[0].key": "tier", "tags[0].value": "gold"}) == {c["id"]}
    paged = tenant.call("listVMSnapshot", page=1, pagesize=2)
    assert paged["count"] == 3 and len(paged["vmSnapshot"]) == 2
    # The root admin sees them with listall, by account and domain.
    seen = cloud.call(
        "listVMSnapshot", listall=True, account=tenant.name, domainid=tenant.domain_id
    )["vmSnapshot"]
    assert {s["id"] for s in seen} == {a["id"], b["id"], c["id"]}
    assert all(s["domainid"] == tenant.domain_id for s in seen)


def usage_events(cloud: Cloud, uuid: str) -> list[tuple[str, int]]:
    """The usage events of one VM snapshot, read from the server's SQLite database."""
    db = cloud.data_dir / "cumulo.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT type, size FROM usage_events WHERE resource_type = 'VMSnapshot' "
            "AND resource_uuid = ? ORDER BY id",
            (uuid,),
        ).fetchall()
    return [(str(t), int(size)) for t, size in rows]


def test_usage_events_carry_the_size_and_expunge_closes_them(
    sim: SimZone, tenant: Tenant, cloud: Cloud
) -> None:
    if not (cloud.data_dir / "cumulo.db").exists():
        pytest.skip("reads the usage events from the SQLite database")
    vm = running_vm(sim, tenant)
    disks = tenant.call("listVolumes", virtualmachineid=vm["id"])["volume"]
    size = sum(int(d["size"]) for d in disks)
    first = take(sim, tenant, vm)
    memory = take(sim, tenant, vm, snapshotmemory=True)
    with mock(sim, "CreateVMSnapshotCommand"):
        failed(run(sim, tenant, "createVMSnapshot", virtualmachineid=vm["id"]))
    [broken] = snaps(tenant, state="Error")
    assert ok(run(sim, tenant, "deleteVMSnapshot", vmsnapshotid=first["id"]), "success")
    assert usage_events(cloud, first["id"]) == [
        ("VMSNAPSHOT.CREATE", size),
        ("VMSNAPSHOT.DELETE", size),
    ]
    ram = int(vm["memory"]) << 20
    assert usage_events(cloud, memory["id"]) == [("VMSNAPSHOT.CREATE", size + ram)]
    submitted = cloud.call("destroyVirtualMachine", id=vm["id"], expunge=True)  # admin only
    done = cloud.wait_job(submitted["jobid"])
    assert done["jobstatus"] == 1, done
    assert usage_events(cloud, memory["id"]) == [
        ("VMSNAPSHOT.CREATE", size + ram),
        ("VMSNAPSHOT.DELETE", size + ram),
    ]
    assert usage_events(cloud, broken["id"]) == []  # never taken, never metered
    assert snaps(tenant, listall=True) == []


def test_server_killed_mid_job_leaves_nothing_in_between(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """kill -9 while the host takes (then reverts to) a VM snapshot; after a restart each job
    ends (re-run or failed) and the snapshot is in a final state, never Creating/Reverting."""
    from tests.support.cloud import make_cloud

    own = make_cloud(
        tmp_path_factory.mktemp("vmsnapcrash"),
        CUMULO_JOBS__LEASE_SECONDS="2",
        CUMULO_JOBS__HEARTBEAT_SECONDS="0.5",
    )
    own.start()
    try:
        with http_files({"sim.qcow2": IMAGE}, tmp_path_factory.mktemp("crashfiles")) as url:
            zone = build(own, tmp_path_factory.mktemp("crashwork"), url, hosts=1)
        tenant = make_tenant(own, make_domain(own)["id"])
        vm = running_vm(zone, tenant)
        for command, busy, params in (
            ("CreateVMSnapshotCommand", "Creating", {}),
            ("RevertToVMSnapshotCommand", "Reverting", {}),
        ):
            made = own.call(
                "configureSimulator", name=command, value="wait:4000", zoneid=zone.zone["id"]
            )["simulatormock"]
            if busy == "Creating":
                submitted = tenant.call("createVMSnapshot", virtualmachineid=vm["id"], **params)
                snap_id = submitted["id"]
            else:
                stop(zone, tenant, vm)
                submitted = tenant.call("revertToVMSnapshot", vmsnapshotid=snap_id)
            deadline = time.monotonic() + 10
            while snaps(tenant, vmsnapshotid=snap_id)[0]["state"] != busy:
                assert time.monotonic() < deadline, snaps(tenant, vmsnapshotid=snap_id)
                time.sleep(0.1)
            own.kill9()
            own.start()
            own.call("cleanupSimulatorMock", id=made["id"])
            job = own.wait_job(submitted["jobid"], tenant.keys, timeout=60)
            assert job["jobstatus"] in (1, 2), job
            [snap] = snaps(tenant, vmsnapshotid=snap_id)
            assert snap["state"] in ("Ready", "Error"), snap
            if snap["state"] == "Error":  # the take failed: a new one for the revert step
                # (a restarted simulator has lost its disks: a stop and start makes them again)
                stop(zone, tenant, vm)
                assert ok(run(zone, tenant, "startVirtualMachine", id=vm["id"]), "virtualmachine")
                snap_id = take(zone, tenant, vm)["id"]
    finally:
        own.stop()


def test_simulator_disks_keep_what_each_snapshot_saw() -> None:
    """The simulator driver itself: revert restores each disk's content, delete removes the
    tag from every disk, a missing tag cannot be reverted to."""
    driver = SimDriver(uniq("vmsnap-host"))
    paths = (f"/sim/{uniq('root')}", f"/sim/{uniq('data')}")
    with driver._disk_lock:
        for path in paths:
            driver._disks[path] = SimDisk(1 << 30, b"old " + path.encode())
    driver.create_vm_snapshot(None, "s1", paths, False)
    with driver._disk_lock:
        for path in paths:
            driver._disks[path] = SimDisk(1 << 30, b"new")
    driver.revert_vm_snapshot(None, "s1", paths, False)
    with driver._disk_lock:
        assert [driver._disks[p].content for p in paths] == [b"old " + p.encode() for p in paths]
    with pytest.raises(DriverError):
        driver.create_vm_snapshot(None, "m1", paths, True)  # memory needs a running VM
    driver.delete_vm_snapshot(None, "s1", paths)
    assert [driver.vm_snapshot_tags(p) for p in paths] == [[], []]
    with pytest.raises(DriverError):
        driver.revert_vm_snapshot(None, "s1", paths, False)
    driver.destroy("nobody", paths)


# --- a real KVM host (TCG) ------------------------------------------------------------------


def tags(path: Path) -> list[str]:
    out = subprocess.run(
        ["qemu-img", "snapshot", "-U", "-l", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [line.split()[1] for line in out.splitlines()[2:] if line.split()]


@pytest.mark.vm
@pytest.mark.net
@pytest.mark.slow
def test_vm_snapshots_on_a_real_host(kvm: Kvm) -> None:  # noqa: F811
    cloud, ctx, _, state, pool = kvm
    api = client(cloud)
    offering = api.createDiskOffering(name=uniq("do"), displaytext="c", customized=True)[
        "diskoffering"
    ]
    vm = deploy(api, ctx, state)
    name = vm["instancename"]
    volume = result(
        api,
        api.createVolume(
            name=uniq("data"), zoneid=ctx["zone"]["id"], diskofferingid=offering["id"], size=1
        ),
        "volume",
    )
    result(api, api.attachVolume(id=volume["id"], virtualmachineid=vm["id"]), "volume")
    (data_file,) = pool.rglob(f"{volume['id']}*.qcow2")
    root = api.listVolumes(virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    (root_file,) = [p for p in pool.rglob("*.qcow2") if root["id"] in p.name]

    # Disk only, of the running VM: one tag on both disks at once.
    qemu_io(state, name, volume["id"], "write -P 0x5a 0 1M")
    disk = result(api, api.createVMSnapshot(virtualmachineid=vm["id"], name="disk"), "vmsnapshot")
    assert disk["state"] == "Ready" and disk["type"] == "Disk"
    assert tags(data_file) == [disk["name"]] and tags(root_file) == [disk["name"]]
    qemu_io(state, name, volume["id"], "write -P 0xa5 0 1M")
    assert file_has(data_file, "0xa5")
    wait(api, api.stopVirtualMachine(id=vm["id"], forced=True))
    reverted = result(api, api.revertToVMSnapshot(vmsnapshotid=disk["id"]), "virtualmachine")
    assert reverted["state"] == "Stopped"
    assert file_has(data_file, "0x5a") and not file_has(data_file, "0xa5")
    wait(api, api.startVirtualMachine(id=vm["id"]))  # a new serial log for the new QEMU
    wait_for(lambda: ready_count(state, name) >= 1, 180, "guest ready after start")
    assert file_has(data_file, "0x5a")  # the original content is what the VM runs with

    # Disk and memory: the guest comes back running, without booting again.
    boots, pids = ready_count(state, name), qemu_pids(state)
    memory = result(
        api,
        api.createVMSnapshot(virtualmachineid=vm["id"], name="mem", snapshotmemory=True),
        "vmsnapshot",
    )
    assert memory["type"] == "DiskAndMemory" and memory["parent"] == disk["id"]
    assert sorted(tags(root_file)) == sorted([disk["name"], memory["name"]])
    qemu_io(state, name, volume["id"], "write -P 0x77 0 1M")
    back = result(api, api.revertToVMSnapshot(vmsnapshotid=memory["id"]), "virtualmachine")
    assert back["state"] == "Running"
    status = qmp(state / "vms" / name / "qmp.sock", "query-status")
    assert status["status"] == "running", status
    assert file_has(data_file, "0x5a") and not file_has(data_file, "0x77")
    time.sleep(5)  # a guest that booted again would print GUEST-INIT/READY meanwhile
    assert qemu_pids(state) == pids and ready_count(state, name) == boots
    assert "GUEST-INIT" not in serial(state, name).split("GUEST-READY")[-1]

    # Delete removes the tag from every disk (live, then offline).
    assert api.deleteVMSnapshot(vmsnapshotid=memory["id"], fetch_result=True)["success"]
    assert tags(root_file) == [disk["name"]] and tags(data_file) == [disk["name"]]
    wait(api, api.stopVirtualMachine(id=vm["id"], forced=True))
    cold = result(api, api.createVMSnapshot(virtualmachineid=vm["id"], name="cold"), "vmsnapshot")
    assert sorted(tags(data_file)) == sorted([disk["name"], cold["name"]])  # qemu-img -c
    assert api.deleteVMSnapshot(vmsnapshotid=disk["id"], fetch_result=True)["success"]
    assert tags(root_file) == [cold["name"]] and tags(data_file) == [cold["name"]]
    assert api.deleteVMSnapshot(vmsnapshotid=cold["id"], fetch_result=True)["success"]
    assert tags(root_file) == [] and tags(data_file) == []
    assert not api.listVMSnapshot(virtualmachineid=vm["id"]).get("vmSnapshot")
