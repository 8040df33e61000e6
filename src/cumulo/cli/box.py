"""``cumulo up``: the whole cloud on one box, as a small supervisor of its processes.

It runs the management server, the S3 service and, when QEMU is installed, a local KVM
host: it builds the tiny guest image, describes a zone ``box`` through the public API
(zone, pod, KVM cluster, this machine as a host with its token, a Directory image store in
the data directory, the tiny template, a small offering), and starts ``cumulo agent`` with a
local pool. Everything is idempotent: a second ``cumulo up`` on the same data directory
finds the zone and reuses it. A child that dies is started again; SIGTERM/SIGINT stop them
all (VMs keep running: the next agent re-adopts them, as after any agent restart).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cumulo.cli.client import ApiError, Client, load_credentials
from cumulo.common.settings import Settings

ZONE = "box"
RESTART_DELAY = 2.0


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self, env: dict[str, str]) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=out, stderr=out)
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Box:
    settings: Settings
    children: list[Child] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def logs(self) -> Path:
        path = self.settings.data_dir / "logs"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def spawn(self, name: str, *args: str) -> Child:
        child = Child(name, [sys.executable, "-m", "cumulo", *args], self.logs / f"{name}.log")
        child.start(dict(os.environ))
        self.children.append(child)
        return child

    def supervise(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        while not self.stopping.wait(1.0):
            for child in self.children:
                if not child.alive() and not self.stopping.is_set():
                    code = child.proc.returncode if child.proc else None
                    print(f"cumulo up: {child.name} exited ({code}); restarting", flush=True)
                    time.sleep(RESTART_DELAY)
                    child.start(dict(os.environ))
        for child in reversed(self.children):
            child.stop()
        return 0


def _wait_live(url: str, child: Child, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise SystemExit(f"cumulo up: {child.name} failed to start; see {child.log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.2)
    raise SystemExit(f"cumulo up: {child.name} did not answer at {url}; see {child.log}")


@contextlib.contextmanager
def _serve_dir(root: Path) -> Iterator[str]:
    """A loopback HTTP server for the built images while they are registered."""
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


def _one(items: Any) -> dict[str, Any]:
    found: dict[str, Any] = items[0] if isinstance(items, list) else items
    return found


class BoxZone:
    """The zone ``box`` described through the public API, created only where missing."""

    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings, self.c = settings, client

    def _find(self, cmd: str, key: str, **params: Any) -> dict[str, Any] | None:
        items = self.c.call(cmd, **params).get(key, [])
        return items[0] if items else None

    def ensure(self) -> tuple[dict[str, Any], str | None]:
        """The zone and, for a host added just now, its agent token."""
        zone = self._find("listZones", "zone", name=ZONE)
        if zone is None:
            zone = self.c.call(
                "createZone",
                name=ZONE,
                networktype="Advanced",
                dns1="10.0.0.1",
                internaldns1="10.0.0.2",
            )["zone"]
        pod = (
            self._find("listPods", "pod", zoneid=zone["id"])
            or self.c.call("createPod", zoneid=zone["id"], name="box-pod")["pod"]
        )
        cluster = self._find("listClusters", "cluster", zoneid=zone["id"]) or _one(
            self.c.call(
                "addCluster",
                zoneid=zone["id"],
                podid=pod["id"],
                clustername="box-kvm",
                hypervisor="KVM",
            )["cluster"]
        )
        token = None
        if self._find("listHosts", "host", zoneid=zone["id"], type="Routing") is None:
            host = _one(
                self.c.call(
                    "addHost",
                    zoneid=zone["id"],
                    podid=pod["id"],
                    clusterid=cluster["id"],
                    hypervisor="KVM",
                    url="http://127.0.0.1",
                    username="root",
                    password="unused-pw",
                )["host"]
            )
            token = str(host["agenttoken"])
        if self._find("listImageStores", "imagestore", zoneid=zone["id"]) is None:
            store = self.settings.data_dir / "secondary"
            store.mkdir(mode=0o700, exist_ok=True)
            self.c.call(
                "addImageStore",
                name="box-secondary",
                provider="Directory",
                zoneid=zone["id"],
                url=f"file://{store}",
            )
        return zone, token

    def template(self, zone: dict[str, Any], name: str, disk: Path, sha256: str) -> None:
        """Register a built image once and wait until it is Ready."""
        found = self.c.call("listTemplates", templatefilter="all", name=name).get("template", [])
        if any(t["zoneid"] == zone["id"] for t in found):
            return
        with _serve_dir(disk.parent) as base:
            made = self.c.call(
                "registerTemplate",
                name=name,
                displaytext=name,
                url=f"{base}/{disk.name}",
                zoneid=zone["id"],
                format="QCOW2",
                hypervisor="KVM",
                ispublic=True,
                isfeatured=True,
                checksum=f"{{SHA-256}}{sha256}",
            )["template"][0]
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                now = self.c.call("listTemplates", templatefilter="all", id=made["id"])
                item = now["template"][0]
                if item["isready"]:
                    return
                if "rror" in str(item.get("status", "")):
                    raise SystemExit(f"cumulo up: template {name}: {item['status']}")
                time.sleep(0.5)

    def enable(self, zone: dict[str, Any]) -> None:
        if zone.get("allocationstate") != "Enabled":
            self.c.call("updateZone", id=zone["id"], allocationstate="Enabled")
        for name, memory in BOX_OFFERINGS:
            if not self.c.call("listServiceOfferings", name=name).get("serviceoffering"):
                self.c.call(
                    "createServiceOffering",
                    name=name,
                    displaytext=f"1 vCPU, {memory} MiB",
                    cpunumber=1,
                    cpuspeed=500,
                    memory=memory,
                )


# The tiny guest runs in 128 MiB; Debian 12's kernel cannot even unpack its initramfs in that
# ("System is deadlocked on memory"), so its template needs box-medium.
BOX_OFFERINGS = (("box-small", 128), ("box-medium", 512))


def _token_file(settings: Settings) -> Path:
    return settings.data_dir / "agent" / "token"


def _save_token(settings: Settings, token: str) -> Path:
    path = _token_file(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path


def _start_vms(box: Box, client: Client) -> None:
    """Tiny image, the box zone, and a local agent with a pool in the data directory."""
    from cumulo.agent.images.tiny import build_tiny

    settings = box.settings
    image = build_tiny(settings.data_dir / "images")
    zone_api = BoxZone(settings, client)
    zone, token = zone_api.ensure()
    if token is not None:
        _save_token(settings, token)
    elif not _token_file(settings).exists():
        print("cumulo up: the box host has no token file; run cumulo agent --issue-token")
        return
    agent_dir = settings.data_dir / "agent"
    pool = settings.data_dir / "pool"
    pool.mkdir(mode=0o700, exist_ok=True)
    box.spawn(
        "agent",
        "agent",
        "--server",
        f"http://{settings.api.host}:{settings.api.port}",
        "--token-file",
        str(_token_file(settings)),
        "--driver",
        "qemu",
        "--state-dir",
        str(agent_dir / "state"),
        "--pool",
        str(pool),
    )
    zone_api.template(zone, "tiny", image.disk, image.sha256)
    zone_api.enable(zone)
    print(f"Box zone:        {ZONE} (KVM host on this machine, template 'tiny')", flush=True)
    if settings.box.debian:
        # Minutes of debootstrap: the cloud is usable meanwhile; the template appears later.
        threading.Thread(
            target=_add_debian, args=(settings, zone_api, zone), name="box-debian", daemon=True
        ).start()


def _add_debian(settings: Settings, zone_api: BoxZone, zone: dict[str, Any]) -> None:
    from cumulo.agent.images.debian import build_debian

    try:
        debian = build_debian(settings.data_dir / "images")
        zone_api.template(zone, "debian-12", debian.disk, debian.sha256)
    except Exception as err:  # the box runs on without it; say why
        print(f"cumulo up: the Debian template was not built: {err}", flush=True)
        return
    print("Box template:    debian-12 (cloud-init, SSH; offering box-medium)", flush=True)


def run(settings: Settings) -> int:
    box = Box(settings)
    server = box.spawn("server", "server")
    api = f"http://{settings.api.host}:{settings.api.port}"
    _wait_live(f"{api}/livez", server)
    if settings.box.s3:
        s3 = box.spawn("s3", "s3")
        _wait_live(f"http://{settings.s3.host}:{settings.s3.port}/", s3)
        print(f"S3 endpoint:     http://{settings.s3.host}:{settings.s3.port}", flush=True)
    if settings.box.vms:
        if shutil.which("qemu-system-x86_64") is None:
            print("cumulo up: qemu-system-x86_64 is not installed: no local VM host", flush=True)
        else:
            try:
                client = Client(load_credentials(settings.data_dir / "admin.ini"))
                _start_vms(box, client)
            except (ApiError, OSError) as err:
                print(f"cumulo up: the local VM host is not ready: {err}", flush=True)
    print("Cumulo is up. Ctrl-C stops it.", flush=True)
    return box.supervise()
