"""Hosts: where they sit, their resource state, and the one table of its transitions.

A host has two states, as in CloudStack: ``status`` (is its agent connected: Up, Down…),
and ``resource_state`` (what the operator allows: Enabled, Disabled, maintenance). Only
``transition()`` writes ``resource_state``, and only along ``TRANSITIONS``; anything else is
an illegal transition, answered 431 with nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_infra import Cluster, Host, HostCapacity, Pod, Zone
from cumulo.services.errors import CloudError, NotFound, ParamError
from cumulo.services.infra import agents, pods, simulator
from cumulo.services.infra.zones import find_zone

HYPERVISORS = ("Simulator", "KVM")


class ResourceState(StrEnum):
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    PREPARE_FOR_MAINTENANCE = "PrepareForMaintenance"
    MAINTENANCE = "Maintenance"
    ERROR_IN_MAINTENANCE = "ErrorInMaintenance"


class Event(StrEnum):
    ENABLE = "enable"
    DISABLE = "disable"
    PREPARE_MAINTENANCE = "prepare maintenance"
    MAINTENANCE_DONE = "maintenance done"
    MAINTENANCE_FAILED = "maintenance failed"
    CANCEL_MAINTENANCE = "cancel maintenance"


S, E = ResourceState, Event
# (from, event) -> to. Enable/disable of a host already there is a harmless no-op.
TRANSITIONS: dict[tuple[ResourceState, Event], ResourceState] = {
    (S.ENABLED, E.ENABLE): S.ENABLED,
    (S.ENABLED, E.DISABLE): S.DISABLED,
    (S.DISABLED, E.DISABLE): S.DISABLED,
    (S.DISABLED, E.ENABLE): S.ENABLED,
    (S.ENABLED, E.PREPARE_MAINTENANCE): S.PREPARE_FOR_MAINTENANCE,
    (S.DISABLED, E.PREPARE_MAINTENANCE): S.PREPARE_FOR_MAINTENANCE,
    (S.ERROR_IN_MAINTENANCE, E.PREPARE_MAINTENANCE): S.PREPARE_FOR_MAINTENANCE,
    (S.PREPARE_FOR_MAINTENANCE, E.MAINTENANCE_DONE): S.MAINTENANCE,
    (S.PREPARE_FOR_MAINTENANCE, E.MAINTENANCE_FAILED): S.ERROR_IN_MAINTENANCE,
    (S.PREPARE_FOR_MAINTENANCE, E.CANCEL_MAINTENANCE): S.ENABLED,
    (S.MAINTENANCE, E.CANCEL_MAINTENANCE): S.ENABLED,
    (S.ERROR_IN_MAINTENANCE, E.CANCEL_MAINTENANCE): S.ENABLED,
}


class IllegalTransition(ParamError):
    """An operator action the host's current resource state does not allow."""


def next_state(current: str, event: Event) -> ResourceState:
    """The state ``event`` leads to from ``current``, or IllegalTransition (431)."""
    to = TRANSITIONS.get((ResourceState(current), event))
    if to is None:
        raise IllegalTransition(f"Cannot {event} a host whose resource state is {current}")
    return to


def transition(host: Host, event: Event) -> bool:
    """The only writer of ``resource_state``; True when the state changed."""
    to = next_state(host.resource_state, event)
    changed = to != host.resource_state
    host.resource_state = to
    return changed


@dataclass(frozen=True)
class Placement:
    """The zone, pod and cluster a host (or a cluster-wide pool) goes into."""

    zone: Zone
    pod: Pod
    cluster: Cluster


def find_pod(session: Session, uuid: str, zone: Zone) -> Pod:
    """The pod, which must be in ``zone`` (addHost and createStoragePool name both)."""
    pod = pods.find_pod(session, uuid)
    if pod.zone_id != zone.id:
        raise ParamError(f"Pod {uuid} doesn't belong to the zone {zone.uuid}")
    return pod


def find_cluster(session: Session, uuid: str | None, name: str | None, pod: Pod) -> Cluster:
    """By id, or by name within the pod (addHost's clustername); it must be in ``pod``."""
    if uuid is not None:
        cluster = pods.find_cluster(session, uuid)
    elif name is not None:
        found = session.scalar(
            select(Cluster).where(
                Cluster.name == name, Cluster.pod_id == pod.id, Cluster.removed.is_(None)
            )
        )
        if found is None:
            raise NotFound(f"Unable to find cluster {name}")
        cluster = found
    else:
        raise ParamError("Either clusterid or clustername must be specified")
    if cluster.pod_id != pod.id:
        raise ParamError(f"Cluster {cluster.uuid} doesn't belong to the pod {pod.uuid}")
    return cluster


def locate(
    session: Session, zoneid: str, podid: str, clusterid: str | None, clustername: str | None
) -> Placement:
    zone = find_zone(session, zoneid)
    pod = find_pod(session, podid, zone)
    return Placement(zone, pod, find_cluster(session, clusterid, clustername, pod))


def locate_for_new_host(
    session: Session,
    zoneid: str,
    podid: str,
    clusterid: str | None,
    clustername: str | None,
    hypervisor: str,
) -> Placement:
    """addHost's placement: like CloudStack, a ``clustername`` not yet in the pod makes a
    new cluster of the host's hypervisor (rolled back with the request if the add fails)."""
    zone = find_zone(session, zoneid)
    pod = find_pod(session, podid, zone)
    if clusterid is None and clustername is not None:
        existing = session.scalar(
            select(Cluster).where(
                Cluster.name == clustername, Cluster.pod_id == pod.id, Cluster.removed.is_(None)
            )
        )
        if existing is None:
            spec = pods.ClusterSpec(name=clustername, hypervisor=hypervisor)
            return Placement(zone, pod, pods.add_cluster(session, zone, pod, spec))
    return Placement(zone, pod, find_cluster(session, clusterid, clustername, pod))


def check_hypervisor(hypervisor: str, cluster: Cluster) -> str:
    """CloudStack's spelling of the hypervisor, matching the cluster's (431 otherwise)."""
    known = {h.lower(): h for h in HYPERVISORS}
    canonical = known.get(hypervisor.lower())
    if canonical is None:
        raise ParamError(f"Invalid hypervisor type {hypervisor}")
    if canonical.lower() != cluster.hypervisor_type.lower():
        raise ParamError(
            f"Cannot add host with hypervisor {canonical} to cluster {cluster.name}, "
            f"whose hypervisor is {cluster.hypervisor_type}"
        )
    return canonical


def find_host(session: Session, uuid: str) -> Host:
    host = session.scalar(select(Host).where(Host.uuid == uuid, Host.removed.is_(None)))
    if host is None:
        raise NotFound(f"Unable to find host by id {uuid}")
    return host


def allocation_event(allocationstate: str) -> Event:
    """updateHost/addHost's allocationstate (Enable | Disable) as a state-table event."""
    events = {"enable": Event.ENABLE, "disable": Event.DISABLE}
    event = events.get(allocationstate.lower())
    if event is None:
        raise ParamError(f"Invalid allocation state {allocationstate}: Enable or Disable")
    return event


def normalise_tags(hosttags: list[str]) -> str:
    """Comma-separated, trimmed, without empties or repeats (order kept)."""
    seen: dict[str, None] = {}
    for tag in hosttags:
        for part in tag.split(","):
            if part.strip():
                seen[part.strip()] = None
    return ",".join(seen)


def update_host(
    session: Session,
    host: Host,
    *,
    name: str | None = None,
    hosttags: list[str] | None = None,
    allocationstate: str | None = None,
) -> None:
    if allocationstate is not None:
        transition(host, allocation_event(allocationstate))
    if hosttags is not None:
        host.host_tags = normalise_tags(hosttags)
    if name is not None:
        if not name.strip():
            raise ParamError("Host name can't be empty")
        host.name = name.strip()


def delete_host(session: Session, host: Host, *, forced: bool) -> None:
    """CloudStack refuses unless the host is in maintenance, or the caller forces it."""
    if not forced and host.resource_state != ResourceState.MAINTENANCE:
        raise CloudError(
            f"Host {host.uuid} cannot be deleted as it is not in maintenance mode. Either put "
            "the host into maintenance or perform a forced deletion."
        )
    host.removed = utcnow()
    host.status = "Removed"
    session.execute(delete(HostCapacity).where(HostCapacity.host_id == host.id))


def start_maintenance(host: Host) -> None:
    """Enabled/Disabled → PrepareForMaintenance, checked when the request arrives."""
    transition(host, Event.PREPARE_MAINTENANCE)


def finish_maintenance(host: Host) -> None:
    """The job body: with no VMs to move yet a preparing host is at once in Maintenance.

    Idempotent for a re-run job: a host already in Maintenance stays there.
    """
    if host.resource_state == ResourceState.MAINTENANCE:
        return
    transition(host, Event.MAINTENANCE_DONE)


def check_cancel_maintenance(host: Host) -> None:
    next_state(host.resource_state, Event.CANCEL_MAINTENANCE)


def cancel_maintenance(host: Host) -> None:
    """Idempotent for a re-run job: an Enabled host (cancel already applied) stays Enabled."""
    if host.resource_state == ResourceState.ENABLED:
        return
    transition(host, Event.CANCEL_MAINTENANCE)


def add_hosts(
    session: Session,
    place: Placement,
    *,
    hypervisor: str,
    url: str,
    hosttags: list[str] | None,
    allocationstate: str | None,
) -> list[Host]:
    """addHost for simulated hosts, written at once (KVM hosts: ``add_kvm_host``)."""
    canonical = check_hypervisor(hypervisor, place.cluster)
    if canonical == "KVM":
        raise ParamError("KVM hosts join through the cumulo agent: add them with add_kvm_host")
    state = _initial_state(allocationstate)
    return simulator.add_hosts(
        session,
        place.cluster,
        url,
        hosttags=normalise_tags(hosttags or []),
        resource_state=state,
    )


def _initial_state(allocationstate: str | None) -> ResourceState:
    if allocationstate is None:
        return ResourceState.ENABLED
    return TRANSITIONS[(ResourceState.ENABLED, allocation_event(allocationstate))]


def add_kvm_host(
    session: Session,
    place: Placement,
    *,
    url: str,
    hosttags: list[str] | None,
    allocationstate: str | None,
) -> tuple[Host, str]:
    """addHost for a KVM host: the row (Connecting until its agent registers) and the
    agent's token, which the caller shows once and which is stored only hashed."""
    check_hypervisor("KVM", place.cluster)
    return agents.add_kvm_host(
        session,
        place.cluster,
        url,
        hosttags=normalise_tags(hosttags or []),
        resource_state=_initial_state(allocationstate),
    )


def is_kvm(hypervisor: str) -> bool:
    return hypervisor.lower() == "kvm"
