"""Volumes: creating, finding, checking, listing, rendering and deleting them (the sync side).

A new data volume is a row in Allocated, counted against its owner's ``volume`` and
``primary_storage`` limits in the request's transaction (532 and nothing written when over),
on no pool: it gets a file lazily, at first attach, on a pool the VM's host reaches
(``volume_ops``). Counts follow the rule in ``compute.vms``: a volume is counted while its
row is not removed, so deleting gives both back at once, before its file is cleaned up.
Every state change goes through ``volume_states.transition``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, delete, false, or_, select
from sqlalchemy.orm import Session, aliased

from cumulo.common.time import to_wire, utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_catalog import DiskOffering
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_infra import Cluster, Host, ImageStore, Pod, StoragePool, Zone
from cumulo.db.models_storage import Snapshot, SnapshotPolicy
from cumulo.db.models_tags import ResourceTag
from cumulo.services import limits, tags
from cumulo.services.access import Caller, ListScope
from cumulo.services.catalog import offerings
from cumulo.services.compute import planner
from cumulo.services.config import CUSTOM_DISK_MAX, CUSTOM_DISK_MIN, ConfigStore
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.limits import ResourceType
from cumulo.services.storage.imagestore import backend_for
from cumulo.services.storage.volume_states import Event, State, transition
from cumulo.services.usage import events as usage

GIB = 1024**3
TAG_TYPE = "Volume"
MAX_DATA_DISKS = 14  # device ids 1, 2, 4 … 15: CloudStack keeps 3 for the CD-ROM
CDROM_DEVICE = 3


def find(session: Session, uuid: str, *, include_removed: bool = False) -> Volume:
    stmt = select(Volume).where(Volume.uuid == uuid)
    if not include_removed:
        stmt = stmt.where(Volume.removed.is_(None))
    volume = session.scalar(stmt)
    if volume is None:
        raise ParamError(f"Unable to find volume with id {uuid}")
    return volume


def find_for(session: Session, caller: Caller, uuid: str) -> Volume:
    """The volume, if the caller may act on it (531 otherwise, as CloudStack's checkAccess)."""
    volume = find(session, uuid)
    owner = session.get(Account, volume.account_id)
    assert owner is not None
    caller.check_account(owner)
    return volume


def counts(volume: Volume) -> dict[ResourceType, int]:
    return {ResourceType.volume: 1, ResourceType.primary_storage: volume.size}


def check_fits(session: Session, account_id: int, deltas: dict[ResourceType, int]) -> None:
    """532 if ``deltas`` would take the owner over a limit now; nothing stays counted.

    Used by handlers whose job counts later (resize): the caller hears of the limit at once,
    and the job's own increment, in its first step, is what stays.
    """
    wanted = {k: v for k, v in deltas.items() if v > 0}
    if wanted:
        limits.check_and_increment_many(session, account_id, wanted)
        limits.decrement_many(session, account_id, wanted)


# --- create -------------------------------------------------------------------------------


@dataclass
class CreateRequest:
    name: str | None = None
    zone_uuid: str | None = None
    offering_uuid: str | None = None
    size_gib: int | None = None
    snapshot_uuid: str | None = None
    display: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def zone_for(session: Session, caller: Caller, uuid: str) -> Zone:
    zone = session.scalar(select(Zone).where(Zone.uuid == uuid, Zone.removed.is_(None)))
    if zone is None:
        raise ParamError(f"Unable to find zone by id {uuid}")
    if zone.allocation_state != "Enabled" and not caller.is_root_admin:
        raise PermissionDenied(f"Cannot perform this operation, zone {zone.name} is disabled")
    return zone


def zone_of(session: Session, volume: Volume) -> Zone:
    zone = session.get(Zone, volume.zone_id)
    assert zone is not None
    return zone


def offering_for(session: Session, caller: Caller, zone: Zone, uuid: str) -> DiskOffering:
    offering = offerings.find_disk_offering(session, uuid)
    if offering.state != "Active":
        raise ParamError(f"Disk offering {offering.name} is not active")
    if not offerings.check_visible(session, caller, "disk", offering.id):
        raise PermissionDenied(f"Disk offering {uuid} is not available to this account")
    if not session.scalar(select(offerings.in_zone("disk", offering.id, zone.id))):
        raise ParamError(f"Disk offering {offering.name} is not available in zone {zone.name}")
    return offering


def _size(session: Session, config: ConfigStore, offering: DiskOffering, gib: int | None) -> int:
    """Bytes: the offering's fixed size, or the requested one for a custom offering."""
    if not offering.customized:
        if gib is not None and gib != offering.disk_size:
            raise ParamError(
                "Cannot specify a size for a disk offering that is not custom: "
                f"{offering.name} is {offering.disk_size} GB"
            )
        return int(offering.disk_size) * GIB
    if gib is None:
        raise ParamError("This disk offering requires a custom size specified")
    low = int(config.get(session, CUSTOM_DISK_MIN))
    high = int(config.get(session, CUSTOM_DISK_MAX))
    if not low <= gib <= high:
        raise ParamError(f"Invalid disk size {gib} GB: it must be between {low} and {high} GB")
    return gib * GIB


def _snapshot(session: Session, caller: Caller, uuid: str) -> Snapshot:
    snap = session.scalar(select(Snapshot).where(Snapshot.uuid == uuid, Snapshot.removed.is_(None)))
    if snap is None:
        raise ParamError(f"Unable to find snapshot by id {uuid}")
    owner = session.get(Account, snap.account_id)
    assert owner is not None
    caller.check_account(owner)
    if snap.state != "BackedUp":
        raise ParamError(f"Snapshot {snap.name} is not backed up yet: it is in state {snap.state}")
    return snap


def create(
    session: Session, caller: Caller, owner: Account, req: CreateRequest, config: ConfigStore
) -> Volume:
    """The Allocated volume row and its counts; nothing exists on any host yet."""
    if owner.state != "enabled" and not caller.is_root_admin:
        raise PermissionDenied(f"The owner of the volume, account {owner.name}, is disabled")
    snap = _snapshot(session, caller, req.snapshot_uuid) if req.snapshot_uuid else None
    if snap is None and req.offering_uuid is None:
        raise ParamError("Either disk offering id or snapshot id must be passed while creating")
    if snap is None and req.zone_uuid is None:
        raise ParamError("Zone id is required when creating a volume from a disk offering")
    zone_uuid = req.zone_uuid
    if snap is not None:
        snap_zone = session.get(Zone, snap.zone_id)
        assert snap_zone is not None
        if zone_uuid is not None and zone_uuid != snap_zone.uuid:
            raise ParamError("A volume from a snapshot is created in the snapshot's zone")
        zone_uuid = snap_zone.uuid
    assert zone_uuid is not None
    zone = zone_for(session, caller, zone_uuid)
    offering = offering_for(session, caller, zone, req.offering_uuid) if req.offering_uuid else None
    if snap is not None:
        size = snap.size
        if offering is None:
            source = session.get(Volume, snap.volume_id)
            offering = session.get(DiskOffering, source.disk_offering_id) if source else None
    else:
        assert offering is not None
        size = _size(session, config, offering, req.size_gib)
    volume = Volume(
        name=req.name or "pending",
        account_id=owner.id,
        domain_id=owner.domain_id,
        zone_id=zone.id,
        volume_type="DATADISK",
        state=State.ALLOCATED.value,
        size=size,
        disk_offering_id=offering.id if offering else None,
        source_snapshot_id=snap.id if snap else None,
        display_volume=req.display,
        state_changed=utcnow(),
    )
    session.add(volume)
    limits.check_and_increment_many(session, owner.id, counts(volume), config=config)
    session.flush()
    if not req.name:
        volume.name = f"DATA-{volume.id}"
    usage.record_volume(session, usage.VOLUME_CREATE, volume)
    return volume


# --- attach / detach checks ------------------------------------------------------------------


def next_device_id(session: Session, vm: VirtualMachine, wanted: int | None) -> int:
    """The requested device id if free, else the lowest free one (1, 2, 4 …; 3 is the CD-ROM)."""
    taken = set(
        session.scalars(
            select(Volume.device_id).where(Volume.vm_id == vm.id, Volume.removed.is_(None))
        )
    )
    if wanted is not None:
        if wanted < 1 or wanted == CDROM_DEVICE or wanted > MAX_DATA_DISKS + 1:
            raise ParamError(
                f"deviceId {wanted} is not valid: it must be 1-{MAX_DATA_DISKS + 1}, and not "
                f"{CDROM_DEVICE} (reserved for the CD-ROM)"
            )
        if wanted in taken:
            raise ParamError(f"deviceId {wanted} is used by another volume of the VM")
        return wanted
    for device in range(1, MAX_DATA_DISKS + 2):
        if device != CDROM_DEVICE and device not in taken:
            return device
    raise ParamError(f"The VM has the maximum number of data volumes ({MAX_DATA_DISKS}) attached")


def check_attach(session: Session, caller: Caller, volume: Volume, vm: VirtualMachine) -> None:
    if volume.volume_type != "DATADISK":
        raise ParamError("Please specify a volume with the valid type: DATADISK")
    if volume.vm_id is not None:
        attached = session.get(VirtualMachine, volume.vm_id)
        raise ParamError(
            f"Volume {volume.name} is already attached to VM {attached.name if attached else '?'}"
        )
    if volume.state not in (State.ALLOCATED, State.READY, State.UPLOADED):
        raise ParamError(f"Volume {volume.name} is in state {volume.state}: it cannot be attached")
    if vm.account_id != volume.account_id:
        raise PermissionDenied("The volume and the VM belong to different accounts")
    if vm.zone_id != volume.zone_id:
        raise ParamError("Please specify a VM that is in the same zone as the volume")
    if vm.state not in ("Running", "Stopped"):
        raise ParamError(f"Please specify a VM that is either running or stopped: it is {vm.state}")


def check_idle(volume: Volume) -> None:
    """Refuse while another operation on the volume is under way."""
    if volume.state not in (State.ALLOCATED, State.READY, State.UPLOADED):
        raise ParamError(f"Volume {volume.name} is busy: it is in state {volume.state}")


# --- delete and update -----------------------------------------------------------------------


def delete_volume(session: Session, volume: Volume) -> None:
    """Destroy: counts and pool space given back now; the file goes in ``volume_ops.expunge``."""
    if volume.vm_id is not None:
        raise ParamError("Please specify a volume that is not attached to any VM.")
    if volume.volume_type == "ROOT":
        raise ParamError("Root volumes are removed with their VM")
    if volume.state not in (State.UPLOAD_ERROR, State.NOT_UPLOADED):
        check_idle(volume)
    transition(session, volume, Event.DESTROY, removed=utcnow())
    store = session.get(ImageStore, volume.upload_store_id) if volume.upload_store_id else None
    if store is not None and volume.upload_path:  # an upload never attached: its file goes
        backend_for(store).delete(volume.upload_path)
        volume.upload_path, volume.upload_store_id = None, None
    usage.record_volume(session, usage.VOLUME_DELETE, volume)
    limits.decrement_many(session, volume.account_id, counts(volume))
    if volume.pool_id is not None:
        planner.release_pool(session, volume.pool_id, volume.size)
    session.execute(
        delete(ResourceTag).where(
            ResourceTag.resource_type == TAG_TYPE, ResourceTag.resource_id == volume.id
        )
    )
    for policy in session.scalars(
        select(SnapshotPolicy).where(
            SnapshotPolicy.volume_id == volume.id, SnapshotPolicy.removed.is_(None)
        )
    ):
        policy.removed = utcnow()
    if volume.path is None:  # never had a file: nothing to clean on any host
        transition(session, volume, Event.EXPUNGE)
        transition(session, volume, Event.EXPUNGED)


def update(
    session: Session, caller: Caller, volume: Volume, name: str | None, display: bool | None
) -> None:
    if name is not None:
        if not name.strip():
            raise ParamError("Volume name can not be empty")
        volume.name = name
    if display is not None:
        if not (caller.is_root_admin or caller.is_domain_admin):
            raise PermissionDenied("Only admins may change the display flag of a volume")
        volume.display_volume = display


# --- listing ---------------------------------------------------------------------------------


@dataclass
class VolumeFilter:
    ids: Sequence[str] = ()
    name: str | None = None
    vm: str | None = None
    type: str | None = None
    zone: str | None = None
    pod: str | None = None
    storage: str | None = None
    host: str | None = None
    cluster: str | None = None
    offering: str | None = None
    state: str | None = None
    keyword: str | None = None
    display: bool | None = None
    tags: Sequence[dict[str, str]] | None = None


def _uuid_of(model: Any, uuid: str) -> Any:
    return select(model.id).where(model.uuid == uuid).scalar_subquery()


def page_select(vf: VolumeFilter, scope: ListScope) -> Select[Any]:
    """Matching volume ids in id order; scoping and filters all in SQL so paging is right."""
    v = Volume
    stmt = select(v.id).where(v.removed.is_(None))
    if scope.domain_path is not None:
        stmt = stmt.join(Domain, Domain.id == v.domain_id)
        stmt = stmt.where(scope.where(v.account_id, Domain.path))
    elif scope.account_id is not None:
        stmt = stmt.where(v.account_id == scope.account_id)
    if vf.ids:
        stmt = stmt.where(v.uuid.in_(list(vf.ids)))
    if vf.name is not None:
        stmt = stmt.where(v.name == vf.name)
    if vf.type is not None:
        stmt = stmt.where(v.volume_type == ("DATADISK" if vf.type.upper() == "DATA" else vf.type))
    if vf.state is not None:
        stmt = stmt.where(v.state == vf.state)
    if vf.keyword:
        stmt = stmt.where(or_(v.name.ilike(f"%{vf.keyword}%"), v.state.ilike(f"%{vf.keyword}%")))
    if vf.display is not None:
        stmt = stmt.where(v.display_volume.is_(vf.display))
    for column, model, uuid in (
        (v.vm_id, VirtualMachine, vf.vm),
        (v.zone_id, Zone, vf.zone),
        (v.pool_id, StoragePool, vf.storage),
        (v.disk_offering_id, DiskOffering, vf.offering),
    ):
        if uuid is not None:
            stmt = stmt.where(column == _uuid_of(model, uuid))
    if vf.pod is not None:
        pools = select(StoragePool.id).where(StoragePool.pod_id == _uuid_of(Pod, vf.pod))
        stmt = stmt.where(v.pool_id.in_(pools))
    if vf.cluster is not None:
        pools = select(StoragePool.id).where(
            StoragePool.cluster_id == _uuid_of(Cluster, vf.cluster)
        )
        stmt = stmt.where(v.pool_id.in_(pools))
    if vf.host is not None:
        vms = select(VirtualMachine.id).where(VirtualMachine.host_id == _uuid_of(Host, vf.host))
        stmt = stmt.where(v.vm_id.in_(vms))
    stmt = tags.filter_by_tags(stmt, TAG_TYPE, v.id, vf.tags)  # type: ignore[type-var]
    return stmt.order_by(v.id)


def _details(ids: Sequence[int]) -> Select[Any]:
    v = Volume
    vm = aliased(VirtualMachine)
    stmt: Select[Any] = (
        select(  # type: ignore[assignment]
            v,
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
            Zone.uuid.label("zoneid"),
            Zone.name.label("zonename"),
            vm.uuid.label("vmid"),
            vm.name.label("vmname"),
            vm.display_name.label("vmdisplayname"),
            vm.state.label("vmstate"),
            vm.hypervisor_type.label("hypervisor"),
            DiskOffering.uuid.label("offeringid"),
            DiskOffering.name.label("offeringname"),
            DiskOffering.display_text.label("offeringtext"),
            DiskOffering.provisioning_type.label("provisioning"),
            DiskOffering.storage_type.label("storagetype"),
            StoragePool.uuid.label("poolid"),
            StoragePool.name.label("poolname"),
            StoragePool.hypervisor_type.label("poolhypervisor"),
            Snapshot.uuid.label("snapshotid"),
        )
        .join(Account, Account.id == v.account_id)
        .join(Domain, Domain.id == v.domain_id)
        .join(Zone, Zone.id == v.zone_id)
        .outerjoin(vm, vm.id == v.vm_id)
        .outerjoin(DiskOffering, DiskOffering.id == v.disk_offering_id)
        .outerjoin(StoragePool, StoragePool.id == v.pool_id)
        .outerjoin(Snapshot, Snapshot.id == v.source_snapshot_id)
        .where(v.id.in_(list(ids)) if ids else false())
    )
    return stmt


def render(session: Session, caller: Caller, ids: Sequence[int]) -> list[dict[str, Any]]:
    """CloudStack's ``volume`` objects for ``ids``, in that order, in two queries."""
    if not ids:
        return []
    rows = {r[0].id: r for r in session.execute(_details(ids))}
    tag_map = tags.tags_for(session, TAG_TYPE, ids)
    out = []
    for volume_id in ids:
        row = rows.get(volume_id)
        if row is not None:
            item = _response(row, caller)
            item["tags"] = tag_map.get(volume_id, [])
            out.append(item)
    return out


def _response(row: Any, caller: Caller) -> dict[str, Any]:
    v: Volume = row[0]
    out: dict[str, Any] = {
        "id": v.uuid,
        "name": v.name,
        "zoneid": row.zoneid,
        "zonename": row.zonename,
        "type": v.volume_type,
        "size": v.size,
        "virtualsize": v.size,
        "created": to_wire(v.created),
        "state": v.state,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
        "domainpath": row.domainpath,
        "storagetype": row.storagetype or "shared",
        "provisioningtype": row.provisioning or "thin",
        "destroyed": v.state in (State.DESTROY, State.EXPUNGING, State.EXPUNGED),
        "isextractable": True,
        "displayvolume": v.display_volume,
        "hypervisor": row.hypervisor or row.poolhypervisor or "None",
    }
    optional = {
        "deviceid": v.device_id if v.vm_id is not None else None,
        "virtualmachineid": row.vmid,
        "vmname": row.vmname,
        "vmdisplayname": row.vmdisplayname,
        "vmstate": row.vmstate,
        "diskofferingid": row.offeringid,
        "diskofferingname": row.offeringname,
        "diskofferingdisplaytext": row.offeringtext,
        "storageid": row.poolid,
        "storage": row.poolname,
        "snapshotid": row.snapshotid,
        "attached": to_wire(v.attached) if v.attached and v.vm_id is not None else None,
    }
    out.update({k: val for k, val in optional.items() if val is not None})
    if caller.is_root_admin and v.path:
        out["path"] = v.path
    return out


# --- taggable and counted from the truth -------------------------------------------------------


tags.register_taggable(TAG_TYPE, tags.owned(Volume))
