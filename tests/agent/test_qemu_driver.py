"""The QEMU driver against real TCG guests (the tiny image), one or two VMs at a time."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.drivers.qemu import QemuDriver, RunDir, live_pid
from cumulo.agent.drivers.qmp import qmp
from cumulo.agent.images.tiny import TinyImage
from cumulo.agent.storage.qcow2 import qemu_img, virtual_size
from cumulo.agentrpc.messages import DiskSpec, NicSpec, StartVm, to_wire
from tests.agent.conftest import vm_spec, wait_ready

pytestmark = pytest.mark.vm
RUNNING, STOPPED, MISSING = "Running", "Stopped", "Missing"


def _run(driver: QemuDriver, name: str) -> RunDir:
    return RunDir(driver.vms_dir / name)


def test_start_boots_from_the_disk_and_a_resent_start_is_harmless(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool, hostname="web-1")
    assert driver.start(spec).power == RUNNING
    run = _run(driver, spec.name)
    pid = live_pid(run)
    assert pid is not None
    ready = wait_ready(run.serial)
    assert "host=web-1" in ready and "root=/dev/vda2:ext4" in ready
    assert driver.start(spec).power == RUNNING
    assert live_pid(run) == pid  # no second QEMU
    assert run.qmp.is_socket() and run.vnc.is_socket()
    with driver.open_console(spec.name) as console:  # the VNC server greets in RFB
        console.settimeout(10)
        assert console.recv(12) == b"RFB 003.008\n"
    backing = qemu_img("info", "-U", "--output=json", spec.disks[0].path)
    assert str(tiny_image.disk) in backing  # a CoW clone of the template
    assert os.getsid(pid) != os.getsid(0)  # detached from this process's session


def test_stop_powers_down_through_acpi(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool)
    driver.start(spec)
    run = _run(driver, spec.name)
    wait_ready(run.serial)
    pid = live_pid(run)
    began = time.monotonic()
    assert driver.stop(spec.name, timeout_s=30).power == STOPPED
    assert time.monotonic() - began < 15
    assert "GUEST-POWEROFF" in run.serial.read_text()  # the guest shut itself down
    assert pid is not None and not _alive(pid)
    assert not run.qmp.exists() and not run.pid.exists() and not run.vnc.exists()
    assert driver.status(spec.name).power == STOPPED
    assert driver.stop(spec.name).power == STOPPED  # stopping again succeeds
    with pytest.raises(DriverError, match="not running"):
        driver.open_console(spec.name)


@pytest.mark.slow
def test_stop_falls_back_to_a_hard_stop_when_the_guest_ignores_acpi(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool)
    driver.start(spec)
    run = _run(driver, spec.name)
    wait_ready(run.serial)
    assert driver.pause(spec.name).power == "Paused"  # a paused guest cannot answer ACPI
    began = time.monotonic()
    assert driver.stop(spec.name, timeout_s=2).power == STOPPED
    assert 2 <= time.monotonic() - began < 15
    assert "GUEST-POWEROFF" not in run.serial.read_text()
    assert live_pid(run) is None


def test_forced_stop_then_start_again(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool)
    driver.start(spec)
    run = _run(driver, spec.name)
    first = live_pid(run)
    began = time.monotonic()
    assert driver.stop(spec.name, forced=True).power == STOPPED
    assert time.monotonic() - began < 5
    assert driver.start(spec).power == RUNNING
    assert live_pid(run) not in (None, first)
    wait_ready(run.serial)


def test_reboot_resets_the_guest_in_the_same_process(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool, boot=tiny_image.direct_boot())  # direct kernel boot too
    driver.start(spec)
    run = _run(driver, spec.name)
    wait_ready(run.serial)
    pid = live_pid(run)
    assert driver.reboot(spec.name).power == RUNNING
    wait_ready(run.serial, count=2)
    assert live_pid(run) == pid
    driver.stop(spec.name, forced=True)
    with pytest.raises(DriverError, match="not running"):
        driver.reboot(spec.name)


def test_destroy_leaves_no_process_socket_or_file(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool)
    driver.start(spec)
    run = _run(driver, spec.name)
    pid = live_pid(run)
    assert pid is not None
    disk = spec.disks[0].path
    driver.destroy(spec.name, (disk,))
    assert not _alive(pid)
    assert not run.root.exists() and not Path(disk).exists()
    assert driver.status(spec.name).power == MISSING
    assert spec.name not in [vm.name for vm in driver.list_vms()]
    driver.destroy(spec.name, (disk,))  # destroying again succeeds
    assert tiny_image.disk.is_file()  # the template is untouched


_AGENT = """
import json, sys, time
from pathlib import Path
from cumulo.agent.drivers.qemu import QemuDriver
from cumulo.agentrpc.messages import command_from_wire
spec = command_from_wire(json.loads(sys.argv[2])).spec
QemuDriver(Path(sys.argv[1]), accelerator="tcg").start(spec)
print("started", flush=True)
time.sleep(600)
"""


def test_a_killed_agent_leaves_its_vm_running_and_a_new_driver_adopts_it(
    state_dir: Path, tiny_image: TinyImage, pool: Path
) -> None:
    """The 'agent' is a separate process killed with SIGKILL while its VM runs."""
    spec = vm_spec(tiny_image, pool)
    message = json.dumps(to_wire(StartVm(request_id="r1", spec=spec)))
    agent = subprocess.Popen(
        [sys.executable, "-c", _AGENT, str(state_dir), message], stdout=subprocess.PIPE, text=True
    )
    try:
        assert agent.stdout is not None and agent.stdout.readline().strip() == "started"
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.wait()
    adopted = QemuDriver(state_dir, accelerator="tcg")
    run = RunDir(adopted.vms_dir / spec.name)
    wait_ready(run.serial)
    assert [(vm.name, vm.power) for vm in adopted.list_vms()] == [(spec.name, RUNNING)]
    assert adopted.stats((spec.name,))[0].cpu_time_ns > 0
    pid = live_pid(run)
    assert adopted.stop(spec.name, timeout_s=30).power == STOPPED
    assert pid is not None and not _alive(pid)
    adopted.destroy(spec.name, (spec.disks[0].path,))


def test_qemu_killed_outside_the_driver_is_reported_stopped(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool)
    driver.start(spec)
    run = _run(driver, spec.name)
    pid = live_pid(run)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while driver.status(spec.name).power != STOPPED:
        assert time.monotonic() < deadline, "a killed QEMU was still reported running"
        time.sleep(0.1)
    assert [(vm.name, vm.power) for vm in driver.list_vms()] == [(spec.name, STOPPED)]
    assert not run.qmp.exists() and not run.pid.exists()
    assert driver.stats((spec.name,)) == []
    assert driver.start(spec).power == RUNNING  # and it can be started again


def test_stats_grow_while_the_guest_runs(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    base = vm_spec(tiny_image, pool)
    data = DiskSpec("data-1", 1, str(pool / f"{base.name}-data.qcow2"), 64 << 20, kind="DATADISK")
    spec = dataclasses.replace(base, disks=(*base.disks, data))
    driver.start(spec)
    assert virtual_size(Path(data.path)) == 64 << 20  # a blank data disk was made for it
    devices = qmp(_run(driver, spec.name).qmp, "query-block")
    assert sorted(d["inserted"]["file"] for d in devices if d.get("inserted")) == sorted(
        d.path for d in spec.disks
    )
    first = driver.stats((spec.name,))[0]
    wait_ready(_run(driver, spec.name).serial)
    second = driver.stats()[0]
    assert second.name == spec.name
    assert second.cpu_time_ns > first.cpu_time_ns
    assert second.disk_read_bytes > first.disk_read_bytes > 0 or second.disk_read_bytes > 0
    assert second.disk_read_ops > 0 and second.memory_kib > 10_000


def test_host_info_reports_qemu_and_the_accelerator(driver: QemuDriver) -> None:
    info = driver.host_info()
    assert info.hypervisor == "KVM" and info.accelerator == "tcg"
    assert info.cpus >= 1 and info.memory_bytes > 0 and info.hypervisor_version[0].isdigit()


def test_bad_specs_fail_clearly_and_leave_nothing(
    driver: QemuDriver, tiny_image: TinyImage, pool: Path
) -> None:
    spec = vm_spec(tiny_image, pool, nics=(NicSpec("n1", "52:54:00:fa:00:1", ""),))
    with pytest.raises(DriverError, match="invalid MAC"):
        driver.start(spec)
    assert live_pid(_run(driver, spec.name)) is None
    with pytest.raises(DriverError, match="invalid VM name"):
        driver.status("../etc")


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
