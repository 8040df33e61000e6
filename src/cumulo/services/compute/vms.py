"""Creating VMs (deployVirtualMachine's synchronous half) and finding them.

A new VM is a row in Stopped with its root volume Allocated (created on primary storage
lazily, at first start, in the pool the planner picks) and its resources counted against
the owner's limits in the same transaction: if any check fails (532, 431, 531) the request
rolls back and nothing is left. Which resources a VM holds depends on its state:

- instance, CPU and memory are counted while the VM is Stopped, Starting, Running, Stopping
  or Migrating (not once Destroyed, Expunging or in Error), as CloudStack counts them;
- volumes and primary storage are counted while the volume row is not removed.

``recount`` functions registered with the limits service compute the same from the tables,
so ``updateResourceCount`` finds exactly what the increments and decrements kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_password
from cumulo.common.secretbox import SecretBox
from cumulo.db.models import Account
from cumulo.db.models_affinity import AffinityGroup, AffinityGroupVmMap
from cumulo.db.models_catalog import ServiceOffering
from cumulo.db.models_compute import VirtualMachine, Volume
from cumulo.db.models_images import Template, TemplateStoreRef
from cumulo.db.models_infra import Zone
from cumulo.services import limits
from cumulo.services.access import Caller
from cumulo.services.catalog import offerings, sshkeys, userdata
from cumulo.services.config import USERDATA_MAX_LENGTH, ConfigStore
from cumulo.services.errors import NotFound, ParamError, PermissionDenied
from cumulo.services.limits import ResourceType
from cumulo.services.storage import templates
from cumulo.services.usage import events as usage

GIB = 1024**3
COUNTED_STATES = ("Stopped", "Starting", "Running", "Stopping", "Migrating")
HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


@dataclass
class DeployRequest:
    zone_uuid: str
    offering_uuid: str
    template_uuid: str
    name: str | None = None
    display_name: str | None = None
    group: str | None = None
    cpu_number: int | None = None
    cpu_speed: int | None = None
    memory: int | None = None
    root_disk_size: int | None = None  # GiB
    keypairs: list[str] = field(default_factory=list)
    user_data: str | None = None
    user_data_uuid: str | None = None
    affinity_group_ids: list[str] = field(default_factory=list)
    affinity_group_names: list[str] = field(default_factory=list)
    display_vm: bool = True
    hypervisor: str | None = None
    details: dict[str, str] = field(default_factory=dict)


# The hot lookups are built once and run with bound values: building a SQLAlchemy statement
# (and its cache key) costs more than running it, and a deploy runs these several times.
_FIND_ANY = select(VirtualMachine).where(VirtualMachine.uuid == bindparam("p_uuid"))
_FIND = _FIND_ANY.where(VirtualMachine.removed.is_(None))
_ROOT = select(Volume).where(
    Volume.vm_id == bindparam("p_vm"), Volume.volume_type == "ROOT", Volume.removed.is_(None)
)
_ZONE = select(Zone).where(Zone.uuid == bindparam("p_uuid"), Zone.removed.is_(None))
_READY_IN_ZONE = (
    select(func.count())
    .select_from(TemplateStoreRef)
    .where(
        TemplateStoreRef.template_id == bindparam("p_template"),
        TemplateStoreRef.zone_id == bindparam("p_zone"),
        TemplateStoreRef.state == "Ready",
    )
)


def find(session: Session, uuid: str, *, include_removed: bool = False) -> VirtualMachine:
    vm = session.scalar(_FIND_ANY if include_removed else _FIND, {"p_uuid": uuid})
    if vm is None:
        raise NotFound(f"Unable to find virtual machine with id {uuid}")
    return vm


def find_for(session: Session, caller: Caller, uuid: str) -> VirtualMachine:
    """The VM, if the caller may act on it (531 otherwise, as CloudStack's checkAccess)."""
    vm = find(session, uuid)
    owner = session.get(Account, vm.account_id)
    assert owner is not None
    caller.check_account(owner)
    return vm


def root_volume(session: Session, vm: VirtualMachine) -> Volume | None:
    return session.scalar(_ROOT, {"p_vm": vm.id})


def _zone(session: Session, caller: Caller, uuid: str) -> Zone:
    zone = session.scalar(_ZONE, {"p_uuid": uuid})
    if zone is None:
        raise ParamError(f"Unable to find zone by id {uuid}")
    if zone.allocation_state != "Enabled" and not caller.is_root_admin:
        raise PermissionDenied(f"Cannot perform this operation, zone {zone.name} is disabled")
    return zone


def _template(session: Session, caller: Caller, zone: Zone, uuid: str) -> Template:
    template = templates.find(session, uuid, is_iso=False)
    if not templates.can_see(session, caller, template):
        raise PermissionDenied(f"Account {caller.account_name} cannot use template {uuid}")
    ready = session.scalar(_READY_IN_ZONE, {"p_template": template.id, "p_zone": zone.id})
    if not ready:
        raise ParamError(
            f"Template {template.name} is not ready in zone {zone.name}: "
            "wait until its download finishes"
        )
    return template


def _offering(session: Session, caller: Caller, zone: Zone, uuid: str) -> ServiceOffering:
    offering = offerings.find_service_offering(session, uuid)
    if offering.state != "Active":
        raise ParamError(f"Service offering {offering.name} is not active")
    if not offerings.check_visible(session, caller, "service", offering.id):
        raise PermissionDenied(f"Service offering {uuid} is not available to this account")
    in_zone = session.scalar(select(offerings.in_zone("service", offering.id, zone.id)))
    if not in_zone:
        raise ParamError(f"Service offering {offering.name} is not available in zone {zone.name}")
    return offering


def _detail_int(details: dict[str, str], *names: str) -> int | None:
    for name in names:
        for key, value in details.items():
            if key.lower() == name.lower():
                try:
                    return int(value)
                except ValueError:
                    raise ParamError(f"details[{key}] must be a number: {value}") from None
    return None


def size_of(offering: ServiceOffering, req: DeployRequest) -> tuple[int, int, int]:
    """vCPUs, MHz per vCPU, MiB: the offering's, or the request's for a custom offering."""
    cpus = req.cpu_number or _detail_int(req.details, "cpuNumber")
    speed = req.cpu_speed or _detail_int(req.details, "cpuSpeed")
    memory = req.memory or _detail_int(req.details, "memory")
    if not offerings.is_custom(offering):
        return (
            int(offering.cpu_number or 1),
            int(offering.cpu_speed or 0),
            int(offering.memory or 0),
        )
    cpus = offering.cpu_number or cpus
    speed = offering.cpu_speed or speed
    memory = offering.memory or memory
    if not cpus or not speed or not memory:
        raise ParamError(
            "Need to specify custom parameter values cpu, cpu speed and memory when using "
            "custom offering"
        )
    _within(cpus, offering.min_cpu_number, offering.max_cpu_number, "cpu number")
    _within(memory, offering.min_memory, offering.max_memory, "memory")
    return cpus, speed, memory


def _within(value: int, low: int | None, high: int | None, what: str) -> None:
    if value < 1 or (low is not None and value < low) or (high is not None and value > high):
        raise ParamError(f"Invalid {what} {value}: allowed range is {low or 1}-{high or 'any'}")


def check_hostname(name: str) -> str:
    if not HOSTNAME.match(name) or name[0].isdigit():
        raise ParamError(
            "Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' "
            "through '9', and the hyphen ('-'), must be between 1 and 63 characters long, and "
            "can't start or end with \"-\" and can't start with digit"
        )
    return name


def _unique_name(session: Session, owner: Account, zone: Zone, name: str) -> None:
    taken = session.scalar(
        select(func.count())
        .select_from(VirtualMachine)
        .where(
            VirtualMachine.account_id == owner.id,
            VirtualMachine.zone_id == zone.id,
            func.lower(VirtualMachine.name) == name.lower(),
            VirtualMachine.removed.is_(None),
        )
    )
    if taken:
        raise ParamError(f"The vm with hostName {name} already exists in the account's network")


def _keypairs(session: Session, owner: Account, names: Sequence[str]) -> list[str]:
    found = []
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        if sshkeys.find_by_name(session, owner, name) is None:
            raise ParamError(f"A key pair with name '{name}' was not found for account")
        found.append(name)
    return found


def _affinity_groups(
    session: Session, owner: Account, ids: Sequence[str], names: Sequence[str]
) -> list[AffinityGroup]:
    if ids and names:
        raise ParamError("affinitygroupids and affinitygroupnames can not be given together")
    groups = []
    for value in ids or names:
        column = AffinityGroup.uuid if ids else AffinityGroup.name
        group = session.scalar(select(AffinityGroup).where(column == value))
        if group is None or group.account_id != owner.id:
            raise ParamError(f"Unable to find affinity group {value} of the VM's account")
        groups.append(group)
    return groups


def _root_size(template: Template, offering: ServiceOffering, req_gib: int | None) -> int:
    """Bytes: the requested size, else the offering's, else the template's own."""
    template_bytes = int(template.size or 0)
    wanted = req_gib if req_gib is not None else offering.root_disk_size
    if wanted is None:
        return max(template_bytes, GIB)
    if wanted < 1:
        raise ParamError("Root disk size must be a positive number of GiB")
    if wanted * GIB < template_bytes:
        raise ParamError(
            f"Root disk size {wanted} GiB is smaller than the template's {template_bytes} bytes"
        )
    return int(wanted) * GIB


def vm_deltas(vm: VirtualMachine) -> dict[ResourceType, int]:
    return {
        ResourceType.user_vm: 1,
        ResourceType.cpu: vm.cpu_number,
        ResourceType.memory: vm.memory,
    }


def count_vm(session: Session, vm: VirtualMachine, config: ConfigStore | None) -> None:
    """Take the VM's instance, CPU and memory from the owner's limits (532 when over)."""
    limits.check_and_increment_many(session, vm.account_id, vm_deltas(vm), config=config)


def count_vm_anyway(session: Session, vm: VirtualMachine) -> None:
    """Count a VM found running whatever the limits say: it exists (no 532 possible)."""
    limits.increment_unchecked(session, vm.account_id, vm_deltas(vm))


def uncount_vm(session: Session, vm: VirtualMachine) -> None:
    limits.decrement_many(session, vm.account_id, vm_deltas(vm))


def create(
    session: Session,
    caller: Caller,
    owner: Account,
    req: DeployRequest,
    *,
    box: SecretBox,
    config: ConfigStore,
) -> VirtualMachine:
    """The VM row, its root volume and its counts, all checked; nothing runs yet."""
    if owner.state != "enabled" and not caller.is_root_admin:
        raise PermissionDenied(f"The owner of the VM, account {owner.name}, is {owner.state}")
    zone = _zone(session, caller, req.zone_uuid)
    offering = _offering(session, caller, zone, req.offering_uuid)
    template = _template(session, caller, zone, req.template_uuid)
    cpus, speed, memory = size_of(offering, req)
    name = check_hostname(req.name) if req.name else None
    if name:
        _unique_name(session, owner, zone, name)
    keys = _keypairs(session, owner, req.keypairs)
    data_id = None
    if req.user_data_uuid:
        data_id = userdata.find(session, caller, req.user_data_uuid).id
    if req.user_data:
        userdata.decode(req.user_data, int(config.get(session, USERDATA_MAX_LENGTH)))
    groups = _affinity_groups(session, owner, req.affinity_group_ids, req.affinity_group_names)
    root_bytes = _root_size(template, offering, req.root_disk_size)
    vm = VirtualMachine(
        name=name or "pending",
        display_name=req.display_name or name or "pending",
        account_id=owner.id,
        domain_id=owner.domain_id,
        user_id=caller.user_id,
        zone_id=zone.id,
        service_offering_id=offering.id,
        template_id=template.id,
        guest_os_id=template.os_type_id,
        hypervisor_type=template.hypervisor or req.hypervisor,
        cpu_number=cpus,
        cpu_speed=speed,
        memory=memory,
        ha_enabled=offering.offer_ha,
        group_name=req.group,
        display_vm=req.display_vm,
        dynamically_scalable=template.is_dynamically_scalable and offering.dynamic_scaling,
        user_data=req.user_data,
        user_data_id=data_id,
        keypairs=keys,
        password=box.seal(new_password(12)) if template.password_enabled else None,
        details=dict(req.details),
    )
    session.add(vm)
    session.flush()
    vm.instance_name = f"i-{owner.id}-{vm.id}-VM"
    if not name:
        vm.name = f"VM-{vm.uuid}"
        vm.display_name = req.display_name or vm.name
    root = Volume(
        name=f"ROOT-{vm.id}",
        account_id=owner.id,
        domain_id=owner.domain_id,
        zone_id=zone.id,
        vm_id=vm.id,
        device_id=0,
        volume_type="ROOT",
        state="Allocated",
        size=root_bytes,
        template_id=template.id,
        format=template.format,
    )
    session.add(root)
    session.add_all(AffinityGroupVmMap(group_id=g.id, vm_id=vm.id) for g in groups)
    deltas = {**vm_deltas(vm), ResourceType.volume: 1, ResourceType.primary_storage: root_bytes}
    limits.check_and_increment_many(session, owner.id, deltas, config=config)
    session.flush()
    usage.record_vm(session, usage.VM_CREATE, vm)
    usage.record_volume(session, usage.VOLUME_CREATE, root)
    return vm


# --- counting from the truth (updateResourceCount) ----------------------------------------


def _count_vms(session: Session, account: Account) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(VirtualMachine)
            .where(
                VirtualMachine.account_id == account.id,
                VirtualMachine.state.in_(COUNTED_STATES),
                VirtualMachine.removed.is_(None),
            )
        )
        or 0
    )


def _sum_vms(column: object) -> limits.Counter:
    def count(session: Session, account: Account) -> int:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(column), 0)).where(
                    VirtualMachine.account_id == account.id,
                    VirtualMachine.state.in_(COUNTED_STATES),
                    VirtualMachine.removed.is_(None),
                )
            )
            or 0
        )

    return count


def _count_volumes(session: Session, account: Account) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Volume)
            .where(Volume.account_id == account.id, Volume.removed.is_(None))
        )
        or 0
    )


def _sum_volume_bytes(session: Session, account: Account) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Volume.size), 0)).where(
                Volume.account_id == account.id, Volume.removed.is_(None)
            )
        )
        or 0
    )


limits.register_counter(ResourceType.user_vm, _count_vms)
limits.register_counter(ResourceType.cpu, _sum_vms(VirtualMachine.cpu_number))
limits.register_counter(ResourceType.memory, _sum_vms(VirtualMachine.memory))
limits.register_counter(ResourceType.volume, _count_volumes)
limits.register_counter(ResourceType.primary_storage, _sum_volume_bytes)
