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
import re
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


_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DURATION = re.compile(r"^[0-9]{1,9}(ms|s|m|h|d)?$")
_SIZE = re.compile(r"^[0-9]{1,9}[km]?$")
HTTP_STICKINESS = ("LbCookie", "AppCookie")  # cookies need haproxy's HTTP mode


def _param(lb: LoadBalancer, name: str, default: str, pattern: re.Pattern[str]) -> str:
    """A stickiness parameter checked against what haproxy accepts there, so nothing a
    tenant typed can add a line to the file."""
    value = dict((k.lower(), v) for k, v in lb.stickiness_params).get(name.lower(), default)
    if not pattern.match(value):
        raise ValueError(f"bad stickiness parameter {name}={value!r}")
    return value


def _stickiness(lb: LoadBalancer) -> tuple[list[str], str]:
    """Backend lines for the rule's stickiness policy, and what each server line gets."""
    if lb.stickiness is None:
        return [], ""
    if lb.stickiness == "SourceBased":
        size = _param(lb, "tablesize", "200k", _SIZE)
        expire = _param(lb, "expire", "30m", _DURATION)
        return [f"\tstick-table type ip size {size} expire {expire}", "\tstick on src"], ""
    if lb.stickiness == "LbCookie":
        name = _param(lb, "cookieName", "SERVERID", _TOKEN)
        return [f"\tcookie {name} insert nocache indirect"], " cookie s{n}"
    if lb.stickiness == "AppCookie":
        name = _param(lb, "cookieName", "JSESSIONID", _TOKEN)
        length = _param(lb, "length", "64", _SIZE)
        hold = _param(lb, "holdtime", "3h", _DURATION)
        return [
            f"\tstick-table type string len {length} size 200k expire {hold}",
            f"\tstick on req.cook({name})",
            f"\tstick store-response res.cook({name})",
        ], ""
    raise ValueError(f"unsupported stickiness method {lb.stickiness!r}")


def _health(lb: LoadBalancer) -> list[str]:
    """The rule's health check policy: check interval, thresholds, timeout and an HTTP GET
    of its ping path (without one, the TCP connect check of every backend stays)."""
    lines = []
    if lb.health_interval_s or lb.health_rise or lb.health_fall:
        inter, rise = lb.health_interval_s or 2, lb.health_rise or 1
        fall = lb.health_fall or 2
        lines.append(f"\tdefault-server inter {int(inter)}s fall {int(fall)} rise {int(rise)}")
    if lb.health_timeout_s:
        lines.append(f"\ttimeout check {int(lb.health_timeout_s)}s")
    if lb.health_path:
        path = lb.health_path if lb.health_path.startswith("/") else "/" + lb.health_path
        if not all(c.isalnum() or c in "/._-~%?=&" for c in path):
            raise ValueError(f"bad health check path {lb.health_path!r}")
        lines.append(f"\toption httpchk GET {path}")
    return lines


def _section(index: int, lb: LoadBalancer) -> list[str]:
    name = _name(index)
    algorithm = ALGORITHMS.get(lb.algorithm.lower())
    if algorithm is None:
        raise ValueError(f"unsupported algorithm {lb.algorithm!r}")
    mode = ["\tmode http"] if lb.stickiness in HTTP_STICKINESS else []
    sticky, per_server = _stickiness(lb)
    lines = [
        f"# {lb.name!r}"[:200].replace("\n", " "),
        f"frontend {name}",
        *mode,
        f"\tbind {IPv4Address(lb.public_ip)}:{_port(lb.public_port)}",
        *_acl(lb.source_cidrs),
        f"\tdefault_backend {name}",
        "",
        f"backend {name}",
        *mode,
        f"\tbalance {algorithm}",
        *sticky,
        *_health(lb),
    ]
    for number, ip in enumerate(lb.backends):
        server = f"\tserver s{number} {IPv4Address(ip)}:{_port(lb.private_port)} check"
        lines.append(server + per_server.format(n=number))
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
