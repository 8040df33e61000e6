"""A whole simulated zone built through the API, ready for VMs: the fixture compute tests use.

Zone → pod → Simulator cluster → N simulated hosts of a chosen size → a cluster pool →
a Directory image store → a template registered from a loopback HTTP server and waited
Ready → the zone enabled → a small service offering. Every name is unique, so tests on the
shared server never collide.
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cloud import Cloud, Keys

IMAGE = b"QFI\xfb" + bytes(range(256)) * 256


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class SimZone:
    cloud: Cloud
    zone: dict[str, Any]
    pod: dict[str, Any]
    cluster: dict[str, Any]
    hosts: list[dict[str, Any]]
    pool: dict[str, Any]
    template: dict[str, Any]
    offering: dict[str, Any]

    def call(self, cmd: str, keys: Keys | None = None, **params: Any) -> dict[str, Any]:
        return self.cloud.call(cmd, keys, **params)

    def deploy(self, keys: Keys | None = None, **params: Any) -> dict[str, Any]:
        """Deploy and wait for the job; the job's result (use ``jobstatus``)."""
        args = {
            "zoneid": self.zone["id"],
            "templateid": self.template["id"],
            "serviceofferingid": self.offering["id"],
            **params,
        }
        submitted = self.cloud.call("deployVirtualMachine", keys, **args)
        return self.cloud.wait_job(submitted["jobid"], keys)

    def register_template(self, base_url: str, name: str = "sim.qcow2") -> dict[str, Any]:
        """A new public Simulator template in this zone, waited Ready."""
        return ready_template(self.cloud, self.zone, base_url, name)

    def vm(self, vm_id: str, keys: Keys | None = None) -> dict[str, Any]:
        found = self.cloud.call("listVirtualMachines", keys, id=vm_id, listall=True)
        items: list[dict[str, Any]] = found.get("virtualmachine", [])
        assert len(items) == 1, found
        return items[0]

    def capacity_used(self) -> dict[str, int]:
        """Used CPU MHz and memory bytes over this zone's hosts."""
        rows = self.cloud.call("listCapacity", zoneid=self.zone["id"]).get("capacity", [])
        return {str(r["type"]): int(r["capacityused"]) for r in rows}


@contextmanager
def http_files(files: dict[str, bytes], root: Path) -> Iterator[str]:
    for name, data in files.items():
        (root / name).write_bytes(data)
    handler = type(
        "Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def ready_template(cloud: Cloud, zone: dict[str, Any], base_url: str, name: str) -> dict[str, Any]:
    c = cloud.call
    template: dict[str, Any] = c(
        "registerTemplate",
        name=uniq("tmpl"),
        displaytext="sim template",
        url=f"{base_url}/{name}",
        zoneid=zone["id"],
        format="QCOW2",
        hypervisor="Simulator",
        ispublic=True,
        passwordenabled=True,
    )["template"][0]
    deadline = time.monotonic() + 20
    while not c("listTemplates", id=template["id"], templatefilter="all")["template"][0]["isready"]:
        assert time.monotonic() < deadline, "the simulator template never became ready"
        time.sleep(0.1)
    return template


def build(
    cloud: Cloud,
    work: Path,
    base_url: str,
    *,
    hosts: int = 2,
    cpus: int = 4,
    cpu_mhz: int = 1000,
    memory_mib: int = 4096,
    offering: dict[str, Any] | None = None,
) -> SimZone:
    c = cloud.call
    zone = c(
        "createZone",
        name=uniq("simz"),
        networktype="Advanced",
        dns1="8.8.8.8",
        internaldns1="10.0.0.2",
    )["zone"]
    pod = c("createPod", zoneid=zone["id"], name=uniq("pod"))["pod"]
    made = c(
        "addCluster",
        zoneid=zone["id"],
        podid=pod["id"],
        clustername=uniq("cl"),
        hypervisor="Simulator",
    )["cluster"]
    cluster = made[0] if isinstance(made, list) else made
    added = c(
        "addHost",
        zoneid=zone["id"],
        podid=pod["id"],
        clusterid=cluster["id"],
        hypervisor="Simulator",
        url=f"http://sim/{cluster['name']}/{uniq('h')}?count={hosts}&cpunumber={cpus}"
        f"&cpuspeed={cpu_mhz}&memory={memory_mib}",
        username="root",
        password="unused-pw",
    )["host"]
    pool = c(
        "createStoragePool",
        zoneid=zone["id"],
        podid=pod["id"],
        clusterid=cluster["id"],
        name=uniq("ps"),
        url=f"sim://{uniq('ps')}",
        scope="cluster",
    )["storagepool"]
    store = work / uniq("store")
    store.mkdir()
    c(
        "addImageStore",
        name=uniq("dir"),
        provider="Directory",
        zoneid=zone["id"],
        url=f"file://{store}",
    )
    template = ready_template(cloud, zone, base_url, "sim.qcow2")
    c("updateZone", id=zone["id"], allocationstate="Enabled")
    so = c(
        "createServiceOffering",
        name=uniq("so"),
        displaytext="small",
        **(offering or {"cpunumber": 1, "cpuspeed": 500, "memory": 512}),
    )["serviceoffering"]
    return SimZone(cloud, zone, pod, cluster, added, pool, template, so)
