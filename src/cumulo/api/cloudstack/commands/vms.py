"""The VM lifecycle: deploy, start, stop, reboot, destroy, recover, expunge, list.

Handlers check everything a request can get wrong (ids, permissions, states, limits) in the
request's transaction, so a bad call is refused at once and changes nothing; the jobs then
drive the hosts through ``services.compute.lifecycle``, whose steps commit one by one around
the host calls. A job's ``prepare`` step does that work outside any transaction, and its body
renders the VM as it now stands, in the same transaction that records the job's success.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.registry import CommandSpec, Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Account
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.compute import lifecycle, views, vms
from cumulo.services.compute.states import State
from cumulo.services.config import ALLOW_USER_EXPUNGE_RECOVER_VM, ALLOW_USER_VIEW_DESTROYED_VM
from cumulo.services.errors import CloudError, ParamError, PermissionDenied
from cumulo.services.network import nics as guest_nics
from cumulo.services.network import security_groups
from cumulo.services.runtime import Runtime

VM_FIELDS = (
    "id",
    "name",
    "displayname",
    "account",
    "userid",
    "username",
    "domainid",
    "domain",
    "domainpath",
    "created",
    "lastupdated",
    "state",
    "haenable",
    "group",
    "zoneid",
    "zonename",
    "hostid",
    "hostname",
    "podid",
    "podname",
    "instancename",
    "templateid",
    "templatename",
    "templatedisplaytext",
    "passwordenabled",
    "password",
    "isoid",
    "isoname",
    "serviceofferingid",
    "serviceofferingname",
    "cpunumber",
    "cpuspeed",
    "memory",
    "guestosid",
    "ostypeid",
    "osdisplayname",
    "rootdeviceid",
    "rootdevicetype",
    "hypervisor",
    "keypairs",
    "userdataid",
    "userdataname",
    "displayvm",
    "isdynamicallyscalable",
    "details",
    "nic",
    "securitygroup",
    "affinitygroup",
    "tags",
    "cpuused",
    "networkkbsread",
    "networkkbswrite",
    "diskkbsread",
    "diskkbswrite",
    "diskioread",
    "diskiowrite",
    "memorykbs",
)
VmId = Annotated[UUIDStr, Param("The ID of the virtual machine", required=True, entity="UserVm")]


def render_vm(ctx: Ctx, uuid: str) -> dict[str, Any]:
    vm = vms.find(ctx.session, uuid, include_removed=True)
    items = views.render(ctx.session, ctx.caller, [vm.id])
    ctx.event_resource = (vm.uuid, vm.name)
    return items[0] if items else {"id": vm.uuid, "state": vm.state}


def _vm_submit(vm: Any, **params: Any) -> Submit:
    return Submit(
        params={"id": vm.uuid, **params},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


def _settle(rt: Runtime, id: str, **_: Any) -> None:
    lifecycle.settle(rt, id)


# --- deploy ---------------------------------------------------------------------------


@command(
    "deployVirtualMachine",
    kind=Kind.ASYNC_CREATE,
    description="Creates and automatically starts a virtual machine based on a service "
    "offering, disk offering, and template.",
    response="virtualmachine",
    event="VM.CREATE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def deploy_virtual_machine(
    ctx: Ctx,
    serviceofferingid: Annotated[
        UUIDStr,
        Param(
            "the ID of the service offering for the virtual machine",
            required=True,
            entity="ServiceOffering",
        ),
    ],
    templateid: Annotated[
        UUIDStr,
        Param("the ID of the template for the virtual machine", required=True, entity="Template"),
    ],
    zoneid: Annotated[
        UUIDStr, Param("availability zone for the virtual machine", required=True, entity="Zone")
    ],
    name: Annotated[str | None, Param("host name for the virtual machine")] = None,
    displayname: Annotated[
        str | None, Param("an optional user generated name for the virtual machine")
    ] = None,
    group: Annotated[str | None, Param("an optional group for the virtual machine")] = None,
    account: Annotated[
        str | None,
        Param("an optional account for the virtual machine. Must be used with domainId."),
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "an optional domainId for the virtual machine. If the account parameter is used, "
            "domainId must also be used.",
            entity="Domain",
        ),
    ] = None,
    projectid: Annotated[
        UUIDStr | None, Param("Deploy vm for the project", entity="Project")
    ] = None,
    hostid: Annotated[
        UUIDStr | None,
        Param(
            "destination Host ID to deploy the VM to - parameter available for root admin only",
            entity="Host",
        ),
    ] = None,
    hypervisor: Annotated[
        str | None, Param("the hypervisor on which to deploy the virtual machine")
    ] = None,
    keypair: Annotated[
        str | None, Param("name of the ssh key pair used to login to the virtual machine")
    ] = None,
    keypairs: Annotated[
        list[str] | None, Param("names of the ssh key pairs used to login to the virtual machine")
    ] = None,
    userdata: Annotated[
        str | None,
        Param(
            "an optional binary data that can be sent to the virtual machine upon a successful "
            "deployment. This binary data must be base64 encoded before adding it to the request."
        ),
    ] = None,
    userdataid: Annotated[
        UUIDStr | None, Param("the ID of the Userdata", entity="UserData")
    ] = None,
    affinitygroupids: Annotated[
        list[UUIDStr] | None,
        Param(
            "comma separated list of affinity groups id that are going to be applied to the "
            "virtual machine. Mutually exclusive with affinitygroupnames parameter",
            entity="AffinityGroup",
        ),
    ] = None,
    affinitygroupnames: Annotated[
        list[str] | None,
        Param(
            "comma separated list of affinity groups names that are going to be applied to the "
            "virtual machine.Mutually exclusive with affinitygroupids parameter"
        ),
    ] = None,
    startvm: Annotated[
        bool, Param("true if start vm after creating; defaulted to true if not specified")
    ] = True,
    rootdisksize: Annotated[
        int | None,
        Param("Optional field to resize root disk on deploy. Value is in GB."),
    ] = None,
    networkids: Annotated[
        list[UUIDStr] | None,
        Param("list of network ids used by virtual machine.", entity="Network"),
    ] = None,
    details: Annotated[
        list[dict[str, str]] | None,
        Param(
            "used to specify the custom parameters. 'extraconfig' is not allowed to be passed "
            "in details"
        ),
    ] = None,
    ipaddress: Annotated[str | None, Param("the ip address for default vm's network")] = None,
    securitygroupids: Annotated[
        list[UUIDStr] | None,
        Param(
            "comma separated list of security groups id that going to be applied to the virtual "
            "machine. Should be passed only when vm is created from a zone with Basic Network "
            "support. Mutually exclusive with securitygroupnames parameter",
            entity="SecurityGroup",
        ),
    ] = None,
    securitygroupnames: Annotated[
        list[str] | None,
        Param(
            "comma separated list of security groups names that going to be applied to the "
            "virtual machine. Should be passed only when vm is created from a zone with Basic "
            "Network support. Mutually exclusive with securitygroupids parameter"
        ),
    ] = None,
    displayvm: Annotated[
        bool, Param("an optional field, whether to the display the vm to the end user or not.")
    ] = True,
) -> Submit:
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    if hostid is not None and not ctx.caller.is_root_admin:
        raise PermissionDenied("Parameter hostid can only be specified by a Root Admin")
    merged: dict[str, str] = {}
    for entry in details or []:
        merged.update(entry)
    req = vms.DeployRequest(
        zone_uuid=zoneid,
        offering_uuid=serviceofferingid,
        template_uuid=templateid,
        name=name,
        display_name=displayname,
        group=group,
        root_disk_size=rootdisksize,
        keypairs=[*([keypair] if keypair else []), *(keypairs or [])],
        user_data=userdata,
        user_data_uuid=userdataid,
        affinity_group_ids=list(affinitygroupids or []),
        affinity_group_names=list(affinitygroupnames or []),
        display_vm=displayvm,
        hypervisor=hypervisor,
        details=merged,
    )
    vm = vms.create(
        ctx.session, ctx.caller, owner, req, box=ctx.runtime.box, config=ctx.runtime.config
    )
    guest_nics.allocate(
        ctx.session,
        ctx.caller,
        owner,
        vm,
        list(networkids or []),
        ip_address=ipaddress,
        config=ctx.runtime.config,
    )
    security_groups.attach_at_deploy(
        ctx.session, owner, vm, list(securitygroupids or []), list(securitygroupnames or [])
    )
    return Submit(
        params={"id": vm.uuid, "hostid": hostid, "startvm": startvm},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        created_id=vm.uuid,
        resource_name=vm.name,
    )


def _deploy(rt: Runtime, id: str, hostid: str | None, startvm: bool) -> None:
    if not startvm:
        return
    try:
        lifecycle.start(rt, id, host_uuid=hostid)
    except CloudError as err:
        lifecycle.fail_deploy(rt, id, err.text)
        raise


def _deploy_abandoned(rt: Runtime, id: str, **_: Any) -> None:
    lifecycle.settle(rt, id)
    lifecycle.fail_deploy(rt, id, "the deploy job was abandoned: the servers running it stopped")


def _deployed(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    out = render_vm(ctx, id)
    vm = vms.find(ctx.session, id)
    if vm.password:  # shown once, with the deploy's result, as CloudStack does
        out["password"] = ctx.runtime.box.open(vm.password)
    return out


def _job(spec: CommandSpec, prepare: Any, abandon: Any = _settle) -> None:
    spec.prepare = prepare
    spec.on_abandon = abandon


_job(deploy_virtual_machine, _deploy, _deploy_abandoned)
deploy_virtual_machine.runs(_deployed)


# --- start, stop, reboot -------------------------------------------------------------------


@command(
    "startVirtualMachine",
    kind=Kind.ASYNC,
    description="Starts a virtual machine.",
    response="virtualmachine",
    event="VM.START",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def start_virtual_machine(
    ctx: Ctx,
    id: VmId,
    hostid: Annotated[
        UUIDStr | None,
        Param(
            "destination Host ID to deploy the VM to - parameter available for root admin only",
            entity="Host",
        ),
    ] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    if hostid is not None and not ctx.caller.is_root_admin:
        raise PermissionDenied("Parameter hostid can only be specified by a Root Admin")
    if vm.state not in (State.STOPPED, State.RUNNING):
        raise ParamError(f"Unable to start VM {vm.name}: it is in state {vm.state}")
    return _vm_submit(vm, hostid=hostid)


def _start(rt: Runtime, id: str, hostid: str | None = None) -> None:
    lifecycle.start(rt, id, host_uuid=hostid)


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render_vm(ctx, id)


_job(start_virtual_machine, _start)
start_virtual_machine.runs(_rendered)


@command(
    "stopVirtualMachine",
    kind=Kind.ASYNC,
    description="Stops a virtual machine.",
    response="virtualmachine",
    event="VM.STOP",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def stop_virtual_machine(
    ctx: Ctx,
    id: VmId,
    forced: Annotated[
        bool,
        Param(
            "Force stop the VM (vm is marked as Stopped even when command fails to be send to "
            "the backend, otherwise a force poweroff is attempted). The caller knows the VM is "
            "stopped."
        ),
    ] = False,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    if vm.state not in (State.RUNNING, State.STOPPED, State.STOPPING):
        raise ParamError(f"Unable to stop VM {vm.name}: it is in state {vm.state}")
    return _vm_submit(vm, forced=forced)


def _stop(rt: Runtime, id: str, forced: bool = False) -> None:
    lifecycle.stop(rt, id, forced=forced)


_job(stop_virtual_machine, _stop)
stop_virtual_machine.runs(_rendered)


@command(
    "rebootVirtualMachine",
    kind=Kind.ASYNC,
    description="Reboots a virtual machine.",
    response="virtualmachine",
    event="VM.REBOOT",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def reboot_virtual_machine(ctx: Ctx, id: VmId) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    if vm.state != State.RUNNING:
        raise ParamError(f"Unable to reboot VM {vm.name}: it is in state {vm.state}")
    return _vm_submit(vm)


def _reboot(rt: Runtime, id: str) -> None:
    lifecycle.reboot(rt, id)


_job(reboot_virtual_machine, _reboot)
reboot_virtual_machine.runs(_rendered)


# --- destroy, recover, expunge -------------------------------------------------------------


def _check_expunge_recover(ctx: Ctx, vm: Any, what: str) -> None:
    if ctx.caller.is_root_admin or ctx.caller.is_domain_admin:
        return
    owner = ctx.session.get(Account, vm.account_id)
    allowed = ctx.runtime.config.get(
        ctx.session, ALLOW_USER_EXPUNGE_RECOVER_VM, account_id=owner.id if owner else None
    )
    if str(allowed).lower() != "true":
        raise PermissionDenied(
            f"Parameter {what} can be passed by Admin only. Or when the "
            "allow.user.expunge.recover.vm key is set."
        )


@command(
    "destroyVirtualMachine",
    kind=Kind.ASYNC,
    description="Destroys a virtual machine.",
    response="virtualmachine",
    event="VM.DESTROY",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def destroy_virtual_machine(
    ctx: Ctx,
    id: VmId,
    expunge: Annotated[
        bool,
        Param("If true is passed, the vm is expunged immediately. False by default."),
    ] = False,
    volumeids: Annotated[
        list[UUIDStr] | None,
        Param("Comma separated list of UUIDs for volumes that will be deleted", entity="Volume"),
    ] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    if expunge:
        _check_expunge_recover(ctx, vm, "expunge")
    if volumeids:
        raise ParamError(f"Volume {volumeids[0]} is not a data volume attached to this VM")
    if vm.state not in (State.RUNNING, State.STOPPED, State.ERROR) and not (
        expunge and vm.state == State.DESTROYED
    ):
        raise ParamError(f"Unable to destroy VM {vm.name}: it is in state {vm.state}")
    return _vm_submit(vm, expunge=expunge)


def _destroy(rt: Runtime, id: str, expunge: bool = False) -> None:
    lifecycle.destroy(rt, id, expunge=expunge)


_job(destroy_virtual_machine, _destroy)
destroy_virtual_machine.runs(_rendered)


@command(
    "recoverVirtualMachine",
    kind=Kind.SYNC,
    description="Recovers a virtual machine.",
    response="virtualmachine",
    event="VM.RECOVER",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def recover_virtual_machine(ctx: Ctx, id: VmId) -> dict[str, Any]:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    _check_expunge_recover(ctx, vm, "recover")
    lifecycle.recover(ctx.session, vm, ctx.runtime)
    ctx.session.flush()
    return render_vm(ctx, vm.uuid)


@command(
    "expungeVirtualMachine",
    kind=Kind.ASYNC,
    description="Expunge a virtual machine. Once expunged, it cannot be recoverd.",
    event="VM.EXPUNGE",
    entity="VirtualMachine",
)
def expunge_virtual_machine(ctx: Ctx, id: VmId) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    _check_expunge_recover(ctx, vm, "expunge")
    if vm.state not in (State.DESTROYED, State.ERROR, State.EXPUNGING):
        raise ParamError(
            f"Unable to expunge VM {vm.name}: it is in state {vm.state}; destroy it first"
        )
    return _vm_submit(vm)


def _expunge(rt: Runtime, id: str) -> None:
    lifecycle.expunge_vm(rt, id)


def _expunged(ctx: Ctx, id: str) -> Success:
    vm = vms.find(ctx.session, id, include_removed=True)
    ctx.event_resource = (vm.uuid, vm.name)
    return Success()


_job(expunge_virtual_machine, _expunge)
expunge_virtual_machine.runs(_expunged)


# --- list ----------------------------------------------------------------------------------


@command(
    "listVirtualMachines",
    kind=Kind.LIST,
    description="List the virtual machines owned by the account.",
    response="virtualmachine",
    scoped=True,
    fields=VM_FIELDS,
)
def list_virtual_machines(
    ctx: Ctx,
    id: Annotated[UUIDStr | None, Param("the ID of the virtual machine", entity="UserVm")] = None,
    ids: Annotated[
        list[UUIDStr] | None,
        Param("the IDs of the virtual machines, mutually exclusive with id", entity="UserVm"),
    ] = None,
    name: Annotated[
        str | None, Param("name of the virtual machine (a substring match is not done)")
    ] = None,
    state: Annotated[
        str | None,
        Param(
            "state of the virtual machine. Possible values are: Running, Stopped, Present, "
            "Destroyed, Expunged. Present is used for the state equal not destroyed."
        ),
    ] = None,
    zoneid: Annotated[UUIDStr | None, Param("the availability zone ID", entity="Zone")] = None,
    templateid: Annotated[UUIDStr | None, Param("list vms by template", entity="Template")] = None,
    isoid: Annotated[UUIDStr | None, Param("list vms by iso", entity="Iso")] = None,
    serviceofferingid: Annotated[
        UUIDStr | None, Param("list by the service offering", entity="ServiceOffering")
    ] = None,
    hostid: Annotated[UUIDStr | None, Param("the host ID", entity="Host")] = None,
    podid: Annotated[UUIDStr | None, Param("the pod ID", entity="Pod")] = None,
    clusterid: Annotated[UUIDStr | None, Param("the cluster ID", entity="Cluster")] = None,
    storageid: Annotated[
        UUIDStr | None, Param("the storage ID where vm's volumes belong to", entity="StoragePool")
    ] = None,
    groupid: Annotated[str | None, Param("the group ID")] = None,
    affinitygroupid: Annotated[
        UUIDStr | None, Param("list vms by affinity group", entity="AffinityGroup")
    ] = None,
    keypair: Annotated[str | None, Param("list vms by ssh keypair name")] = None,
    hypervisor: Annotated[str | None, Param("the target hypervisor for the template")] = None,
    haenable: Annotated[
        bool | None,
        Param(
            "list by the High Availability offering; true if filtering VMs with HA enabled; "
            "false for VMs with HA disabled"
        ),
    ] = None,
    displayvm: Annotated[
        bool | None,
        Param("list resources by display flag; only ROOT admin is eligible to pass this parameter"),
    ] = None,
    userid: Annotated[
        UUIDStr | None,
        Param(
            "the user ID that created the VM and is under the account that owns the VM",
            entity="User",
        ),
    ] = None,
    userdataid: Annotated[
        UUIDStr | None, Param("the ID of the userdata", entity="UserData")
    ] = None,
    tags: Annotated[
        list[dict[str, str]] | None, Param("List resources by tags (key/value pairs)")
    ] = None,
    details: Annotated[
        list[str] | None,
        Param(
            "comma separated list of vm details requested, value can be a list of [all, group, "
            "nics, stats, secgrp, tmpl, servoff, diskoff, backoff, iso, volume, min, affgrp]. "
            "If no parameter is passed in, the details will be defaulted to all"
        ),
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    del details
    if projectid is not None:
        return Listing([], 0)
    if id is not None and ids:
        raise ParamError("id and ids can not be given together")
    admin = ctx.caller.is_root_admin
    for value, what in (
        (hostid, "hostid"),
        (podid, "podid"),
        (clusterid, "clusterid"),
        (storageid, "storageid"),
    ):
        if value is not None and not admin:
            raise PermissionDenied(f"Parameter {what} can only be specified by a Root Admin")
    allowed = (
        str(
            ctx.runtime.config.get(
                ctx.session, ALLOW_USER_VIEW_DESTROYED_VM, account_id=ctx.caller.account_id
            )
        ).lower()
        == "true"
    )
    show_destroyed = views.visible_destroyed(ctx.caller, allowed)
    wanted_state = state
    if state is not None and state.lower() == "present":
        wanted_state = None
    elif state is not None and state in views.HIDDEN_FROM_USERS and not show_destroyed:
        return Listing([], 0)
    vf = views.VmFilter(
        ids=[id] if id else list(ids or []),
        name=name,
        state=wanted_state,
        zone=zoneid,
        template=templateid,
        iso=isoid,
        offering=serviceofferingid,
        host=hostid,
        pod=podid,
        cluster=clusterid,
        storage=storageid,
        group=groupid,
        keyword=ctx.paging.keyword,
        affinity_group=affinitygroupid,
        keypair=keypair,
        hypervisor=hypervisor,
        ha=haenable,
        display=displayvm,
        user=userid,
        user_data=userdataid,
        tags=tags,
        show_destroyed=show_destroyed and (id is not None or bool(ids) or state is not None),
    )
    stmt = views.page_select(vf, ctx.scope)
    page, total = views.page_ids(ctx.session, stmt, ctx.paging.page, ctx.paging.pagesize)
    return Listing(views.render(ctx.session, ctx.caller, page), total)
