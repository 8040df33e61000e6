"""A guest network's virtual router as a network namespace on a host (not a VM).

The namespace ``cr-<network uuid>`` holds two veth legs: ``eth0`` in the guest bridge with
the router address (the gateway, DHCP server and "data-server"), and, when the network has
public addresses, ``eth1`` in the host's public bridge holding them with a default route to
the public gateway. Inside it run dnsmasq (fixed reservations only: the cloud allocates the
addresses; DNS for the VMs' names under the network domain; upstream resolvers) and an
nftables table ``ip cumulo`` (source NAT at least; the full ruleset when
``router_nft`` provides it), replaced in one transaction. Forwarding is namespace-local: the
host's own ``ip_forward`` is never touched (compute-probe §7).

``apply`` is an ensure: it compares what runs with the config and fixes only what differs,
so the server can resend the same config at any time (agent restart, deleted namespace) and
a healthy router with an unchanged config is left alone. Everything lives under
``<state>/routers/<network uuid>/`` (configs, pid files, the applied hash) and is named from
the network's uuid, so ``destroy`` finds every piece again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cumulo.agent.drivers.base import DriverError
from cumulo.agent.network.host_net import Ip, ensure_segment, remove_segment
from cumulo.agentrpc.netconfig import RouterConfig

NFT_TABLE = "cumulo"
NETNS_ETC = Path("/etc/netns")  # ``ip netns exec`` binds /etc/netns/<ns>/* over /etc/*
GUEST_IF, PUBLIC_IF = "eth0", "eth1"


@dataclass(frozen=True)
class PublicSide:
    """Where the router's public leg goes on this host, and the public subnet's shape."""

    bridge: str
    prefix: int
    gateway: str


def ns_name(network_id: str) -> str:
    return f"cr-{network_id}"


def leg_names(network_id: str) -> tuple[str, str]:
    """Host ends of the guest and public veth legs (at most 15 characters)."""
    short = network_id.replace("-", "")[:10]
    return f"crg{short}", f"crp{short}"


def config_hash(cfg: RouterConfig, public: PublicSide | None) -> str:
    data = {"cfg": asdict(cfg), "public": asdict(public) if public else None}
    text = json.dumps(data, sort_keys=True, default=_bytes)
    return hashlib.sha256(text.encode()).hexdigest()


def _bytes(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(type(value).__name__)


@dataclass(frozen=True)
class Router:
    """One network's router on this host; ``state_dir`` is the agent's state directory."""

    network_id: str
    state_dir: Path
    host: Ip = Ip(None)  # noqa: RUF009  (frozen: shared safely)

    @property
    def ns(self) -> str:
        return ns_name(self.network_id)

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "routers" / self.network_id

    @property
    def inside(self) -> Ip:
        return Ip(self.ns)

    # --- reading -------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.ns in namespaces()

    def _applied(self) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads((self.run_dir / "applied.json").read_text())
            return data if isinstance(data, dict) else {}
        return {}

    def applied_hash(self) -> str | None:
        found = self._applied().get("hash")
        return str(found) if found else None

    def healthy(self, cfg: RouterConfig, public: PublicSide | None) -> bool:
        """Everything the config asks for is there: namespace, legs, dnsmasq, nftables."""
        if not self.exists():
            return False
        guest, pub = leg_names(self.network_id)
        if not self.host.exists(guest) or self.inside.link(GUEST_IF) is None:
            return False
        if _wants_public(cfg, public) and not self.host.exists(pub):
            return False
        if not _alive(self.run_dir / "dnsmasq.pid"):
            return False
        http = _optional("router_http")
        running = getattr(http, "running_pid", None) if http else None
        if callable(running) and running(self.run_dir, cfg.router_ip) is None:
            return False
        return self._nft_present()

    def _nft_present(self) -> bool:
        done = self._exec(["nft", "list", "table", "ip", NFT_TABLE], check=False)
        return done.returncode == 0

    # --- applying ------------------------------------------------------------------------

    def apply(
        self,
        cfg: RouterConfig,
        public: PublicSide | None,
        local_vtep: str,
        peers: tuple[str, ...],
    ) -> dict[str, Any]:
        """Make the router match ``cfg``; ``changed`` False when it already did."""
        if cfg.vni is None:
            raise DriverError(f"network {cfg.network_id} has no segment: it is not implemented")
        wanted = config_hash(cfg, public)
        segment = ensure_segment(self.host, cfg.vni, local_vtep, peers)
        if self.applied_hash() == wanted and self.healthy(cfg, public):
            return {"namespace": self.ns, "hash": wanted, "changed": False, "segment": segment}
        if rebuild_from_scratch(self._applied().get("generation"), cfg.generation):
            self._teardown()  # restartNetwork with cleanup: built again from scratch
        self.record_vni(cfg.vni)
        self._namespace()
        self._etc(cfg)
        self._guest_leg(cfg)
        self._public_leg(cfg, public)
        self._nftables(cfg, public)
        self._dnsmasq(cfg)
        self._services(cfg, public)
        applied = {"hash": wanted, "generation": cfg.generation}
        (self.run_dir / "applied.json").write_text(json.dumps(applied))
        return {"namespace": self.ns, "hash": wanted, "changed": True, "segment": segment}

    def _exec(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns, *argv],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise DriverError(f"{' '.join(argv)} in {self.ns}: {done.stderr.strip()}")
        return done

    def _namespace(self) -> None:
        if not self.exists():
            # Deleted behind our back: its processes may still hold the old namespace alive
            # (and the veth peers with it); they go before it is made again.
            for pid_file in sorted(self.run_dir.glob("*.pid")):
                _stop(pid_file)
            _ip_global("netns", "add", self.ns)
        self.inside.run("link", "set", "lo", "up")
        self._exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])

    def _etc(self, cfg: RouterConfig) -> None:
        """The namespace's own resolv.conf and hosts: processes in it must not wait on the
        host's resolvers through the public leg (a reverse lookup of the router address
        resolves from ``hosts``; anything else fails at once on the loopback)."""
        etc = NETNS_ETC / self.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{cfg.router_ip} router data-server\n")

    def _leg(self, host_end: str, inner: str, bridge: str) -> None:
        """A veth pair: ``host_end`` on ``bridge`` here, ``inner`` in the namespace."""
        if not self.host.exists(host_end):
            self.inside.run("link", "del", inner, check=False)  # a half left from a crash
            self.host.run("link", "add", host_end, "type", "veth", "peer", "name", inner)
            self.host.run("link", "set", inner, "netns", self.ns)
        elif self.inside.link(inner) is None:  # the namespace was made again: remake the pair
            # (the kernel may be removing it already, with the old namespace: no error then)
            self.host.run("link", "del", host_end, check=False)
            self._leg(host_end, inner, bridge)
            return
        link = self.host.link(host_end)
        if link is None or link.get("master") != bridge:
            self.host.run("link", "set", host_end, "master", bridge)
        self.host.run("link", "set", host_end, "up")
        self.inside.run("link", "set", inner, "up")

    def _addresses(self, dev: str, wanted: set[str]) -> None:
        have = {
            f"{a['local']}/{a['prefixlen']}"
            for link in self.inside.json("addr", "show", "dev", dev)
            for a in link.get("addr_info", [])
            if a.get("family") == "inet"
        }
        for addr in sorted(have - wanted):
            self.inside.run("addr", "del", addr, "dev", dev, check=False)
        for addr in sorted(wanted - have):
            self.inside.run("addr", "add", addr, "dev", dev)

    def _guest_leg(self, cfg: RouterConfig) -> None:
        guest, _ = leg_names(self.network_id)
        self._leg(guest, GUEST_IF, cfg.bridge)
        prefix = ipaddress.IPv4Network(cfg.cidr, strict=False).prefixlen
        self._addresses(GUEST_IF, {f"{cfg.router_ip}/{prefix}"})

    def _public_leg(self, cfg: RouterConfig, public: PublicSide | None) -> None:
        _, pub = leg_names(self.network_id)
        if public is None or not _wants_public(cfg, public):
            self.host.run("link", "del", pub, check=False)
            return
        if not self.host.exists(public.bridge):
            raise DriverError(f"public bridge {public.bridge} does not exist on this host")
        self._leg(pub, PUBLIC_IF, public.bridge)
        self._addresses(PUBLIC_IF, {f"{ip}/{public.prefix}" for ip in cfg.public_ips})
        self.inside.run("route", "replace", "default", "via", public.gateway, "dev", PUBLIC_IF)

    def _nftables(self, cfg: RouterConfig, public: PublicSide | None) -> None:
        body = nft_ruleset(cfg, PUBLIC_IF if _wants_public(cfg, public) else None)
        script = (
            f"table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n"
            f"table ip {NFT_TABLE} {{\n{body}}}\n"
        )
        path = self.run_dir / "router.nft"
        path.write_text(script)
        self._exec(["nft", "-f", str(path)])

    def _dnsmasq(self, cfg: RouterConfig) -> None:
        conf = self.run_dir / "dnsmasq.conf"
        text = dnsmasq_conf(cfg, self.run_dir)
        pid_file = self.run_dir / "dnsmasq.pid"
        if _alive(pid_file) and conf.exists() and conf.read_text() == text:
            return
        _stop(pid_file)
        conf.write_text(text)
        # dnsmasq forks into the background: it outlives an agent restart, like the VMs.
        self._exec(["dnsmasq", f"--conf-file={conf}"])
        _wait_for(lambda: _alive(pid_file), 10, f"dnsmasq in {self.ns}")

    def _services(self, cfg: RouterConfig, public: PublicSide | None) -> None:
        """haproxy and the metadata/password services, from the router-services modules when
        they are present (``router_lb``, ``router_http``); absent, the router does without."""
        for module_name in ("router_lb", "router_http"):
            module = _optional(module_name)
            apply = getattr(module, "apply", None) if module else None
            if callable(apply):
                apply(cfg, self.ns, self.run_dir)

    # --- removing ------------------------------------------------------------------------

    def destroy(self) -> dict[str, Any]:
        """Stop every process of the router, remove the namespace, the legs and the files;
        then the guest segment if nothing else on this host uses it."""
        self._teardown()
        vni = _applied_vni(self.run_dir)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(NETNS_ETC / self.ns, ignore_errors=True)
        removed = remove_segment(self.host, vni) if vni is not None else False
        return {"namespace": self.ns, "segment_removed": removed}

    def _teardown(self) -> None:
        """Processes, namespace and legs gone; the files stay (destroy removes them)."""
        for pid_file in sorted(self.run_dir.glob("*.pid")) if self.run_dir.exists() else []:
            _stop(pid_file)
        if self.exists():
            for pid in _ns_pids(self.ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _ip_global("netns", "del", self.ns)
        for leg in leg_names(self.network_id):
            self.host.run("link", "del", leg, check=False)
        (self.run_dir / "applied.json").unlink(missing_ok=True)

    def record_vni(self, vni: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "vni").write_text(str(vni))


def rebuild_from_scratch(applied: object, wanted: int) -> bool:
    """restartNetwork adds 2 to the network's router generation with ``cleanup`` and 1
    without (``services/network/networks.restart``): a router two or more generations behind
    is torn down and built again (new namespace, new processes); one behind is re-applied in
    place (rules, leases and names pushed again, dnsmasq kept), as CloudStack re-applies the
    rules of a running router when it is not asked to clean up."""
    return isinstance(applied, int) and wanted - applied >= 2


def _ip_global(*args: str) -> None:
    """``ip netns add/del``: namespace names are machine-wide, whatever namespace we are in."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0 and args[1] == "add":
        raise DriverError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _applied_vni(run_dir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((run_dir / "vni").read_text())
    return None


def _wants_public(cfg: RouterConfig, public: PublicSide | None) -> bool:
    return public is not None and bool(cfg.public_ips)


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(f"cumulo.agent.network.{name}")
    except ImportError:
        return None


def nft_ruleset(cfg: RouterConfig, public_if: str | None) -> str:
    """The chains of the router's table: the router-services renderer's full ruleset when it
    is there (``router_nft.render``), else source NAT of the guest CIDR only."""
    module = _optional("router_nft")
    render: Callable[..., str] | None = getattr(module, "render", None) if module else None
    if render is not None:
        return render(cfg, guest_if=GUEST_IF, public_if=public_if)
    lines = [
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if public_if and cfg.source_nat_ip:
        lines.append(f'    oifname "{public_if}" ip saddr {cfg.cidr} snat to {cfg.source_nat_ip}')
    lines.append("  }")
    return "\n".join(lines) + "\n"


def dnsmasq_conf(cfg: RouterConfig, run_dir: Path) -> str:
    """dnsmasq: DHCP only for the reserved MACs (the cloud allocated every address), the
    router as gateway and resolver for default NICs, names under the network domain, and
    ``data-server`` for cloud-init's CloudStack datasource (ecosystem.md §4)."""
    net = ipaddress.IPv4Network(cfg.cidr, strict=False)
    domain = cfg.domain or "cloud.internal"
    lines = [
        f"interface={GUEST_IF}",
        "bind-interfaces",
        "except-interface=lo",
        f"listen-address={cfg.router_ip}",
        f"pid-file={run_dir / 'dnsmasq.pid'}",
        f"dhcp-leasefile={run_dir / 'dnsmasq.leases'}",
        f"dhcp-range=set:guest,{net.network_address},static,{net.netmask},1h",
        "dhcp-authoritative",
        "no-ping",
        "no-resolv",
        "no-hosts",
        f"domain={domain}",
        f"local=/{domain}/",
        "expand-hosts",
        f"address=/data-server/{cfg.router_ip}",
        f"dhcp-option=tag:default,option:router,{cfg.router_ip}",
        f"dhcp-option=tag:default,option:dns-server,{cfg.router_ip}",
        "dhcp-option=tag:!default,option:router",
        f"dhcp-option=option:domain-name,{domain}",
        f"log-facility={run_dir / 'dnsmasq.log'}",
    ]
    lines += [f"server={s}" for s in cfg.dns_servers]
    for entry in cfg.dhcp:
        tag = "set:default," if entry.default else ""
        lines.append(f"dhcp-host={entry.mac},{tag}{entry.ip},{entry.hostname},infinite")
        lines.append(f"host-record={entry.hostname}.{domain},{entry.hostname},{entry.ip}")
    return "\n".join(lines) + "\n"


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def routers_here() -> list[str]:
    """Network uuids of the router namespaces on this machine."""
    return sorted(n[3:] for n in namespaces() if n.startswith("cr-"))


def routers_on(state_dir: Path, vni: int) -> list[str]:
    """Network uuids of the routers this agent built (its run directories) on ``vni``."""
    root = state_dir / "routers"
    dirs = sorted(root.iterdir()) if root.is_dir() else []
    return [d.name for d in dirs if d.is_dir() and _applied_vni(d) == vni]


def _ns_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split() if p.isdigit()]


def _pid(pid_file: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(pid_file.read_text().strip())
    return None


def _alive(pid_file: Path) -> bool:
    pid = _pid(pid_file)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in _stat(pid)


def _stat(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text()
    return ""


def _stop(pid_file: Path) -> None:
    pid = _pid(pid_file)
    if pid is not None and _alive(pid_file):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(pid_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid_file):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DriverError(f"{what} did not start")
        time.sleep(0.05)
