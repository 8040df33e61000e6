"""What the management server asks of a host, and what a host answers.

Every message is a frozen dataclass that turns into plain JSON (``to_wire``/``from_wire``), so
the same types travel over the agent WebSocket and through the in-process simulator. A
command carries a ``request_id``; hosts treat a command they have already carried out as done
(a resent ``StartVm`` of a running VM answers with its state instead of starting a second
one), because the server resends after a timeout or a takeover and never assumes a command
ran.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from cumulo.agentrpc.netconfig import (
    DhcpEntry,
    FirewallRule,
    LoadBalancer,
    PortForward,
    PortRange,
    RouterConfig,
    StaticNat,
    VmData,
)


class PowerState(enum.StrEnum):
    """A VM's power state as the host sees it (not the orchestration state)."""

    RUNNING = "Running"
    STOPPED = "Stopped"
    PAUSED = "Paused"
    MISSING = "Missing"  # the host knows nothing of this VM


@dataclass(frozen=True)
class DiskSpec:
    """One virtual disk. ``path`` is on the host's primary storage pool; ``template_path``
    is the cached template the disk is a copy-on-write clone of (root disks only)."""

    volume_id: str
    device_id: int
    path: str
    size_bytes: int
    template_path: str | None = None
    kind: str = "ROOT"  # ROOT | DATADISK | ISO


@dataclass(frozen=True)
class NicSpec:
    """One virtual NIC, plugged into ``bridge`` on the host (the network layer makes it)."""

    nic_id: str
    mac: str
    bridge: str
    ip4: str | None = None
    device_id: int = 0
    # Security-group filtering of the port (``agentrpc.sgconfig.to_wire``), applied to the tap
    # before the guest starts; None: the port is not filtered.
    security_group: dict[str, Any] | None = None


@dataclass(frozen=True)
class VmSpec:
    """Everything a host needs to define and start a VM.

    ``name`` is the CloudStack instance name (``i-<account>-<vm>-VM``), unique on a host and
    stable across restarts, so a host re-finds its VMs by name after the agent restarts.
    ``boot`` holds template-specific boot details (for the tiny test guest: the kernel and
    command line paths) that only the driver interprets.
    """

    name: str
    uuid: str
    vcpus: int
    cpu_mhz: int
    memory_mib: int
    disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()
    boot: dict[str, str] = field(default_factory=dict)
    hostname: str = ""
    ha: bool = False


@dataclass(frozen=True)
class VmStatus:
    name: str
    power: PowerState
    host_ip: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class NicStats:
    """One NIC's traffic since the VM started, as the guest sees it (rx: into the guest)."""

    nic_id: str
    rx_bytes: int = 0
    tx_bytes: int = 0


@dataclass(frozen=True)
class VmStats:
    """Counters since the VM started; the server turns differences into usage. ``net_*``
    are the sums over ``nics``, which break the traffic down per NIC for metering."""

    name: str
    cpu_time_ns: int = 0
    memory_kib: int = 0
    disk_read_bytes: int = 0
    disk_write_bytes: int = 0
    disk_read_ops: int = 0
    disk_write_ops: int = 0
    net_rx_bytes: int = 0
    net_tx_bytes: int = 0
    nics: tuple[NicStats, ...] = ()


@dataclass(frozen=True)
class HostInfo:
    """What a host registers: its size, hypervisor and accelerator."""

    hostname: str
    cpus: int
    cpu_mhz: int
    memory_bytes: int
    hypervisor: str  # "KVM" for qemu hosts, "Simulator" for simulated ones
    hypervisor_version: str = ""
    accelerator: str = ""  # "kvm" | "tcg" | "" when not a real hypervisor
    pools: tuple[str, ...] = ()
    pool_bytes: tuple[int, ...] = ()  # each pool's size, in the order of ``pools``


# Commands. ``kind`` names the message on the wire and is what configureSimulator matches.

C = TypeVar("C", bound="Command")


@dataclass(frozen=True)
class Command:
    kind: ClassVar[str] = ""
    request_id: str


@dataclass(frozen=True)
class StartVm(Command):
    kind: ClassVar[str] = "StartCommand"
    spec: VmSpec


@dataclass(frozen=True)
class StopVm(Command):
    kind: ClassVar[str] = "StopCommand"
    name: str
    forced: bool = False
    timeout_s: float = 60.0


@dataclass(frozen=True)
class RebootVm(Command):
    kind: ClassVar[str] = "RebootCommand"
    name: str


@dataclass(frozen=True)
class DestroyVm(Command):
    """Stop if needed and remove the VM's runtime files and its disks on this host."""

    kind: ClassVar[str] = "DestroyCommand"
    name: str
    disk_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class MigrateVm(Command):
    """Sent to the source host: move the running VM to ``target_host``."""

    kind: ClassVar[str] = "MigrateCommand"
    spec: VmSpec
    target_host: str


@dataclass(frozen=True)
class StageDisk(Command):
    """Stop-and-copy migration, on the source: copy a stopped VM's disk, flattened (no
    backing template), to ``install_path`` in the store, under a temporary name renamed
    when complete. ``vm_name`` must not be running (its disk would still change)."""

    kind: ClassVar[str] = "MigrateStageDiskCommand"
    vm_name: str
    path: str
    store_url: str
    install_path: str


@dataclass(frozen=True)
class FetchDisk(Command):
    """Stop-and-copy migration, on the target: copy a staged disk from ``source_url`` to
    ``path`` on this host's pool (temporary name, then rename; a complete copy is kept)."""

    kind: ClassVar[str] = "MigrateFetchDiskCommand"
    source_url: str
    path: str


@dataclass(frozen=True)
class PrepareTemplate(Command):
    """Make sure the template is cached on the host's primary storage pool."""

    kind: ClassVar[str] = "CopyCommand"
    template_id: str
    source_url: str
    checksum: str
    pool_path: str
    format: str = "QCOW2"


@dataclass(frozen=True)
class GetVmStatus(Command):
    kind: ClassVar[str] = "CheckVirtualMachineCommand"
    name: str


@dataclass(frozen=True)
class GetVmStats(Command):
    kind: ClassVar[str] = "GetVmStatsCommand"
    names: tuple[str, ...] = ()


# Block storage. Volume files live on primary storage pools every host of the pool's scope
# reaches; exports go to secondary storage (``store_url`` + ``install_path``), always written
# under a temporary name and renamed when complete, so a crashed export leaves no partial file
# at the final path. ``kind`` names follow CloudStack's agent commands so configureSimulator
# rules read the same (``CreateCommand``, ``AttachCommand``, ``DettachCommand`` …).


@dataclass(frozen=True)
class CreateVolume(Command):
    """Create an empty volume file (or one filled from ``source_url``, a snapshot export)."""

    kind: ClassVar[str] = "CreateCommand"
    volume_id: str
    path: str
    size_bytes: int
    format: str = "QCOW2"
    source_url: str | None = None


@dataclass(frozen=True)
class AttachDisk(Command):
    """Hot-plug ``disk`` into the running VM ``vm_name`` (QMP blockdev-add + device_add)."""

    kind: ClassVar[str] = "AttachCommand"
    vm_name: str
    disk: DiskSpec


@dataclass(frozen=True)
class DetachDisk(Command):
    """Hot-unplug the disk at ``path`` from the running VM ``vm_name`` (device_del)."""

    kind: ClassVar[str] = "DettachCommand"
    vm_name: str
    volume_id: str
    path: str


@dataclass(frozen=True)
class ResizeVolume(Command):
    """Grow (or, with ``shrink_ok``, shrink) a volume; online through ``vm_name`` if it runs."""

    kind: ClassVar[str] = "ResizeVolumeCommand"
    path: str
    current_bytes: int
    new_bytes: int
    shrink_ok: bool = False
    vm_name: str | None = None


@dataclass(frozen=True)
class DeleteVolume(Command):
    """Remove a volume file; a missing file is success (deletes are retried)."""

    kind: ClassVar[str] = "DeleteCommand"
    path: str


@dataclass(frozen=True)
class MigrateVolume(Command):
    """Copy a detached volume's file to ``target_path`` on another pool, then remove the source."""

    kind: ClassVar[str] = "MigrateVolumeCommand"
    path: str
    target_path: str


@dataclass(frozen=True)
class BackupSnapshot(Command):
    """Take a point-in-time copy of the volume at ``path`` and export it, self-contained, to
    ``store_url``/``install_path`` (temporary name, then rename)."""

    kind: ClassVar[str] = "BackupSnapshotCommand"
    snapshot_id: str
    path: str
    store_url: str
    install_path: str
    vm_name: str | None = None  # a running VM: quiesce through its guest agent if it has one


@dataclass(frozen=True)
class RevertSnapshot(Command):
    """Overwrite the volume at ``path`` with the snapshot export at ``source_url``."""

    kind: ClassVar[str] = "RevertSnapshotCommand"
    path: str
    source_url: str


@dataclass(frozen=True)
class ExportTemplate(Command):
    """Write a template image to ``store_url``/``install_path`` from a volume (``path``) or a
    snapshot export (``source_url``), as CloudStack's CreatePrivateTemplate commands do."""

    kind: ClassVar[str] = "CreatePrivateTemplateCommand"
    template_id: str
    store_url: str
    install_path: str
    path: str | None = None
    source_url: str | None = None


@dataclass(frozen=True)
class VmSnapshotCommand(Command):
    """One VM snapshot on every disk of a VM: ``tag`` names it on each qcow2 disk.

    ``vm_name`` is set when the VM runs on this host (QMP on the live VM), None for a stopped
    VM (the disk files directly); ``memory`` asks for the RAM and device state too.
    """

    vm_name: str | None
    tag: str
    disk_paths: tuple[str, ...]
    memory: bool = False


@dataclass(frozen=True)
class CreateVmSnapshot(VmSnapshotCommand):
    kind: ClassVar[str] = "CreateVMSnapshotCommand"


@dataclass(frozen=True)
class RevertVmSnapshot(VmSnapshotCommand):
    kind: ClassVar[str] = "RevertToVMSnapshotCommand"


@dataclass(frozen=True)
class DeleteVmSnapshot(VmSnapshotCommand):
    kind: ClassVar[str] = "DeleteVMSnapshotCommand"


@dataclass(frozen=True)
class ChangeIso(Command):
    """Insert the ISO at ``path`` (a file on the image store every host mounts) into the
    running VM's CD-ROM drive, or eject the drive when ``path`` is None."""

    kind: ClassVar[str] = "AttachIsoCommand"
    vm_name: str
    path: str | None = None


@dataclass(frozen=True)
class OpenConsole(Command):
    """Open the VM's console (its VNC server) and dial a WebSocket back to the server.

    The server cannot reach a host, so the agent connects to ``server_url`` (the management
    server that holds the user's console WebSocket; empty: the server the agent is connected
    to) at ``agentrpc.wire.CONSOLE_PATH`` with its host token and ``token``, a single-use
    secret naming this console session, and pipes bytes between that WebSocket and the VNC
    socket. The answer comes once the dial-back is connected (or failed).
    """

    kind: ClassVar[str] = "ConsoleProxyLoadCommand"
    name: str
    token: str
    server_url: str = ""


# Guest networking (issue 7). The router's desired state travels as ``router_config_to_wire``
# data: the agent rebuilds the ``RouterConfig`` and ensures it, so a resend is harmless.


@dataclass(frozen=True)
class EnsureSegment(Command):
    """Make the guest segment ``brvx<vni>`` + VXLAN device here, flooding to ``peers``."""

    kind: ClassVar[str] = "SetupGuestNetworkCommand"
    vni: int
    local_vtep: str
    peers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReleaseSegment(Command):
    """Remove the segment of ``vni`` here unless a VM or router still uses it."""

    kind: ClassVar[str] = "ReleaseGuestNetworkCommand"
    vni: int


@dataclass(frozen=True)
class ApplyRouter(Command):
    """Make the network's router namespace match ``config`` (a ``RouterConfig`` on the
    wire); ``public_bridge`` empty: the router has no public leg on this host."""

    kind: ClassVar[str] = "SetupRouterCommand"
    network_id: str
    config: dict[str, Any]
    local_vtep: str
    peers: tuple[str, ...] = ()
    public_bridge: str = ""
    public_prefix: int = 0
    public_gateway: str = ""


@dataclass(frozen=True)
class DestroyRouter(Command):
    kind: ClassVar[str] = "DestroyRouterCommand"
    network_id: str


@dataclass(frozen=True)
class ApplySecurityGroups(Command):
    """Replace the security-group tables of a running VM's taps (``sgconfig`` wire data, one
    per filtered NIC); rule changes reach running VMs this way, starts through ``NicSpec``."""

    kind: ClassVar[str] = "SecurityGroupRulesCmd"
    vm_name: str
    ports: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Answer:
    """A host's reply. ``ok`` False carries a human-readable ``error``."""

    request_id: str
    ok: bool
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)


COMMANDS: dict[str, type[Command]] = {
    cls.kind: cls
    for cls in (
        StartVm,
        StopVm,
        RebootVm,
        DestroyVm,
        MigrateVm,
        StageDisk,
        FetchDisk,
        PrepareTemplate,
        GetVmStatus,
        GetVmStats,
        CreateVolume,
        AttachDisk,
        DetachDisk,
        ResizeVolume,
        DeleteVolume,
        MigrateVolume,
        BackupSnapshot,
        RevertSnapshot,
        ExportTemplate,
        CreateVmSnapshot,
        RevertVmSnapshot,
        DeleteVmSnapshot,
        ChangeIso,
        OpenConsole,
        EnsureSegment,
        ReleaseSegment,
        ApplyRouter,
        DestroyRouter,
        ApplySecurityGroups,
    )
}


def to_wire(message: Any) -> dict[str, Any]:
    """A message as JSON-ready data; commands carry their ``kind``."""
    data = dataclasses.asdict(message)
    if isinstance(message, Command):
        data["kind"] = message.kind
    plain: dict[str, Any] = _plain(data)
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def command_from_wire(data: dict[str, Any]) -> Command:
    """The command named by ``data["kind"]``; unknown kinds raise ValueError."""
    cls = COMMANDS.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(f"unknown agent command {data.get('kind')!r}")
    command: Command = _build(cls, {k: v for k, v in data.items() if k != "kind"})
    return command


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    """Rebuild nested dataclasses from their JSON form (tuples stay tuples)."""
    kwargs: dict[str, Any] = {}
    hints = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in data.items():
        if name not in hints:
            raise ValueError(f"{cls.__name__} has no field {name!r}")
        kwargs[name] = _coerce(hints[name].type, value)
    return cls(**kwargs)


_NESTED: dict[str, type[Any]] = {
    "VmSpec": VmSpec,
    "DiskSpec": DiskSpec,
    "NicSpec": NicSpec,
    "PowerState": PowerState,
}


def _coerce(annotation: Any, value: Any) -> Any:
    text = str(annotation)
    for name, cls in _NESTED.items():
        if text == name:
            return (
                value
                if isinstance(value, cls)
                else (cls(value) if isinstance(value, str) else _build(cls, value))
            )
        if text.startswith("tuple[") and name in text and isinstance(value, list):
            return tuple(_coerce(name, item) for item in value)
    if text.startswith("tuple[") and isinstance(value, list):
        return tuple(value)
    return value


def answer_from_wire(data: dict[str, Any]) -> Answer:
    return Answer(
        request_id=str(data["request_id"]),
        ok=bool(data["ok"]),
        error=str(data.get("error", "")),
        result=dict(data.get("result") or {}),
    )


def router_config_to_wire(config: RouterConfig) -> dict[str, Any]:
    """A RouterConfig as JSON-ready data (user data as base64)."""
    data: dict[str, Any] = _plain(dataclasses.asdict(config))
    for vm in data["vm_data"]:
        raw = vm["user_data"]
        vm["user_data"] = base64.b64encode(raw).decode() if raw is not None else None
    return data


def router_config_from_wire(data: dict[str, Any]) -> RouterConfig:
    """The RouterConfig that ``router_config_to_wire`` made ``data`` from."""
    return RouterConfig(
        **{
            **data,
            "dns_servers": tuple(data["dns_servers"]),
            "services": tuple(data["services"]),
            "public_ips": tuple(data["public_ips"]),
            "dhcp": tuple(DhcpEntry(**d) for d in data["dhcp"]),
            "vm_data": tuple(_vm_data(v) for v in data["vm_data"]),
            "port_forwards": tuple(_forward(f) for f in data["port_forwards"]),
            "static_nats": tuple(StaticNat(**n) for n in data["static_nats"]),
            "firewall": tuple(_rule(r) for r in data["firewall"]),
            "egress": tuple(_rule(r) for r in data["egress"]),
            "load_balancers": tuple(_balancer(lb) for lb in data["load_balancers"]),
        }
    )


def _ports(p: dict[str, Any]) -> PortRange:
    return PortRange(p["start"], p["end"])


def _rule(r: dict[str, Any]) -> FirewallRule:
    return FirewallRule(
        public_ip=r["public_ip"],
        protocol=r["protocol"],
        ports=_ports(r["ports"]),
        source_cidrs=tuple(r["source_cidrs"]),
        dest_cidrs=tuple(r["dest_cidrs"]),
        icmp_type=r["icmp_type"],
        icmp_code=r["icmp_code"],
    )


def _vm_data(v: dict[str, Any]) -> VmData:
    raw = v["user_data"]
    user_data = base64.b64decode(raw) if raw is not None else None
    return VmData(**{**v, "public_keys": tuple(v["public_keys"]), "user_data": user_data})


def _forward(f: dict[str, Any]) -> PortForward:
    return PortForward(
        public_ip=f["public_ip"],
        protocol=f["protocol"],
        public_ports=_ports(f["public_ports"]),
        private_ip=f["private_ip"],
        private_ports=_ports(f["private_ports"]),
        source_cidrs=tuple(f["source_cidrs"]),
    )


def _balancer(lb: dict[str, Any]) -> LoadBalancer:
    cidrs, backends = tuple(lb["source_cidrs"]), tuple(lb["backends"])
    sticky = tuple((str(k), str(v)) for k, v in lb.get("stickiness_params", ()))
    return LoadBalancer(
        **{**lb, "source_cidrs": cidrs, "backends": backends, "stickiness_params": sticky}
    )
