"""A virtual router between guest namespaces and an "internet" namespace, for the router tests.

Layout (all names carry a random suffix; nothing is created in the root namespace except
blackhole routes for the ranges used, added only if absent and removed only if added here):

    guest ns gN (10.213.S.5N) ─veth─┐
                                    rg0 (bridge in the router ns, 10.213.S.1 = router_ip)
                                router ns ── rp0 (PUBLIC_IPS) ─veth─ eth0 in the internet
                                                                     ns (100.64.213.1, .200)

The router ns has no default route; guests route via the router, the internet ns only has
its on-link /24, so no packet can leave the machine. ``close`` kills every process started
through ``spawn`` and deletes the namespaces (which takes the veths, bridge and nft tables
with them), even when the test failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

GUEST_RANGE = "10.213.0.0/16"
PUBLIC_RANGE = "100.64.213.0/24"
INTERNET_IP = "100.64.213.1"
INTERNET_IP2 = "100.64.213.200"
PUBLIC_IPS = ("100.64.213.10", "100.64.213.11", "100.64.213.12")

ECHO = """\
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
name, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{name} {self.client_address[0]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer((ip, port), H).serve_forever()
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def netns_run(ns: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Topology:
    suffix: str
    subnet: int
    tmp: Path
    guests: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def router(self) -> str:
        return f"rr{self.suffix}"

    @property
    def internet(self) -> str:
        return f"ri{self.suffix}"

    @property
    def cidr(self) -> str:
        return f"10.213.{self.subnet}.0/24"

    @property
    def router_ip(self) -> str:
        return f"10.213.{self.subnet}.1"

    def guest_ip(self, index: int) -> str:
        return f"10.213.{self.subnet}.{50 + index}"

    def guest(self, index: int) -> str:
        return f"rg{self.suffix}{index}"

    def add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def add_guest(self, index: int, address: str | None = None) -> str:
        """A guest namespace on the router's bridge with a default route via the router."""
        ns = self.guest(index)
        self.add_namespace(ns)
        leg = f"rv{self.suffix}{index}"
        ip(
            "link",
            "add",
            leg,
            "netns",
            self.router,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        )
        ip("-n", self.router, "link", "set", leg, "master", "rg0", "up")
        ip("-n", ns, "addr", "add", f"{address or self.guest_ip(index)}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "route", "add", "default", "via", self.router_ip)
        self.guests.append(ns)
        return ns

    def spawn(self, ns: str, *argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def echo_server(self, ns: str, name: str, bind: str, port: int) -> subprocess.Popen[bytes]:
        """An HTTP server answering ``"<name> <client ip>"``, waited for until it listens."""
        script = self.tmp / "echo.py"
        if not script.exists():
            script.write_text(ECHO)
        proc = self.spawn(ns, sys.executable, str(script), name, bind, str(port))
        wait_listening(ns, bind, port)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def wait_listening(ns: str, bind: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = netns_run(ns, "ss", "-Htln", f"src {bind}:{port}").stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {bind}:{port} in {ns}")


def curl(ns: str, url: str, *, source: str | None = None, timeout: float = 2) -> str | None:
    """GET ``url`` from inside ``ns``: the body, or None when it failed (or was refused)."""
    argv = ["curl", "-sf", "--max-time", str(timeout)]
    if source:
        argv += ["--interface", source]
    done = netns_run(ns, *argv, url, timeout=timeout + 10)
    return done.stdout if done.returncode == 0 else None


@contextmanager
def blackholes() -> Iterator[None]:
    """Blackhole the test ranges in the root namespace (only if nobody did already)."""
    added = []
    existing = subprocess.run(
        ["ip", "route", "show", "type", "blackhole"], capture_output=True, text=True, check=False
    ).stdout.split()
    for prefix in (GUEST_RANGE, PUBLIC_RANGE):
        if prefix not in existing:
            done = subprocess.run(["ip", "route", "add", "blackhole", prefix], check=False)
            if done.returncode == 0:
                added.append(prefix)
    try:
        yield
    finally:
        for prefix in added:
            subprocess.run(["ip", "route", "del", "blackhole", prefix], check=False)


@contextmanager
def router_topology(tmp: Path, *, public: bool = True) -> Iterator[Topology]:
    """Router + internet namespaces (guests are added by the test)."""
    suffix = uuid.uuid4().hex[:5]
    topo = Topology(suffix, int(uuid.uuid4().int % 250) + 1, tmp)
    with blackholes():
        try:
            topo.add_namespace(topo.router)
            ip("-n", topo.router, "link", "add", "rg0", "type", "bridge")
            ip("-n", topo.router, "addr", "add", f"{topo.router_ip}/24", "dev", "rg0")
            ip("-n", topo.router, "link", "set", "rg0", "up")
            netns_run(topo.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            if public:
                _internet(topo)
            yield topo
        finally:
            topo.close()


def _internet(topo: Topology) -> None:
    topo.add_namespace(topo.internet)
    ip("link", "add", "rp0", "netns", topo.router, "type", "veth", "peer", "name", "eth0", "netns",
       topo.internet)  # fmt: skip
    for address in PUBLIC_IPS:
        ip("-n", topo.router, "addr", "add", f"{address}/24", "dev", "rp0")
    ip("-n", topo.router, "link", "set", "rp0", "up")
    for address in (INTERNET_IP, INTERNET_IP2):
        ip("-n", topo.internet, "addr", "add", f"{address}/24", "dev", "eth0")
    ip("-n", topo.internet, "link", "set", "eth0", "up")
