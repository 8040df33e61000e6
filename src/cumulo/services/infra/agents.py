"""KVM hosts and their agents: tokens, registration, heartbeats, VM reports and the relay.

A KVM host is added by an admin (``addHost``) in state ``Connecting`` with a per-host token
shown once; the ``cumulo agent`` on that host dials any management server with it. The
token is ``<host uuid>.<secret>``: the uuid finds the row, and only a SHA-256 of the whole
token is stored (the secret is 256 random bits, so a fast hash is enough; nothing reversible
is kept and the token is never logged). Registration writes the host's size and capacity
rows and the host goes ``Up``; heartbeats keep it there. A host whose heartbeats stop is
``Disconnected`` after ``ping.interval`` times ``ping.timeout`` seconds, and ``Down`` after
``agent.down.timeout``; commands to a host that is not Up fail with HostUnreachable.

``AgentService`` wires the protocol server (``agentrpc.server``) to these functions: the
protocol layer never touches the database itself.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from starlette.websockets import WebSocket

from cumulo import __version__
from cumulo.agentrpc.messages import (
    Answer,
    Command,
    HostInfo,
    VmStats,
    VmStatus,
    answer_from_wire,
    command_from_wire,
    to_wire,
)
from cumulo.agentrpc.server import AgentServer, Registration, Relayed
from cumulo.agentrpc.wire import PATH
from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.models_agents import AgentCommand, HostVmReport
from cumulo.db.models_infra import Cluster, Host, HostCapacity, StoragePool
from cumulo.services import config
from cumulo.services.compute import reconcile, stats
from cumulo.services.config import ConfigKey, ConfigStore
from cumulo.services.errors import NotFound, ParamError
from cumulo.services.eventbus import alerts
from cumulo.services.infra import capacity

log = logging.getLogger(__name__)

KVM = "KVM"
CONNECTING, UP, DISCONNECTED, DOWN = "Connecting", "Up", "Disconnected", "Down"
RELAY_KEEP = timedelta(hours=1)  # answered or expired relay rows are kept this long
RELAY_CLEANUP_S = 300.0

PING_INTERVAL = config.define(
    ConfigKey(
        "ping.interval",
        "Advanced",
        "Integer",
        "5",
        "Interval in seconds at which host agents send their heartbeat (told to each agent "
        "when it registers)",
        min=1,
    )
)
PING_TIMEOUT = config.define(
    ConfigKey(
        "ping.timeout",
        "Advanced",
        "Float",
        "2.5",
        "Multiplier of ping.interval after which a host without heartbeat is Disconnected",
        min=1,
    )
)
DOWN_TIMEOUT = config.define(
    ConfigKey(
        "agent.down.timeout",
        "Advanced",
        "Integer",
        "60",
        "Seconds without heartbeat after which a Disconnected host is marked Down",
        min=1,
    )
)


# --- tokens ----------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(host: Host) -> str:
    """A new token for the host (the old one stops working); only its hash is kept."""
    token = f"{host.uuid}.{secrets.token_urlsafe(32)}"
    host.agent_token_hash = hash_token(token)
    return token


def _kvm_host(session: Session, host_uuid: str) -> Host | None:
    return session.scalar(
        select(Host).where(
            Host.uuid == host_uuid, Host.removed.is_(None), Host.hypervisor_type == KVM
        )
    )


def host_for_token(session: Session, token: str) -> Host | None:
    """The KVM host a token belongs to; compared in constant time."""
    host_uuid, dot, _ = token.partition(".")
    if not dot:
        return None
    host = _kvm_host(session, host_uuid)
    if host is None or not host.agent_token_hash:
        return None
    return host if hmac.compare_digest(host.agent_token_hash, hash_token(token)) else None


def reissue_token(session: Session, host_uuid: str) -> str:
    """Replace a KVM host's lost token; the old one stops working at once (a connected agent
    keeps its session until it next reconnects, then needs the new token)."""
    host = _kvm_host(session, host_uuid)
    if host is None:
        raise NotFound(f"Unable to find KVM host by id {host_uuid}")
    return issue_token(host)


# --- adding a host ---------------------------------------------------------------------------


def parse_kvm_url(url: str) -> str:
    """The host's address from addHost's ``http://<host-address>`` (CloudStack's KVM form)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParamError(f"KVM host URL must look like http://<host-address>: {url}")
    return parts.hostname


def add_kvm_host(
    session: Session, cluster: Cluster, url: str, *, hosttags: str, resource_state: str
) -> tuple[Host, str]:
    """The host row, Connecting until its agent registers, and its token (shown once)."""
    address = parse_kvm_url(url)
    taken = session.scalar(
        select(Host.id).where(
            Host.cluster_id == cluster.id, Host.removed.is_(None), Host.name == address
        )
    )
    if taken is not None:
        raise ParamError(f"Host {address} already exists in cluster {cluster.name}")
    host = Host(
        name=address,
        type="Routing",
        status=CONNECTING,
        resource_state=resource_state,
        zone_id=cluster.zone_id,
        pod_id=cluster.pod_id,
        cluster_id=cluster.id,
        hypervisor_type=KVM,
        url=url,
        private_ip=address,
        host_tags=hosttags,
        details={"version": __version__},
    )
    session.add(host)
    session.flush()
    token = issue_token(host)
    session.flush()
    return host, token


# --- what an agent tells us ------------------------------------------------------------------


def register_host(session: Session, host: Host, info: HostInfo, peer: str, server_id: int) -> None:
    """Size, capacity and connection of a host whose agent just registered; it goes Up.

    Re-registration (agent restart, reconnect) updates the capacity totals in place: what
    running VMs use stays counted.
    """
    host.cpu_number = info.cpus
    host.cpu_speed = info.cpu_mhz
    host.memory = info.memory_bytes
    host.hypervisor_version = info.hypervisor_version or None
    host.details = {
        **(host.details or {}),
        "accelerator": info.accelerator,
        "agenthostname": info.hostname,
        "agenthypervisor": info.hypervisor,
        "pools": list(info.pools),
        "agentaddress": peer,
    }
    host.status = UP
    host.last_ping = utcnow()
    host.mgmt_server_id = server_id
    _set_capacity(session, host.id, info.cpus * info.cpu_mhz, info.memory_bytes)
    ensure_host_pools(session, host, info)


UNKNOWN_POOL_BYTES = 1 << 40  # an agent that cannot size its pool: 1 TiB, thin-provisioned


def ensure_host_pools(session: Session, host: Host, info: HostInfo) -> None:
    """One HOST-scoped storage pool per local pool directory the agent registers.

    VM disks on such a pool live on this host only: the planner places a VM whose root disk
    is there on this host, and a new one on a pool of the host it picked.
    """
    sizes = list(info.pool_bytes) + [UNKNOWN_POOL_BYTES] * len(info.pools)
    existing = {
        p.path: p
        for p in session.scalars(
            select(StoragePool).where(StoragePool.host_id == host.id, StoragePool.removed.is_(None))
        )
    }
    for path, size in zip(info.pools, sizes, strict=False):
        pool = existing.get(path)
        if pool is None:
            session.add(
                StoragePool(
                    name=f"{host.name}-local-{len(existing) + 1}",
                    zone_id=host.zone_id,
                    pod_id=host.pod_id,
                    cluster_id=host.cluster_id,
                    host_id=host.id,
                    scope="HOST",
                    pool_type="Filesystem",
                    hypervisor_type=host.hypervisor_type,
                    url=f"file://{path}",
                    path=path,
                    capacity_bytes=size,
                    overcommit=1.0,
                    status="Up",
                )
            )
            existing[path] = pool  # type: ignore[assignment]
        elif pool.capacity_bytes != size:
            pool.capacity_bytes = size


def _set_capacity(session: Session, host_id: int, cpu_mhz: int, memory_bytes: int) -> None:
    rows = session.scalars(select(HostCapacity).where(HostCapacity.host_id == host_id)).all()
    if not rows:
        capacity.set_host_capacity(session, host_id, cpu_mhz, memory_bytes)
        return
    for row in rows:
        row.total = cpu_mhz if row.type == capacity.CPU else memory_bytes


def record_vm_report(
    session: Session, host: Host, reports: list[VmStatus], *, full: bool = False
) -> list[str]:
    """Store what a host says about its VMs' power states; the names whose state changed.

    Contract for the VM orchestration, which reconciles VM rows from ``host_vm_reports``:
    one row per (host, VM instance name) holds the last power state the host reported
    (``PowerState`` values: Running, Stopped, Paused, Missing), ``reported`` (when the host
    last spoke of it) and ``changed`` (when the state last differed). With ``full`` the
    reports are everything the host knows (sent when an agent connects): a VM previously
    reported and not listed is recorded ``Missing``. Rows are never deleted here; a host
    removal or the orchestration may. Idempotent: a repeated report changes only
    ``reported``.
    """
    now = utcnow()
    known = {
        r.vm_name: r
        for r in session.scalars(select(HostVmReport).where(HostVmReport.host_id == host.id))
    }
    changed: list[str] = []
    for vm in reports:
        row = known.pop(vm.name, None)
        if row is None:
            row = HostVmReport(host_id=host.id, vm_name=vm.name, power_state="", changed=now)
            session.add(row)
        if row.power_state != vm.power.value:
            row.power_state, row.changed = vm.power.value, now
            changed.append(vm.name)
        row.detail, row.reported = vm.detail[:255], now
    if full:
        for row in known.values():
            if row.power_state != "Missing":
                row.power_state, row.changed = "Missing", now
                changed.append(row.vm_name)
            row.reported = now
    return changed


def vm_reports(session: Session, host_id: int) -> dict[str, str]:
    """The last reported power state per VM name on a host."""
    rows = session.execute(
        select(HostVmReport.vm_name, HostVmReport.power_state).where(
            HostVmReport.host_id == host_id
        )
    ).all()
    return {name: state for name, state in rows}


def _limits(session: Session, store: ConfigStore) -> tuple[timedelta, timedelta]:
    """(silent, down): how long without heartbeat makes a host Disconnected, then Down."""
    interval = float(store.get(session, PING_INTERVAL))
    silent = timedelta(seconds=interval * float(store.get(session, PING_TIMEOUT)))
    down = timedelta(seconds=float(store.get(session, DOWN_TIMEOUT)))
    return silent, max(down, silent)


def heartbeats_overdue(session: Session, store: ConfigStore) -> bool:
    """Whether ``check_heartbeats`` has anything to do: a read, so the monitor takes the
    write lock (SQLite) only when a host is actually overdue."""
    silent, _ = _limits(session, store)
    overdue = select(Host.id).where(
        Host.hypervisor_type == KVM,
        Host.removed.is_(None),
        Host.status.in_((UP, DISCONNECTED)),
        Host.last_ping < utcnow() - silent,
    )
    return session.execute(overdue.limit(1)).first() is not None


def check_heartbeats(session: Session, store: ConfigStore) -> tuple[int, int]:
    """Up hosts silent too long go Disconnected, Disconnected ones Down (no longer held by any
    server). Plain conditional UPDATEs: every server may run this at once harmlessly."""
    now = utcnow()
    silent, down = _limits(session, store)
    kvm = (Host.hypervisor_type == KVM, Host.removed.is_(None))
    disconnected = session.scalars(
        update(Host)
        .where(*kvm, Host.status == UP, Host.last_ping < now - silent)
        .values(status=DISCONNECTED)
        .returning(Host.id)
        .execution_options(synchronize_session=False)
    ).all()
    went_down = session.scalars(
        update(Host)
        .where(*kvm, Host.status == DISCONNECTED, Host.last_ping < now - down)
        .values(status=DOWN, mgmt_server_id=None)
        .returning(Host.id)
        .execution_options(synchronize_session=False)
    ).all()
    # Operators hear of it (listAlerts, the event bus) in the same transaction.
    alerts.hosts_changed(session, disconnected, DISCONNECTED)
    alerts.hosts_changed(session, went_down, DOWN)
    return len(disconnected), len(went_down)


def forget_old_relays(session: Session) -> int:
    """Answered or expired relay rows past RELAY_KEEP: long enough for any resend."""
    result = session.execute(
        delete(AgentCommand).where(
            AgentCommand.state.in_(("Done", "Expired")),
            AgentCommand.created < utcnow() - RELAY_KEEP,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


# --- the backend the protocol server calls ---------------------------------------------------


class CloudAgentBackend:
    """``agentrpc.server.AgentBackend`` over the cloud database, for one server process."""

    def __init__(self, db: Database, store: ConfigStore, server_id: int) -> None:
        self.db = db
        self.store = store
        self.server_id = server_id

    def _host(self, session: Session, host_id: str) -> Host | None:
        return session.scalar(select(Host).where(Host.uuid == host_id, Host.removed.is_(None)))

    def authenticate(self, token: str) -> str | None:
        with self.db.read() as session:
            host = host_for_token(session, token)
            return host.uuid if host is not None else None

    def register(self, host_id: str, info: HostInfo, peer: str) -> Registration:
        with self.db.write() as session:
            host = self._host(session, host_id)
            if host is None:
                raise RuntimeError(f"host {host_id} was removed while its agent registered")
            register_host(session, host, info, peer, self.server_id)
            interval = float(self.store.get(session, PING_INTERVAL))
            every = stats.interval_s(session, self.store)
            return Registration(name=host.name, ping_interval=interval, stats_interval=every)

    def heartbeat(self, host_id: str) -> bool:
        """Alive and held here: a host that went Disconnected on a blip is Up again. False
        when the host was deleted meanwhile (its agent is then sent away)."""
        with self.db.write() as session:
            result = session.execute(
                update(Host)
                .where(Host.uuid == host_id, Host.removed.is_(None))
                .values(last_ping=utcnow(), status=UP, mgmt_server_id=self.server_id)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def report_vms(self, host_id: str, vms: list[VmStatus], full: bool) -> None:
        with self.db.write() as session:
            host = self._host(session, host_id)
            if host is not None:
                record_vm_report(session, host, vms, full=full)
                reconcile.on_reports(session, host, vms)

    def report_stats(self, host_id: str, samples: list[VmStats]) -> None:
        with self.db.write() as session:
            host = self._host(session, host_id)
            if host is not None:
                stats.record(session, host.id, samples)

    def disconnected(self, host_id: str) -> None:
        """Only while this server still holds the host: the agent may already have dialled
        another server, whose registration must not be undone."""
        with self.db.write() as session:
            lost = session.scalars(
                update(Host)
                .where(
                    Host.uuid == host_id,
                    Host.mgmt_server_id == self.server_id,
                    Host.status == UP,
                )
                .values(status=DISCONNECTED, mgmt_server_id=None)
                .returning(Host.id)
            ).all()
            alerts.hosts_changed(session, lost, DISCONNECTED)

    def reachable(self, host_id: str) -> bool:
        with self.db.read() as session:
            row = session.execute(
                select(Host.status, Host.mgmt_server_id).where(
                    Host.uuid == host_id, Host.removed.is_(None)
                )
            ).first()
        return row is not None and row.status == UP and row.mgmt_server_id is not None

    # relay ------------------------------------------------------------------------------

    def relay_post(self, host_id: str, command: Command, timeout_s: float) -> Answer | None:
        payload = {"command": to_wire(command), "deadline": time.time() + timeout_s}
        with self.db.write() as session:
            host = self._host(session, host_id)
            if host is None:
                raise RuntimeError(f"host {host_id} is gone")
            row = session.scalar(
                select(AgentCommand).where(AgentCommand.request_id == command.request_id)
            )
            if row is not None and row.state == "Done" and row.answer is not None:
                return answer_from_wire(row.answer)  # a resend: the first answer stands
            if row is None:
                row = AgentCommand(request_id=command.request_id, host_id=host.id)
                session.add(row)
            if row.state != "Sent":
                row.state = "Pending"
            row.kind, row.payload, row.updated = command.kind, payload, utcnow()
            row.sender_server_id = self.server_id
        return None

    def relay_answer(self, request_id: str) -> Answer | None:
        with self.db.read() as session:
            answer = session.scalar(
                select(AgentCommand.answer).where(
                    AgentCommand.request_id == request_id, AgentCommand.state == "Done"
                )
            )
        return answer_from_wire(answer) if answer is not None else None

    def relay_expire(self, request_id: str) -> None:
        with self.db.write() as session:
            session.execute(
                update(AgentCommand)
                .where(AgentCommand.request_id == request_id, AgentCommand.state == "Pending")
                .values(state="Expired", updated=utcnow())
            )

    def relay_claim(self, host_ids: list[str]) -> list[Relayed]:
        """Pending commands for our hosts, each taken with a conditional UPDATE so that two
        servers that both think they hold a host (a handover) never both deliver it. A
        cheap read comes first: the write transaction (a lock on SQLite) only when there is
        something to claim, since this runs every few hundred milliseconds."""
        wanted = (
            select(AgentCommand.id, AgentCommand.payload, Host.uuid)
            .join(Host, Host.id == AgentCommand.host_id)
            .where(AgentCommand.state == "Pending", Host.uuid.in_(host_ids))
        )
        with self.db.read() as session:
            rows = session.execute(wanted).all()
        if not rows:
            return []
        with self.db.write() as session:
            return [
                claimed
                for row_id, payload, host_uuid in rows
                if (claimed := self._claim(session, row_id, payload, host_uuid)) is not None
            ]

    def _claim(
        self, session: Session, row_id: int, payload: dict[str, Any], host_uuid: str
    ) -> Relayed | None:
        left = float(payload.get("deadline", 0)) - time.time()
        to = {"state": "Sent", "holder_server_id": self.server_id} if left > 0 else {}
        result = session.execute(
            update(AgentCommand)
            .where(AgentCommand.id == row_id, AgentCommand.state == "Pending")
            .values(updated=utcnow(), **(to or {"state": "Expired"}))
        )
        if not to or not result.rowcount:  # type: ignore[attr-defined]
            return None  # expired, or another server took it first
        return Relayed(host_uuid, command_from_wire(payload["command"]), left)

    def relay_complete(self, request_id: str, answer: Answer) -> None:
        with self.db.write() as session:
            session.execute(
                update(AgentCommand)
                .where(AgentCommand.request_id == request_id)
                .values(state="Done", answer=to_wire(answer), updated=utcnow())
            )


class AgentService:
    """The agent endpoint of one management server, its KVM transport and the monitor that
    turns silent hosts Disconnected and Down."""

    path = PATH

    def __init__(self, rt: Any, *, monitor_s: float = 1.0) -> None:
        self.rt = rt
        self.backend = CloudAgentBackend(rt.db, rt.config, rt.server_id)
        self.server = AgentServer(self.backend)
        self.monitor_s = monitor_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        rt.hub.register(KVM, self.server)

    async def endpoint(self, websocket: WebSocket) -> None:
        await self.server.endpoint(websocket)

    def start(self) -> None:
        self.server.start()
        self._thread = threading.Thread(target=self._monitor, name="agent-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.server.stop()
        if self._thread is not None:
            self._thread.join(5)

    def _monitor(self) -> None:
        last_cleanup = time.monotonic()
        while not self._stop.wait(self.monitor_s):
            try:
                if time.monotonic() - last_cleanup > RELAY_CLEANUP_S:
                    last_cleanup = time.monotonic()
                    with self.rt.db.write() as session:
                        forget_old_relays(session)
                with self.rt.db.read() as session:
                    if not heartbeats_overdue(session, self.rt.config):
                        continue
                with self.rt.db.write() as session:
                    lost, down = check_heartbeats(session, self.rt.config)
                if lost or down:
                    log.info("agent heartbeats missed", extra={"disconnected": lost, "down": down})
            except Exception:
                log.exception("agent heartbeat check failed")
