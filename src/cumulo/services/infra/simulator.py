"""Simulated hosts: addHost with hypervisor Simulator makes hosts that exist only as rows.

Like CloudStack's SimulatorDiscoverer, the URL is ``http://sim/<anything>/<host>`` and its
query string sizes the hosts (reference/cloudstack-api.md, "In-process fake agents"):
``cpunumber`` (or CloudStack's ``cpucore``), ``cpuspeed`` in MHz, ``memory`` in MiB,
``localstorage`` and ``count`` (several hosts from one call). No agent is involved: a
simulated host is Up as soon as it is written, with capacity rows for placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo import __version__
from cumulo.common.time import utcnow
from cumulo.db.models_infra import Cluster, Host
from cumulo.services.errors import ParamError
from cumulo.services.infra import capacity

DEFAULT_CPUS = 8
DEFAULT_CPU_MHZ = 2400
DEFAULT_MEMORY_MIB = 16384
MAX_COUNT = 1000  # one call; more hosts take more calls (a typo should not add a million rows)
MIB = 1024 * 1024


@dataclass(frozen=True)
class SimSpec:
    """What a simulator URL asks for."""

    name: str
    cpus: int = DEFAULT_CPUS
    cpu_mhz: int = DEFAULT_CPU_MHZ
    memory_mib: int = DEFAULT_MEMORY_MIB
    local_storage: bool = False
    count: int = 1


def _int_option(options: dict[str, list[str]], names: tuple[str, ...], default: int) -> int:
    for name in names:
        if name in options:
            raw = options[name][-1]
            try:
                value = int(raw)
            except ValueError:
                raise ParamError(f"Simulator URL option {name}={raw} is not a number") from None
            if value < 1:
                raise ParamError(f"Simulator URL option {name} must be positive")
            return value
    return default


def parse_url(url: str) -> SimSpec:
    """``http://sim…/<anything>/<host>?cpunumber=..&cpuspeed=..&memory=..&count=..``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.hostname.startswith("sim"):
        raise ParamError(f"Simulator host URL must look like http://sim/<cluster>/<host>: {url}")
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise ParamError(f"Simulator host URL names no host: {url}")
    options = parse_qs(parts.query)
    count = _int_option(options, ("count",), 1)
    if count > MAX_COUNT:
        raise ParamError(f"A simulator addHost adds at most {MAX_COUNT} hosts")
    local = options.get("localstorage", ["false"])[-1].lower() in ("true", "1", "yes")
    return SimSpec(
        name=name,
        cpus=_int_option(options, ("cpunumber", "cpucore"), DEFAULT_CPUS),
        cpu_mhz=_int_option(options, ("cpuspeed",), DEFAULT_CPU_MHZ),
        memory_mib=_int_option(options, ("memory",), DEFAULT_MEMORY_MIB),
        local_storage=local,
        count=count,
    )


def host_names(spec: SimSpec) -> list[str]:
    """``h``, ``h-2``, ``h-3`` … so one call's hosts sort and read as a family."""
    return [spec.name if i == 1 else f"{spec.name}-{i}" for i in range(1, spec.count + 1)]


def _check_names_free(session: Session, cluster: Cluster, names: list[str]) -> None:
    taken = session.scalars(
        select(Host.name).where(
            Host.cluster_id == cluster.id, Host.removed.is_(None), Host.name.in_(names)
        )
    ).all()
    if taken:
        raise ParamError(f"Host {sorted(taken)[0]} already exists in cluster {cluster.name}")


def _fake_ip(host_id: int) -> str:
    """A stable private address per host, as the simulator reports one."""
    return f"172.{16 + (host_id >> 16) % 16}.{(host_id >> 8) & 255}.{host_id & 255}"


def add_hosts(
    session: Session, cluster: Cluster, url: str, *, hosttags: str, resource_state: str
) -> list[Host]:
    """Write the simulated hosts of one addHost call with their capacity rows."""
    spec = parse_url(url)
    names = host_names(spec)
    _check_names_free(session, cluster, names)
    now = utcnow()
    hosts = [
        Host(
            name=name,
            type="Routing",
            status="Up",
            resource_state=resource_state,
            zone_id=cluster.zone_id,
            pod_id=cluster.pod_id,
            cluster_id=cluster.id,
            hypervisor_type="Simulator",
            hypervisor_version=None,
            url=url,
            cpu_sockets=1,
            cpu_number=spec.cpus,
            cpu_speed=spec.cpu_mhz,
            memory=spec.memory_mib * MIB,
            host_tags=hosttags,
            details={"localstorage": spec.local_storage, "version": __version__},
            last_ping=now,
        )
        for name in names
    ]
    session.add_all(hosts)
    session.flush()
    for host in hosts:
        host.private_ip = _fake_ip(host.id)
        capacity.set_host_capacity(session, host.id, spec.cpus * spec.cpu_mhz, host.memory)
    session.flush()
    return hosts
