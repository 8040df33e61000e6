"""Real VMs through the whole stack: `cs` → management server → agent WebSocket → QEMU.

One management server bound to the root end of a veth pair; one KVM host that is a network
namespace (no default route) running ``cumulo agent --driver qemu`` with a local pool; the
tiny guest image registered as a template from a loopback HTTP server. The agent caches the
template through a signed link on the server, clones the root disk, boots QEMU under TCG;
the guest's serial console shows its readiness marker. Stop, start, reboot, destroy and
expunge leave no QEMU process, socket or disk file behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.images.tiny import TinyImage, build_tiny
from tests.integration.test_agent import (
    AgentProc,
    NetCloud,
    Site,
    add_kvm_host,
    host_netns,  # noqa: F401  (fixture)
    wait_for,
    wait_state,
)
from tests.support.cloud import Cloud, make_cloud
from tests.support.simzone import http_files, uniq

pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    return build_tiny(tmp_path_factory.mktemp("tiny-images"))


def qemu_pids(state: Path) -> list[int]:
    pids = []
    for pid_file in state.glob("vms/*/qemu.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
            pids.append(pid)
    return pids


def serial(state: Path, name: str) -> str:
    path = state / "vms" / name / "serial.log"
    return path.read_text(errors="replace") if path.exists() else ""


def ready_count(state: Path, name: str) -> int:
    return serial(state, name).count("GUEST-READY")


@pytest.fixture
def kvm(
    host_netns: tuple[str, str, str],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
    tiny: TinyImage,
) -> Iterator[tuple[Cloud, dict[str, Any], AgentProc, Path, Path]]:
    ns, server_ip, host_ip = host_netns
    base = make_cloud(tmp_path_factory.mktemp("kvm-cloud"), CUMULO_API__HOST=server_ip)
    cloud = NetCloud(**{f.name: getattr(base, f.name) for f in fields(Cloud)}, address=server_ip)
    cloud.start()
    work = tmp_path_factory.mktemp("kvm-work")
    state, pool = work / "state", work / "pool"
    agent: AgentProc | None = None
    try:
        c = cloud.call
        zone = c(
            "createZone",
            name=uniq("kvz"),
            networktype="Advanced",
            dns1="10.0.0.1",
            internaldns1="10.0.0.2",
        )["zone"]
        pod = c("createPod", zoneid=zone["id"], name=uniq("kvp"))["pod"]
        made = c(
            "addCluster",
            zoneid=zone["id"],
            podid=pod["id"],
            clustername=uniq("kvc"),
            hypervisor="KVM",
        )["cluster"]
        cluster = made[0] if isinstance(made, list) else made
        host = add_kvm_host(cloud, Site(zone["id"], pod["id"], cluster["id"]), host_ip)
        agent = AgentProc(cloud, work, host["agenttoken"])
        argv = agent.argv
        argv[argv.index("--server") + 1] = f"http://{server_ip}:{cloud.port}"
        argv[argv.index("--driver") + 1] = "qemu"
        argv[argv.index("--state-dir") + 1] = str(state)
        argv += ["--pool", str(pool), "--accelerator", "tcg"]
        argv[:0] = ["ip", "netns", "exec", ns]
        agent.start()
        wait_state(cloud, host["id"], "Up", 60)
        store = work / "store"
        store.mkdir()
        c(
            "addImageStore",
            name=uniq("d"),
            provider="Directory",
            zoneid=zone["id"],
            url=f"file://{store}",
        )
        (work / "served").mkdir()
        with http_files({"tiny.qcow2": tiny.disk.read_bytes()}, work / "served") as url:
            template = c(
                "registerTemplate",
                name=uniq("tiny"),
                displaytext="tiny guest",
                url=f"{url}/tiny.qcow2",
                zoneid=zone["id"],
                format="QCOW2",
                hypervisor="KVM",
                ispublic=True,
                checksum=f"{{SHA-256}}{tiny.sha256}",
            )
            template = template["template"][0]
            wait_for(
                lambda: c("listTemplates", id=template["id"], templatefilter="all")["template"][0][
                    "isready"
                ],
                60,
                "tiny template ready",
            )
        c("updateZone", id=zone["id"], allocationstate="Enabled")
        offering = c(
            "createServiceOffering",
            name=uniq("so"),
            displaytext="tiny",
            cpunumber=1,
            cpuspeed=500,
            memory=128,
        )["serviceoffering"]
        ctx = {"zone": zone, "host": host, "template": template, "offering": offering}
        yield cloud, ctx, agent, state, pool
    finally:
        for pid in qemu_pids(state):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if agent is not None:
            agent.stop()
        cloud.stop()


def job(cloud: Cloud, cmd: str, **params: Any) -> dict[str, Any]:
    done = cloud.wait_job(cloud.call(cmd, **params)["jobid"], timeout=180)
    assert done["jobstatus"] == 1, done
    return done


def test_a_real_vm_through_the_whole_lifecycle(
    kvm: tuple[Cloud, dict[str, Any], AgentProc, Path, Path],
) -> None:
    cloud, ctx, _, state, pool = kvm
    deployed = job(
        cloud,
        "deployVirtualMachine",
        zoneid=ctx["zone"]["id"],
        templateid=ctx["template"]["id"],
        serviceofferingid=ctx["offering"]["id"],
        name="tiny-1",
    )
    vm = deployed["jobresult"]["virtualmachine"]
    assert vm["state"] == "Running" and vm["hostid"] == ctx["host"]["id"]
    name = vm["instancename"]
    wait_for(lambda: ready_count(state, name) >= 1, 120, "GUEST-READY on the serial console")
    assert len(qemu_pids(state)) == 1
    assert any(pool.rglob("*.qcow2")), "the root disk and template cache live on the pool"

    job(cloud, "rebootVirtualMachine", id=vm["id"])
    wait_for(lambda: ready_count(state, name) >= 2, 120, "second boot after reboot")

    stopped = job(cloud, "stopVirtualMachine", id=vm["id"], forced=True)
    assert stopped["jobresult"]["virtualmachine"]["state"] == "Stopped"
    wait_for(lambda: not qemu_pids(state), 30, "QEMU gone after stop")

    started = job(cloud, "startVirtualMachine", id=vm["id"])
    assert started["jobresult"]["virtualmachine"]["state"] == "Running"
    wait_for(lambda: len(qemu_pids(state)) == 1, 30, "QEMU running again")

    job(cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    wait_for(lambda: not qemu_pids(state), 30, "QEMU gone after expunge")
    assert not (state / "vms" / name).exists(), "the run directory was removed"
    disks = [p for p in pool.rglob("*.qcow2") if vm["id"] in p.name or name in p.name]
    assert not disks, disks
    assert not cloud.call("listVirtualMachines", id=vm["id"], listall=True).get("virtualmachine")


def running_pid(state: Path) -> int:
    pids = qemu_pids(state)
    assert len(pids) == 1, pids
    return pids[0]


def vm_state(cloud: Cloud, vm_id: str) -> str:
    return str(
        cloud.call("listVirtualMachines", id=vm_id, listall=True)["virtualmachine"][0]["state"]
    )


def test_vms_survive_agent_and_server_restarts_and_die_visibly(
    kvm: tuple[Cloud, dict[str, Any], AgentProc, Path, Path],
) -> None:
    cloud, ctx, agent, state, _ = kvm
    ha = cloud.call(
        "createServiceOffering",
        name=uniq("ha"),
        displaytext="ha",
        cpunumber=1,
        cpuspeed=500,
        memory=128,
        offerha=True,
    )["serviceoffering"]
    vm = job(
        cloud,
        "deployVirtualMachine",
        zoneid=ctx["zone"]["id"],
        templateid=ctx["template"]["id"],
        serviceofferingid=ha["id"],
    )["jobresult"]["virtualmachine"]
    name = vm["instancename"]
    wait_for(lambda: ready_count(state, name) >= 1, 120, "first boot")
    pid = running_pid(state)

    agent.kill9()  # the VM runs on without its agent, and is adopted again
    assert running_pid(state) == pid
    agent.start()
    wait_state(cloud, ctx["host"]["id"], "Up", 60)
    assert running_pid(state) == pid and vm_state(cloud, vm["id"]) == "Running"

    cloud.stop()  # a management server restart stops nothing
    cloud.start()
    wait_state(cloud, ctx["host"]["id"], "Up", 60)
    assert running_pid(state) == pid and vm_state(cloud, vm["id"]) == "Running"

    os.kill(pid, signal.SIGKILL)  # QEMU dies on its own: reported, then restarted (HA)
    wait_for(lambda: qemu_pids(state) not in ([], [pid]), 90, "HA restart of the VM")
    wait_for(lambda: vm_state(cloud, vm["id"]) == "Running", 60, "VM Running after HA")
    events = cloud.call("listEvents", listall=True, type="HA.VM.START").get("event", [])
    assert any(
        vm["id"] in str(e.get("description", ""))
        or e.get("resourceid") == vm["id"]
        or vm["name"] in str(e.get("description", ""))
        for e in events
    ), events

    plain = job(
        cloud,
        "deployVirtualMachine",
        zoneid=ctx["zone"]["id"],
        templateid=ctx["template"]["id"],
        serviceofferingid=ctx["offering"]["id"],
    )["jobresult"]["virtualmachine"]
    wait_for(lambda: ready_count(state, plain["instancename"]) >= 1, 120, "plain VM boot")
    plain_pid = int((state / "vms" / plain["instancename"] / "qemu.pid").read_text())
    os.kill(plain_pid, signal.SIGKILL)
    wait_for(lambda: vm_state(cloud, plain["id"]) == "Stopped", 30, "non-HA VM reported Stopped")
    time.sleep(3)
    assert vm_state(cloud, plain["id"]) == "Stopped", "a VM without HA is not restarted"
    job(cloud, "stopVirtualMachine", id=vm["id"])
    wait_for(lambda: not qemu_pids(state), 60, "every QEMU gone")
