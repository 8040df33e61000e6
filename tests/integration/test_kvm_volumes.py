"""Block storage on a real KVM host through the whole stack: `cs` → server → agent → QEMU.

The host is the network namespace + ``cumulo agent --driver qemu`` of test_kvm_vms (TCG,
a local pool, a Directory image store). What the VM sees is read from QEMU itself: QMP
``query-block`` (which files its block devices are, their sizes) and HMP ``qemu-io`` on the
hot-plugged device, which writes a byte pattern through the VM's own block layer and verifies
it on read. The guest-side view (the new /dev/vdX, its serial, data across VMs) is covered by
tests/agent/test_qemu_volumes.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import pytest
from cs import CloudStack

from cumulo.agent.drivers.qemu_volumes import (
    device_id,
    disk_serial,
    qmp,  # retries while the monitor is busy
)
from tests.integration.test_agent import (
    AgentProc,
    host_netns,  # noqa: F401  (fixture)
    wait_for,
    wait_state,
)
from tests.integration.test_kvm_vms import (  # noqa: F401  (fixtures)
    kvm,
    qemu_pids,
    ready_count,
    tiny,
)
from tests.support.cloud import Cloud
from tests.support.simzone import uniq

pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]
GIB = 1 << 30
Kvm = tuple[Cloud, dict[str, Any], AgentProc, Path, Path]


def client(cloud: Cloud) -> CloudStack:
    keys = cloud.admin
    return CloudStack(endpoint=cloud.endpoint, key=keys.api_key, secret=keys.secret, timeout=60)


def wait(api: CloudStack, submitted: dict[str, Any], ok: bool = True) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.queryAsyncJobResult(jobid=submitted["jobid"])
        if job["jobstatus"] != 0:
            assert (job["jobstatus"] == 1) == ok, job.get("jobresult")
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {submitted['jobid']} did not end")


def result(api: CloudStack, submitted: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = wait(api, submitted)["jobresult"][key]
    return found


def store_dir(api: CloudStack, zone_id: str) -> Path:
    store = api.listImageStores(zoneid=zone_id)["imagestore"][0]
    return Path(unquote(urlparse(store["url"]).path))


def blocks(state: Path, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = qmp(state / "vms" / name / "qmp.sock", "query-block")
    return found


def plugged(state: Path, name: str, volume: dict[str, Any]) -> dict[str, Any] | None:
    for block in blocks(state, name):
        inserted = block.get("inserted") or {}
        if volume["id"] in str(inserted.get("file", "")):
            return block
    return None


def qemu_io(state: Path, name: str, volume_id: str, command: str) -> str:
    """qemu-io inside the running VM on the volume's hot-plugged device, then a flush so the
    file reads the same from outside (qemu-io prints to QEMU's stdout: nothing comes back)."""
    line = f'qemu-io -d /machine/peripheral/{device_id(volume_id)}/virtio-backend "{command}"'
    out: str = qmp(
        state / "vms" / name / "qmp.sock",
        "human-monitor-command",
        {"command-line": line},
        timeout=120,
    )
    qmp(
        state / "vms" / name / "qmp.sock",
        "human-monitor-command",
        {"command-line": line.replace(f'"{command}"', '"flush"')},
        timeout=120,
    )
    return out


def file_has(path: Path, pattern: str, length: str = "1M") -> bool:
    done = subprocess.run(
        ["qemu-io", "-r", "-U", "-c", f"read -P {pattern} 0 {length}", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    return done.returncode == 0 and "verification failed" not in done.stdout


def image_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    info: dict[str, Any] = json.loads(out)
    return info


def deploy(api: CloudStack, ctx: dict[str, Any], state: Path) -> dict[str, Any]:
    vm = result(
        api,
        api.deployVirtualMachine(
            zoneid=ctx["zone"]["id"],
            templateid=ctx["template"]["id"],
            serviceofferingid=ctx["offering"]["id"],
        ),
        "virtualmachine",
    )
    wait_for(lambda: ready_count(state, vm["instancename"]) >= 1, 180, "guest ready")
    return vm


def test_volumes_and_snapshots_on_a_real_host(kvm: Kvm) -> None:  # noqa: F811
    cloud, ctx, _, state, pool = kvm
    api = client(cloud)
    zone = ctx["zone"]["id"]
    offering = api.createDiskOffering(name=uniq("do"), displaytext="c", customized=True)[
        "diskoffering"
    ]
    vm = deploy(api, ctx, state)
    name = vm["instancename"]

    volume = result(
        api,
        api.createVolume(name=uniq("data"), zoneid=zone, diskofferingid=offering["id"], size=1),
        "volume",
    )
    assert volume["state"] == "Allocated" and not list(pool.glob(f"{volume['id']}*"))
    attached = result(api, api.attachVolume(id=volume["id"], virtualmachineid=vm["id"]), "volume")
    assert attached["virtualmachineid"] == vm["id"] and attached["state"] == "Ready"
    block = plugged(state, name, volume)
    assert block is not None, blocks(state, name)  # hot-plugged into the running QEMU
    serial = qmp(
        state / "vms" / name / "qmp.sock",
        "qom-get",
        {"path": f"/machine/peripheral/{device_id(volume['id'])}", "property": "serial"},
    )
    assert serial == disk_serial(volume["id"])
    qemu_io(state, name, volume["id"], "write -P 0xab 0 1M")
    (vol_file,) = pool.rglob(f"{volume['id']}*.qcow2")
    assert file_has(vol_file, "0xab")  # written through the VM's device

    resized = result(api, api.resizeVolume(id=volume["id"], size=2), "volume")
    assert int(resized["size"]) == 2 * GIB
    block = plugged(state, name, volume)
    assert block is not None and block["inserted"]["image"]["virtual-size"] == 2 * GIB

    store = store_dir(api, zone)
    snap = result(api, api.createSnapshot(volumeid=volume["id"]), "snapshot")
    assert snap["state"] == "BackedUp"
    (export,) = store.rglob(f"{snap['id']}*")
    info = image_info(export)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert info["virtual-size"] == 2 * GIB and int(snap["physicalsize"]) == export.stat().st_size
    assert file_has(export, "0xab") and not list(store.rglob("*.part"))

    qemu_io(state, name, volume["id"], "write -P 0xcd 0 1M")  # the disk moves on
    assert file_has(vol_file, "0xcd")
    copy = result(
        api, api.createVolume(name=uniq("fromsnap"), snapshotid=snap["id"], zoneid=zone), "volume"
    )
    result(api, api.attachVolume(id=copy["id"], virtualmachineid=vm["id"]), "volume")
    assert plugged(state, name, copy) is not None
    (copy_file,) = pool.rglob(f"{copy['id']}*.qcow2")
    assert file_has(copy_file, "0xab") and not file_has(copy_file, "0xcd")

    template = api.createTemplate(
        name=uniq("tsnap"), displaytext="from snapshot", snapshotid=snap["id"], ostypeid=_os(api)
    )
    made = result(api, template, "template")
    tfiles = [p for p in store.rglob("*") if p.is_file() and made["id"] in str(p)]
    assert tfiles and file_has(tfiles[0], "0xab"), tfiles
    assert "backing-filename" not in image_info(tfiles[0])

    # stop and start: the server passes the attached disks (cold), with the same serials
    wait(api, api.stopVirtualMachine(id=vm["id"], forced=True))
    wait_for(lambda: not qemu_pids(state), 30, "QEMU gone after stop")
    wait(api, api.startVirtualMachine(id=vm["id"]))
    wait_for(lambda: ready_count(state, name) >= 1, 180, "guest ready after start")
    sock = state / "vms" / name / "qmp.sock"
    for vol in (volume, copy):
        cold = plugged(state, name, vol)
        assert cold is not None, blocks(state, name)
        device = str(cold["qdev"]).removesuffix("/virtio-backend")
        assert qmp(sock, "qom-get", {"path": device, "property": "serial"}) == disk_serial(
            vol["id"]
        )

    # detach both (cold-plugged devices now); the VM forgets them
    for vol in (volume, copy):
        detached = result(api, api.detachVolume(id=vol["id"]), "volume")
        assert not detached.get("virtualmachineid")
        assert plugged(state, name, vol) is None
    spec = json.loads((state / "vms" / name / "vm.json").read_text())["spec"]
    assert [d["kind"] for d in spec["disks"]] == ["ROOT"]

    # extract the (detached) volume: the downloaded qcow2 holds what the VM wrote last
    extracted = result(
        api, api.extractVolume(id=volume["id"], zoneid=zone, mode="HTTP_DOWNLOAD"), "volume"
    )
    assert extracted["state"] == "DOWNLOAD_URL_CREATED"
    downloaded = state / "extracted.qcow2"
    downloaded.write_bytes(httpx.get(extracted["url"], timeout=120).raise_for_status().content)
    assert image_info(downloaded)["format"] == "qcow2" and file_has(downloaded, "0xcd")
    downloaded.unlink()

    # revert the (detached) volume: its file holds the snapshot's content again
    assert file_has(vol_file, "0xcd")
    result(api, api.revertSnapshot(id=snap["id"]), "snapshot")
    assert file_has(vol_file, "0xab")

    api.updateConfiguration(name="expunge.interval", value="1")  # this test's own server
    for vol in (volume, copy):
        api.deleteVolume(id=vol["id"])
        assert not api.listVolumes(id=vol["id"]).get("volume")
    wait_for(
        lambda: not list(pool.rglob(f"{volume['id']}*")) and not list(pool.rglob(f"{copy['id']}*")),
        60,
        "volume files removed from the pool on expunge",
    )
    wait(api, api.destroyVirtualMachine(id=vm["id"], expunge=True))


def _os(api: CloudStack) -> str:
    return str(api.listOsTypes()["ostype"][0]["id"])


def test_agent_killed_mid_export_leaves_no_partial_snapshot(kvm: Kvm) -> None:  # noqa: F811
    cloud, ctx, agent, state, _ = kvm
    api = client(cloud)
    zone = ctx["zone"]["id"]
    offering = api.createDiskOffering(name=uniq("do"), displaytext="c", customized=True)[
        "diskoffering"
    ]
    vm = deploy(api, ctx, state)
    name = vm["instancename"]
    volume = result(
        api,
        api.createVolume(name=uniq("big"), zoneid=zone, diskofferingid=offering["id"], size=2),
        "volume",
    )
    result(api, api.attachVolume(id=volume["id"], virtualmachineid=vm["id"]), "volume")
    # enough data that the copy takes a while: 1.5 GiB of a pattern, through the VM
    for offset in range(0, 1536, 128):
        qemu_io(state, name, volume["id"], f"write -P 0x5a {offset}M 128M")
    store = store_dir(api, zone)
    submitted = api.createSnapshot(volumeid=volume["id"])
    wait_for(lambda: bool(list(store.rglob("*.part"))), 60, "export under way")
    agent.kill9()

    job = wait(api, submitted, ok=False)  # the job ended (failed), it is not stuck
    assert job["jobresult"]["errortext"], job
    listed = api.listSnapshots(id=submitted["id"]).get("snapshot", [])
    assert all(s["state"] == "Error" for s in listed), listed
    assert not [s for s in api.listSnapshots(volumeid=volume["id"]).get("snapshot", [])
                if s["state"] == "BackedUp"]  # fmt: skip
    assert list(store.rglob("*.part")) == [] and list(store.rglob(f"{submitted['id']}*")) == []
    assert api.listVolumes(id=volume["id"])["volume"][0]["state"] == "Ready"

    agent.start()  # the VM ran on; the next export sweeps what the dead one left in QEMU
    wait_state(cloud, ctx["host"]["id"], "Up", 60)
    assert len(qemu_pids(state)) == 1
    snap = result(api, api.createSnapshot(volumeid=volume["id"]), "snapshot")
    (export,) = store.rglob(f"{snap['id']}*")
    assert file_has(export, "0x5a", "1536M") and not list(store.rglob("*.part"))
    sock = state / "vms" / name / "qmp.sock"
    assert qmp(sock, "query-jobs") == []
    nodes = [n["node-name"] for n in qmp(sock, "query-named-block-nodes", {"flat": True})]
    assert not [n for n in nodes if n.startswith("bk")], nodes
    result(api, api.detachVolume(id=volume["id"]), "volume")
    api.deleteVolume(id=volume["id"])
