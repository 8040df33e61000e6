"""Block storage on real TCG guests: hot-plug, data across VMs, online resize, live snapshots.

Each guest has a NIC on a bridge inside a namespace the test owns; the guest's
``/cgi-bin/disk`` (guest_files.DISK_CGI) lists its virtio disks with their serials, writes
random data to one and hashes what it reads back from the device, so every check below is
what the guest itself sees.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.qemu import QemuDriver, RunDir
from cumulo.agent.drivers.qemu_volumes import disk_serial
from cumulo.agent.images.tiny import TinyImage
from cumulo.agent.storage.qcow2 import qemu_img, virtual_size
from cumulo.agentrpc.messages import DiskSpec, NicSpec, VmSpec
from tests.agent.conftest import vm_spec, wait_ready
from tests.agent.hostns import HostNs, host_namespace

pytestmark = [
    pytest.mark.vm,
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq missing"),
]
MIB = 1 << 20


@pytest.fixture
def host_ns(tmp_path: Path) -> Iterator[HostNs]:
    with host_namespace(tmp_path) as host:
        yield host


class Guest:
    """A running tiny guest reached over HTTP from inside the host namespace."""

    def __init__(self, host: HostNs, driver: QemuDriver, spec: VmSpec, ip: str) -> None:
        self.host, self.driver, self.spec, self.ip = host, driver, spec, ip

    @property
    def name(self) -> str:
        return self.spec.name

    def disk(self, query: str) -> str:
        out = self.host.get(f"http://{self.ip}/cgi-bin/disk?{query}", timeout=60)
        assert out is not None, f"guest {self.name} did not answer {query}"
        return out.strip()

    def disks(self) -> dict[str, tuple[str, int]]:
        """serial -> (device, size in bytes), as the guest sees its virtio disks."""
        found = {}
        for line in self.disk("list").splitlines():
            parts = line.split()
            if len(parts) == 3:
                found[parts[1]] = (parts[0], int(parts[2]) * 512)
        return found

    def wait_disk(self, serial: str, present: bool = True, size: int | None = None) -> None:
        import time

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            disks = self.disks()
            if (serial in disks) == present and (
                size is None or (serial in disks and disks[serial][1] == size)
            ):
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: disk {serial} present={present} size={size}: {disks}")


def boot(host: HostNs, driver: QemuDriver, tiny: TinyImage, pool: Path, mac: str) -> Guest:
    spec = vm_spec(tiny, pool, nics=(NicSpec(f"n-{mac[-2:]}", mac, "br0"),))
    driver.start(spec)
    ready = wait_ready(RunDir(driver.vms_dir / spec.name).serial, timeout=180)
    ip = ready.split(" ip=")[1].split("/")[0]
    assert ip != "none", ready
    return Guest(host, driver, spec, ip)


def data_disk(pool: Path, driver: QemuDriver, size: int = 16 * MIB) -> DiskSpec:
    volume_id = str(uuid.uuid4())
    path = pool / f"{volume_id}.qcow2"
    assert driver.create_volume(volume_id, str(path), size, "QCOW2", None) == size
    return DiskSpec(volume_id, 1, str(path), size, None, "DATADISK")


def recorded_disks(driver: QemuDriver, name: str) -> list[str]:
    spec = json.loads((driver.vms_dir / name / "vm.json").read_text())["spec"]
    return [d["volume_id"] for d in spec["disks"]]


def qinfo(path: Path) -> dict[str, object]:
    info: dict[str, object] = json.loads(qemu_img("info", "--output=json", "-U", str(path)))
    return info


def test_hot_plug_carries_data_to_a_second_vm(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    a = boot(host_ns, driver, tiny_image, pool, "52:54:00:fa:16:01")
    b = boot(host_ns, driver, tiny_image, pool, "52:54:00:fa:16:02")
    disk = data_disk(pool, driver)
    serial = disk_serial(disk.volume_id)
    assert serial not in a.disks()

    driver.attach_disk(a.name, disk)
    a.wait_disk(serial, size=16 * MIB)
    driver.attach_disk(a.name, disk)  # a resent attach changes nothing
    assert list(a.disks()).count(serial) == 1
    assert disk.volume_id in recorded_disks(driver, a.name)
    written = a.disk(f"write={serial}&mb=4")
    assert len(written) == 64, written
    with pytest.raises(DriverError, match="lock"):  # QEMU's image lock: one writer only
        driver.attach_disk(b.name, disk)

    # a restarted agent (a new driver on the same state dir) detaches what the old one plugged
    again = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    again.detach_disk(a.name, disk.volume_id, disk.path)
    a.wait_disk(serial, present=False)
    assert disk.volume_id not in recorded_disks(driver, a.name)
    again.detach_disk(a.name, disk.volume_id, disk.path)  # detaching again is success

    driver.attach_disk(b.name, disk)
    b.wait_disk(serial)
    assert b.disk(f"sha={serial}&mb=4") == written
    driver.detach_disk(b.name, disk.volume_id, disk.path)
    b.wait_disk(serial, present=False)
    driver.delete_volume(disk.path)
    assert not Path(disk.path).exists()
    driver.delete_volume(disk.path)  # a missing file is success


def test_online_resize_and_offline_shrink_rules(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    a = boot(host_ns, driver, tiny_image, pool, "52:54:00:fa:16:03")
    disk = data_disk(pool, driver)
    serial = disk_serial(disk.volume_id)
    driver.attach_disk(a.name, disk)
    a.wait_disk(serial, size=16 * MIB)
    with pytest.raises(DriverError, match="shrinkok"):
        driver.resize_volume(disk.path, 16 * MIB, 8 * MIB, False, a.name)
    assert driver.resize_volume(disk.path, 16 * MIB, 48 * MIB, False, a.name) == 48 * MIB
    a.wait_disk(serial, size=48 * MIB)  # the guest saw the capacity change online
    assert virtual_size(Path(disk.path)) == 48 * MIB

    driver.detach_disk(a.name, disk.volume_id, disk.path)
    a.wait_disk(serial, present=False)
    assert driver.resize_volume(disk.path, 48 * MIB, 32 * MIB, True, None) == 32 * MIB
    assert virtual_size(Path(disk.path)) == 32 * MIB
    with pytest.raises(DriverError, match="shrinkok"):
        driver.resize_volume(disk.path, 32 * MIB, 16 * MIB, False, None)
    assert virtual_size(Path(disk.path)) == 32 * MIB


def test_live_snapshot_is_point_in_time_self_contained_and_reverts(
    host_ns: HostNs, state_dir: Path, tiny_image: TinyImage, pool: Path, tmp_path: Path
) -> None:
    driver = QemuDriver(state_dir, accelerator="tcg", netns=host_ns.name)
    a = boot(host_ns, driver, tiny_image, pool, "52:54:00:fa:16:04")
    disk = data_disk(pool, driver)
    serial = disk_serial(disk.volume_id)
    driver.attach_disk(a.name, disk)
    a.wait_disk(serial)
    before = a.disk(f"write={serial}&mb=4")
    store = tmp_path / "store"
    store_url = f"file://{store}"
    snap_id = str(uuid.uuid4())

    made = driver.backup_snapshot(snap_id, disk.path, store_url, f"snap/{snap_id}.qcow2", a.name)
    export = store / "snap" / f"{snap_id}.qcow2"
    assert made["size"] == 16 * MIB and made["physical_size"] == export.stat().st_size
    info = qinfo(export)
    assert info["format"] == "qcow2" and "backing-filename" not in info, info
    qemu_img("check", str(export))
    assert list(store.rglob("*.part")) == []
    again = driver.backup_snapshot(snap_id, disk.path, store_url, f"snap/{snap_id}.qcow2", a.name)
    assert again["checksum"] == made["checksum"]  # a resent export answers the same file

    after = a.disk(f"write={serial}&mb=4")  # the VM moves on after the snapshot
    assert after != before
    # a volume created from the export has the content at snapshot time
    copy = DiskSpec(str(uuid.uuid4()), 2, str(pool / "from-snap.qcow2"), 16 * MIB, None, "DATADISK")
    url = f"file://{export}"
    assert driver.create_volume(copy.volume_id, copy.path, 32 * MIB, "QCOW2", url) == 32 * MIB
    driver.attach_disk(a.name, copy)
    copy_serial = disk_serial(copy.volume_id)
    a.wait_disk(copy_serial, size=32 * MIB)
    assert a.disk(f"sha={copy_serial}&mb=4") == before

    # revert (the volume detached, as the server requires a stopped VM for it)
    driver.detach_disk(a.name, disk.volume_id, disk.path)
    a.wait_disk(serial, present=False)
    assert driver.revert_snapshot(disk.path, url) == 16 * MIB
    driver.attach_disk(a.name, disk)
    a.wait_disk(serial)
    assert a.disk(f"sha={serial}&mb=4") == before

    # the root disk of the running VM: a CoW clone exported flattened
    root = a.spec.disks[0].path
    assert "backing-filename" in qinfo(Path(root))
    rooted = driver.backup_snapshot("r" + snap_id[1:], root, store_url, "snap/root.qcow2", a.name)
    assert "backing-filename" not in qinfo(store / "snap" / "root.qcow2")
    assert rooted["size"] == virtual_size(Path(root))
    # a template from the snapshot export and from a (detached) volume
    tpl = driver.export_template("t1", store_url, "template/t1/t1.qcow2", None, url)
    assert tpl["checksum"] == made["checksum"]  # the export is already self-contained
    driver.detach_disk(a.name, copy.volume_id, copy.path)
    a.wait_disk(copy_serial, present=False)
    tpl2 = driver.export_template("t2", store_url, "template/t2/t2.qcow2", copy.path, None)
    assert tpl2["size"] == 32 * MIB
    assert "backing-filename" not in qinfo(store / "template" / "t2" / "t2.qcow2")
    with pytest.raises(DriverError, match="leaves the store"):
        driver.export_template("t3", store_url, "../escape.qcow2", copy.path, None)
    assert list(store.rglob("*.part")) == []
    # nothing of the backup jobs stays in the VM
    from cumulo.agent.drivers.qemu_volumes import qmp

    run = RunDir(driver.vms_dir / a.name)
    assert qmp(run.qmp, "query-jobs") == []
    nodes = [n["node-name"] for n in qmp(run.qmp, "query-named-block-nodes", {"flat": True})]
    assert not [n for n in nodes if n.startswith("bk")], nodes


def test_migrate_volume_between_pools_and_refusals(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path, tmp_path: Path
) -> None:
    disk = data_disk(pool, driver)
    assert driver.create_volume(disk.volume_id, disk.path, 16 * MIB, "QCOW2", None) == 16 * MIB
    target = tmp_path / "pool2" / Path(disk.path).name
    assert driver.migrate_volume(disk.path, str(target)) == str(target)
    assert not Path(disk.path).exists() and virtual_size(target) == 16 * MIB
    assert driver.migrate_volume(disk.path, str(target)) == str(target)  # resent
    with pytest.raises(DriverError, match="not running"):
        driver.attach_disk("i-2-none-VM", disk)
    with pytest.raises(DriverError, match="file://"):
        driver.backup_snapshot("s", str(target), "http://x/", "a.qcow2", None)
