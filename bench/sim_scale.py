"""Orchestration at scale on the simulator: deploys per second and list latency.

Starts a real management server (fresh data directory; SQLite by default, or
``--database-url``), builds one zone through the signed API with ``--hosts`` simulated hosts
(addHost count=1000 per call), registers a template from a loopback HTTP server, then deploys
``--vms`` VMs as the root admin plus ``--user-vms`` for one ordinary user, with
``--clients`` concurrent API clients each submitting deployVirtualMachine and waiting for its
job. Prints:

- deploys per second (wall time from the first submit to the last job done);
- listVirtualMachines latency p50/p99 (pagesize 500, random pages) as the root admin and as
  the user (who sees only their own VMs);
- the server's resident memory.

The published anchor (cloudstack-api.md): one CloudStack management server at 25,000 hosts
answered listVirtualMachines in about 10 s on average. The goal on this machine: p99 under
200 ms with 100,000 VMs, and at least 100 deploys per second.

    .venv/bin/python bench/sim_scale.py --hosts 1000 --vms 10000
    .venv/bin/python bench/sim_scale.py --hosts 10000 --vms 100000
"""

from __future__ import annotations

import argparse
import configparser
import http.server
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from cumulo.api.cloudstack.signing import sign_params

IMAGE = b"QFI\xfb" + bytes(range(256)) * 64


class Api:
    def __init__(self, port: int, key: str, secret: str) -> None:
        self.url = f"http://127.0.0.1:{port}/client/api"
        self.key, self.secret = key, secret
        self.local = threading.local()

    def _client(self) -> httpx.Client:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=120)
        return client

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        args = {k: str(v) for k, v in params.items()}
        args.update({"command": command, "response": "json", "apiKey": self.key})
        args["signature"] = sign_params(self.secret, args)
        resp = self._client().get(self.url, params=args)
        body: dict[str, Any] = resp.json()
        inner: dict[str, Any] = next(iter(body.values()))
        if resp.status_code != 200:
            raise RuntimeError(f"{command}: {inner.get('errortext', resp.text)}")
        return inner

    def wait(self, jobid: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.2  # cs polls every 2 s; a tighter loop would mostly measure polling
        while time.monotonic() < deadline:
            job = self.call("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        raise RuntimeError(f"job {jobid} still running")


def serve_image(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    (root / "sim.qcow2").write_bytes(IMAGE)
    handler = type(
        "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/sim.qcow2"


def start_server(
    data_dir: Path, database_url: str, workers: int
) -> tuple[subprocess.Popen[bytes], int, Api]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUMULO_")}
    env.update(
        {
            "CUMULO_DATA_DIR": str(data_dir),
            "CUMULO_API__PORT": str(port),
            "CUMULO_DATABASE__URL": database_url,
            "CUMULO_LOG__LEVEL": "WARNING",
            "CUMULO_JOBS__WORKERS": str(workers),
            "CUMULO_JOBS__POLL_SECONDS": "0.1",
        }
    )
    subprocess.run(
        [sys.executable, "-m", "cumulo", "init"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cumulo", "server"],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise SystemExit("server did not start")
    ini = configparser.ConfigParser()
    ini.read(data_dir / "admin.ini")
    return proc, port, Api(port, ini["cloudstack"]["key"], ini["cloudstack"]["secret"])


def build_zone(api: Api, hosts: int, template_url: str, store: Path) -> dict[str, str]:
    zone = api.call(
        "createZone", name="bench", networktype="Advanced", dns1="10.0.0.1", internaldns1="10.0.0.2"
    )["zone"]
    pod = api.call("createPod", zoneid=zone["id"], name="pod1")["pod"]
    cluster = api.call(
        "addCluster", zoneid=zone["id"], podid=pod["id"], clustername="c1", hypervisor="Simulator"
    )["cluster"]
    cluster = cluster[0] if isinstance(cluster, list) else cluster
    began = time.monotonic()
    for batch in range((hosts + 999) // 1000):
        count = min(1000, hosts - batch * 1000)
        api.call(
            "addHost",
            zoneid=zone["id"],
            podid=pod["id"],
            clusterid=cluster["id"],
            hypervisor="Simulator",
            username="root",
            password="unused-pw",
            url=f"http://sim/c1/h{batch}?count={count}&cpunumber=32&cpuspeed=2000&memory=262144",
        )
    print(f"  {hosts} hosts added in {time.monotonic() - began:.1f} s")
    api.call(
        "createStoragePool",
        zoneid=zone["id"],
        podid=pod["id"],
        clusterid=cluster["id"],
        name="ps1",
        url="sim://ps1",
        scope="cluster",
        capacitybytes=10**18,
    )
    store.mkdir(parents=True, exist_ok=True)
    api.call(
        "addImageStore", name="dir", provider="Directory", zoneid=zone["id"], url=f"file://{store}"
    )
    template = api.call(
        "registerTemplate",
        name="sim",
        displaytext="sim",
        url=template_url,
        zoneid=zone["id"],
        format="QCOW2",
        hypervisor="Simulator",
        ispublic=True,
    )["template"][0]
    while not api.call("listTemplates", id=template["id"], templatefilter="all")["template"][0][
        "isready"
    ]:
        time.sleep(0.2)
    api.call("updateZone", id=zone["id"], allocationstate="Enabled")
    offering = api.call(
        "createServiceOffering",
        name="tiny",
        displaytext="tiny",
        cpunumber=1,
        cpuspeed=100,
        memory=256,
    )["serviceoffering"]
    return {"zone": zone["id"], "template": template["id"], "offering": offering["id"]}


def deploy_many(api: Api, ids: dict[str, str], count: int, clients: int, **extra: str) -> float:
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()
    began = time.monotonic()
    step = max(1, count // 20)  # a progress line every 5 %: a 100,000-VM run takes a while

    def one(_: int) -> None:
        sub = api.call(
            "deployVirtualMachine",
            zoneid=ids["zone"],
            templateid=ids["template"],
            serviceofferingid=ids["offering"],
            **extra,
        )
        job = api.wait(sub["jobid"])
        if job["jobstatus"] != 1:
            failures.append(str(job["jobresult"]))
        with lock:
            done[0] += 1
            if count >= 1000 and done[0] % step == 0:
                spent = time.monotonic() - began
                print(
                    f"    {done[0]}/{count} deployed, {done[0] / spent:.1f} per second",
                    flush=True,
                )

    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.monotonic() - began
    if failures:
        print(f"  {len(failures)} deploys failed, first: {failures[0]}")
    return elapsed


def latencies(api: Api, total: int, samples: int) -> tuple[float, float]:
    pages = max(1, (total + 499) // 500)
    times = []
    for _ in range(samples):
        page = random.randint(1, pages)
        began = time.perf_counter()
        body = api.call("listVirtualMachines", listall="true", pagesize=500, page=page)
        times.append((time.perf_counter() - began) * 1000)
        assert body.get("count", 0) >= min(total, 1)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU the server has used: per-operation cost that load does not skew."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--vms", type=int, default=10000)
    parser.add_argument("--user-vms", type=int, default=100)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cumulo-simscale-"))
    image_server, template_url = serve_image(work)
    proc, _, api = start_server(work / "data", args.database_url, args.workers)
    try:
        print(
            f"sim_scale: {args.hosts} hosts, {args.vms} VMs (+{args.user_vms} for one user), "
            f"{args.clients} clients, {args.workers} job workers, "
            f"{'PostgreSQL' if args.database_url else 'SQLite'}"
        )
        ids = build_zone(api, args.hosts, template_url, work / "store")
        cpu0 = cpu_seconds(proc.pid)
        elapsed = deploy_many(api, ids, args.vms, args.clients)
        cpu = (cpu_seconds(proc.pid) - cpu0) * 1000 / args.vms
        print(
            f"  deploys: {args.vms} in {elapsed:.1f} s = {args.vms / elapsed:.1f} per second "
            f"(server CPU {cpu:.1f} ms per deploy, submit + job + polls)"
        )
        domain = api.call("listDomains", name="ROOT")["domain"][0]["id"]
        user = api.call(
            "createAccount",
            accounttype=0,
            email="u@example.org",
            firstname="U",
            lastname="Ser",
            username="benchuser",
            password="Bench-pw-1",
            domainid=domain,
        )["account"]
        for rtype in (0, 2, 8, 9, 10):
            api.call(
                "updateResourceLimit",
                resourcetype=rtype,
                max=-1,
                account=user["name"],
                domainid=domain,
            )
        keys = api.call("registerUserKeys", id=user["user"][0]["id"])["userkeys"]
        user_api = Api(int(api.url.split(":")[2].split("/")[0]), keys["apikey"], keys["secretkey"])
        deploy_many(api, ids, args.user_vms, args.clients, account=user["name"], domainid=domain)
        total = args.vms + args.user_vms
        cpu0 = cpu_seconds(proc.pid)
        p50, p99 = latencies(api, total, args.samples)
        list_cpu = (cpu_seconds(proc.pid) - cpu0) * 1000 / args.samples
        print(
            f"  listVirtualMachines pagesize=500 as root admin over {total} VMs: "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (server CPU {list_cpu:.0f} ms per page)"
        )
        p50u, p99u = latencies(user_api, args.user_vms, args.samples)
        print(
            f"  listVirtualMachines as a user with {args.user_vms} VMs: "
            f"p50 {p50u:.0f} ms, p99 {p99u:.0f} ms"
        )
        print(f"  server RSS: {rss_mib(proc.pid):.0f} MiB")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        image_server.shutdown()
        if args.keep:
            print(f"  data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
