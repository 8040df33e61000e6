"""Volume snapshots on simulated hosts through the real `cs` client: exports written to the
zone's Directory image store (whole files only, never a partial one), limits, revert, volumes
and templates from snapshots, injected faults and lost answers, and snapshot policies."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files, uniq

GIB = 1024**3


@pytest.fixture(scope="module")
def sim(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimZone]:
    root = tmp_path_factory.mktemp("snapfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        yield build(cloud, tmp_path_factory.mktemp("snapwork"), url)


@pytest.fixture(scope="module")
def store(sim: SimZone) -> Path:
    found = sim.call("listImageStores", zoneid=sim.zone["id"])["imagestore"][0]
    return Path(unquote(urlparse(found["url"]).path))


@pytest.fixture(scope="module")
def offering(cloud: Cloud) -> dict[str, Any]:
    made: dict[str, Any] = cloud.call(
        "createDiskOffering", name=uniq("dosnap"), displaytext="custom", customized=True
    )["diskoffering"]
    return made


@pytest.fixture()
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def run(sim: SimZone, tenant: Tenant, command: str, **params: Any) -> dict[str, Any]:
    submitted = tenant.call(command, **params)
    return sim.cloud.wait_job(submitted["jobid"], tenant.keys)


def ok(job: dict[str, Any], key: str) -> dict[str, Any]:
    assert job["jobstatus"] == 1, job
    found: dict[str, Any] = job["jobresult"][key]
    return found


def failed(job: dict[str, Any]) -> tuple[int, str]:
    assert job["jobstatus"] == 2, job
    return int(job["jobresult"]["errorcode"]), str(job["jobresult"]["errortext"])


def attached_volume(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any], size: int = 2
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A running VM and a data volume of ``size`` GiB attached to it (so it has a file)."""
    job = sim.deploy(tenant.keys)
    vm = ok(job, "virtualmachine")
    volume = ok(
        run(
            sim,
            tenant,
            "createVolume",
            zoneid=sim.zone["id"],
            diskofferingid=offering["id"],
            size=size,
        ),
        "volume",
    )
    volume = ok(
        run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]), "volume"
    )
    return vm, volume


def snapshots_of(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tenant.call("listSnapshots", **params).get("snapshot", [])
    return found


def account_totals(sim: SimZone, tenant: Tenant) -> dict[str, Any]:
    account = sim.call("listAccounts", tenant.keys)["account"][0]
    return {
        "snapshot": int(account["snapshottotal"]),
        "secondary": float(account["secondarystoragetotal"]),
        "primary": int(account["primarystoragetotal"]),
    }


def files(store: Path, pattern: str) -> list[Path]:
    return sorted(store.rglob(pattern))


@contextmanager
def mock(sim: SimZone, name: str, value: str = "result:fail") -> Iterator[None]:
    made = sim.call("configureSimulator", name=name, value=value, zoneid=sim.zone["id"])
    try:
        yield
    finally:
        sim.call("cleanupSimulatorMock", id=made["simulatormock"]["id"])


def test_snapshot_is_exported_whole_and_counted(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any], store: Path
) -> None:
    vm, volume = attached_volume(sim, tenant, offering)
    before = account_totals(sim, tenant)
    snap = tenant.cs.createSnapshot(volumeid=volume["id"], name="nightly", fetch_result=True)[
        "snapshot"
    ]
    assert (snap["state"], snap["volumeid"], snap["name"]) == ("BackedUp", volume["id"], "nightly")
    assert snap["volumetype"] == "DATADISK" and snap["virtualsize"] == 2 * GIB
    assert snap["physicalsize"] > 0 and snap["revertable"] is True
    exported = files(store, f"{snap['id']}.qcow2")
    assert len(exported) == 1 and exported[0].stat().st_size == snap["physicalsize"]
    assert files(store, "*.part") == []
    after = account_totals(sim, tenant)
    assert after["snapshot"] == before["snapshot"] + 1
    assert after["secondary"] == pytest.approx(before["secondary"] + 2)
    assert [s["id"] for s in snapshots_of(tenant, volumeid=volume["id"])] == [snap["id"]]
    root = tenant.call("listVolumes", virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    root_snap = ok(run(sim, tenant, "createSnapshot", volumeid=root["id"]), "snapshot")
    assert root_snap["volumetype"] == "ROOT" and root_snap["state"] == "BackedUp"
    assert tenant.call("listVolumes", id=volume["id"])["volume"][0]["state"] == "Ready"


def test_bad_snapshot_requests_are_refused_and_write_nothing(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any]
) -> None:
    allocated = ok(
        run(
            sim,
            tenant,
            "createVolume",
            zoneid=sim.zone["id"],
            diskofferingid=offering["id"],
            size=1,
        ),
        "volume",
    )
    status, body = error(tenant.raw("createSnapshot", volumeid=allocated["id"]), "createSnapshot")
    assert status == 431 and "Ready" in body["errortext"]
    status, _ = error(tenant.raw("createSnapshot", volumeid=str(uuid.uuid4())), "createSnapshot")
    assert status == 431
    other = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    _, theirs = attached_volume(sim, other, offering, size=1)
    status, _ = error(tenant.raw("createSnapshot", volumeid=theirs["id"]), "createSnapshot")
    assert status == 531
    _, mine = attached_volume(sim, tenant, offering, size=1)
    sim.call(
        "updateResourceLimit", account=tenant.name, domainid=tenant.domain_id, resourcetype=3, max=0
    )
    status, _ = error(tenant.raw("createSnapshot", volumeid=mine["id"]), "createSnapshot")
    assert status == 532
    assert snapshots_of(tenant) == [] and snapshots_of(other) == []
    assert account_totals(sim, tenant)["snapshot"] == 0


def test_failed_and_lost_exports_leave_no_file_and_give_counts_back(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any], store: Path
) -> None:
    _, volume = attached_volume(sim, tenant, offering)
    before = account_totals(sim, tenant)
    for value in ("result:fail", "timeout:true"):
        with mock(sim, "BackupSnapshotCommand", value):
            code, text = failed(run(sim, tenant, "createSnapshot", volumeid=volume["id"]))
        assert code == 530 and "BackupSnapshotCommand" in text, text
        errors = [s for s in snapshots_of(tenant, volumeid=volume["id"]) if s["state"] == "Error"]
        assert len(errors) == 1, errors
        snap = errors[0]
        assert "BackupSnapshotCommand" in snap["status"]
        assert files(store, f"{snap['id']}*") == [], value  # no final file, no temp file
        assert account_totals(sim, tenant) == before
        assert tenant.call("listVolumes", id=volume["id"])["volume"][0]["state"] == "Ready"
        assert tenant.cs.deleteSnapshot(id=snap["id"], fetch_result=True)["success"]
    assert files(store, "*.part") == []
    assert snapshots_of(tenant, volumeid=volume["id"]) == []


def test_delete_removes_the_export_and_gives_counts_back(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any], store: Path
) -> None:
    _, volume = attached_volume(sim, tenant, offering)
    before = account_totals(sim, tenant)
    snap = ok(run(sim, tenant, "createSnapshot", volumeid=volume["id"]), "snapshot")
    assert files(store, f"{snap['id']}.qcow2")
    done = run(sim, tenant, "deleteSnapshot", id=snap["id"])
    assert done["jobstatus"] == 1, done
    assert files(store, f"{snap['id']}*") == []
    assert snapshots_of(tenant, id=snap["id"]) == []
    assert account_totals(sim, tenant) == before


def test_revert_restores_the_size_and_needs_a_stopped_vm(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any]
) -> None:
    vm, volume = attached_volume(sim, tenant, offering, size=2)
    snap = ok(run(sim, tenant, "createSnapshot", volumeid=volume["id"]), "snapshot")
    ok(run(sim, tenant, "resizeVolume", id=volume["id"], size=4), "volume")
    status, body = error(tenant.raw("revertSnapshot", id=snap["id"]), "revertSnapshot")
    assert status == 431 and "stopped" in body["errortext"]
    ok(run(sim, tenant, "stopVirtualMachine", id=vm["id"]), "virtualmachine")
    primary = account_totals(sim, tenant)["primary"]
    reverted = tenant.cs.revertSnapshot(id=snap["id"], fetch_result=True)["snapshot"]
    assert reverted["id"] == snap["id"]
    now = tenant.call("listVolumes", id=volume["id"])["volume"][0]
    assert (now["size"], now["state"]) == (2 * GIB, "Ready")
    assert account_totals(sim, tenant)["primary"] == primary - 2
    with mock(sim, "RevertSnapshotCommand"):
        code, _ = failed(run(sim, tenant, "revertSnapshot", id=snap["id"]))
    assert code == 530
    assert tenant.call("listVolumes", id=volume["id"])["volume"][0]["state"] == "Ready"


def test_volume_from_snapshot_has_its_size_and_attaches(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any]
) -> None:
    vm, volume = attached_volume(sim, tenant, offering, size=3)
    snap = ok(run(sim, tenant, "createSnapshot", volumeid=volume["id"]), "snapshot")
    made = tenant.cs.createVolume(name=uniq("fromsnap"), snapshotid=snap["id"], fetch_result=True)[
        "volume"
    ]
    assert (made["state"], made["size"], made["snapshotid"]) == ("Allocated", 3 * GIB, snap["id"])
    assert made["zoneid"] == sim.zone["id"]
    attached = ok(
        run(sim, tenant, "attachVolume", id=made["id"], virtualmachineid=vm["id"]), "volume"
    )
    assert attached["state"] == "Ready" and attached["size"] == 3 * GIB


def test_templates_from_a_snapshot_and_a_stopped_vm_deploy(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any], store: Path
) -> None:
    vm, volume = attached_volume(sim, tenant, offering)
    snap = ok(run(sim, tenant, "createSnapshot", volumeid=volume["id"]), "snapshot")
    template = ok(
        run(
            sim,
            tenant,
            "createTemplate",
            name=uniq("fromsnap"),
            displaytext="t",
            snapshotid=snap["id"],
        ),
        "template",
    )
    assert template["isready"] is True and template["size"] == 2 * GIB
    assert len(files(store, f"{template['id']}.qcow2")) == 1
    root = tenant.call("listVolumes", virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    status, body = error(
        tenant.raw("createTemplate", name=uniq("run"), volumeid=root["id"]), "createTemplate"
    )
    assert status == 431 and "stopped" in body["errortext"]
    ok(run(sim, tenant, "stopVirtualMachine", id=vm["id"]), "virtualmachine")
    from_root = ok(
        run(
            sim,
            tenant,
            "createTemplate",
            name=uniq("fromroot"),
            volumeid=root["id"],
            passwordenabled=True,
        ),
        "template",
    )
    assert from_root["isready"] is True and from_root["passwordenabled"] is True
    deployed = sim.deploy(tenant.keys, templateid=from_root["id"])
    assert ok(deployed, "virtualmachine")["templateid"] == from_root["id"]
    with mock(sim, "CreatePrivateTemplateCommand"):
        name = uniq("broken")
        code, _ = failed(run(sim, tenant, "createTemplate", name=name, snapshotid=snap["id"]))
    assert code == 530
    listed = tenant.call("listTemplates", templatefilter="self", name=name)
    assert listed.get("template", []) == []


def test_snapshot_policies_are_stored_listed_updated_and_deleted(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any]
) -> None:
    _, volume = attached_volume(sim, tenant, offering, size=1)
    status, _ = error(
        tenant.raw(
            "createSnapshotPolicy",
            volumeid=volume["id"],
            intervaltype="DAILY",
            schedule="99:99",
            timezone="UTC",
            maxsnaps=3,
        ),
        "createSnapshotPolicy",
    )
    assert status == 431
    status, _ = error(
        tenant.raw(
            "createSnapshotPolicy",
            volumeid=volume["id"],
            intervaltype="DAILY",
            schedule="30:02",
            timezone="Mars/Base",
            maxsnaps=3,
        ),
        "createSnapshotPolicy",
    )
    assert status == 431
    assert tenant.call("listSnapshotPolicies", volumeid=volume["id"]) == {}
    policy = tenant.cs.createSnapshotPolicy(
        volumeid=volume["id"],
        intervaltype="WEEKLY",
        schedule="30:02:1",
        timezone="Europe/Paris",
        maxsnaps=4,
    )["snapshotpolicy"]
    assert (policy["intervaltype"], policy["maxsnaps"], policy["schedule"]) == (2, 4, "30:02:1")
    listed = tenant.call("listSnapshotPolicies", volumeid=volume["id"])["snapshotpolicy"]
    assert [p["id"] for p in listed] == [policy["id"]]
    updated = ok(
        run(sim, tenant, "updateSnapshotPolicy", id=policy["id"], fordisplay=False),
        "snapshotpolicy",
    )
    assert updated["fordisplay"] is False
    mine = tenant.call("listSnapshotPolicies")["snapshotpolicy"]
    assert [p["id"] for p in mine] == [policy["id"]]
    other = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    assert other.call("listSnapshotPolicies") == {}
    status, _ = error(
        other.raw("deleteSnapshotPolicies", id=policy["id"]), "deleteSnapshotPolicies"
    )
    assert status == 531
    assert tenant.cs.deleteSnapshotPolicies(id=policy["id"])["success"]
    assert tenant.call("listSnapshotPolicies", volumeid=volume["id"]) == {}


def _database(cloud: Cloud) -> str:
    return cloud.env.get("CUMULO_DATABASE__URL") or f"sqlite:///{cloud.data_dir / 'cumulo.db'}"


def _make_due(cloud: Cloud, policy_uuid: str) -> None:
    """The controlled clock: move the policy's next slot into the past, as if time passed."""
    from datetime import timedelta

    from sqlalchemy import create_engine, update

    from cumulo.common.time import utcnow
    from cumulo.db.models_storage import SnapshotPolicy

    engine = create_engine(_database(cloud))
    try:
        with engine.begin() as conn:
            conn.execute(
                update(SnapshotPolicy)
                .where(SnapshotPolicy.uuid == policy_uuid)
                .values(next_run=utcnow() - timedelta(minutes=1))
            )
    finally:
        engine.dispose()


def _wait_for(check: Any, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the scheduler did not act in time"
        time.sleep(0.2)


def test_policy_scheduler_takes_due_snapshots_and_keeps_maxsnaps(
    sim: SimZone, tenant: Tenant, offering: dict[str, Any], store: Path
) -> None:
    _, volume = attached_volume(sim, tenant, offering, size=1)
    policy = tenant.cs.createSnapshotPolicy(
        volumeid=volume["id"], intervaltype="HOURLY", schedule="0", timezone="UTC", maxsnaps=2
    )["snapshotpolicy"]
    assert snapshots_of(tenant, volumeid=volume["id"]) == []  # nothing until it is due
    seen: list[str] = []
    for round_ in range(1, 4):
        _make_due(sim.cloud, policy["id"])

        def taken(n: int = round_) -> bool:
            listed = snapshots_of(tenant, volumeid=volume["id"])
            new = [s["id"] for s in listed if s["id"] not in seen and s["state"] == "BackedUp"]
            if new and len(listed) == min(n, 2):
                seen.extend(new)
                return True
            return False

        _wait_for(taken)
    listed = snapshots_of(tenant, volumeid=volume["id"])
    assert len(seen) == 3 and {s["id"] for s in listed} == set(seen[1:])
    assert all(s["intervaltype"] == "HOURLY" for s in listed)
    assert files(store, f"{seen[0]}*") == []  # the oldest was pruned, its file too
    assert account_totals(sim, tenant)["snapshot"] == 2


def test_server_killed_mid_export_leaves_no_partial_snapshot(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """kill -9 while the export waits on the host; after a restart the job ends (re-run or
    failed), nothing partial is listed or left on secondary storage, counts match."""
    import time

    from tests.support.cloud import make_cloud

    own = make_cloud(
        tmp_path_factory.mktemp("snapcrash"),
        CUMULO_JOBS__LEASE_SECONDS="2",
        CUMULO_JOBS__HEARTBEAT_SECONDS="0.5",
    )
    own.start()
    try:
        with http_files({"sim.qcow2": IMAGE}, tmp_path_factory.mktemp("crashfiles")) as url:
            zone = build(own, tmp_path_factory.mktemp("crashwork"), url, hosts=1)
        tenant = make_tenant(own, make_domain(own)["id"])
        offering = own.call(
            "createDiskOffering", name=uniq("do"), displaytext="c", customized=True
        )["diskoffering"]
        _, volume = attached_volume(zone, tenant, offering, size=1)
        found = own.call("listImageStores", zoneid=zone.zone["id"])["imagestore"][0]
        store = Path(unquote(urlparse(found["url"]).path))
        made = own.call(
            "configureSimulator",
            name="BackupSnapshotCommand",
            value="wait:4000",
            zoneid=zone.zone["id"],
        )["simulatormock"]
        submitted = tenant.call("createSnapshot", volumeid=volume["id"])
        deadline = time.monotonic() + 10
        while snapshots_of(tenant, id=submitted["id"])[0]["state"] != "Creating":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        own.kill9()
        own.start()
        own.call("cleanupSimulatorMock", id=made["id"])
        job = own.wait_job(submitted["jobid"], tenant.keys, timeout=60)
        assert job["jobstatus"] in (1, 2), job
        snap = snapshots_of(tenant, id=submitted["id"])[0]
        assert snap["state"] in ("BackedUp", "Error"), snap
        exported = files(store, f"{snap['id']}*")
        if snap["state"] == "BackedUp":
            assert len(exported) == 1 and exported[0].stat().st_size == snap["physicalsize"]
        else:
            assert exported == [] and snap["status"]
        assert files(store, "*.part") == []
        assert tenant.call("listVolumes", id=volume["id"])["volume"][0]["state"] == "Ready"
        totals = own.call("listAccounts", tenant.keys)["account"][0]
        assert int(totals["snapshottotal"]) == (1 if snap["state"] == "BackedUp" else 0)
    finally:
        own.stop()


@pytest.mark.parametrize(
    ("interval", "schedule", "tz", "after", "expected"),
    [
        ("HOURLY", "15", "UTC", "2026-03-01T10:20:00+00:00", "2026-03-01T11:15:00+00:00"),
        ("DAILY", "30:02", "UTC", "2026-03-01T01:00:00+00:00", "2026-03-01T02:30:00+00:00"),
        # 02:30 Paris is 01:30 UTC in winter and 00:30 UTC in summer
        (
            "DAILY",
            "30:02",
            "Europe/Paris",
            "2026-01-10T12:00:00+00:00",
            "2026-01-11T01:30:00+00:00",
        ),
        (
            "DAILY",
            "30:02",
            "Europe/Paris",
            "2026-07-10T12:00:00+00:00",
            "2026-07-11T00:30:00+00:00",
        ),
        # WEEKLY day 1 is Sunday; 2026-03-01 is a Sunday
        ("WEEKLY", "00:12:1", "UTC", "2026-03-01T12:00:00+00:00", "2026-03-08T12:00:00+00:00"),
        ("MONTHLY", "00:00:28", "UTC", "2026-02-28T00:00:01+00:00", "2026-03-28T00:00:00+00:00"),
    ],
)
def test_policy_slots_follow_the_schedule_in_its_timezone(
    interval: str, schedule: str, tz: str, after: str, expected: str
) -> None:
    from datetime import datetime

    from cumulo.services.storage.snapshot_policies import next_run

    due = next_run(interval, schedule, tz, datetime.fromisoformat(after))
    assert due == datetime.fromisoformat(expected)
