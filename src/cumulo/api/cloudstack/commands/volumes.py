"""Volumes: create, attach, detach, resize, migrate, delete, update, list.

Handlers check everything a request can get wrong in the request's transaction (ids,
access, states, device ids, sizes, limits), so a bad call is refused at once and changes
nothing; the jobs then drive the hosts through ``services.storage.volume_ops`` in the
``prepare`` step, and the job body renders the volume as it now stands.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.registry import CommandSpec, Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models_catalog import DiskOffering
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_infra import StoragePool
from cumulo.services.access import ADMINS
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.compute import vms
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.limits import ResourceType
from cumulo.services.runtime import Runtime
from cumulo.services.storage import uploads, volume_ops, volumes
from cumulo.services.storage.volume_states import State

GIB = 1024**3
VOLUME_FIELDS = (
    "id",
    "name",
    "zoneid",
    "zonename",
    "type",
    "deviceid",
    "virtualmachineid",
    "vmname",
    "vmdisplayname",
    "vmstate",
    "provisioningtype",
    "size",
    "virtualsize",
    "created",
    "state",
    "account",
    "domainid",
    "domain",
    "domainpath",
    "storagetype",
    "hypervisor",
    "diskofferingid",
    "diskofferingname",
    "diskofferingdisplaytext",
    "storage",
    "storageid",
    "destroyed",
    "isextractable",
    "snapshotid",
    "attached",
    "displayvolume",
    "path",
    "tags",
)
VolumeId = Annotated[UUIDStr, Param("the ID of the disk volume", required=True, entity="Volume")]


def render_volume(ctx: Ctx, uuid: str) -> dict[str, Any]:
    volume = volumes.find(ctx.session, uuid, include_removed=True)
    ctx.event_resource = (volume.uuid, volume.name)
    items = volumes.render(ctx.session, ctx.caller, [volume.id])
    return items[0] if items else {"id": volume.uuid, "state": volume.state}


def _submit(volume: Volume, created: bool = False, **params: Any) -> Submit:
    return Submit(
        params={"id": volume.uuid, **params},
        instance_type="Volume",
        instance_id=volume.uuid,
        created_id=volume.uuid if created else None,
        resource_name=volume.name,
    )


def _job(spec: CommandSpec, prepare: Any) -> None:
    spec.prepare = prepare
    spec.on_abandon = _settle
    spec.runs(_rendered)


def _settle(rt: Runtime, id: str, **_: Any) -> None:
    volume_ops.settle(rt, id)


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render_volume(ctx, id)


# --- create --------------------------------------------------------------------------------


@command(
    "createVolume",
    kind=Kind.ASYNC_CREATE,
    description="Creates a disk volume from a disk offering. This disk volume must still be "
    "attached to a virtual machine to make use of it.",
    response="volume",
    event="VOLUME.CREATE",
    entity="Volume",
    fields=VOLUME_FIELDS,
)
def create_volume(
    ctx: Ctx,
    name: Annotated[str | None, Param("the name of the disk volume")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the ID of the availability zone", entity="Zone")
    ] = None,
    diskofferingid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the disk offering. Either diskOfferingId or snapshotId must be passed in.",
            entity="DiskOffering",
        ),
    ] = None,
    size: Annotated[int | None, Param("Arbitrary volume size (GB), for a custom offering")] = None,
    snapshotid: Annotated[
        UUIDStr | None,
        Param(
            "the snapshot ID for the disk volume. Either diskOfferingId or snapshotId must be "
            "passed in.",
            entity="Snapshot",
        ),
    ] = None,
    virtualmachineid: Annotated[
        UUIDStr | None,
        Param("the ID of the virtual machine; to be used with snapshot Id", entity="UserVm"),
    ] = None,
    account: Annotated[
        str | None, Param("the account associated with the disk volume; with domainId")
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("the domain ID associated with the disk offering", entity="Domain")
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("the project associated with the volume", entity="Project")
    ] = None,
    displayvolume: Annotated[
        bool, Param("an optional field, whether to display the volume to the end user or not")
    ] = True,
    miniops: Annotated[int | None, Param("min iops")] = None,
    maxiops: Annotated[int | None, Param("max iops")] = None,
) -> Submit:
    del miniops, maxiops
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    if not displayvolume and not (ctx.caller.is_root_admin or ctx.caller.is_domain_admin):
        raise PermissionDenied("Only admins may create a volume hidden from its owner")
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid) if virtualmachineid else None
    req = volumes.CreateRequest(
        name=name,
        zone_uuid=zoneid,
        offering_uuid=diskofferingid,
        size_gib=size,
        snapshot_uuid=snapshotid,
        display=displayvolume,
    )
    volume = volumes.create(ctx.session, ctx.caller, owner, req, ctx.runtime.config)
    if vm is not None:
        volumes.check_attach(ctx.session, ctx.caller, volume, vm)
    return _submit(volume, created=True, virtualmachineid=virtualmachineid)


def _create(rt: Runtime, id: str, virtualmachineid: str | None = None) -> None:
    if virtualmachineid:
        volume_ops.attach(rt, id, virtualmachineid)


_job(create_volume, _create)


# --- upload --------------------------------------------------------------------------------


@command(
    "uploadVolume",
    kind=Kind.ASYNC,
    description="Uploads a data disk.",
    response="volume",
    event="VOLUME.UPLOAD",
    entity="Volume",
    fields=VOLUME_FIELDS,
)
def upload_volume(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the volume", required=True)],
    zoneid: Annotated[
        UUIDStr,
        Param("the ID of the zone the volume is to be hosted on", required=True, entity="Zone"),
    ],
    format: Annotated[
        str,
        Param(
            "the format for the volume. Possible values include QCOW2, OVA, and VHD.",
            required=True,
        ),
    ],
    url: Annotated[str, Param("the URL of where the volume is hosted.", required=True)],
    checksum: Annotated[str | None, Param("the checksum value of this volume.")] = None,
    account: Annotated[
        str | None, Param("an optional accountName. Must be used with domainId.")
    ] = None,
    domainid: Annotated[UUIDStr | None, Param("an optional domainId.", entity="Domain")] = None,
    projectid: Annotated[
        UUIDStr | None, Param("Upload volume for the project", entity="Project")
    ] = None,
    diskofferingid: Annotated[
        UUIDStr | None, Param("the ID of the disk offering.", entity="DiskOffering")
    ] = None,
) -> Submit:
    del diskofferingid
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    volume = uploads.create(
        ctx.session, ctx.caller, owner, name, zoneid, format, url, checksum, ctx.runtime.config
    )
    return _submit(volume, url=url, checksum=checksum)


def _upload(rt: Runtime, id: str, url: str, checksum: str | None = None) -> None:
    uploads.run(rt, id, url, checksum)


def _upload_abandoned(rt: Runtime, id: str, **_: Any) -> None:
    uploads.abandon(rt, id)


upload_volume.prepare = _upload
upload_volume.on_abandon = _upload_abandoned
upload_volume.runs(_rendered)


# --- attach and detach -------------------------------------------------------------------------


@command(
    "attachVolume",
    kind=Kind.ASYNC,
    description="Attaches a disk volume to a virtual machine.",
    response="volume",
    event="VOLUME.ATTACH",
    entity="Volume",
    fields=VOLUME_FIELDS,
)
def attach_volume(
    ctx: Ctx,
    id: VolumeId,
    virtualmachineid: Annotated[
        UUIDStr,
        Param("the ID of the virtual machine", required=True, entity="UserVm"),
    ],
    deviceid: Annotated[
        int | None,
        Param(
            "The ID of the device to map the volume to the guest OS. If no deviceID is informed, "
            "the next available deviceID will be chosen. Use 0 when volume needs to be attached "
            "as ROOT."
        ),
    ] = None,
) -> Submit:
    volume = volumes.find_for(ctx.session, ctx.caller, id)
    vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
    volumes.check_attach(ctx.session, ctx.caller, volume, vm)
    volumes.next_device_id(ctx.session, vm, deviceid)  # refused now rather than in the job
    return _submit(volume, virtualmachineid=virtualmachineid, deviceid=deviceid)


def _attach(rt: Runtime, id: str, virtualmachineid: str, deviceid: int | None = None) -> None:
    volume_ops.attach(rt, id, virtualmachineid, deviceid)


_job(attach_volume, _attach)


@command(
    "detachVolume",
    kind=Kind.ASYNC,
    description="Detaches a disk volume from a virtual machine.",
    response="volume",
    event="VOLUME.DETACH",
    entity="Volume",
    fields=VOLUME_FIELDS,
)
def detach_volume(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the disk volume", entity="Volume")] = None,
    deviceid: Annotated[int | None, Param("the device ID on the virtual machine")] = None,
    virtualmachineid: Annotated[
        UUIDStr | None,
        Param("the ID of the virtual machine where the volume is detached from", entity="UserVm"),
    ] = None,
) -> Submit:
    if id is not None and (deviceid is not None or virtualmachineid is not None):
        raise ParamError("Please provide either a volume id, or a tuple(device id, instance id)")
    if id is None:
        if deviceid is None or virtualmachineid is None:
            raise ParamError(
                "Please provide either a volume id, or a tuple(device id, instance id)"
            )
        vm = vms.find_for(ctx.session, ctx.caller, virtualmachineid)
        volume = _by_device(ctx, vm.id, deviceid)
    else:
        volume = volumes.find_for(ctx.session, ctx.caller, id)
    if volume.vm_id is None:
        raise ParamError(f"Volume {volume.name} is not attached to any VM")
    if volume.volume_type == "ROOT":
        raise ParamError("Please specify a data volume: a ROOT volume cannot be detached")
    volumes.check_idle(volume)
    owner_vm = ctx.session.get(VirtualMachine, volume.vm_id)
    if owner_vm is not None and owner_vm.state not in ("Running", "Stopped", "Destroyed"):
        raise ParamError(
            f"Please specify a VM that is either running or stopped: it is {owner_vm.state}"
        )
    return _submit(volume)


def _by_device(ctx: Ctx, vm_id: int, device: int) -> Volume:
    from sqlalchemy import select

    volume = ctx.session.scalar(
        select(Volume).where(
            Volume.vm_id == vm_id, Volume.device_id == device, Volume.removed.is_(None)
        )
    )
    if volume is None:
        raise ParamError(f"Unable to find a volume with device id {device} on the VM")
    return volume


def _detach(rt: Runtime, id: str) -> None:
    volume_ops.detach(rt, id)


_job(detach_volume, _detach)


# --- resize and migrate ------------------------------------------------------------------------


@command(
    "resizeVolume",
    kind=Kind.ASYNC,
    description="Resizes a volume",
    response="volume",
    event="VOLUME.RESIZE",
    entity="Volume",
    fields=VOLUME_FIELDS,
)
def resize_volume(
    ctx: Ctx,
    id: VolumeId,
    size: Annotated[int | None, Param("New volume size in GB")] = None,
    diskofferingid: Annotated[
        UUIDStr | None, Param("new disk offering id", entity="DiskOffering")
    ] = None,
    shrinkok: Annotated[bool, Param("Verify OK to Shrink")] = False,
    miniops: Annotated[int | None, Param("New minimum number of IOPS")] = None,
    maxiops: Annotated[int | None, Param("New maximum number of IOPS")] = None,
) -> Submit:
    del miniops, maxiops
    volume = volumes.find_for(ctx.session, ctx.caller, id)
    volumes.check_idle(volume)
    new_bytes = _new_size(ctx, volume, size, diskofferingid)
    if new_bytes == volume.size:
        raise ParamError(
            f"Going from existing size of {volume.size} to size of {new_bytes} would result "
            "in a volume size change of 0"
        )
    if new_bytes < volume.size and not shrinkok:
        raise ParamError(
            f"Going from existing size of {volume.size} to size of {new_bytes} would shrink the "
            "volume. Need to sign off by supplying the shrinkok parameter with value of true."
        )
    if new_bytes < volume.size and volume.volume_type == "ROOT":
        raise ParamError("A ROOT volume cannot be shrunk")
    volumes.check_fits(
        ctx.session, volume.account_id, {ResourceType.primary_storage: new_bytes - volume.size}
    )
    return _submit(volume, newsize=new_bytes, shrinkok=shrinkok)


def _new_size(ctx: Ctx, volume: Volume, size: int | None, offering_id: str | None) -> int:
    current = (
        ctx.session.get(DiskOffering, volume.disk_offering_id) if volume.disk_offering_id else None
    )
    if offering_id is not None:
        offering = volumes.offering_for(
            ctx.session, ctx.caller, volumes.zone_of(ctx.session, volume), offering_id
        )
        if not offering.customized:
            if size is not None:
                raise ParamError("Cannot specify a size with a disk offering that is not custom")
            return int(offering.disk_size) * GIB
        current = offering
    if size is None:
        raise ParamError("A new size (size) or a new disk offering (diskofferingid) is required")
    if size < 1:
        raise ParamError("Volume size must be a positive number of GB")
    if current is not None and not current.customized and volume.volume_type != "ROOT":
        raise ParamError(
            f"Disk offering {current.name} has a fixed size: pass a new diskofferingid to resize"
        )
    return size * GIB


def _resize(rt: Runtime, id: str, newsize: int, shrinkok: bool = False) -> None:
    volume_ops.resize(rt, id, newsize, shrinkok)


_job(resize_volume, _resize)


@command(
    "migrateVolume",
    kind=Kind.ASYNC,
    description="Migrate volume",
    response="volume",
    event="VOLUME.MIGRATE",
    entity="Volume",
    roles=ADMINS,
    fields=VOLUME_FIELDS,
)
def migrate_volume(
    ctx: Ctx,
    volumeid: Annotated[UUIDStr, Param("the ID of the volume", required=True, entity="Volume")],
    storageid: Annotated[
        UUIDStr,
        Param(
            "destination storage pool ID to migrate the volume to",
            required=True,
            entity="StoragePool",
        ),
    ],
    livemigrate: Annotated[
        bool,
        Param("if the volume should be live migrated when it is attached to a running vm"),
    ] = False,
) -> Submit:
    from sqlalchemy import select

    volume = volumes.find_for(ctx.session, ctx.caller, volumeid)
    volumes.check_idle(volume)
    pool = ctx.session.scalar(
        select(StoragePool).where(StoragePool.uuid == storageid, StoragePool.removed.is_(None))
    )
    if pool is None:
        raise ParamError(f"Unable to find storage pool with id {storageid}")
    if volume.state != State.READY or volume.pool_id is None:
        raise ParamError(f"Volume {volume.name} is not on primary storage yet: nothing to migrate")
    if pool.id == volume.pool_id:
        raise ParamError(f"Volume {volume.name} is already on storage pool {pool.name}")
    if pool.zone_id != volume.zone_id or pool.status != "Up":
        raise ParamError(f"Storage pool {pool.name} is not an Up pool of the volume's zone")
    vm = ctx.session.get(VirtualMachine, volume.vm_id) if volume.vm_id else None
    if vm is not None and vm.state != "Stopped":
        raise ParamError(
            "Live migration of a volume is not supported yet: stop the VM or detach the volume"
            if livemigrate
            else f"The VM {vm.name} of the volume must be stopped to migrate it offline"
        )
    return _submit(volume, storageid=storageid)


def _migrate(rt: Runtime, id: str, storageid: str) -> None:
    volume_ops.migrate(rt, id, storageid)


_job(migrate_volume, _migrate)


# --- delete, update, list ----------------------------------------------------------------------


@command(
    "deleteVolume",
    kind=Kind.SYNC,
    description="Deletes a detached disk volume.",
    event="VOLUME.DELETE",
    entity="Volume",
)
def delete_volume(ctx: Ctx, id: VolumeId) -> Success:
    volume = volumes.find_for(ctx.session, ctx.caller, id)
    volumes.delete_volume(ctx.session, volume)
    ctx.event_resource = (volume.uuid, volume.name)
    return Success()


@command(
    "updateVolume",
    kind=Kind.ASYNC,
    description="Updates the volume.",
    response="volume",
    event="VOLUME.UPDATE",
    entity="Volume",
    fields=VOLUME_FIELDS,
)
def update_volume(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("the ID of the disk volume", required=True, entity="Volume")],
    name: Annotated[str | None, Param("new name of the volume")] = None,
    displayvolume: Annotated[
        bool | None,
        Param("an optional field, whether to the display the volume to the end user or not."),
    ] = None,
) -> Submit:
    volume = volumes.find_for(ctx.session, ctx.caller, id)
    volumes.update(ctx.session, ctx.caller, volume, name, displayvolume)
    return _submit(volume)


update_volume.runs(_rendered)


@command(
    "listVolumes",
    kind=Kind.LIST,
    description="Lists all volumes.",
    response="volume",
    scoped=True,
    fields=VOLUME_FIELDS,
)
def list_volumes(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the disk volume", entity="Volume")] = None,
    ids: Annotated[
        list[UUIDStr] | None,
        Param("the IDs of the volumes, mutually exclusive with id", entity="Volume"),
    ] = None,
    name: Annotated[str | None, Param("the name of the disk volume")] = None,
    virtualmachineid: Annotated[
        UUIDStr | None, Param("the ID of the virtual machine", entity="UserVm")
    ] = None,
    type: Annotated[str | None, Param("the type of disk volume")] = None,
    zoneid: Annotated[
        UUIDStr | None, Param("the ID of the availability zone", entity="Zone")
    ] = None,
    podid: Annotated[
        UUIDStr | None, Param("the pod id the disk volume belongs to", entity="Pod")
    ] = None,
    clusterid: Annotated[
        UUIDStr | None, Param("the cluster id the disk volume belongs to", entity="Cluster")
    ] = None,
    storageid: Annotated[
        UUIDStr | None,
        Param("the ID of the storage pool, available to ROOT admin only", entity="StoragePool"),
    ] = None,
    hostid: Annotated[
        UUIDStr | None, Param("list volumes on specified host", entity="Host")
    ] = None,
    diskofferingid: Annotated[
        UUIDStr | None, Param("list volumes by disk offering", entity="DiskOffering")
    ] = None,
    state: Annotated[
        str | None,
        Param(
            "state of the volume. Possible values are: Ready, Allocated, Destroy, Expunging, "
            "Expunged."
        ),
    ] = None,
    displayvolume: Annotated[
        bool | None,
        Param("list resources by display flag; only ROOT admin is eligible to pass this parameter"),
    ] = None,
    tags: Annotated[
        list[dict[str, str]] | None, Param("List resources by tags (key/value pairs)")
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)
    if id is not None and ids:
        raise ParamError("id and ids can not be given together")
    for value, what in (
        (hostid, "hostid"),
        (podid, "podid"),
        (clusterid, "clusterid"),
        (storageid, "storageid"),
    ):
        if value is not None and not ctx.caller.is_root_admin:
            raise PermissionDenied(f"Parameter {what} can only be specified by a Root Admin")
    if displayvolume is not None and not ctx.caller.is_root_admin:
        raise PermissionDenied("Parameter displayvolume can only be specified by a Root Admin")
    vf = volumes.VolumeFilter(
        ids=[id] if id else list(ids or []),
        name=name,
        vm=virtualmachineid,
        type=type,
        zone=zoneid,
        pod=podid,
        storage=storageid,
        host=hostid,
        cluster=clusterid,
        offering=diskofferingid,
        state=state,
        keyword=ctx.paging.keyword,
        display=displayvolume
        if displayvolume is not None
        else (None if ctx.caller.is_root_admin else True),
        tags=tags,
    )
    page, total = ctx.page(volumes.page_select(vf, ctx.scope))
    return Listing(volumes.render(ctx.session, ctx.caller, page), total)
