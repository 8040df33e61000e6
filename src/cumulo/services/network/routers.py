"""Virtual routers on hosts: placement, pushing the rendered config, and the reconciler.

A guest network's router is a namespace on one host (``agent/network/router_ns``). The
server decides where (the host of a VM on the network; kept there while that host still has
one and is Up), records it in ``routers``, and pushes ``ApplyRouter`` with the config
rendered from the database (``router_config.render``). The network's VXLAN segment is
programmed on every host with a VM on it plus the router's host, each flooding to the
others' VTEP addresses (a host's registered address); hosts that no longer need it are told
to release it.

Every push goes through ``sync``, which compares the rendered config's hash and the segment
hosts with what the row says was applied and sends only what changed; the reconciler
(``reconcile``, run every few seconds by the server) calls it for every network with a
router or a running VM, with ``verify`` for real hosts: the agent then checks its namespace
and processes and rebuilds what is missing (agent restart, namespace deleted), so the
router's state on a host is always derived from the rows, never the other way round.

A router lives while a VM of its network is placed on a host; with none left, or once the
network is shut down or deleted, it is destroyed and the segment released everywhere.
Host calls are made outside any transaction, as in ``compute/lifecycle``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import CommandFailed, HostRef, HubError
from cumulo.agentrpc.messages import (
    ApplyRouter,
    Command,
    DestroyRouter,
    EnsureSegment,
    ReleaseSegment,
    router_config_to_wire,
)
from cumulo.common.ids import new_uuid
from cumulo.common.time import utcnow
from cumulo.db.models_compute import Nic, VirtualMachine
from cumulo.db.models_infra import Cluster, Host, Pod, TrafficType, VlanIpRange, Zone
from cumulo.db.models_network import Network, PublicIpAddress
from cumulo.db.models_routers import Router
from cumulo.services.errors import NotFound
from cumulo.services.network import gc, router_config
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)

PLACED_VM_STATES = ("Starting", "Running", "Stopping", "Migrating")  # a NIC on a host
DEFAULT_PUBLIC_BRIDGE = "cloudbr0"  # CloudStack's KVM default when no label is set
COMMAND_TIMEOUT_S = 60.0
RECONCILE_INTERVAL_S = 5.0


@dataclass
class SyncPlan:
    """What one sync sends, decided in one read of the database."""

    network_id: int
    router_id: int | None = None
    router_host: HostRef | None = None
    router_host_id: int | None = None
    apply: ApplyRouter | None = None
    config_hash: str | None = None
    generation: int = 0
    vni: int | None = None
    segment_host_ids: list[int] = field(default_factory=list)
    sends: list[tuple[HostRef, Command]] = field(default_factory=list)
    teardown: bool = False
    forget: bool = False  # the network is gone: remove the row after the teardown
    simulated: bool = False  # only simulated hosts: placement recorded, nothing rendered


def host_ref(session: Session, host: Host) -> HostRef:
    zone = session.get(Zone, host.zone_id)
    pod = session.get(Pod, host.pod_id) if host.pod_id else None
    cluster = session.get(Cluster, host.cluster_id) if host.cluster_id else None
    return HostRef(
        uuid=host.uuid,
        name=host.name,
        hypervisor=host.hypervisor_type,
        zone=zone.uuid if zone else "",
        pod=pod.uuid if pod else "",
        cluster=cluster.uuid if cluster else "",
        address=host.private_ip or "",
    )


def router_name(network: Network) -> str:
    return f"r-{network.id}-VM"


def vm_hosts(session: Session, network: Network) -> list[int]:
    """Hosts with a VM of the network placed on them, in id order."""
    rows = session.scalars(
        select(VirtualMachine.host_id)
        .join(Nic, Nic.vm_id == VirtualMachine.id)
        .where(
            Nic.network_id == network.id,
            Nic.removed.is_(None),
            VirtualMachine.state.in_(PLACED_VM_STATES),
            VirtualMachine.host_id.is_not(None),
        )
        .distinct()
    )
    return sorted(h for h in rows if h is not None)


MAINTENANCE_STATES = ("PrepareForMaintenance", "Maintenance", "ErrorInMaintenance")


def _usable(host: Host | None) -> bool:
    """A host a router may run on: a host going into maintenance hands its router to another
    host of the network (and, once its VMs are gone, releases its segments: nothing of the
    network is left on it)."""
    return (
        host is not None
        and host.removed is None
        and host.status == "Up"
        and host.resource_state not in MAINTENANCE_STATES
    )


def _public_side(session: Session, network: Network) -> tuple[str, int, str]:
    """The host bridge of the Public traffic type (its KVM label) and the public subnet's
    prefix and gateway, from the range of the source NAT (or first) address."""
    label = session.scalar(
        select(TrafficType.kvm_label).where(
            TrafficType.physical_network_id == network.physical_network_id,
            TrafficType.traffic_type == "Public",
        )
    )
    ip = session.scalar(
        select(PublicIpAddress)
        .where(PublicIpAddress.network_id == network.id)
        .order_by(PublicIpAddress.is_source_nat.desc(), PublicIpAddress.id)
    )
    rng = session.get(VlanIpRange, ip.vlan_range_id) if ip is not None else None
    if rng is None:
        return "", 0, ""
    prefix = IPv4Network(f"0.0.0.0/{rng.netmask}").prefixlen
    return label or DEFAULT_PUBLIC_BRIDGE, prefix, rng.gateway


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _alive(network: Network) -> bool:
    return (
        network.removed is None
        and network.state in ("Implemented", "Setup")
        and network.segment_id is not None
    )


def _teardown(session: Session, network: Network, router: Router | None, plan: SyncPlan) -> None:
    """Router destroyed and segment released everywhere; the row goes unless an admin
    stopped the router of a network that still exists (it stays Stopped)."""
    plan.teardown = True
    if router is None:
        return
    plan.router_id = router.id
    plan.forget = router.state != "Stopped" or network.removed is not None
    # A removed host's agent is gone for good: nothing is sent there (or retried forever).
    if router.host_id is not None:
        old = session.get(Host, router.host_id)
        if old is not None and old.removed is None:
            plan.sends.append(
                (host_ref(session, old), DestroyRouter(new_uuid(), network_id=network.uuid))
            )
    for host_id in router.segment_hosts or []:
        host = session.get(Host, host_id)
        if (
            host is not None
            and host.removed is None
            and router.vni is not None
            and host_id != router.host_id
        ):
            plan.sends.append((host_ref(session, host), ReleaseSegment(new_uuid(), router.vni)))


def plan_sync(
    rt: Runtime,
    session: Session,
    network: Network,
    *,
    hint_host_id: int | None = None,
    verify: bool = False,
) -> SyncPlan:
    """Decide placement and what to send for ``network``; writes nothing."""
    router = session.scalar(select(Router).where(Router.network_id == network.id))
    plan = SyncPlan(network_id=network.id, generation=network.router_generation)
    ids = set(vm_hosts(session, network))
    if hint_host_id is not None:
        ids.add(hint_host_id)
    hosts: dict[int, Host] = {}
    for host_id in sorted(ids):
        host = session.get(Host, host_id)
        if host is not None and host.removed is None:
            hosts[host_id] = host
    if not _alive(network) or not hosts:
        _teardown(session, network, router, plan)
        return plan
    assert network.segment_id is not None
    stopped = router is not None and router.state == "Stopped"
    current = router.host_id if router is not None else None
    if stopped:
        chosen = None  # stopped by an admin: segments only, no router anywhere
    elif current in hosts and _usable(hosts[current]):
        chosen = current
    elif hint_host_id is not None and hint_host_id in hosts:
        chosen = hint_host_id
    else:
        chosen = next((h for h in sorted(hosts) if _usable(hosts[h])), min(hosts))
    if all(host.hypervisor_type == "Simulator" for host in hosts.values()):
        return _simulated(session, network, router, hosts, chosen, plan)
    vtep = {h: host.private_ip or "" for h, host in hosts.items()}
    peers = tuple(sorted(set(vtep.values()) - {""}))
    config = router_config.render(session, network.uuid, rt.box)
    bridge, prefix, gateway = _public_side(session, network)
    wire = router_config_to_wire(config)
    plan.router_id = router.id if router is not None else None
    plan.router_host_id = chosen
    plan.router_host = host_ref(session, hosts[chosen]) if chosen is not None else None
    plan.vni = network.segment_id
    plan.segment_host_ids = sorted(hosts)
    local = vtep[chosen] if chosen is not None else ""
    plan.config_hash = _hash(wire, bridge, prefix, gateway, peers, local, stopped)
    moved = router is not None and current is not None and current != chosen
    if moved and router is not None and current is not None:
        old = session.get(Host, current)
        if old is not None:
            plan.sends.append(
                (host_ref(session, old), DestroyRouter(new_uuid(), network_id=network.uuid))
            )
    old_segment = set(router.segment_hosts or []) if router is not None else set()
    vni_changed = router is not None and router.vni not in (None, network.segment_id)
    for host_id in sorted(old_segment - set(hosts)) if not vni_changed else sorted(old_segment):
        host = session.get(Host, host_id)
        if (
            host is not None
            and host.removed is None
            and router is not None
            and router.vni is not None
        ):
            plan.sends.append((host_ref(session, host), ReleaseSegment(new_uuid(), router.vni)))
    unchanged = (
        router is not None
        and router.config_hash == plan.config_hash
        and router.host_id == chosen
        and sorted(router.segment_hosts or []) == plan.segment_host_ids
        and router.state in ("Running", "Stopped")
    )
    if unchanged and not verify:
        return plan
    for host_id in sorted(hosts):
        if host_id != chosen:
            segment = EnsureSegment(new_uuid(), network.segment_id, vtep[host_id], peers)
            plan.sends.append((host_ref(session, hosts[host_id]), segment))
    if chosen is None:
        return plan
    plan.apply = ApplyRouter(
        request_id=new_uuid(),
        network_id=network.uuid,
        config=wire,
        local_vtep=vtep[chosen],
        peers=peers,
        public_bridge=bridge if config.public_ips else "",
        public_prefix=prefix,
        public_gateway=gateway,
    )
    return plan


def _simulated(
    session: Session,
    network: Network,
    router: Router | None,
    hosts: dict[int, Host],
    chosen: int | None,
    plan: SyncPlan,
) -> SyncPlan:
    """Simulated hosts apply nothing: the placement is recorded without rendering the
    config (which grows with the network's VMs) or sending a command."""
    settled = (
        router is not None
        and router.host_id == chosen
        and sorted(router.segment_hosts or []) == sorted(hosts)
        and router.state == ("Stopped" if chosen is None else "Running")
    )
    if settled:
        return plan  # nothing to record
    plan.simulated = True
    plan.router_id = router.id if router is not None else None
    plan.router_host_id = chosen
    plan.router_host = host_ref(session, hosts[chosen]) if chosen is not None else None
    plan.vni = network.segment_id
    plan.segment_host_ids = sorted(hosts)
    plan.config_hash = None
    return plan


def _send_all(rt: Runtime, plan: SyncPlan) -> str | None:
    """Send the plan's commands; the first error's text, or None."""
    error = None
    for host, command in plan.sends:
        try:
            rt.hub.send(host, command, COMMAND_TIMEOUT_S)
        except HubError as err:
            log.warning("network command failed", extra={"host": host.name, "err": str(err)})
            error = error or f"{command.kind} on {host.name}: {err}"
    if plan.apply is not None and plan.router_host is not None:
        try:
            rt.hub.send(plan.router_host, plan.apply, COMMAND_TIMEOUT_S)
        except HubError as err:
            error = f"{plan.apply.kind} on {plan.router_host.name}: {err}"
    return error


def _record(rt: Runtime, network_uuid: str, plan: SyncPlan, error: str | None) -> None:
    with rt.db.write() as session:
        network = session.scalar(select(Network).where(Network.uuid == network_uuid))
        if network is None:
            return
        router = session.scalar(select(Router).where(Router.network_id == network.id))
        if plan.teardown:
            if router is not None and plan.forget and error is None:
                session.delete(router)
            elif router is not None:
                if error is None:
                    router.host_id = None
                    router.segment_hosts = []
                # else the hosts stay: the reconciler sends the teardown again until it is
                # done (an agent that was down gets it when it is back: nothing is left there)
                router.config_hash = None
                router.updated = utcnow()
                router.last_error = error[:1024] if error else None
            return
        if router is None:
            router = Router(name=router_name(network), network_id=network.id)
            session.add(router)
        router.host_id = plan.router_host_id
        kept = set(router.segment_hosts or []) if error is not None else set()
        # a failed release is sent again next round: the host stays listed until it answers
        router.segment_hosts = sorted(kept | set(plan.segment_host_ids))
        router.vni = plan.vni
        router.updated = utcnow()
        router.last_error = error[:1024] if error else None
        if error is not None:
            router.config_hash = None  # unknown: the next round pushes again
            return
        router.config_hash = plan.config_hash
        if plan.apply is not None or (plan.simulated and plan.router_host_id is not None):
            router.applied_generation = plan.generation
            router.state = "Running"


def sync(
    rt: Runtime,
    network_uuid: str,
    *,
    hint_host_uuid: str | None = None,
    verify: bool = False,
    strict: bool = False,
) -> None:
    """Bring the network's router and segment on hosts in line with the database.

    ``strict``: raise the host's error (a VM start must not go on without its network)."""
    with rt.db.read() as session:
        network = session.scalar(select(Network).where(Network.uuid == network_uuid))
        if network is None:
            return
        hint = None
        if hint_host_uuid is not None:
            hint = session.scalar(select(Host.id).where(Host.uuid == hint_host_uuid))
        plan = plan_sync(rt, session, network, hint_host_id=hint, verify=verify)
    if not plan.sends and plan.apply is None and not plan.teardown and not plan.simulated:
        return
    error = _send_all(rt, plan)
    _record(rt, network_uuid, plan, error)
    if error and strict:
        raise CommandFailed(error)


def vm_network_uuids(session: Session, vm_uuid: str) -> list[str]:
    """Every network the VM has (or had, for an expunged VM) a NIC on."""
    vm = session.scalar(select(VirtualMachine).where(VirtualMachine.uuid == vm_uuid))
    if vm is None:
        return []
    return sorted(
        set(
            session.scalars(
                select(Network.uuid)
                .join(Nic, Nic.network_id == Network.id)
                .where(Nic.vm_id == vm.id)
            )
        )
    )


def before_vm_start(rt: Runtime, vm_uuid: str, host_uuid: str) -> None:
    """Hook for ``compute/lifecycle``: the VM's segments (and routers, with its DHCP entry)
    are in place on ``host_uuid`` before it boots. Raises HubError when a host failed."""
    with rt.db.read() as session:
        networks = vm_network_uuids(session, vm_uuid)
    for network_uuid in networks:
        sync(rt, network_uuid, hint_host_uuid=host_uuid, strict=True)


def after_vm_change(rt: Runtime, vm_uuid: str) -> None:
    """Hook for ``compute/lifecycle`` after a VM stopped or was expunged: its networks'
    routers drop its entries, hosts left without a VM of the network release the segment.
    Never raises: the reconciler retries what failed."""
    try:
        with rt.db.read() as session:
            networks = vm_network_uuids(session, vm_uuid)
        for network_uuid in networks:
            sync(rt, network_uuid)
    except Exception:
        log.exception("network sync after a VM change failed", extra={"vm": vm_uuid})


def _verify_hosts(session: Session) -> set[int]:
    """Routers on real hosts are verified every round; simulated ones only on change."""
    return set(
        session.scalars(
            select(Host.id).where(Host.hypervisor_type != "Simulator", Host.removed.is_(None))
        )
    )


def reconcile(rt: Runtime, *, simulated: bool = True) -> int:
    """One round over every network with a router or a placed VM; how many were synced.

    Networks on real hosts are verified every round; those only on simulated hosts (where
    nothing is applied) are looked at when ``simulated``, which the server asks for every
    few rounds only."""
    with rt.db.read() as session:
        with_router = set(session.scalars(select(Network.uuid).join(Router)))
        placed = set(
            session.scalars(
                select(Network.uuid)
                .join(Nic, Nic.network_id == Network.id)
                .join(VirtualMachine, VirtualMachine.id == Nic.vm_id)
                .where(
                    Nic.removed.is_(None),
                    VirtualMachine.state == "Running",
                    Network.removed.is_(None),
                )
            )
        )
        real = _verify_hosts(session)
        verify = {
            uuid
            for uuid, host in session.execute(
                select(Network.uuid, Router.host_id).join(Router, Router.network_id == Network.id)
            )
            if host in real
        }
        real_placed = set(
            session.scalars(
                select(Network.uuid)
                .join(Nic, Nic.network_id == Network.id)
                .join(VirtualMachine, VirtualMachine.id == Nic.vm_id)
                .where(VirtualMachine.state == "Running", VirtualMachine.host_id.in_(real))
            )
        )
    count = 0
    for network_uuid in sorted(with_router | placed):
        if not simulated and network_uuid not in verify | real_placed:
            continue
        try:
            sync(rt, network_uuid, verify=network_uuid in verify | real_placed)
            count += 1
        except Exception:
            log.exception("router reconcile failed", extra={"network": network_uuid})
    try:
        gc.collect(rt, vm_hosts, sync)  # idle networks shut down after network.gc.wait
    except Exception:
        log.exception("network GC failed")
    return count


# --- admin operations (listRouters & co.) ------------------------------------------------


def find(session: Session, uuid: str) -> Router:
    router = session.scalar(select(Router).where(Router.uuid == uuid))
    if router is None:
        raise NotFound(f"Unable to find router with id {uuid}")
    return router


def network_of(session: Session, router: Router) -> Network:
    network = session.get(Network, router.network_id)
    assert network is not None
    return network


def restart_router(rt: Runtime, router_uuid: str) -> None:
    """rebootRouter: the namespace is removed and built again from the database."""
    with rt.db.write() as session:
        router = find(session, router_uuid)
        network = network_of(session, router)
        host = session.get(Host, router.host_id) if router.host_id else None
        ref = host_ref(session, host) if host is not None else None
        router.config_hash = None
        network_uuid = network.uuid
    if ref is not None:
        rt.hub.send(ref, DestroyRouter(new_uuid(), network_id=network_uuid), COMMAND_TIMEOUT_S)
    sync(rt, network_uuid, strict=True)


def stop_router(rt: Runtime, router_uuid: str) -> None:
    """stopRouter: the namespace goes; the router stays Stopped until startRouter."""
    with rt.db.write() as session:
        router = find(session, router_uuid)
        network_uuid = network_of(session, router).uuid
        host = session.get(Host, router.host_id) if router.host_id else None
        ref = host_ref(session, host) if host is not None else None
        router.state = "Stopped"
        router.config_hash = None
        router.host_id = None
    if ref is not None:
        rt.hub.send(ref, DestroyRouter(new_uuid(), network_id=network_uuid), COMMAND_TIMEOUT_S)


def start_router(rt: Runtime, router_uuid: str) -> None:
    with rt.db.write() as session:
        router = find(session, router_uuid)
        network_uuid = network_of(session, router).uuid
        if router.state == "Stopped":
            router.state = "Starting"
    sync(rt, network_uuid, strict=True)


def destroy_router(rt: Runtime, router_uuid: str) -> str:
    """destroyRouter: the namespace and the row go; a network still in use gets a new router
    from the reconciler (as CloudStack recreates a VR on the next network operation)."""
    with rt.db.write() as session:
        router = find(session, router_uuid)
        network_uuid = network_of(session, router).uuid
        host = session.get(Host, router.host_id) if router.host_id else None
        ref = host_ref(session, host) if host is not None else None
        session.delete(router)
    if ref is not None:
        rt.hub.send(ref, DestroyRouter(new_uuid(), network_id=network_uuid), COMMAND_TIMEOUT_S)
    return network_uuid
