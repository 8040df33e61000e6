"""Listing and rendering VMs: CloudStack's ``virtualmachine`` object, fast at 100,000 VMs.

A list is two queries plus a few batched ones, whatever the page size: the page of VM ids
(from ``vm_instances`` alone, with the total as a window column), then one joined query for
those ids' names (zone, template, offering, host, owner), then one query each for their NICs,
tags and affinity groups. Nothing is loaded per VM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, bindparam, cast, func, or_, select
from sqlalchemy.orm import Session, aliased

from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain, User
from cumulo.db.models_affinity import AffinityGroup, AffinityGroupVmMap
from cumulo.db.models_catalog import GuestOsType, ServiceOffering, UserData
from cumulo.db.models_compute import Nic, VirtualMachine, Volume
from cumulo.db.models_images import Template
from cumulo.db.models_infra import Cluster, Host, Pod, StoragePool, Zone
from cumulo.db.models_network import Network, SecurityGroup, SecurityGroupMember
from cumulo.services import tags
from cumulo.services.access import Caller, ListScope
from cumulo.services.compute import stats

TAG_TYPE = "UserVm"
HIDDEN_FROM_USERS = ("Destroyed", "Expunging", "Expunged")


@dataclass
class VmFilter:
    ids: Sequence[str] = ()
    name: str | None = None
    state: str | None = None
    zone: str | None = None
    template: str | None = None
    iso: str | None = None
    offering: str | None = None
    host: str | None = None
    pod: str | None = None
    cluster: str | None = None
    storage: str | None = None
    group: str | None = None
    keyword: str | None = None
    affinity_group: str | None = None
    keypair: str | None = None
    hypervisor: str | None = None
    ha: bool | None = None
    display: bool | None = None
    user: str | None = None
    user_data: str | None = None
    tags: Sequence[dict[str, str]] | None = None
    show_destroyed: bool = False


def _uuid_of(model: Any, uuid: str) -> Any:
    return select(model.id).where(model.uuid == uuid).scalar_subquery()


def page_select(vf: VmFilter, scope: ListScope) -> Select[Any]:
    """The ids of matching VMs in id order; joined to their domain only when scoped by one."""
    vm = VirtualMachine
    stmt = select(vm.id).where(vm.removed.is_(None))
    if scope.account_id is not None or scope.domain_path is not None:
        if scope.domain_path is not None:
            stmt = stmt.join(Domain, Domain.id == vm.domain_id)
            stmt = stmt.where(scope.where(vm.account_id, Domain.path))
        else:
            stmt = stmt.where(vm.account_id == scope.account_id)
    if vf.ids:
        stmt = stmt.where(vm.uuid.in_(list(vf.ids)))
    if vf.name is not None:
        stmt = stmt.where(or_(vm.name == vf.name, vm.display_name == vf.name))
    if vf.state is not None:
        stmt = stmt.where(vm.state == vf.state)
    elif not vf.show_destroyed:
        stmt = stmt.where(vm.state.not_in(HIDDEN_FROM_USERS))
    if vf.keyword:
        like = f"%{vf.keyword}%"
        stmt = stmt.where(
            or_(vm.name.ilike(like), vm.display_name.ilike(like), vm.state.ilike(like))
        )
    stmt = _by_ids(stmt, vf)
    if vf.group is not None:
        stmt = stmt.where(vm.group_name == vf.group)
    if vf.keypair is not None:
        stmt = stmt.where(cast(vm.keypairs, String).like(f'%"{vf.keypair}"%'))
    if vf.hypervisor is not None:
        stmt = stmt.where(vm.hypervisor_type == vf.hypervisor)
    if vf.ha is not None:
        stmt = stmt.where(vm.ha_enabled.is_(vf.ha))
    if vf.display is not None:
        stmt = stmt.where(vm.display_vm.is_(vf.display))
    if vf.affinity_group is not None:
        stmt = stmt.where(
            vm.id.in_(
                select(AffinityGroupVmMap.vm_id).where(
                    AffinityGroupVmMap.group_id == _uuid_of(AffinityGroup, vf.affinity_group)
                )
            )
        )
    if vf.storage is not None:
        stmt = stmt.where(
            vm.id.in_(
                select(Volume.vm_id).where(
                    Volume.pool_id == _uuid_of(StoragePool, vf.storage), Volume.removed.is_(None)
                )
            )
        )
    stmt = tags.filter_by_tags(stmt, TAG_TYPE, vm.id, vf.tags)  # type: ignore[type-var]
    return stmt.order_by(vm.id)


def page_ids(
    session: Session, stmt: Select[Any], page: int | None, pagesize: int | None
) -> tuple[list[int], int]:
    """One page of ``page_select`` and the count of all matches, as two plain queries.

    A count riding along as a window column (``count(*) OVER ()``) makes the database
    materialise and sort every match before returning the first row: 0.4 s at 100,000 VMs on
    SQLite. The page alone walks ``ix_vm_instances_removed_id_state`` in id order and stops
    after the page; the count reads the same index without touching the table. A page that
    ends short already tells the total, so the count is only run when it cannot be known.
    """
    paged = stmt
    if pagesize is not None:
        paged = stmt.limit(pagesize).offset(((page or 1) - 1) * pagesize)
    ids = [int(i) for i in session.scalars(paged)]
    skipped = ((page or 1) - 1) * pagesize if pagesize is not None else 0
    if ids and (pagesize is None or len(ids) < pagesize):
        return ids, skipped + len(ids)
    if not ids and skipped == 0:
        return [], 0
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    return ids, int(total or 0)


def _by_ids(stmt: Select[Any], vf: VmFilter) -> Select[Any]:
    vm = VirtualMachine
    pairs: list[tuple[Any, Any, str | None]] = [
        (vm.zone_id, Zone, vf.zone),
        (vm.template_id, Template, vf.template),
        (vm.iso_id, Template, vf.iso),
        (vm.service_offering_id, ServiceOffering, vf.offering),
        (vm.host_id, Host, vf.host),
        (vm.pod_id, Pod, vf.pod),
        (vm.user_id, User, vf.user),
        (vm.user_data_id, UserData, vf.user_data),
    ]
    for column, model, uuid in pairs:
        if uuid is not None:
            stmt = stmt.where(column == _uuid_of(model, uuid))
    if vf.cluster is not None:
        stmt = stmt.where(
            vm.host_id.in_(select(Host.id).where(Host.cluster_id == _uuid_of(Cluster, vf.cluster)))
        )
    return stmt


# A page of VMs is read as plain columns: ORM entities cost several times more per row.
_VM_COLUMNS = [c.label(f"vm_{c.key}") for c in VirtualMachine.__table__.columns]


class _VmRow:
    """A row's ``vm_*`` columns read as attributes (``vm.uuid``), without an ORM entity."""

    __slots__ = ("_row",)

    def __init__(self, row: Any) -> None:
        self._row = row._mapping

    def __getattr__(self, name: str) -> Any:
        return self._row[f"vm_{name}"]


def _details_base(where: Any) -> Select[Any]:
    """The page's VM columns with the names they refer to (zone, template, owner ...)."""
    vm = VirtualMachine
    iso = aliased(Template)
    stmt: Select[Any] = (
        select(
            *_VM_COLUMNS,
            Account.name.label("account"),
            Account.uuid.label("accountid"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
            User.uuid.label("userid"),
            User.username.label("username"),
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            Template.uuid.label("templateid"),
            Template.name.label("templatename"),
            Template.display_text.label("templatedisplaytext"),
            Template.password_enabled.label("passwordenabled"),
            Template.format.label("templateformat"),
            iso.uuid.label("isoid"),
            iso.name.label("isoname"),
            ServiceOffering.uuid.label("serviceofferingid"),
            ServiceOffering.name.label("serviceofferingname"),
            Host.uuid.label("hostid"),
            Host.name.label("hostname"),
            Pod.uuid.label("podid"),
            Pod.name.label("podname"),
            GuestOsType.uuid.label("ostypeid"),
            GuestOsType.display_name.label("osdisplayname"),
            UserData.uuid.label("userdataid"),
            UserData.name.label("userdataname"),
        )
        .join(Account, Account.id == vm.account_id)
        .join(Domain, Domain.id == vm.domain_id)
        .join(Zone, Zone.id == vm.zone_id)
        .outerjoin(User, User.id == vm.user_id)
        .outerjoin(Template, Template.id == vm.template_id)
        .outerjoin(iso, iso.id == vm.iso_id)
        .outerjoin(ServiceOffering, ServiceOffering.id == vm.service_offering_id)
        .outerjoin(Host, Host.id == vm.host_id)
        .outerjoin(Pod, Pod.id == vm.pod_id)
        .outerjoin(GuestOsType, GuestOsType.id == vm.guest_os_id)
        .outerjoin(UserData, UserData.id == vm.user_data_id)
        .where(where)
    )
    return stmt


# The render statements are built once and run with the page's ids bound (an expanding IN):
# building these joins and their cache keys cost more than running them for a small page.
_IDS: Any = bindparam("p_ids", expanding=True)
_DETAILS = _details_base(VirtualMachine.id.in_(_IDS))
_NICS = (
    select(Nic, Network)
    .outerjoin(Network, Network.id == Nic.network_id)
    .where(Nic.vm_id.in_(_IDS), Nic.removed.is_(None))
    .order_by(Nic.device_id)
)
_SECURITY_GROUPS = (
    select(SecurityGroupMember.vm_id, SecurityGroup)
    .join(SecurityGroup, SecurityGroup.id == SecurityGroupMember.group_id)
    .where(SecurityGroupMember.vm_id.in_(_IDS))
    .order_by(SecurityGroup.name)
)
_AFFINITY_GROUPS = (
    select(AffinityGroupVmMap.vm_id, AffinityGroup)
    .join(AffinityGroup, AffinityGroup.id == AffinityGroupVmMap.group_id)
    .where(AffinityGroupVmMap.vm_id.in_(_IDS))
    .order_by(AffinityGroup.name)
)
_ROOTS = select(Volume).where(
    Volume.vm_id.in_(_IDS), Volume.volume_type == "ROOT", Volume.removed.is_(None)
)


def _nics(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """``nic[]`` as CloudStack's NicResponse: address, network and its broadcast URI."""
    out: dict[int, list[dict[str, Any]]] = {}
    rows = session.execute(_NICS, {"p_ids": list(ids)})
    for nic, network in rows:
        item: dict[str, Any] = {
            "id": nic.uuid,
            "macaddress": nic.mac,
            "isdefault": nic.is_default,
            "traffictype": nic.traffic_type,
            "deviceid": str(nic.device_id),
            "secondaryip": [],
            "extradhcpoption": [],
        }
        if network is not None:
            item["networkid"] = network.uuid
            item["networkname"] = network.name
            item["type"] = network.guest_type
            if network.segment_id is not None:
                item["broadcasturi"] = f"vxlan://{network.segment_id}"
                item["isolationuri"] = f"vxlan://{network.segment_id}"
        for key, value in (
            ("ipaddress", nic.ip4),
            ("netmask", nic.netmask),
            ("gateway", nic.gateway),
        ):
            if value:
                item[key] = value
        out.setdefault(nic.vm_id, []).append(item)
    return out


def _security_groups(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    rows = session.execute(_SECURITY_GROUPS, {"p_ids": list(ids)})
    for vm_id, group in rows:
        item = {"id": group.uuid, "name": group.name}
        if group.description:
            item["description"] = group.description
        out.setdefault(vm_id, []).append(item)
    return out


def _groups(session: Session, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    rows = session.execute(_AFFINITY_GROUPS, {"p_ids": list(ids)})
    for vm_id, group in rows:
        item = {"id": group.uuid, "name": group.name, "type": group.type}
        if group.description:
            item["description"] = group.description
        out.setdefault(vm_id, []).append(item)
    return out


def _roots(session: Session, ids: Sequence[int]) -> dict[int, Volume]:
    return {
        v.vm_id: v for v in session.scalars(_ROOTS, {"p_ids": list(ids)}) if v.vm_id is not None
    }


def render(session: Session, caller: Caller, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The ``virtualmachine`` objects of ``ids``, in that order."""
    if not ids:
        return []
    rows = {r.vm_id: r for r in session.execute(_DETAILS, {"p_ids": list(ids)})}
    nics, groups = _nics(session, ids), _groups(session, ids)
    sgs = _security_groups(session, ids)
    tag_map, roots = tags.tags_for(session, TAG_TYPE, ids), _roots(session, ids)
    sampled = stats.for_vms(session, ids)  # cpuused, networkkbsread ... when known
    out = []
    for vm_id in ids:
        row = rows.get(vm_id)
        if row is None:
            continue
        item = _vm_response(row, caller)
        item["nic"] = nics.get(vm_id, [])
        item["affinitygroup"] = groups.get(vm_id, [])
        item["tags"] = tag_map.get(vm_id, [])
        item["securitygroup"] = sgs.get(vm_id, [])
        item.update(sampled.get(vm_id, {}))
        root = roots.get(vm_id)
        if root is not None:
            item["rootdeviceid"] = root.device_id or 0
            item["rootdevicetype"] = "ROOT"
        out.append(item)
    return out


def _vm_response(row: Any, caller: Caller) -> dict[str, Any]:
    vm = _VmRow(row)
    out: dict[str, Any] = {
        "id": vm.uuid,
        "name": vm.name,
        "displayname": vm.display_name,
        "account": row.account,
        "accountid": row.accountid,
        "userid": row.userid,
        "username": row.username,
        "domainid": row.domainid,
        "domain": row.domain,
        "domainpath": row.domainpath,
        "created": to_wire(vm.created),
        "lastupdated": to_wire(vm.state_changed),
        "state": vm.state,
        "haenable": vm.ha_enabled,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "templateid": row.templateid,
        "templatename": row.templatename,
        "templatedisplaytext": row.templatedisplaytext,
        "templateformat": row.templateformat,
        "passwordenabled": bool(row.passwordenabled),
        "serviceofferingid": row.serviceofferingid,
        "serviceofferingname": row.serviceofferingname,
        "cpunumber": vm.cpu_number,
        "cpuspeed": vm.cpu_speed,
        "memory": vm.memory,
        "guestosid": row.ostypeid,
        "ostypeid": row.ostypeid,
        "osdisplayname": row.osdisplayname,
        "hypervisor": vm.hypervisor_type,
        "displayvm": vm.display_vm,
        "isdynamicallyscalable": vm.dynamically_scalable,
        "details": {k: str(v) for k, v in (vm.details or {}).items()},
    }
    if vm.group_name:
        out["group"] = vm.group_name
    if vm.keypairs:
        out["keypairs"] = ",".join(vm.keypairs)
    if row.isoid:
        out["isoid"], out["isoname"] = row.isoid, row.isoname
    if row.userdataid:
        out["userdataid"], out["userdataname"] = row.userdataid, row.userdataname
    if caller.is_root_admin:
        out["instancename"] = vm.instance_name
        if row.hostid:
            out["hostid"], out["hostname"] = row.hostid, row.hostname
        if row.podid:
            out["podid"], out["podname"] = row.podid, row.podname
    if vm.state == "Error" and vm.error and caller.is_root_admin:
        out["details"]["error"] = vm.error
    return out


def visible_destroyed(caller: Caller, allowed_for_users: bool) -> bool:
    """Admins see destroyed VMs; users only when allow.user.view.destroyed.vm says so."""
    return bool(caller.is_root_admin or caller.is_domain_admin or allowed_for_users)
