"""Pods and clusters: the zone's racks and the groups of like hosts inside them.

A pod's reserved range (startip..endip) is for system use and must lie in its
gateway/netmask; two pods of one zone may not share addresses. A cluster carries the
over-provisioning factors placement applies to its hosts' raw capacity (CloudStack's
cluster-scoped ``cpu.overprovisioning.factor`` / ``mem.overprovisioning.factor``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models_infra import Cluster, Host, Pod, StoragePool, VlanIpRange, Zone
from cumulo.services.errors import ParamError, ResourceInUse
from cumulo.services.infra import ENABLED, addresses, allocation_state

HYPERVISORS = ("Simulator", "KVM")
CLUSTER_TYPES = ("CloudManaged",)


@dataclass
class PodAddresses:
    gateway: str | None = None
    netmask: str | None = None
    start_ip: str | None = None
    end_ip: str | None = None


def find_pod(session: Session, uuid: str) -> Pod:
    pod = session.scalar(select(Pod).where(Pod.uuid == uuid, Pod.removed.is_(None)))
    if pod is None:
        raise ParamError(f"Unable to find pod by id {uuid}")
    return pod


def find_cluster(session: Session, uuid: str) -> Cluster:
    cluster = session.scalar(select(Cluster).where(Cluster.uuid == uuid, Cluster.removed.is_(None)))
    if cluster is None:
        raise ParamError(f"Unable to find cluster by id {uuid}")
    return cluster


def _check_pod_name(session: Session, zone_id: int, name: str, pod_id: int | None = None) -> None:
    clash = select(Pod.id).where(Pod.zone_id == zone_id, Pod.name == name, Pod.removed.is_(None))
    if pod_id is not None:
        clash = clash.where(Pod.id != pod_id)
    if session.scalar(clash) is not None:
        raise ParamError(f"A pod with name {name} already exists in this zone")


def _check_pod_addresses(
    session: Session, zone_id: int, ips: PodAddresses, pod_id: int | None
) -> None:
    """Gateway and netmask go together; the range must fit them and miss other pods' ranges."""
    if ips.gateway is None and ips.netmask is None and ips.start_ip is None:
        if ips.end_ip is not None:
            raise ParamError("endip needs startip, gateway and netmask")
        return
    if not (ips.gateway and ips.netmask):
        raise ParamError("A pod's gateway and netmask must be given together with its IP range")
    addresses.subnet(ips.gateway, ips.netmask)
    if ips.start_ip is None:
        return
    mine = addresses.checked_range(ips.gateway, ips.netmask, ips.start_ip, ips.end_ip)
    if mine[0] <= addresses.ipv4("gateway", ips.gateway) <= mine[1]:
        raise ParamError(f"The gateway {ips.gateway} must not be inside the pod's IP range")
    others = select(Pod).where(
        Pod.zone_id == zone_id, Pod.removed.is_(None), Pod.start_ip.is_not(None)
    )
    for other in session.scalars(others):
        if other.id == pod_id or other.start_ip is None:
            continue
        theirs = (
            addresses.ipv4("startip", other.start_ip),
            addresses.ipv4("endip", other.end_ip or other.start_ip),
        )
        if addresses.overlaps(mine, theirs):
            raise ParamError(f"The IP range {mine[0]}-{mine[1]} overlaps pod {other.name}'s range")


def create_pod(
    session: Session, zone: Zone, name: str, ips: PodAddresses, state: str | None
) -> Pod:
    _check_pod_name(session, zone.id, name)
    _check_pod_addresses(session, zone.id, ips, None)
    pod = Pod(
        name=name,
        zone_id=zone.id,
        gateway=ips.gateway,
        netmask=ips.netmask,
        start_ip=ips.start_ip,
        end_ip=(ips.end_ip or ips.start_ip) if ips.start_ip else None,
        allocation_state=allocation_state(state, ENABLED),
    )
    session.add(pod)
    session.flush()
    return pod


def update_pod(
    session: Session, pod: Pod, name: str | None, ips: PodAddresses, state: str | None
) -> Pod:
    if name is not None and name != pod.name:
        _check_pod_name(session, pod.zone_id, name, pod.id)
        pod.name = name
    merged = PodAddresses(
        ips.gateway or pod.gateway,
        ips.netmask or pod.netmask,
        ips.start_ip or pod.start_ip,
        ips.end_ip or (pod.end_ip if ips.start_ip is None else None),
    )
    if ips != PodAddresses():
        _check_pod_addresses(session, pod.zone_id, merged, pod.id)
        pod.gateway, pod.netmask = merged.gateway, merged.netmask
        pod.start_ip = merged.start_ip
        pod.end_ip = (merged.end_ip or merged.start_ip) if merged.start_ip else None
    pod.allocation_state = allocation_state(state, pod.allocation_state)
    session.flush()
    return pod


def delete_pod(session: Session, pod: Pod) -> None:
    """Refused (536) while clusters, hosts or IP ranges still use the pod."""
    children = (
        ("clusters", Cluster, Cluster.pod_id),
        ("hosts", Host, Host.pod_id),
        ("IP ranges", VlanIpRange, VlanIpRange.pod_id),
    )
    for what, model, column in children:
        if session.scalar(select(exists().where(column == pod.id, model.removed.is_(None)))):
            raise ResourceInUse(f"The pod {pod.name} cannot be deleted because it has {what}")
    pod.removed = utcnow()


def hypervisor_type(value: str) -> str:
    """CloudStack resolves hypervisor names case-insensitively (HypervisorType.getType)."""
    for kind in HYPERVISORS:
        if kind.lower() == value.lower():
            return kind
    raise ParamError(
        f"Unable to resolve hypervisor type {value}: supported are {', '.join(HYPERVISORS)}"
    )


def cluster_type(value: str | None) -> str:
    if value is None:
        return CLUSTER_TYPES[0]
    for kind in CLUSTER_TYPES:
        if kind.lower() == value.lower():
            return kind
    raise ParamError(f"Unable to resolve cluster type {value}: supported is CloudManaged")


def overcommit(name: str, value: str | None, current: float) -> float:
    """CloudStack takes the ratios as strings and insists on at least 1."""
    if value is None:
        return current
    try:
        ratio = float(value)
    except ValueError:
        raise ParamError(f"Invalid value {value} for {name}: a number of 1 or more") from None
    if ratio < 1:
        raise ParamError(f"{name} must be greater than or equal to one")
    return ratio


def _check_cluster_name(
    session: Session, pod_id: int, name: str, cluster_id: int | None = None
) -> None:
    clash = select(Cluster.id).where(
        Cluster.pod_id == pod_id, Cluster.name == name, Cluster.removed.is_(None)
    )
    if cluster_id is not None:
        clash = clash.where(Cluster.id != cluster_id)
    if session.scalar(clash) is not None:
        raise ParamError(f"A cluster with name {name} already exists in this pod")


@dataclass
class ClusterSpec:
    name: str
    hypervisor: str
    cluster_type: str | None = None
    allocation_state: str | None = None
    cpu_overcommit: str | None = None
    memory_overcommit: str | None = None


def add_cluster(session: Session, zone: Zone, pod: Pod, spec: ClusterSpec) -> Cluster:
    if pod.zone_id != zone.id:
        raise ParamError(f"Pod {pod.name} does not belong to zone {zone.name}")
    _check_cluster_name(session, pod.id, spec.name)
    cluster = Cluster(
        name=spec.name,
        zone_id=zone.id,
        pod_id=pod.id,
        hypervisor_type=hypervisor_type(spec.hypervisor),
        cluster_type=cluster_type(spec.cluster_type),
        allocation_state=allocation_state(spec.allocation_state, ENABLED),
        cpu_overcommit=overcommit("cpuovercommitratio", spec.cpu_overcommit, 1.0),
        memory_overcommit=overcommit("memoryovercommitratio", spec.memory_overcommit, 1.0),
    )
    session.add(cluster)
    session.flush()
    return cluster


def update_cluster(
    session: Session, cluster: Cluster, name: str | None, state: str | None
) -> Cluster:
    if name is not None and name != cluster.name:
        _check_cluster_name(session, cluster.pod_id, name, cluster.id)
        cluster.name = name
    cluster.allocation_state = allocation_state(state, cluster.allocation_state)
    session.flush()
    return cluster


def delete_cluster(session: Session, cluster: Cluster) -> None:
    """Refused (536) while hosts or cluster-scoped storage pools remain in it."""
    children = (
        ("hosts", Host, Host.cluster_id),
        ("primary storage pools", StoragePool, StoragePool.cluster_id),
    )
    for what, model, column in children:
        if session.scalar(select(exists().where(column == cluster.id, model.removed.is_(None)))):
            raise ResourceInUse(
                f"The cluster {cluster.name} cannot be deleted because it has {what}"
            )
    cluster.removed = utcnow()


# The cluster-scoped settings CloudStack keeps per cluster, and the row column holding each.
CLUSTER_SETTINGS = {
    "cpu.overprovisioning.factor": "cpu_overcommit",
    "mem.overprovisioning.factor": "memory_overcommit",
}


def cluster_settings(cluster: Cluster) -> tuple[tuple[str, str], ...]:
    """The cluster's own values, as listConfigurations with clusterid shows them."""
    return tuple(
        (name, str(float(getattr(cluster, column)))) for name, column in CLUSTER_SETTINGS.items()
    )


def set_cluster_setting(cluster: Cluster, name: str, value: str) -> None:
    """updateConfiguration with clusterid: the value goes on the row placement reads."""
    column = CLUSTER_SETTINGS.get(name)
    if column is None:
        raise ParamError(f"Configuration {name} cannot be set at the cluster scope")
    setattr(cluster, column, overcommit(name, value, getattr(cluster, column)))
