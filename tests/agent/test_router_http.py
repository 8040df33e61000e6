"""The router's metadata and password services, read by cloud-init's own CloudStack datasource.

The datasource is Debian 12's ``cloud-init`` package, unpacked (``apt-get download`` +
``dpkg-deb -x``) rather than installed: installing it would put cloud-init's boot units and
generator on this machine. Its Python dependencies are plain Debian libraries
(scripts/apt-packages.txt) and it runs with the system ``python3`` inside a guest namespace,
finding the router through the name ``data-server`` (``/etc/netns/<ns>/hosts``, as the
router's dnsmasq answers it in production), fetching with its own ``url_helper`` and
``wget`` exactly as in a VM.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cumulo.agent.network import router_http
from cumulo.agentrpc.netconfig import RouterConfig, VmData
from tests.agent.routerns import Topology, curl, netns_run, router_topology, wait_listening

pytestmark = [
    pytest.mark.net,
    pytest.mark.skipif(shutil.which("wget") is None, reason="wget missing (cloud-init uses it)"),
]

SYSTEM_PYTHON = "/usr/bin/python3"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cumulo" / "debs"
USER_DATA = b"#cloud-config\nruncmd:\n - [echo, \xc3\xa9t\xc3\xa9]\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5 alice@example"

GUEST_SCRIPT = """\
import base64, json, sys
from cloudinit import helpers
from cloudinit.sources import DataSourceCloudStack as cs
tmp = sys.argv[1]
paths = helpers.Paths({"cloud_dir": tmp + "/cloud", "run_dir": tmp + "/run"})
sys_cfg = {"datasource": {"CloudStack": {"max_wait": 6, "timeout": 3}}}
ds = cs.DataSourceCloudStack(sys_cfg, None, paths)
out = {"vr": ds.vr_addr, "ok": bool(ds.get_data())}
if out["ok"]:
    raw = ds.get_userdata_raw()
    out.update(
        user_data=base64.b64encode(raw).decode() if raw else None,
        metadata=ds.metadata,
        config=ds.get_config_obj(),
        keys=ds.get_public_ssh_keys(),
        instance_id=ds.get_instance_id(),
        zone=ds.availability_zone,
    )
print(json.dumps(out))
"""


def _deb() -> Path | None:
    """Debian's cloud-init .deb: from apt's cache, our cache, or ``apt-get download``."""
    for folder in (Path("/var/cache/apt/archives"), CACHE):
        found = sorted(folder.glob("cloud-init_*_all.deb"))
        if found:
            return found[-1]
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["apt-get", "download", "cloud-init"], cwd=CACHE, capture_output=True, check=False
    )
    found = sorted(CACHE.glob("cloud-init_*_all.deb"))
    return found[-1] if done.returncode == 0 and found else None


@pytest.fixture(scope="session")
def cloudinit_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    deb = _deb()
    if deb is None:
        pytest.skip("cloud-init .deb unavailable (apt-get download cloud-init failed)")
    root = tmp_path_factory.mktemp("cloud-init")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    site = root / "usr/lib/python3/dist-packages"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "from cloudinit.sources import DataSourceCloudStack"],
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cloud-init's Python dependencies missing: {probe.stderr.strip()[-200:]}")
    return site


@dataclasses.dataclass
class Lab:
    topo: Topology
    data: Path
    site: Path
    hosts_dirs: list[Path]

    def vm(self, index: int, **changes: object) -> VmData:
        base = VmData(
            ip=self.topo.guest_ip(index),
            instance_id=f"i-2-{index}-VM",
            vm_id=f"00000000-0000-0000-0000-00000000000{index}",
            local_hostname=f"vm{index}",
            availability_zone="zone-a",
            service_offering="Small Instance",
            public_ipv4=None,
            public_keys=(),
            user_data=None,
            password=None,
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def write(self, *vms: VmData) -> str:
        return router_http.write_data(config(self.topo, vms), self.data)

    def guest(self, index: int) -> str:
        """A guest namespace whose /etc/hosts names the router ``data-server``."""
        ns = self.topo.add_guest(index)
        etc = Path("/etc/netns") / ns
        etc.mkdir(parents=True)
        self.hosts_dirs.append(etc)
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{self.topo.router_ip} data-server\n")
        return ns

    def cloud_init(self, ns: str) -> dict[str, Any]:
        work = self.topo.tmp / f"ci-{ns}-{time.monotonic_ns()}"
        work.mkdir()
        script = work / "guest.py"
        script.write_text(GUEST_SCRIPT)
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "env", f"PYTHONPATH={self.site}", SYSTEM_PYTHON,
             str(script), str(work)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result


def config(topo: Topology, vms: tuple[VmData, ...]) -> RouterConfig:
    return RouterConfig(
        network_id="net-md",
        generation=1,
        vni=None,
        bridge="rg0",
        cidr=topo.cidr,
        netmask="255.255.255.0",
        router_ip=topo.router_ip,
        domain="",
        dns_servers=(),
        services=("Dhcp", "Dns", "UserData"),
        source_nat_ip=None,
        public_ips=(),
        dhcp=(),
        vm_data=vms,
        port_forwards=(),
        static_nats=(),
        firewall=(),
        egress_default_allow=True,
        egress=(),
        load_balancers=(),
    )


@pytest.fixture
def lab(tmp_path: Path, cloudinit_site: Path) -> Iterator[Lab]:
    with router_topology(tmp_path, public=False) as topo:
        lab = Lab(topo, tmp_path / "router" / "vmdata.json", cloudinit_site, [])
        try:
            lab.write()
            topo.spawn(topo.router, *router_http.argv(lab.data, topo.router_ip))
            wait_listening(topo.router, topo.router_ip, 80)
            wait_listening(topo.router, topo.router_ip, 8080)
            yield lab
        finally:
            for etc in lab.hosts_dirs:
                shutil.rmtree(etc, ignore_errors=True)


def test_cloud_init_reads_user_data_key_and_password_once(lab: Lab) -> None:
    ns0 = lab.guest(0)
    ns1 = lab.guest(1)
    vm0 = lab.vm(0, user_data=USER_DATA, public_keys=(KEY,), password="s3cr3t-Pw",
                 public_ipv4="100.64.213.10")  # fmt: skip
    vm1 = lab.vm(1, user_data=b"#!/bin/sh\necho vm1\n", password="other-pw")
    assert lab.write(vm0, vm1) == "updated"
    assert lab.data.stat().st_mode & 0o777 == 0o600  # it holds passwords
    assert lab.write(vm0, vm1) == "unchanged"

    first = lab.cloud_init(ns0)
    assert first["ok"] and first["vr"] == lab.topo.router_ip
    assert base64.b64decode(first["user_data"]) == USER_DATA  # raw bytes, not base64
    assert first["keys"] == [KEY]
    assert first["instance_id"] == "i-2-0-VM" and first["zone"] == "zone-a"
    assert first["metadata"]["local-hostname"] == "vm0"
    assert first["metadata"]["public-ipv4"] == "100.64.213.10"
    assert first["config"] == {
        "ssh_pwauth": True,
        "password": "s3cr3t-Pw",
        "chpasswd": {"expire": False},
    }
    # the password is one-time: the datasource acknowledged it, a second boot gets none
    second = lab.cloud_init(ns0)
    assert second["ok"] and second["config"] == {}
    assert base64.b64decode(second["user_data"]) == USER_DATA  # the rest is still served

    # another guest sees its own data, and its own password, only
    other = lab.cloud_init(ns1)
    assert other["instance_id"] == "i-2-1-VM"
    assert base64.b64decode(other["user_data"]) == b"#!/bin/sh\necho vm1\n"
    assert other["keys"] == [] and "public-ipv4" not in other["metadata"]
    assert other["config"]["password"] == "other-pw"


def test_password_state_survives_restart_and_rerender_but_not_a_reset(lab: Lab) -> None:
    ns0 = lab.guest(0)
    lab.write(lab.vm(0, password="first"))
    assert _password(lab, ns0, "send_my_password") == "first"
    assert _password(lab, ns0, "saved_password") == "saved_password"
    assert _password(lab, ns0, "send_my_password") == "saved_password"
    # restart the service (the state lives beside the data file) and re-render the same row
    server = lab.topo.procs[-1]
    server.kill()
    server.wait()
    lab.topo.spawn(lab.topo.router, *router_http.argv(lab.data, lab.topo.router_ip))
    wait_listening(lab.topo.router, lab.topo.router_ip, 8080)
    lab.data.unlink()
    lab.write(lab.vm(0, password="first"))
    assert _password(lab, ns0, "send_my_password") == "saved_password"
    assert router_http.saved_path(lab.data).stat().st_mode & 0o777 == 0o600
    assert "first" not in router_http.saved_path(lab.data).read_text()
    # resetPasswordForVirtualMachine: a new password is served again, once
    lab.write(lab.vm(0, password="second"))
    assert _password(lab, ns0, "send_my_password") == "second"
    assert _password(lab, ns0, "bogus") is None  # 400 bad_request: wget fails
    # nothing was logged with a password in it
    stderr = b""
    for proc in lab.topo.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        stderr += proc.stderr.read() if proc.stderr else b""
    assert b"GET" in stderr and b"first" not in stderr and b"second" not in stderr


def test_unknown_address_gets_nothing(lab: Lab) -> None:
    lab.guest(0)
    stranger = lab.guest(7)
    lab.write(lab.vm(0, user_data=b"secret user data", password="pw0", public_keys=(KEY,)))
    result = lab.cloud_init(stranger)
    assert result == {"vr": lab.topo.router_ip, "ok": False}
    base = f"http://{lab.topo.router_ip}/latest"
    for path in ("meta-data/", "meta-data/instance-id", "user-data", "meta-data/public-keys"):
        assert curl(stranger, f"{base}/{path}") is None
    assert _password(lab, stranger, "send_my_password") == "saved_password"
    # the data file is replaced while the server runs: the next request sees the new guest
    lab.write(lab.vm(0), lab.vm(7, user_data=b"now known"))
    assert curl(stranger, f"{base}/user-data") == "now known"
    index = curl(stranger, f"{base}/meta-data/")
    assert index is not None and "instance-id" in index.split("\n")
    assert "public-keys" not in index.split("\n")  # nothing listed that would 404


def _password(lab: Lab, ns: str, request: str) -> str | None:
    done = netns_run(
        ns, "wget", "--quiet", "--tries", "1", "--timeout", "5", "-O", "-",
        "--header", f"DomU_Request: {request}", f"{lab.topo.router_ip}:8080",
    )  # fmt: skip
    return done.stdout.strip() if done.returncode == 0 else None


def test_apply_runs_the_service_detached_and_updates_it_in_place(tmp_path: Path) -> None:
    """The dataplane's entry point: ``apply`` starts the service once, then only rewrites data."""
    run_dir = tmp_path / "router"
    with router_topology(tmp_path, public=False) as topo:
        try:
            ns = topo.add_guest(0)
            vm = VmData(topo.guest_ip(0), "i-9-VM", "vm-9", "vm9", "z", "small", None, (),
                        b"first", None)  # fmt: skip
            assert router_http.apply(config(topo, (vm,)), topo.router, run_dir) == "started"
            pid = router_http.running_pid(run_dir)
            assert pid is not None
            assert router_http.apply(config(topo, (vm,)), topo.router, run_dir) == "unchanged"
            base = f"http://{topo.router_ip}/latest"
            assert curl(ns, f"{base}/user-data") == "first"
            vm = dataclasses.replace(vm, user_data=b"second")
            assert router_http.apply(config(topo, (vm,)), topo.router, run_dir) == "updated"
            assert router_http.running_pid(run_dir) == pid  # same process, new data
            assert curl(ns, f"{base}/user-data") == "second"
            router_http.stop(run_dir)
            assert router_http.running_pid(run_dir) is None
            assert curl(ns, f"{base}/user-data") is None
        finally:
            router_http.stop(run_dir)
