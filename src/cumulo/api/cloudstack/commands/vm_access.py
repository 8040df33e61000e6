"""Getting into a VM and its placement rules: resetPasswordForVirtualMachine, getVMPassword,
resetSSHKeyForVirtualMachine, updateVMAffinityGroup.

The three async commands change only the VM's row (no host call: the VM is Stopped and takes
the change at its next start), so the change is made and checked with the request, in its
transaction, and the job renders the result. A re-run job renders the same VM again. New
passwords are shown in clear only in the job's result, never by listVirtualMachines.
"""

from __future__ import annotations

from typing import Annotated, Any

from cumulo.api.cloudstack.commands.vms import VM_FIELDS, VmId, render_vm
from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Submit
from cumulo.db.models import Account
from cumulo.db.models_compute import VirtualMachine
from cumulo.services import affinity
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.compute import access_reset, vms
from cumulo.services.errors import ParamError


def _submit(vm: VirtualMachine, **params: Any) -> Submit:
    return Submit(
        params={"id": vm.uuid, **params},
        instance_type="VirtualMachine",
        instance_id=vm.uuid,
        resource_name=vm.name,
    )


def _owner(ctx: Ctx, vm: VirtualMachine) -> Account:
    owner = ctx.session.get(Account, vm.account_id)
    assert owner is not None, "a VM's account exists"
    return owner


def _with_password(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    out = render_vm(ctx, id)
    vm = vms.find(ctx.session, id)
    if vm.password:
        out["password"] = ctx.runtime.box.open(vm.password)
    return out


def _rendered(ctx: Ctx, id: str, **_: Any) -> dict[str, Any]:
    return render_vm(ctx, id)


# --- passwords ----------------------------------------------------------------------------


@command(
    "resetPasswordForVirtualMachine",
    kind=Kind.ASYNC,
    description="Resets the password for virtual machine. The virtual machine must be in a "
    '"Stopped" state and the template must already support this feature for this command to '
    "take effect. [async]",
    response="virtualmachine",
    event="VM.RESETPASSWORD",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def reset_password_for_virtual_machine(
    ctx: Ctx,
    id: VmId,
    password: Annotated[
        str | None,
        Param(
            "The new password of the virtual machine. If null, a random password will be "
            "generated for the VM.",
            since="4.19.0",
        ),
    ] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    access_reset.reset_password(ctx.session, vm, ctx.runtime.box, password)
    return _submit(vm)


reset_password_for_virtual_machine.runs(_with_password)


@command(
    "getVMPassword",
    kind=Kind.SYNC,
    description="Returns an encrypted password for the VM",
    response="password",
    fields=("encryptedpassword",),
)
def get_vm_password(ctx: Ctx, id: VmId) -> dict[str, Any]:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    text = access_reset.encrypted_password(ctx.session, vm, _owner(ctx, vm), ctx.runtime.box)
    return {"encryptedpassword": text}


# --- SSH keys -----------------------------------------------------------------------------


@command(
    "resetSSHKeyForVirtualMachine",
    kind=Kind.ASYNC,
    description="Resets the SSH Key for virtual machine. The virtual machine must be in a "
    '"Stopped" state. [async]',
    response="virtualmachine",
    event="VM.RESETSSHKEY",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def reset_ssh_key_for_virtual_machine(
    ctx: Ctx,
    id: VmId,
    keypair: Annotated[
        str | None, Param("name of the ssh key pair used to login to the virtual machine")
    ] = None,
    keypairs: Annotated[
        list[str] | None,
        Param(
            "names of the ssh key pairs to be used to login to the virtual machine", since="4.17"
        ),
    ] = None,
    account: Annotated[
        str | None,
        Param(
            "an optional account for the ssh key. Must be used with domainId.",
        ),
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
        UUIDStr | None, Param("an optional project for the ssh key", entity="Project")
    ] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    owner = _owner(ctx, vm)
    if account is not None or domainid is not None or projectid is not None:
        named = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
        if named.id != owner.id:
            raise ParamError("The key pairs' account must be the account that owns the VM")
    names = [*([keypair] if keypair else []), *(keypairs or [])]
    renewed = access_reset.reset_keys(ctx.session, vm, owner, names, ctx.runtime.box)
    return _submit(vm, password=renewed)


def _reset_keys_result(ctx: Ctx, id: str, password: bool = False) -> dict[str, Any]:
    return _with_password(ctx, id) if password else render_vm(ctx, id)


reset_ssh_key_for_virtual_machine.runs(_reset_keys_result)


# --- affinity groups ----------------------------------------------------------------------


@command(
    "updateVMAffinityGroup",
    kind=Kind.ASYNC,
    description="Updates the affinity/anti-affinity group associations of a virtual machine. "
    "The VM has to be stopped and restarted for the new properties to take effect.",
    response="virtualmachine",
    event="VM.AG.UPDATE",
    entity="VirtualMachine",
    fields=VM_FIELDS,
)
def update_vm_affinity_group(
    ctx: Ctx,
    id: VmId,
    affinitygroupids: Annotated[
        list[UUIDStr] | None,
        Param(
            "comma separated list of affinity groups id that are going to be applied to the "
            "virtual machine. Should be passed only when vm is created from a zone with Basic "
            "Network support. Mutually exclusive with securitygroupnames parameter",
            entity="AffinityGroup",
        ),
    ] = None,
    affinitygroupnames: Annotated[
        list[str] | None,
        Param(
            "comma separated list of affinity groups names that are going to be applied to the "
            "virtual machine. Should be passed only when vm is created from a zone with Basic "
            "Network support. Mutually exclusive with securitygroupids parameter"
        ),
    ] = None,
) -> Submit:
    vm = vms.find_for(ctx.session, ctx.caller, id)
    if affinitygroupids is None and affinitygroupnames is None:
        raise ParamError("Either affinitygroupids or affinitygroupnames must be given")
    groups = affinity.owner_groups(
        ctx.session, _owner(ctx, vm), list(affinitygroupids or []), list(affinitygroupnames or [])
    )
    affinity.set_vm_groups(ctx.session, vm, groups)
    return _submit(vm)


update_vm_affinity_group.runs(_rendered)
