"""Load balancing in the router namespace: a haproxy configuration and its process.

Each ``LoadBalancer`` of the ``RouterConfig`` becomes a TCP frontend on its public address
and port and a backend of the member guest IPs on the private port. Every server is health
checked with a TCP connect (``check``), so a member whose service is down leaves the
rotation within ``fall`` failed checks and comes back after ``rise`` good ones. Source CIDRs
are enforced by haproxy itself (the nftables firewall already decided that the public port
is open at all). UDP rules cannot be served by haproxy and are left out of the file.

haproxy runs as a daemon inside the namespace with a pid file beside its config; a config
change is a graceful reload (``-sf``: the new process takes the sockets and the old one
finishes its open connections), validated with ``haproxy -c`` first so a bad file never
replaces a working one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from ipaddress import IPv4Address, IPv4Network, collapse_addresses
from pathlib import Path

from cumulo.agentrpc.netconfig import LoadBalancer, RouterConfig

ALGORITHMS = {"roundrobin": "roundrobin", "leastconn": "leastconn", "source": "source"}
CONFIG_NAME = "haproxy.cfg"
PID_NAME = "haproxy.pid"

GLOBAL = """\
global
\tmaxconn 4096

defaults
\tmode tcp
\ttimeout connect 3s
\ttimeout client 60s
\ttimeout server 60s
\tdefault-server inter {inter} fall 2 rise 1
"""


def _name(index: int) -> str:
    return f"lb{index}"


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise ValueError(f"bad port {value}")
    return value


def _acl(cidrs: tuple[str, ...]) -> list[str]:
    nets = [IPv4Network(c, strict=False) for c in cidrs]
    if not nets or any(n.prefixlen == 0 for n in nets):
        return []
    allowed = " ".join(str(n) for n in collapse_addresses(nets))
    return [f"\ttcp-request connection reject unless {{ src {allowed} }}"]


def _section(index: int, lb: LoadBalancer) -> list[str]:
    name = _name(index)
    algorithm = ALGORITHMS.get(lb.algorithm.lower())
    if algorithm is None:
        raise ValueError(f"unsupported algorithm {lb.algorithm!r}")
    lines = [
        f"# {lb.name!r}"[:200].replace("\n", " "),
        f"frontend {name}",
        f"\tbind {IPv4Address(lb.public_ip)}:{_port(lb.public_port)}",
        *_acl(lb.source_cidrs),
        f"\tdefault_backend {name}",
        "",
        f"backend {name}",
        f"\tbalance {algorithm}",
    ]
    for number, ip in enumerate(lb.backends):
        lines.append(f"\tserver s{number} {IPv4Address(ip)}:{_port(lb.private_port)} check")
    return [*lines, ""]


def served(config: RouterConfig) -> tuple[LoadBalancer, ...]:
    """The balancers haproxy serves: TCP ones (UDP is not haproxy's)."""
    return tuple(lb for lb in config.load_balancers if lb.protocol.lower() != "udp")


def config_text(config: RouterConfig, *, check_interval: str = "2s") -> str:
    """The whole haproxy.cfg for the router (deterministic: equal configs, equal text)."""
    lines = [GLOBAL.format(inter=check_interval)]
    for index, lb in enumerate(served(config)):
        lines.extend(_section(index, lb))
    return "\n".join(lines)


# --- the process ---------------------------------------------------------------------------


def _in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def running_pids(run_dir: Path) -> list[int]:
    """haproxy processes named in the pid file that are still haproxy (a reused pid is not)."""
    try:
        text = (run_dir / PID_NAME).read_text()
    except OSError:
        return []
    pids = [int(tok) for tok in text.split() if tok.isdigit()]
    return [
        p for p in pids if _alive(p) and "haproxy" in _cmdline(p) and str(run_dir) in _cmdline(p)
    ]


def validate(cfg: Path) -> None:
    done = subprocess.run(
        ["haproxy", "-c", "-q", "-f", str(cfg)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"haproxy config invalid: {(done.stderr or done.stdout).strip()}")


def _launch(netns: str | None, run_dir: Path, old: list[int]) -> None:
    argv = ["haproxy", "-D", "-f", str(run_dir / CONFIG_NAME), "-p", str(run_dir / PID_NAME)]
    if old:
        argv += ["-sf", *map(str, old)]
    done = subprocess.run(
        _in_netns(netns, argv), capture_output=True, text=True, check=False, timeout=30
    )
    if done.returncode != 0:
        raise RuntimeError(f"haproxy failed to start: {(done.stderr or done.stdout).strip()}")


def stop(run_dir: Path, timeout: float = 5.0) -> None:
    """Stop the router's haproxy (SIGTERM, then SIGKILL); absent is fine."""
    pids = running_pids(run_dir)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    (run_dir / PID_NAME).unlink(missing_ok=True)


def apply(config: RouterConfig, netns: str | None, run_dir: Path) -> str:
    """Make the router's haproxy match ``config``: started, reloaded, stopped or unchanged.

    ``run_dir`` is the router's own directory (config and pid file live there). With no
    TCP balancer left, haproxy is stopped. Returns what was done.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = run_dir / CONFIG_NAME
    pids = running_pids(run_dir)
    if not served(config):
        stop(run_dir)
        cfg.unlink(missing_ok=True)
        return "stopped" if pids else "unchanged"
    text = config_text(config)
    if pids and cfg.exists() and cfg.read_text() == text:
        return "unchanged"
    staged = run_dir / (CONFIG_NAME + ".new")
    staged.write_text(text)
    validate(staged)
    os.replace(staged, cfg)
    _launch(netns, run_dir, pids)
    return "reloaded" if pids else "started"
