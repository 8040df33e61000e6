"""Snapshots, snapshot policies, and templates made from snapshots or volumes.

createSnapshot writes the row (and its counts) in the request, then the job exports it to
secondary storage through the volume's host (``services.storage.snapshots``); deleteSnapshot
and revertSnapshot are jobs too, as in CloudStack. createTemplate makes a template from a
snapshot or a stopped VM's volume (``services.storage.private_templates``).
"""

from __future__ import annotations

from typing import Annotated, Any

from sqlalchemy import select

from cumulo.api.cloudstack.commands import templates as template_commands
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_compute import Volume
from cumulo.db.models_images import Template
from cumulo.db.models_storage import Snapshot, SnapshotPolicy
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.errors import ParamError
from cumulo.services.runtime import Runtime
from cumulo.services.storage import (
    private_templates,
    snapshot_policies,
    snapshot_scheduler,
    snapshots,
    volumes,
)

SNAPSHOT_FIELDS = (
    "id",
    "name",
    "account",
    "domainid",
    "domain",
    "domainpath",
    "zoneid",
    "zonename",
    "volumeid",
    "volumename",
    "volumetype",
    "volumestate",
    "snapshottype",
    "intervaltype",
    "state",
    "created",
    "virtualsize",
    "physicalsize",
    "revertable",
    "locationtype",
    "status",
    "tags",
)
POLICY_FIELDS = ("id", "volumeid", "schedule", "intervaltype", "maxsnaps", "timezone", "fordisplay")
SnapshotId = Annotated[UUIDStr, Param("The ID of the snapshot", required=True, entity="Snapshot")]


def render_snapshot(ctx: Ctx, uuid: str) -> dict[str, Any]:
    snap = ctx.session.scalar(select(Snapshot).where(Snapshot.uuid == uuid))
    if snap is None:
        raise ParamError(f"Unable to find snapshot with id {uuid}")
    ctx.event_resource = (snap.uuid, snap.name)
    items = snapshots.render(ctx.session, ctx.caller, [snap.id])
    return items[0] if items else {"id": snap.uuid, "state": snap.state}


def _submit(snap: Snapshot, created: bool = False, **params: Any) -> Submit:
    return Submit(
        params={"id": snap.uuid, **params},
        instance_type="Snapshot",
        instance_id=snap.uuid,
        created_id=snap.uuid if created else None,
        resource_name=snap.name,
    )


@command(
    "createSnapshot",
    kind=Kind.ASYNC_CREATE,
    description="Creates an instant snapshot of a volume.",
    response="snapshot",
    event="SNAPSHOT.CREATE",
    entity="Snapshot",
    fields=SNAPSHOT_FIELDS,
)
def create_snapshot(
    ctx: Ctx,
    volumeid: Annotated[
        UUIDStr, Param("The ID of the disk volume", required=True, entity="Volume")
    ],
    name: Annotated[str | None, Param("the name of the snapshot")] = None,
    account: Annotated[
        str | None,
        Param(
            "The account of the snapshot. The account parameter must be used "
            "with the domainId parameter."
        ),
    ] = None,
    domainid: Annotated[
        UUIDStr | None, Param("The domain ID of the snapshot.", entity="Domain")
    ] = None,
    policyid: Annotated[
        UUIDStr | None, Param("policy id of the snapshot", entity="SnapshotPolicy")
    ] = None,
    quiescevm: Annotated[bool, Param("quiesce vm if true")] = False,
    asyncbackup: Annotated[bool, Param("asynchronous backup if true")] = False,
    tags: Annotated[list[dict[str, str]] | None, Param("Map of tags (key/value pairs)")] = None,
) -> Submit:
    del quiescevm, asyncbackup, policyid, tags
    if account is not None or domainid is not None:
        resolve_owner(ctx.session, ctx.caller, account, domainid)
    volume = volumes.find_for(ctx.session, ctx.caller, volumeid)
    snap = snapshots.create(ctx.session, ctx.caller, volume, name, ctx.runtime.config)
    return _submit(snap, created=True)


def _take(rt: Runtime, id: str) -> None:
    snapshots.take(rt, id)
    snapshot_scheduler.prune(rt, id)  # a policy's snapshot: keep only its maxsnaps newest


def _abandoned(rt: Runtime, id: str, **_: Any) -> None:
    snapshots.fail(rt, id, "the snapshot job was abandoned: the servers running it stopped")


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render_snapshot(ctx, id)


create_snapshot.prepare = _take
create_snapshot.on_abandon = _abandoned
create_snapshot.runs(_rendered)


@command(
    "deleteSnapshot",
    kind=Kind.ASYNC,
    description="Deletes a snapshot of a disk volume.",
    event="SNAPSHOT.DELETE",
    entity="Snapshot",
)
def delete_snapshot(ctx: Ctx, id: SnapshotId) -> Submit:
    snap = snapshots.find_for(ctx.session, ctx.caller, id)
    snapshots.check_deletable(snap)
    return _submit(snap)


def _delete(rt: Runtime, id: str) -> None:
    snapshots.delete(rt, id)


def _deleted(ctx: Ctx, id: str) -> Success:
    snap = ctx.session.scalar(select(Snapshot).where(Snapshot.uuid == id))
    if snap is not None:
        ctx.event_resource = (snap.uuid, snap.name)
    return Success()


delete_snapshot.prepare = _delete
delete_snapshot.runs(_deleted)


@command(
    "revertSnapshot",
    kind=Kind.ASYNC,
    description="This is supposed to revert a volume snapshot. This command is only supported "
    "with KVM so far",
    response="snapshot",
    event="SNAPSHOT.REVERT",
    entity="Snapshot",
    fields=SNAPSHOT_FIELDS,
)
def revert_snapshot(ctx: Ctx, id: SnapshotId) -> Submit:
    snap = snapshots.find_for(ctx.session, ctx.caller, id)
    snapshots.check_revert(ctx.session, snap)
    return _submit(snap)


def _revert(rt: Runtime, id: str) -> None:
    snapshots.revert(rt, id)


revert_snapshot.prepare = _revert
revert_snapshot.runs(_rendered)


@command(
    "listSnapshots",
    kind=Kind.LIST,
    description="Lists all available snapshots for the account.",
    response="snapshot",
    scoped=True,
    fields=SNAPSHOT_FIELDS,
)
def list_snapshots(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("lists snapshot by snapshot ID", entity="Snapshot")] = None,
    ids: Annotated[
        list[UUIDStr] | None,
        Param("the IDs of the snapshots, mutually exclusive with id", entity="Snapshot"),
    ] = None,
    name: Annotated[str | None, Param("lists snapshot by snapshot name")] = None,
    volumeid: Annotated[UUIDStr | None, Param("the ID of the disk volume", entity="Volume")] = None,
    intervaltype: Annotated[
        str | None,
        Param("valid values are HOURLY, DAILY, WEEKLY, and MONTHLY."),
    ] = None,
    snapshottype: Annotated[str | None, Param("valid values are MANUAL or RECURRING.")] = None,
    zoneid: Annotated[UUIDStr | None, Param("list snapshots by zone id", entity="Zone")] = None,
    state: Annotated[str | None, Param("state of the snapshot")] = None,
    tags: Annotated[
        list[dict[str, str]] | None, Param("List resources by tags (key/value pairs)")
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)
    if id is not None and ids:
        raise ParamError("id and ids can not be given together")
    interval = intervaltype
    if snapshottype is not None and snapshottype.upper() == "MANUAL":
        interval = "MANUAL"
    sf = snapshots.SnapshotFilter(
        ids=[id] if id else list(ids or []),
        name=name,
        volume=volumeid,
        interval=interval,
        zone=zoneid,
        state=state,
        keyword=ctx.paging.keyword,
        tags=tags,
    )
    page, total = ctx.page(snapshots.page_select(sf, ctx.scope))
    return Listing(snapshots.render(ctx.session, ctx.caller, page), total)


# --- templates from snapshots and volumes --------------------------------------------------------


@command(
    "createTemplate",
    kind=Kind.ASYNC_CREATE,
    description="Creates a template of a virtual machine. The virtual machine must be in a "
    "STOPPED state. A template created from this command is automatically designated as a "
    "private template visible to the account that created it.",
    response="template",
    event="TEMPLATE.CREATE",
    entity="Template",
    fields=template_commands.TEMPLATE_FIELDS,
)
def create_template(
    ctx: Ctx,
    name: Annotated[str, Param("the name of the template", required=True)],
    displaytext: Annotated[
        str | None, Param("The display text of the template, defaults to the name")
    ] = None,
    ostypeid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the OS Type that best represents the OS of this template.",
            entity="GuestOsType",
        ),
    ] = None,
    snapshotid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the snapshot the template is being created from. Either this "
            "parameter, or volumeId has to be passed in",
            entity="Snapshot",
        ),
    ] = None,
    volumeid: Annotated[
        UUIDStr | None,
        Param(
            "the ID of the disk volume the template is being created from. Either this "
            "parameter, or snapshotId has to be passed in",
            entity="Volume",
        ),
    ] = None,
    ispublic: Annotated[bool, Param("true if this template is a public template")] = False,
    isfeatured: Annotated[bool, Param("true if this template is a featured template")] = False,
    passwordenabled: Annotated[
        bool, Param("true if the template supports the password reset feature")
    ] = False,
    isdynamicallyscalable: Annotated[
        bool, Param("true if template contains XS/VMWare tools inorder to support dynamic scaling")
    ] = False,
    bits: Annotated[int, Param("32 or 64 bit")] = 64,
    account: Annotated[str | None, Param("the account of the template; with domainid")] = None,
    domainid: Annotated[
        UUIDStr | None, Param("the domain of the template", entity="Domain")
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("the project of the template", entity="Project")
    ] = None,
) -> Submit:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    snap = snapshots.find_for(ctx.session, ctx.caller, snapshotid) if snapshotid else None
    volume = volumes.find_for(ctx.session, ctx.caller, volumeid) if volumeid else None
    req = private_templates.TemplateRequest(
        name=name,
        display_text=displaytext or name,
        os_type_uuid=ostypeid,
        is_public=ispublic,
        is_featured=isfeatured,
        password_enabled=passwordenabled,
        is_dynamically_scalable=isdynamicallyscalable,
        bits=bits,
    )
    template = private_templates.create(ctx.session, ctx.caller, owner, req, snap, volume)
    return Submit(
        params={"id": template.uuid, "snapshotid": snapshotid, "volumeid": volumeid},
        instance_type="Template",
        instance_id=template.uuid,
        created_id=template.uuid,
        resource_name=template.name,
    )


def _export(rt: Runtime, id: str, snapshotid: str | None, volumeid: str | None) -> None:
    private_templates.export(rt, id, snapshotid, volumeid)


def _template_abandoned(rt: Runtime, id: str, **_: Any) -> None:
    private_templates.give_up(rt, id, "the createTemplate job was abandoned")


def _template(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    template = ctx.session.scalar(select(Template).where(Template.uuid == id))
    if template is None:
        raise ParamError(f"Unable to find template with id {id}")
    return template_commands.render_one(ctx, template)


create_template.prepare = _export
create_template.on_abandon = _template_abandoned
create_template.runs(_template)


# --- snapshot policies ---------------------------------------------------------------------------


def _policy(ctx: Ctx, uuid: str) -> tuple[SnapshotPolicy, Volume]:
    policy = ctx.session.scalar(
        select(SnapshotPolicy).where(SnapshotPolicy.uuid == uuid, SnapshotPolicy.removed.is_(None))
    )
    if policy is None:
        raise ParamError(f"Unable to find snapshot policy with id {uuid}")
    owner = ctx.session.get(Account, policy.account_id)
    assert owner is not None
    ctx.caller.check_account(owner)
    volume = ctx.session.get(Volume, policy.volume_id)
    assert volume is not None
    return policy, volume


@command(
    "createSnapshotPolicy",
    kind=Kind.SYNC,
    description="Creates a snapshot policy for the account.",
    response="snapshotpolicy",
    event="SNAPSHOTPOLICY.CREATE",
    entity="SnapshotPolicy",
    fields=POLICY_FIELDS,
)
def create_snapshot_policy(
    ctx: Ctx,
    volumeid: Annotated[
        UUIDStr, Param("the ID of the disk volume", required=True, entity="Volume")
    ],
    intervaltype: Annotated[
        str, Param("valid values are HOURLY, DAILY, WEEKLY, and MONTHLY", required=True)
    ],
    schedule: Annotated[
        str,
        Param(
            "time the snapshot is scheduled to be taken. Format is: * if HOURLY, MM * if "
            "DAILY, MM:HH * if WEEKLY, MM:HH:DD (1-7) * if MONTHLY, MM:HH:DD (1-28)",
            required=True,
        ),
    ],
    timezone: Annotated[str, Param("Specifies a timezone for this command.", required=True)],
    maxsnaps: Annotated[int, Param("maximum number of snapshots to retain", required=True)],
    fordisplay: Annotated[
        bool, Param("an optional field, whether to the display the policy to the end user or not")
    ] = True,
) -> dict[str, Any]:
    volume = volumes.find_for(ctx.session, ctx.caller, volumeid)
    policy = snapshot_policies.create(
        ctx.session, volume, intervaltype, schedule, timezone, maxsnaps, fordisplay
    )
    ctx.event_resource = (policy.uuid, None)
    return snapshot_policies.render(policy, volume.uuid)


@command(
    "listSnapshotPolicies",
    kind=Kind.LIST,
    description="Lists snapshot policies.",
    response="snapshotpolicy",
    scoped=True,
    fields=POLICY_FIELDS,
)
def list_snapshot_policies(
    ctx: Ctx,
    volumeid: Annotated[UUIDStr | None, Param("the ID of the disk volume", entity="Volume")] = None,
    id: Annotated[
        UUIDStr | None, Param("the ID of the snapshot policy", entity="SnapshotPolicy")
    ] = None,
    fordisplay: Annotated[bool | None, Param("list resources by display flag")] = None,
) -> Listing:
    stmt = (
        select(SnapshotPolicy, Volume.uuid)
        .join(Volume, Volume.id == SnapshotPolicy.volume_id)
        .join(Domain, Domain.id == Volume.domain_id)
        .where(SnapshotPolicy.removed.is_(None), ctx.scope.where(Volume.account_id, Domain.path))
    )
    if volumeid is not None:
        volume = volumes.find_for(ctx.session, ctx.caller, volumeid)
        stmt = stmt.where(SnapshotPolicy.volume_id == volume.id)
    if id is not None:
        _policy(ctx, id)
        stmt = stmt.where(SnapshotPolicy.uuid == id)
    if fordisplay is not None:
        stmt = stmt.where(SnapshotPolicy.display.is_(fordisplay))
    rows, total = ctx.page_rows(stmt.order_by(SnapshotPolicy.id))
    return Listing([snapshot_policies.render(p, v) for p, v in rows], total)


@command(
    "deleteSnapshotPolicies",
    kind=Kind.SYNC,
    description="Deletes snapshot policies for the account.",
    event="SNAPSHOTPOLICY.DELETE",
    entity="SnapshotPolicy",
)
def delete_snapshot_policies(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("the Id of the snapshot policy", entity="SnapshotPolicy")
    ] = None,
    ids: Annotated[
        list[UUIDStr] | None,
        Param("list of snapshots policy IDs separated by comma", entity="SnapshotPolicy"),
    ] = None,
) -> Success:
    wanted = ([id] if id else []) + list(ids or [])
    if not wanted:
        raise ParamError("Either id or ids parameter must be specified")
    found = [_policy(ctx, uuid)[0] for uuid in wanted]
    for policy in found:
        policy.removed = utcnow()
    return Success()


@command(
    "updateSnapshotPolicy",
    kind=Kind.ASYNC,
    description="Updates the snapshot policy.",
    response="snapshotpolicy",
    event="SNAPSHOTPOLICY.UPDATE",
    entity="SnapshotPolicy",
    fields=POLICY_FIELDS,
)
def update_snapshot_policy(
    ctx: Ctx,
    id: Annotated[
        UUIDStr, Param("the ID of the snapshot policy", required=True, entity="SnapshotPolicy")
    ],
    fordisplay: Annotated[
        bool | None, Param("an optional field, whether to the display the snapshot policy")
    ] = None,
) -> Submit:
    policy, _ = _policy(ctx, id)
    return Submit(
        params={"id": policy.uuid, "fordisplay": fordisplay},
        instance_type="SnapshotPolicy",
        instance_id=policy.uuid,
    )


def _update_policy(ctx: Ctx, id: str, fordisplay: bool | None = None) -> dict[str, Any]:
    policy, volume = _policy(ctx, id)
    if fordisplay is not None:
        policy.display = fordisplay
    return snapshot_policies.render(policy, volume.uuid)


update_snapshot_policy.runs(_update_policy)
