"""Host commands: add (simulated, or KVM joining through its agent), list, update, delete,
and maintenance in and out."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from cumulo import __version__
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import to_wire
from cumulo.db.models_infra import Cluster, Host, HostCapacity, Pod, Zone
from cumulo.services.access import ROOT_ADMIN
from cumulo.services.infra import capacity
from cumulo.services.infra import hosts as host_service

HOST_FIELDS = (
    "id",
    "name",
    "state",
    "resourcestate",
    "type",
    "ipaddress",
    "zoneid",
    "zonename",
    "podid",
    "podname",
    "clusterid",
    "clustername",
    "clustertype",
    "hypervisor",
    "hypervisorversion",
    "cpunumber",
    "cpusockets",
    "cpuspeed",
    "cpuallocated",
    "cpuused",
    "cpuwithoverprovisioning",
    "memorytotal",
    "memoryallocated",
    "memoryused",
    "memorywithoverprovisioning",
    "hosttags",
    "created",
    "lastpinged",
    "version",
    "islocalstorageactive",
    "details",
)

CpuCap = aliased(HostCapacity, name="cpu_cap")
MemCap = aliased(HostCapacity, name="mem_cap")


@cache
def hosts_select() -> Select[*tuple[Any, ...]]:
    """Plain columns in one query (no entity loading): listHosts must stay fast at thousands
    of hosts. Capacity rows ride along through two outer joins, one per type."""
    return (
        select(
            Host.id,
            Host.uuid,
            Host.name,
            Host.status,
            Host.resource_state,
            Host.type,
            Host.private_ip,
            Host.hypervisor_type,
            Host.hypervisor_version,
            Host.cpu_number,
            Host.cpu_sockets,
            Host.cpu_speed,
            Host.memory,
            Host.host_tags,
            Host.created,
            Host.last_ping,
            Host.details,
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            Pod.uuid.label("podid"),
            Pod.name.label("podname"),
            Cluster.uuid.label("clusterid"),
            Cluster.name.label("clustername"),
            Cluster.cluster_type,
            Cluster.cpu_overcommit,
            Cluster.memory_overcommit,
            CpuCap.used.label("cpu_used"),
            CpuCap.reserved.label("cpu_reserved"),
            MemCap.used.label("mem_used"),
            MemCap.reserved.label("mem_reserved"),
        )
        .join(Zone, Zone.id == Host.zone_id)
        .join(Pod, Pod.id == Host.pod_id)
        .join(Cluster, Cluster.id == Host.cluster_id)
        .outerjoin(CpuCap, (CpuCap.host_id == Host.id) & (CpuCap.type == capacity.CPU))
        .outerjoin(MemCap, (MemCap.host_id == Host.id) & (MemCap.type == capacity.MEMORY))
        .where(Host.removed.is_(None))
    )


def _percent(part: int, whole: float) -> str:
    """CloudStack shows allocation as a string such as ``12.5%``."""
    value = part * 100.0 / whole if whole else 0.0
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def host_response(row: Any) -> dict[str, Any]:
    cpu_total = row.cpu_number * row.cpu_speed
    cpu_taken = (row.cpu_used or 0) + (row.cpu_reserved or 0)
    mem_taken = (row.mem_used or 0) + (row.mem_reserved or 0)
    details = row.details or {}
    return {
        **_kvm_details(details),
        "id": row.uuid,
        "name": row.name,
        "state": row.status,
        "resourcestate": row.resource_state,
        "type": row.type,
        "ipaddress": row.private_ip,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "podid": row.podid,
        "podname": row.podname,
        "clusterid": row.clusterid,
        "clustername": row.clustername,
        "clustertype": row.cluster_type,
        "hypervisor": row.hypervisor_type,
        "hypervisorversion": row.hypervisor_version,
        "cpunumber": row.cpu_number,
        "cpusockets": row.cpu_sockets,
        "cpuspeed": row.cpu_speed,
        "cpuallocated": _percent(cpu_taken, cpu_total * row.cpu_overcommit),
        "cpuallocatedvalue": cpu_taken,
        "cpuallocatedpercentage": _percent(cpu_taken, cpu_total * row.cpu_overcommit),
        "cpuused": "0%",
        "cpuwithoverprovisioning": f"{cpu_total * row.cpu_overcommit:.1f}",
        "memorytotal": row.memory,
        "memoryallocated": mem_taken,
        "memoryallocatedbytes": mem_taken,
        "memoryallocatedpercentage": _percent(mem_taken, row.memory * row.memory_overcommit),
        "memoryused": 0,
        "memorywithoverprovisioning": f"{row.memory * row.memory_overcommit:.1f}",
        "hosttags": row.host_tags or None,
        "created": to_wire(row.created),
        "lastpinged": to_wire(row.last_ping),
        "version": details.get("version", __version__),
        "islocalstorageactive": bool(details.get("localstorage", False)),
        "hasannotations": False,
    }


def _kvm_details(details: dict[str, Any]) -> dict[str, Any]:
    """What a KVM host's agent registered that CloudStack shows under ``details``: the
    accelerator its driver chose (``kvm``, or ``tcg`` where KVM is unusable)."""
    if not details.get("accelerator"):
        return {}
    return {"details": {"accelerator": str(details["accelerator"])}}


def render(ctx: Ctx, host: Host) -> dict[str, Any]:
    ctx.session.flush()
    return host_response(ctx.session.execute(hosts_select().where(Host.id == host.id)).one())


@command(
    "addHost",
    description="Adds a new host.",
    response="host",
    roles=ROOT_ADMIN,
    entity="Host",
    fields=(*HOST_FIELDS, "agenttoken"),
)
def add_host(
    ctx: Ctx,
    zoneid: Annotated[UUIDStr, Param("the Zone ID for the host", required=True, entity="Zone")],
    podid: Annotated[UUIDStr, Param("the Pod ID for the host", required=True, entity="Pod")],
    hypervisor: Annotated[
        str,
        Param(
            "hypervisor type of the host: Simulator, or KVM (joins via cumulo agent)", required=True
        ),
    ],
    url: Annotated[str, Param("the host URL", required=True, length=2048)],
    clusterid: Annotated[
        UUIDStr | None, Param("the cluster ID for the host", entity="Cluster")
    ] = None,
    clustername: Annotated[str | None, Param("the cluster name for the host")] = None,
    username: Annotated[str | None, Param("the username for the host")] = None,
    password: Annotated[
        str | None, Param("the password for the host (never stored for simulated hosts)")
    ] = None,
    hosttags: Annotated[list[str] | None, Param("list of tags to be added to the host")] = None,
    allocationstate: Annotated[
        str | None, Param("Allocation state of this Host for allocation of new resources")
    ] = None,
) -> Listing:
    """The response is list-shaped (``count`` and ``host[]``) as CloudStack's AddHostCmd.

    A KVM host's response carries ``agenttoken``, the token its ``cumulo agent`` dials in
    with: shown this once to the root admin (the only role allowed here), stored hashed.
    """
    del username, password  # no host is logged into: agents dial in; nothing of it is kept
    place = host_service.locate_for_new_host(
        ctx.session, zoneid, podid, clusterid, clustername, hypervisor
    )
    if host_service.is_kvm(hypervisor):
        host, token = host_service.add_kvm_host(
            ctx.session, place, url=url, hosttags=hosttags, allocationstate=allocationstate
        )
        return Listing([{**render(ctx, host), "agenttoken": token}], 1)
    added = host_service.add_hosts(
        ctx.session,
        place,
        hypervisor=hypervisor,
        url=url,
        hosttags=hosttags,
        allocationstate=allocationstate,
    )
    ids = [h.id for h in added]
    rows = ctx.session.execute(hosts_select().where(Host.id.in_(ids)).order_by(Host.id)).all()
    return Listing([host_response(r) for r in rows], len(rows))


@command(
    "listHosts",
    kind=Kind.LIST,
    description="Lists hosts.",
    response="host",
    roles=ROOT_ADMIN,
    fields=HOST_FIELDS,
)
def list_hosts(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the id of the host", entity="Host")] = None,
    name: Annotated[str | None, Param("the name of the host")] = None,
    zoneid: Annotated[UUIDStr | None, Param("the Zone ID for the host", entity="Zone")] = None,
    podid: Annotated[UUIDStr | None, Param("the Pod ID for the host", entity="Pod")] = None,
    clusterid: Annotated[
        UUIDStr | None, Param("lists hosts existing in particular cluster", entity="Cluster")
    ] = None,
    type: Annotated[str | None, Param("the host type")] = None,
    state: Annotated[str | None, Param("the state of the host")] = None,
    resourcestate: Annotated[
        str | None,
        Param(
            "list hosts by resource state. Resource state represents current state determined "
            "by admin of host, value can be one of [Enabled, Disabled, Unmanaged, "
            "PrepareForMaintenance, ErrorInMaintenance, Maintenance, Error]"
        ),
    ] = None,
    hypervisor: Annotated[str | None, Param("hypervisor type of host: KVM,Simulator")] = None,
    hosttags: Annotated[str | None, Param("lists hosts with this host tag")] = None,
) -> Listing:
    stmt = hosts_select()
    exact = {
        Host.uuid: id,
        Host.name: name,
        Zone.uuid: zoneid,
        Pod.uuid: podid,
        Cluster.uuid: clusterid,
    }
    for column, value in exact.items():
        if value is not None:
            stmt = stmt.where(column == value)
    folded = {
        Host.type: type,
        Host.status: state,
        Host.resource_state: resourcestate,
        Host.hypervisor_type: hypervisor,
    }
    for column, value in folded.items():
        if value is not None:
            stmt = stmt.where(column.ilike(value))
    if hosttags is not None:
        stmt = stmt.where(("," + Host.host_tags + ",").contains(f",{hosttags},"))
    if ctx.paging.keyword:
        stmt = stmt.where(Host.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_records(stmt.order_by(Host.id))
    return Listing([host_response(r) for r in rows], total)


@command(
    "updateHost",
    description="Updates a host.",
    response="host",
    roles=ROOT_ADMIN,
    entity="Host",
    fields=HOST_FIELDS,
)
def update_host(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the host to update", required=True, entity="Host")],
    hosttags: Annotated[
        list[str] | None, Param("list of tags to be updated (replaces the host's tags)")
    ] = None,
    allocationstate: Annotated[
        str | None,
        Param("Change resource state of host, valid values are [Enable, Disable]."),
    ] = None,
    name: Annotated[str | None, Param("the new name of the host", since="4.19")] = None,
) -> dict[str, Any]:
    host = host_service.find_host(ctx.session, id)
    host_service.update_host(
        ctx.session, host, name=name, hosttags=hosttags, allocationstate=allocationstate
    )
    return render(ctx, host)


@command(
    "deleteHost",
    description="Deletes a host.",
    roles=ROOT_ADMIN,
    entity="Host",
)
def delete_host(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the host ID", required=True, entity="Host")],
    forced: Annotated[
        bool,
        Param(
            "Force delete the host. All HA enabled vms running on the host will be put to HA; "
            "HA disabled ones will be stopped"
        ),
    ] = False,
    forcedestroylocalstorage: Annotated[
        bool,
        Param(
            "Force destroy local storage on this host. All VMs created on this local storage "
            "will be destroyed"
        ),
    ] = True,
) -> Success:
    del forcedestroylocalstorage
    host = host_service.find_host(ctx.session, id)
    host_service.delete_host(ctx.session, host, forced=forced)
    return Success()


@command(
    "prepareHostForMaintenance",
    kind=Kind.ASYNC,
    description="Prepares a host for maintenance.",
    response="host",
    roles=ROOT_ADMIN,
    event="MAINT.PREPARE",
    entity="Host",
    fields=HOST_FIELDS,
)
def prepare_host_for_maintenance(
    ctx: Ctx, id: Annotated[UUIDStr, Param("the host ID", required=True, entity="Host")]
) -> Submit:
    """The transition is taken now (PrepareForMaintenance) so an illegal one is refused at
    once and a second request sees the host already preparing; the job completes it."""
    host = host_service.find_host(ctx.session, id)
    host_service.start_maintenance(host)
    return Submit(
        params={"id": host.uuid},
        instance_type="Host",
        instance_id=host.uuid,
        resource_name=host.name,
    )


@prepare_host_for_maintenance.runs
def run_prepare_host_for_maintenance(ctx: Ctx, id: str) -> dict[str, Any]:
    host = host_service.find_host(ctx.session, id)
    host_service.finish_maintenance(host)
    return render(ctx, host)


@command(
    "cancelHostMaintenance",
    kind=Kind.ASYNC,
    description="Cancels host maintenance.",
    response="host",
    roles=ROOT_ADMIN,
    event="MAINT.CANCEL",
    entity="Host",
    fields=HOST_FIELDS,
)
def cancel_host_maintenance(
    ctx: Ctx, id: Annotated[UUIDStr, Param("the host ID", required=True, entity="Host")]
) -> Submit:
    host = host_service.find_host(ctx.session, id)
    host_service.check_cancel_maintenance(host)
    return Submit(
        params={"id": host.uuid},
        instance_type="Host",
        instance_id=host.uuid,
        resource_name=host.name,
    )


@cancel_host_maintenance.runs
def run_cancel_host_maintenance(ctx: Ctx, id: str) -> dict[str, Any]:
    host = host_service.find_host(ctx.session, id)
    host_service.cancel_maintenance(host)
    return render(ctx, host)
