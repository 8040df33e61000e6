"""A KVM host joins through a real ``cumulo agent --driver sim`` process.

The server is this module's own (short heartbeat timeouts are set through
updateConfiguration), so host states change within seconds and no other test's hosts are
touched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cloud import Cloud, free_port, make_cloud

MIB = 1 << 20


@pytest.fixture(scope="module")
def kcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = make_cloud(tmp_path_factory.mktemp("agent-cloud"))
    c.start()
    try:
        for name, value in (
            ("ping.interval", "1"),
            ("ping.timeout", "2"),
            ("agent.down.timeout", "5"),
        ):
            c.call("updateConfiguration", name=name, value=value)
        yield c
    finally:
        c.stop()


@dataclass
class Site:
    zone: str
    pod: str
    cluster: str


@pytest.fixture(scope="module")
def site(kcloud: Cloud) -> Site:
    tag = uuid.uuid4().hex[:6]
    zone = kcloud.call(
        "createZone",
        name=f"z-{tag}",
        networktype="Advanced",
        dns1="8.8.8.8",
        internaldns1="10.0.0.2",
    )["zone"]
    pod = kcloud.call("createPod", zoneid=zone["id"], name=f"p-{tag}")["pod"]
    cluster = kcloud.call(
        "addCluster", zoneid=zone["id"], podid=pod["id"], clustername=f"c-{tag}", hypervisor="KVM"
    )["cluster"]
    cluster = cluster[0] if isinstance(cluster, list) else cluster
    return Site(zone["id"], pod["id"], cluster["id"])


def add_kvm_host(cloud: Cloud, site: Site, address: str) -> dict[str, Any]:
    body = cloud.call(
        "addHost",
        zoneid=site.zone,
        podid=site.pod,
        clusterid=site.cluster,
        hypervisor="KVM",
        url=f"http://{address}",
        username="root",
        password="unused",
    )
    assert body["count"] == 1
    host: dict[str, Any] = body["host"][0]
    return host


def get_host(cloud: Cloud, host_id: str) -> dict[str, Any]:
    (host,) = cloud.call("listHosts", id=host_id)["host"]
    return dict(host)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def wait_state(cloud: Cloud, host_id: str, state: str, timeout: float) -> float:
    """Seconds it took the host to reach ``state``."""
    start = time.monotonic()
    wait_for(lambda: get_host(cloud, host_id)["state"] == state, timeout, f"host {state}")
    return time.monotonic() - start


class AgentProc:
    """A ``cumulo agent`` subprocess with its own state directory and log."""

    def __init__(self, cloud: Cloud, tmp: Path, token: str, *extra: str) -> None:
        self.dir = tmp / f"agent-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir()
        token_file = self.dir / "token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        self.log = self.dir / "agent.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
        env.update({"CUMULO_DATA_DIR": str(self.dir), "CUMULO_LOG__FORMAT": "json"})
        self.argv = [
            sys.executable,
            "-m",
            "cumulo",
            "agent",
            "--server",
            f"http://127.0.0.1:{cloud.port}",
            "--token-file",
            str(token_file),
            "--driver",
            "sim",
            "--state-dir",
            str(self.dir / "state"),
            "--poll-seconds",
            "0.5",
            *extra,
        ]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProc:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=log, start_new_session=True
            )
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[AgentProc]]:
    started: list[AgentProc] = []
    yield started
    for agent in started:
        agent.stop()


def start_agent(
    agents: list[AgentProc], cloud: Cloud, tmp: Path, token: str, *extra: str
) -> AgentProc:
    agent = AgentProc(cloud, tmp, token, *extra).start()
    agents.append(agent)
    return agent


def test_kvm_host_joins_with_its_token(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    host = add_kvm_host(kcloud, site, "10.77.0.11")
    token = host["agenttoken"]
    assert host["state"] == "Connecting" and host["hypervisor"] == "KVM"
    assert token.startswith(host["id"] + ".") and len(token) > 60
    assert "agenttoken" not in get_host(kcloud, host["id"])  # shown once, never listed
    start_agent(
        agents, kcloud, tmp_path, token, "--sim-cpus", "4", "--sim-cpu-mhz", "2000",
        "--sim-memory-mib", "3072",
    )  # fmt: skip
    wait_state(kcloud, host["id"], "Up", 20)
    listed = get_host(kcloud, host["id"])
    assert (listed["cpunumber"], listed["cpuspeed"], listed["memorytotal"]) == (4, 2000, 3072 * MIB)
    assert listed["cpuwithoverprovisioning"] == "8000.0"
    assert listed["lastpinged"] is not None
    caps = kcloud.call("listCapacity", zoneid=site.zone)["capacity"]
    cpu = [c for c in caps if c["type"] == 1]
    assert cpu and cpu[0]["capacitytotal"] >= 8000


def test_a_qemu_host_registers_its_real_size_and_accelerator(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    """The qemu driver, chosen by name and imported only then; ``--accelerator`` skips the
    probe boot (which the driver's own tests cover)."""
    host = add_kvm_host(kcloud, site, "10.77.0.18")
    agent = AgentProc(kcloud, tmp_path, host["agenttoken"], "--accelerator", "tcg")
    agent.argv[agent.argv.index("--driver") + 1] = "qemu"
    agent.argv += ["--pool", str(tmp_path / "pool")]
    agents.append(agent.start())
    wait_state(kcloud, host["id"], "Up", 30)
    listed = get_host(kcloud, host["id"])
    assert listed["cpunumber"] == os.cpu_count()
    assert listed["details"] == {"accelerator": "tcg"}
    assert listed["memorytotal"] > 0 and listed["hypervisorversion"]


def test_bad_token_is_refused_and_nothing_registered(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    host = add_kvm_host(kcloud, site, "10.77.0.12")
    forged = host["id"] + ".not-the-secret"
    for bad in (forged, "garbage"):
        agent = start_agent(agents, kcloud, tmp_path, bad)
        assert agent.proc is not None
        assert agent.proc.wait(20) == 2
        assert "refused" in agent.log.read_text()
    listed = get_host(kcloud, host["id"])
    assert (listed["state"], listed["cpunumber"], listed["memorytotal"]) == ("Connecting", 0, 0)
    assert "lastpinged" not in listed  # never heard from


def test_killed_agent_goes_disconnected_then_down_and_restart_brings_it_up(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    host = add_kvm_host(kcloud, site, "10.77.0.13")
    agent = start_agent(agents, kcloud, tmp_path, host["agenttoken"])
    wait_state(kcloud, host["id"], "Up", 20)
    agent.kill9()
    # ping.interval 1 s x ping.timeout 2 (and the closed socket is noticed at once).
    assert wait_state(kcloud, host["id"], "Disconnected", 6) < 6
    # agent.down.timeout 5 s after the last heartbeat.
    assert wait_state(kcloud, host["id"], "Down", 10) < 10
    start_agent(agents, kcloud, tmp_path, host["agenttoken"])
    wait_state(kcloud, host["id"], "Up", 20)


def test_an_agent_that_stops_heartbeating_is_disconnected(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    """SIGSTOP keeps the socket open: only the missed heartbeats tell."""
    host = add_kvm_host(kcloud, site, "10.77.0.14")
    agent = start_agent(agents, kcloud, tmp_path, host["agenttoken"])
    wait_state(kcloud, host["id"], "Up", 20)
    assert agent.proc is not None
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        assert wait_state(kcloud, host["id"], "Disconnected", 8) >= 1
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    wait_state(kcloud, host["id"], "Up", 10)


def test_kvm_url_must_name_an_address(kcloud: Cloud, site: Site) -> None:
    before = kcloud.call("listHosts", clusterid=site.cluster).get("count", 0)
    resp = kcloud.signed(
        "addHost",
        zoneid=site.zone,
        podid=site.pod,
        clusterid=site.cluster,
        hypervisor="KVM",
        url="not-a-url",
    )
    assert resp.status_code == 431
    assert kcloud.call("listHosts", clusterid=site.cluster).get("count", 0) == before


def test_a_lost_token_is_replaced_and_the_old_one_stops_working(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    host = add_kvm_host(kcloud, site, "10.77.0.15")
    new_file = tmp_path / "new-token"
    done = subprocess.run(
        [sys.executable, "-m", "cumulo", "agent", "--issue-token", host["id"],
         "--token-file", str(new_file)],
        env=kcloud.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    new_token = new_file.read_text().strip()
    assert new_token != host["agenttoken"] and new_token not in done.stdout
    assert new_file.stat().st_mode & 0o777 == 0o600
    old = start_agent(agents, kcloud, tmp_path, host["agenttoken"])
    assert old.proc is not None and old.proc.wait(20) == 2
    assert get_host(kcloud, host["id"])["state"] == "Connecting"
    start_agent(agents, kcloud, tmp_path, new_token)
    wait_state(kcloud, host["id"], "Up", 20)
    missing = subprocess.run(
        [sys.executable, "-m", "cumulo", "agent", "--issue-token", str(uuid.uuid4())],
        env=kcloud.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 1 and "Unable to find" in missing.stderr


def test_deleting_a_host_sends_its_agent_away(
    kcloud: Cloud, site: Site, agents: list[AgentProc], tmp_path: Path
) -> None:
    host = add_kvm_host(kcloud, site, "10.77.0.16")
    agent = start_agent(agents, kcloud, tmp_path, host["agenttoken"])
    wait_state(kcloud, host["id"], "Up", 20)
    assert kcloud.call("deleteHost", id=host["id"], forced="true")["success"] is True
    assert agent.proc is not None and agent.proc.wait(20) == 2  # its token is refused now
    assert kcloud.call("listHosts", id=host["id"]).get("count", 0) == 0


@dataclass
class KvmZone:
    zone: dict[str, Any]
    host: dict[str, Any]
    template: dict[str, Any]
    offering: dict[str, Any]

    def deploy(self, cloud: Cloud) -> dict[str, Any]:
        job = cloud.call(
            "deployVirtualMachine",
            zoneid=self.zone["id"],
            templateid=self.template["id"],
            serviceofferingid=self.offering["id"],
        )
        return cloud.wait_job(job["jobid"], timeout=60)


def kvm_zone(
    cloud: Cloud, agents: list[AgentProc], tmp_path: Path, address: str, *agent_args: str
) -> KvmZone:
    """A zone ready for VMs whose one host is KVM, served by a ``--driver sim`` agent."""
    from tests.support.simzone import http_files, uniq

    zone = cloud.call(
        "createZone",
        name=uniq("kz"),
        networktype="Advanced",
        dns1="8.8.8.8",
        internaldns1="10.0.0.2",
    )["zone"]
    pod = cloud.call("createPod", zoneid=zone["id"], name=uniq("kp"))["pod"]
    made = cloud.call(
        "addCluster", zoneid=zone["id"], podid=pod["id"], clustername=uniq("kc"), hypervisor="KVM"
    )["cluster"]
    cluster = made[0] if isinstance(made, list) else made
    host = add_kvm_host(cloud, Site(zone["id"], pod["id"], cluster["id"]), address)
    start_agent(agents, cloud, tmp_path, host["agenttoken"], "--sim-cpus", "2", *agent_args)
    wait_state(cloud, host["id"], "Up", 20)
    cloud.call(
        "createStoragePool",
        zoneid=zone["id"],
        podid=pod["id"],
        clusterid=cluster["id"],
        name=uniq("kps"),
        url=f"sim://{uniq('kps')}",
        scope="cluster",
    )
    store = tmp_path / uniq("store")
    store.mkdir()
    cloud.call(
        "addImageStore",
        name=uniq("d"),
        provider="Directory",
        zoneid=zone["id"],
        url=f"file://{store}",
    )
    files = tmp_path / uniq("files")
    files.mkdir()
    with http_files({"k.qcow2": b"QFI\xfb" + bytes(4096)}, files) as base:
        template = cloud.call(
            "registerTemplate",
            name=uniq("kt"),
            displaytext="kvm",
            url=f"{base}/k.qcow2",
            zoneid=zone["id"],
            format="QCOW2",
            hypervisor="KVM",
            ispublic=True,
        )["template"][0]
        wait_for(
            lambda: cloud.call("listTemplates", id=template["id"], templatefilter="all")[
                "template"
            ][0]["isready"],
            20,
            "template ready",
        )
    cloud.call("updateZone", id=zone["id"], allocationstate="Enabled")
    offering = cloud.call(
        "createServiceOffering",
        name=uniq("so"),
        displaytext="s",
        cpunumber=1,
        cpuspeed=500,
        memory=256,
    )["serviceoffering"]
    return KvmZone(zone, host, template, offering)


def test_a_vm_deployed_on_a_kvm_host_runs_through_its_agent(
    kcloud: Cloud, agents: list[AgentProc], tmp_path: Path
) -> None:
    """The whole path: deploy job -> hub -> KVM transport -> WebSocket -> agent -> driver;
    stop likewise; and the agent's power reports land in host_vm_reports."""
    kz = kvm_zone(kcloud, agents, tmp_path, "10.77.0.17")
    host = kz.host
    result = kz.deploy(kcloud)
    assert result["jobstatus"] == 1, result
    vm = result["jobresult"]["virtualmachine"]
    assert vm["state"] == "Running" and vm["hostid"] == host["id"]
    name = vm["instancename"]
    wait_for(lambda: reported(kcloud, host["id"]).get(name) == "Running", 10, "Running report")
    stopped = kcloud.wait_job(kcloud.call("stopVirtualMachine", id=vm["id"])["jobid"], timeout=60)
    assert stopped["jobstatus"] == 1, stopped
    assert stopped["jobresult"]["virtualmachine"]["state"] == "Stopped"
    wait_for(lambda: reported(kcloud, host["id"]).get(name) == "Stopped", 10, "Stopped report")


def relayed(cloud: Cloud, host_id: str) -> list[tuple[str, str]]:
    """(kind, state) of the commands relayed through the database for one host."""
    with sqlite3.connect(f"file:{cloud.data_dir / 'cumulo.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT c.kind, c.state FROM agent_commands c "
            "JOIN hosts h ON h.id = c.host_id WHERE h.uuid = ? ORDER BY c.id",
            (host_id,),
        ).fetchall()
    return [(str(k), str(st)) for k, st in rows]


def test_a_job_on_another_server_reaches_the_agent_through_the_relay(
    agents: list[AgentProc], tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Farm mode with two real servers on one database: the agent is connected to A, whose
    job workers are off, so B runs the deploy job and its commands go through
    agent_commands to A and on to the agent."""
    a = make_cloud(tmp_path_factory.mktemp("farm"), CUMULO_JOBS__WORKERS="0")
    b = replace(a, port=free_port(), proc=None)
    b.env = {**a.env, "CUMULO_API__PORT": str(b.port), "CUMULO_JOBS__WORKERS": "2"}
    a.start()
    try:
        b.start()
        kz = kvm_zone(a, agents, tmp_path, "10.77.0.19")
        result = kz.deploy(a)
        assert result["jobstatus"] == 1, result
        assert result["jobresult"]["virtualmachine"]["state"] == "Running"
        commands = relayed(a, kz.host["id"])
        assert ("StartCommand", "Done") in commands
        assert {state for _, state in commands} == {"Done"}
    finally:
        b.stop()
        a.stop()


def reported(cloud: Cloud, host_id: str) -> dict[str, str]:
    """host_vm_reports of one host, read straight from the server's SQLite database (the
    orchestration's input; no API shows it)."""
    with sqlite3.connect(f"file:{cloud.data_dir / 'cumulo.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT r.vm_name, r.power_state FROM host_vm_reports r "
            "JOIN hosts h ON h.id = r.host_id WHERE h.uuid = ?",
            (host_id,),
        ).fetchall()
    return {str(n): str(p) for n, p in rows}


@dataclass
class NetCloud(Cloud):
    """A server bound to one private address (the root end of a veth pair), not loopback."""

    address: str = ""

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}:{self.port}/client/api"

    def start(self) -> None:
        self.log_path = self.data_dir / f"server-{time.time_ns()}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cumulo", "server"],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_for(lambda: self._live(), 30, "server on the veth address")

    def _live(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://{self.address}:{self.port}/livez", timeout=1).is_success
        except httpx.HTTPError:
            return False


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture
def host_netns() -> Iterator[tuple[str, str, str]]:
    """A namespace standing for a KVM host, joined to the root namespace by a veth pair on a
    /30 of our own; no default route inside, so nothing it sends can leave the machine."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create network namespaces")
    tag = uuid.uuid4().hex[:6]
    ns, outer, inner = f"cmag-{tag}", f"cma{tag}o", f"cma{tag}i"
    octet = int(tag[:2], 16)
    server_ip, host_ip = f"10.231.{octet}.1", f"10.231.{octet}.2"
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "addr", "add", f"{server_ip}/30", "dev", outer)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "-n", ns, "addr", "add", f"{host_ip}/30", "dev", inner)
        sh("ip", "-n", ns, "link", "set", inner, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield ns, server_ip, host_ip
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=30)


@pytest.mark.net
def test_an_agent_in_a_host_namespace_joins_over_a_veth(
    host_netns: tuple[str, str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    ns, server_ip, host_ip = host_netns
    base = make_cloud(tmp_path_factory.mktemp("ns-cloud"), CUMULO_API__HOST=server_ip)
    cloud = NetCloud(**{f.name: getattr(base, f.name) for f in fields(Cloud)}, address=server_ip)
    cloud.start()
    agent: AgentProc | None = None
    try:
        zone = cloud.call(
            "createZone",
            name="nsz",
            networktype="Advanced",
            dns1="8.8.8.8",
            internaldns1="10.0.0.2",
        )["zone"]
        pod = cloud.call("createPod", zoneid=zone["id"], name="nsp")["pod"]
        cluster = cloud.call(
            "addCluster", zoneid=zone["id"], podid=pod["id"], clustername="nsc", hypervisor="KVM"
        )["cluster"]
        cluster = cluster[0] if isinstance(cluster, list) else cluster
        host = add_kvm_host(cloud, Site(zone["id"], pod["id"], cluster["id"]), host_ip)
        agent = AgentProc(cloud, tmp_path_factory.mktemp("ns-agent"), host["agenttoken"])
        agent.argv[agent.argv.index("--server") + 1] = f"http://{server_ip}:{cloud.port}"
        agent.argv[:0] = ["ip", "netns", "exec", ns]
        agent.start()
        wait_state(cloud, host["id"], "Up", 30)
        assert get_host(cloud, host["id"])["ipaddress"] == host_ip
        agent.kill9()
        wait_state(cloud, host["id"], "Disconnected", 15)
    finally:
        if agent is not None:
            agent.stop()
        cloud.stop()
