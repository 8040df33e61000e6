"""migrateVirtualMachine between two real KVM hosts: stop-and-copy over the image store.

Two namespaces stand for two hosts, each running ``cumulo agent --driver qemu`` with its own
state directory and local pool; the second reaches the management server through a host
route over its own veth (neither has a default route, nor a route to the other host). One
Directory image store (``file://``) is the zone's secondary storage, which both hosts reach,
as KVM hosts mount NFS secondary storage. Placement uses ``vm.allocation.algorithm =
firstfitleastconsumed``: the host with the most free memory first, so two VMs land on two
hosts. Migration of a VM on local storage is stop-and-copy (services/compute/migration.py):
the guest is shut down on the source, its disk staged flattened in the store, fetched by the
target, started there; then the source's files and the staged copy are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from cumulo.agent.images.tiny import TinyImage, build_tiny
from tests.integration.test_agent import (
    AgentProc,
    NetCloud,
    Site,
    add_kvm_host,
    sh,
    wait_for,
    wait_state,
)
from tests.integration.test_kvm_vms import qemu_pids, ready_count
from tests.support.cloud import Cloud, make_cloud
from tests.support.simzone import http_files, uniq

pytestmark = [pytest.mark.vm, pytest.mark.net, pytest.mark.slow]


@dataclass
class KvmHost:
    host: dict[str, Any]
    agent: AgentProc
    state: Path
    pool: Path

    @property
    def id(self) -> str:
        return str(self.host["id"])


@dataclass
class TwoHosts:
    cloud: NetCloud
    zone: dict[str, Any]
    template: dict[str, Any]
    offering: dict[str, Any]
    store: Path
    hosts: list[KvmHost]

    def by_id(self, host_id: str) -> KvmHost:
        return next(h for h in self.hosts if h.id == host_id)

    def other(self, host_id: str) -> KvmHost:
        return next(h for h in self.hosts if h.id != host_id)


@contextlib.contextmanager
def host_namespace(server_ip: str | None = None) -> Iterator[tuple[str, str, str]]:
    """A namespace on its own /30 veth to the root namespace; no default route. Given
    ``server_ip`` (an address of the root namespace elsewhere), a host route to it only."""
    tag = uuid.uuid4().hex[:6]
    ns, outer, inner = f"cmmg-{tag}", f"cmm{tag}o", f"cmm{tag}i"
    octet = int(tag[:2], 16)
    outer_ip, host_ip = f"10.232.{octet}.1", f"10.232.{octet}.2"
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "addr", "add", f"{outer_ip}/30", "dev", outer)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "-n", ns, "addr", "add", f"{host_ip}/30", "dev", inner)
        sh("ip", "-n", ns, "link", "set", inner, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if server_ip is not None:
            sh("ip", "-n", ns, "route", "add", f"{server_ip}/32", "via", outer_ip)
        yield ns, outer_ip, host_ip
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyImage:
    return build_tiny(tmp_path_factory.mktemp("tiny-images"))


def _start_agent(
    cloud: NetCloud, work: Path, ns: str, server_ip: str, token: str
) -> tuple[AgentProc, Path, Path]:
    state, pool = work / "state", work / "pool"
    agent = AgentProc(cloud, work, token)
    argv = agent.argv
    argv[argv.index("--server") + 1] = f"http://{server_ip}:{cloud.port}"
    argv[argv.index("--driver") + 1] = "qemu"
    argv[argv.index("--state-dir") + 1] = str(state)
    argv += ["--pool", str(pool), "--accelerator", "tcg"]
    argv[:0] = ["ip", "netns", "exec", ns]
    agent.start()
    return agent, state, pool


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, tiny: TinyImage) -> Iterator[TwoHosts]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    with contextlib.ExitStack() as stack:
        ns1, server_ip, ip1 = stack.enter_context(host_namespace())
        ns2, _, ip2 = stack.enter_context(host_namespace(server_ip))
        base = make_cloud(tmp_path_factory.mktemp("mig-cloud"), CUMULO_API__HOST=server_ip)
        fields_ = {f.name: getattr(base, f.name) for f in fields(Cloud)}
        cloud = NetCloud(**fields_, address=server_ip)
        cloud.start()
        stack.callback(cloud.stop)
        c = cloud.call
        c("updateConfiguration", name="vm.allocation.algorithm", value="firstfitleastconsumed")
        zone = c(
            "createZone",
            name=uniq("mgz"),
            networktype="Advanced",
            dns1="10.0.0.1",
            internaldns1="10.0.0.2",
        )["zone"]
        pod = c("createPod", zoneid=zone["id"], name=uniq("mgp"))["pod"]
        made = c(
            "addCluster",
            zoneid=zone["id"],
            podid=pod["id"],
            clustername=uniq("mgc"),
            hypervisor="KVM",
        )["cluster"]
        cluster = made[0] if isinstance(made, list) else made
        site = Site(zone["id"], pod["id"], cluster["id"])
        hosts = []
        for ns, ip in ((ns1, ip1), (ns2, ip2)):
            host = add_kvm_host(cloud, site, ip)
            work = tmp_path_factory.mktemp("mig-host")
            agent, state, pool = _start_agent(cloud, work, ns, server_ip, host["agenttoken"])
            stack.callback(agent.stop)
            stack.callback(_kill_qemus, state)
            hosts.append(KvmHost(host, agent, state, pool))
        for h in hosts:
            wait_state(cloud, h.id, "Up", 90)
        store = tmp_path_factory.mktemp("mig-store")
        c("addImageStore", name=uniq("d"), provider="Directory", zoneid=zone["id"],
          url=f"file://{store}")  # fmt: skip
        served = tmp_path_factory.mktemp("mig-served")
        with http_files({"tiny.qcow2": tiny.disk.read_bytes()}, served) as url:
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
            )["template"][0]
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
        yield TwoHosts(cloud, zone, template, offering, store, hosts)


def _kill_qemus(state: Path) -> None:
    for pid in qemu_pids(state):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def job(cloud: Cloud, cmd: str, **params: Any) -> dict[str, Any]:
    done = cloud.wait_job(cloud.call(cmd, **params)["jobid"], timeout=300)
    return done


def deploy(two: TwoHosts, name: str) -> dict[str, Any]:
    done = job(
        two.cloud,
        "deployVirtualMachine",
        zoneid=two.zone["id"],
        templateid=two.template["id"],
        serviceofferingid=two.offering["id"],
        name=name,
    )
    assert done["jobstatus"] == 1, done
    vm: dict[str, Any] = done["jobresult"]["virtualmachine"]
    return vm


def listed(cloud: Cloud, vm_id: str) -> dict[str, Any]:
    vm: dict[str, Any] = cloud.call("listVirtualMachines", id=vm_id, listall=True)[
        "virtualmachine"
    ][0]
    return vm


def host_used(cloud: Cloud, host_id: str) -> tuple[int, int]:
    host = cloud.call("listHosts", id=host_id)["host"][0]
    return int(host["cpuallocatedvalue"]), int(host["memoryallocatedbytes"])


def local_pool(cloud: Cloud, host: KvmHost) -> dict[str, Any]:
    pools = cloud.call("listStoragePools", listall=True).get("storagepool", [])
    mine = [p for p in pools if p.get("scope") == "HOST" and p.get("path") == str(host.pool)]
    assert len(mine) == 1, pools
    pool: dict[str, Any] = mine[0]
    return pool


def pool_allocated(cloud: Cloud, host: KvmHost) -> int:
    return int(local_pool(cloud, host)["disksizeallocated"])


def capacity_used(cloud: Cloud, zone_id: str) -> dict[str, int]:
    rows = cloud.call("listCapacity", zoneid=zone_id).get("capacity", [])
    return {str(r["type"]): int(r["capacityused"]) for r in rows}


def root_volume(cloud: Cloud, vm_id: str) -> dict[str, Any]:
    vols = cloud.call("listVolumes", virtualmachineid=vm_id, type="ROOT", listall=True)["volume"]
    assert len(vols) == 1
    volume: dict[str, Any] = vols[0]
    return volume


def disk_files(pool: Path, volume_id: str) -> list[Path]:
    return [p for p in pool.rglob("*") if volume_id in p.name]


def run_dir(host: KvmHost, name: str) -> Path:
    return host.state / "vms" / name


def taps(host: KvmHost) -> list[str]:
    ns = host.agent.argv[host.agent.argv.index("exec") + 1]
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "link", "show"], capture_output=True, text=True, timeout=30
    ).stdout
    return [link["ifname"] for link in json.loads(out or "[]") if link["ifname"].startswith("ct")]


def staged(store: Path) -> list[Path]:
    return [p for p in (store / "migrations").rglob("*") if p.is_file()]


def ext4_stats(disk: Path, work: Path) -> dict[str, str]:
    """The root file system's superblock (partition 2 of the tiny image), read with -U from a
    disk a running QEMU holds: what the guest wrote when it mounted it."""
    raw = work / f"{disk.name}.{uuid.uuid4().hex[:6]}.raw"
    part = raw.with_suffix(".part")
    try:
        sh("qemu-img", "convert", "-U", "-O", "raw", str(disk), str(raw))
        with raw.open("rb") as fh:
            mbr = fh.read(512)
            entry = mbr[446 + 16 : 446 + 32]  # the second partition
            start = int.from_bytes(entry[8:12], "little") * 512
            length = int.from_bytes(entry[12:16], "little") * 512
            fh.seek(start)
            part.write_bytes(fh.read(length))
        out = subprocess.run(
            ["debugfs", "-R", "stats", str(part)], capture_output=True, text=True, timeout=60
        ).stdout
    finally:
        raw.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
    stats = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            stats[key.strip()] = value.strip()
    return stats


def test_two_hosts_spread_and_a_vm_moves_by_stop_and_copy(two: TwoHosts, tmp_path: Path) -> None:
    cloud = two.cloud
    a = deploy(two, uniq("mig-a"))
    b = deploy(two, uniq("mig-b"))
    assert a["hostid"] != b["hostid"], "firstfitleastconsumed spreads the two VMs"
    assert {a["hostid"], b["hostid"]} == {h.id for h in two.hosts}
    source, target = two.by_id(a["hostid"]), two.other(a["hostid"])
    name = a["instancename"]
    wait_for(lambda: ready_count(source.state, name) >= 1, 180, "GUEST-READY on the source")
    root = root_volume(cloud, a["id"])
    [src_disk] = [p for p in disk_files(source.pool, root["id"]) if p.suffix == ".qcow2"]
    before = ext4_stats(src_disk, tmp_path)
    assert int(before["Mount count"]) >= 1, before
    used = {h.id: host_used(cloud, h.id) for h in two.hosts}
    pools = {h.id: pool_allocated(cloud, h) for h in two.hosts}
    zone_caps = capacity_used(cloud, two.zone["id"])

    cs = CloudStack(endpoint=cloud.endpoint, key=cloud.admin.api_key,
                    secret=cloud.admin.secret, poll_interval=0.2, timeout=60)  # fmt: skip
    began = time.monotonic()
    result = cs.migrateVirtualMachine(virtualmachineid=a["id"], hostid=target.id, fetch_result=True)
    took = time.monotonic() - began
    moved = result["virtualmachine"]
    assert (moved["state"], moved["hostid"]) == ("Running", target.id), moved
    assert listed(cloud, a["id"])["hostid"] == target.id
    print(f"\nstop-and-copy migration took {took:.1f} s")

    # the guest boots again on the target, from the disk the source wrote
    wait_for(lambda: ready_count(target.state, name) >= 1, 180, "GUEST-READY on the target")
    [dst_disk] = [p for p in disk_files(target.pool, root["id"]) if p.suffix == ".qcow2"]
    after = ext4_stats(dst_disk, tmp_path)
    assert after["Filesystem UUID"] == before["Filesystem UUID"]
    assert int(after["Mount count"]) > int(before["Mount count"]), (before, after)
    volume = root_volume(cloud, a["id"])
    assert volume["storageid"] == local_pool(cloud, target)["id"]

    # nothing left on the source, nor in the store
    assert not qemu_pids(source.state), "no QEMU left on the source"
    assert len(qemu_pids(target.state)) == 2, "A and B both run on the target now"
    assert not run_dir(source, name).exists(), "run dir, sockets and logs gone on the source"
    assert not disk_files(source.pool, root["id"]), "the source's disk was removed"
    assert not any(t for t in taps(source) if name in t)
    assert not staged(two.store), "the staged copy was deleted"

    # capacity and pool usage moved with it
    cpu, mem = 500, 128 * 1024 * 1024
    assert host_used(cloud, source.id) == (used[source.id][0] - cpu, used[source.id][1] - mem)
    assert host_used(cloud, target.id) == (used[target.id][0] + cpu, used[target.id][1] + mem)
    size = int(root["size"])
    assert pool_allocated(cloud, source) == pools[source.id] - size
    assert pool_allocated(cloud, target) == pools[target.id] + size
    assert capacity_used(cloud, two.zone["id"]) == zone_caps, "zone totals unchanged"
    events = cloud.call("listEvents", type="VM.MIGRATE", listall=True).get("event", [])
    assert any(e.get("resourceid") == a["id"] and e["state"] == "Completed" for e in events)

    # the moved VM is an ordinary VM on its new host
    stopped = job(cloud, "stopVirtualMachine", id=a["id"], forced=True)
    assert stopped["jobstatus"] == 1, stopped
    assert len(qemu_pids(target.state)) == 1, "only B still runs"
    for vm in (a, b):
        gone = job(cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
        assert gone["jobstatus"] == 1, gone
    wait_for(lambda: not any(qemu_pids(h.state) for h in two.hosts), 60, "every QEMU gone")
    assert not disk_files(target.pool, root["id"])


def test_a_target_that_cannot_start_it_leaves_the_vm_running_on_the_source(
    two: TwoHosts,
) -> None:
    cloud = two.cloud
    vm = deploy(two, uniq("mig-f"))
    source, target = two.by_id(vm["hostid"]), two.other(vm["hostid"])
    name = vm["instancename"]
    wait_for(lambda: ready_count(source.state, name) >= 1, 180, "first boot on the source")
    root = root_volume(cloud, vm["id"])
    used = {h.id: host_used(cloud, h.id) for h in two.hosts}
    pools = {h.id: pool_allocated(cloud, h) for h in two.hosts}
    [first_pid] = qemu_pids(source.state)
    # the fault: the target's run directory holds a directory where QEMU's spec file goes
    (run_dir(target, name) / "vm.json").mkdir(parents=True)
    done = job(cloud, "migrateVirtualMachine", virtualmachineid=vm["id"], hostid=target.id)
    logs = "".join(h.agent.log.read_text()[-3000:] for h in two.hosts)
    assert done["jobstatus"] == 2 and done["jobresultcode"] == 530, (done, logs)
    text = done["jobresult"]["errortext"]
    assert "StartCommand" in text and f"keeps running on host {source.host['name']}" in text
    got = listed(cloud, vm["id"])
    assert (got["state"], got["hostid"]) == ("Running", source.id)
    # shut down for the move, started again: a new QEMU (its serial log starts afresh)
    [pid] = qemu_pids(source.state)
    assert pid != first_pid
    wait_for(lambda: ready_count(source.state, name) >= 1, 180, "booted again on the source")
    assert disk_files(source.pool, root["id"]), "the source keeps its disk"
    # nothing left on the target, nor in the store
    assert not qemu_pids(target.state)
    assert not run_dir(target, name).exists()
    assert not disk_files(target.pool, root["id"])
    assert not staged(two.store)
    assert {h.id: host_used(cloud, h.id) for h in two.hosts} == used
    assert {h.id: pool_allocated(cloud, h) for h in two.hosts} == pools
    assert root_volume(cloud, vm["id"])["storageid"] == local_pool(cloud, source)["id"]
    gone = job(cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    assert gone["jobstatus"] == 1, gone
    wait_for(lambda: not qemu_pids(source.state), 60, "QEMU gone")


def test_a_target_without_room_is_refused_and_nothing_changes(two: TwoHosts) -> None:
    cloud = two.cloud
    vm = deploy(two, uniq("mig-r"))
    source, target = two.by_id(vm["hostid"]), two.other(vm["hostid"])
    name = vm["instancename"]
    wait_for(lambda: ready_count(source.state, name) >= 1, 180, "boot on the source")
    pool = local_pool(cloud, target)
    pid = qemu_pids(source.state)
    used = {h.id: host_used(cloud, h.id) for h in two.hosts}
    cloud.call("updateStoragePool", id=pool["id"], capacitybytes=1024 * 1024)
    try:
        response = cloud.signed(
            "migrateVirtualMachine", cloud.admin, virtualmachineid=vm["id"], hostid=target.id
        )
        assert response.status_code == 533, response.text
        body = response.json()["migratevirtualmachineresponse"]
        assert "local storage" in body["errortext"] and "no room" in body["errortext"], body
        # and with no host named, the planner finds no other host with room either
        response = cloud.signed("migrateVirtualMachine", cloud.admin, virtualmachineid=vm["id"])
        assert response.status_code == 533, response.text
    finally:
        cloud.call("updateStoragePool", id=pool["id"], capacitybytes=int(pool["disksizetotal"]))
    got = listed(cloud, vm["id"])
    assert (got["state"], got["hostid"]) == ("Running", source.id)
    assert qemu_pids(source.state) == pid, "the VM was not touched"
    assert not run_dir(target, name).exists()
    assert {h.id: host_used(cloud, h.id) for h in two.hosts} == used
    events = cloud.call("listEvents", type="VM.MIGRATE", listall=True).get("event", [])
    assert not any(e.get("resourceid") == vm["id"] for e in events), "no migration was started"
    gone = job(cloud, "destroyVirtualMachine", id=vm["id"], expunge=True)
    assert gone["jobstatus"] == 1, gone


def test_the_disk_steps_flatten_copy_once_and_refuse_what_they_must(tmp_path: Path) -> None:
    """The agent's two steps, without VMs: a clone is staged flattened (the target needs no
    template), a re-sent step finds its finished copy, escapes and running VMs are refused."""
    from cumulo.agent.drivers.base import DriverError
    from cumulo.agent.drivers.qemu import QemuDriver
    from cumulo.agent.drivers.qemu_migration import fetch_disk, stage_disk
    from cumulo.agentrpc.messages import FetchDisk, StageDisk, command_from_wire, to_wire

    base, clone = tmp_path / "base.qcow2", tmp_path / "pool-a" / "vol.qcow2"
    clone.parent.mkdir()
    sh("qemu-img", "create", "-q", "-f", "qcow2", str(base), "8M")
    sh("qemu-io", "-c", "write -P 0x5a 0 1M", str(base))
    sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(clone))
    sh("qemu-io", "-c", "write -P 0xa5 4M 1M", str(clone))
    driver = QemuDriver(tmp_path / "state", accelerator="tcg")
    store = tmp_path / "store"
    url = f"file://{store}"
    staged_at = store / "migrations" / "vm" / "vol.qcow2"
    command = StageDisk("r1", "i-9-9-VM", str(clone), url, "migrations/vm/vol.qcow2")
    assert command_from_wire(to_wire(command)) == command, "the command crosses the wire"
    assert stage_disk(driver, command)["size"] == 8 * 1024 * 1024
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(staged_at)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert "backing-filename" not in info, "flattened: no backing file"
    assert not list(staged_at.parent.glob(".*.part")), "no temporary file left"
    mtime = staged_at.stat().st_mtime_ns
    assert stage_disk(driver, command)["size"] == 8 * 1024 * 1024
    assert staged_at.stat().st_mtime_ns == mtime, "a re-sent step keeps the finished copy"

    target = tmp_path / "pool-b" / "vol.qcow2"
    assert fetch_disk(FetchDisk("r2", f"{url}/migrations/vm/vol.qcow2", str(target)))["size"]
    base.unlink()  # the copy needs no template: both patterns read back from it alone
    for pattern, offset in (("0x5a", "0"), ("0xa5", "4M")):
        done = subprocess.run(
            ["qemu-io", "-r", "-c", f"read -P {pattern} {offset} 1M", str(target)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "Pattern verification failed" not in done.stdout, done.stdout

    with pytest.raises(DriverError, match="leaves the store"):
        stage_disk(driver, StageDisk("r3", "i-9-9-VM", str(clone), url, "../escape.qcow2"))
    assert not (tmp_path / "escape.qcow2").exists()
    with pytest.raises(DriverError, match="not on this host"):
        stage_disk(driver, StageDisk("r4", "i-9-9-VM", str(tmp_path / "no.qcow2"), url, "x/y"))
    with pytest.raises(DriverError, match="not a qcow2"):
        (store / "plain").write_bytes(b"not a disk")
        fetch_disk(FetchDisk("r5", f"{url}/plain", str(tmp_path / "pool-b" / "bad.qcow2")))
    assert not list((tmp_path / "pool-b").glob("*bad*")), "nothing left of a refused copy"
