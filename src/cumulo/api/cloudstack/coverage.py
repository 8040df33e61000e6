"""docs/api-coverage.md, rendered from the command registry (``make docs``).

The registry is the one declaration of every command (STYLE habit 1), so the coverage page is
generated from it rather than kept by hand; a test compares the committed page with a fresh
rendering so it cannot go stale. The output is deterministic: no dates, sorted everything.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Iterable

from cumulo.api.cloudstack.registry import REGISTRY, CommandSpec, Kind
from cumulo.services.access import ALL_ROLES, RoleType

COMMANDS_PACKAGE = "cumulo.api.cloudstack.commands"
KIND_ORDER = (Kind.SYNC, Kind.LIST, Kind.ASYNC, Kind.ASYNC_CREATE)

# reference/cloudstack-api.md §4 "Proposed MVP": the commands a first release should have.
TIER_1 = (
    "login",
    "logout",
    "listApis",
    "listCapabilities",
    "queryAsyncJobResult",
    "listAsyncJobs",
    "listDomains",
    "createDomain",
    "listAccounts",
    "createAccount",
    "deleteAccount",
    "listUsers",
    "createUser",
    "registerUserKeys",
    "getUserKeys",
    "listRoles",
    "listZones",
    "createZone",
    "updateZone",
    "listPods",
    "createPod",
    "listClusters",
    "addCluster",
    "listHosts",
    "addHost",
    "listStoragePools",
    "createStoragePool",
    "listImageStores",
    "addImageStore",
    "addImageStoreS3",
    "listServiceOfferings",
    "createServiceOffering",
    "listDiskOfferings",
    "createDiskOffering",
    "listNetworkOfferings",
    "listTemplates",
    "registerTemplate",
    "deleteTemplate",
    "listIsos",
    "registerIso",
    "listOsTypes",
    "deployVirtualMachine",
    "listVirtualMachines",
    "startVirtualMachine",
    "stopVirtualMachine",
    "rebootVirtualMachine",
    "destroyVirtualMachine",
    "expungeVirtualMachine",
    "updateVirtualMachine",
    "resetPasswordForVirtualMachine",
    "listVolumes",
    "createVolume",
    "attachVolume",
    "detachVolume",
    "deleteVolume",
    "listNetworks",
    "createNetwork",
    "deleteNetwork",
    "listPublicIpAddresses",
    "associateIpAddress",
    "listSSHKeyPairs",
    "createSSHKeyPair",
    "registerSSHKeyPair",
    "deleteSSHKeyPair",
    "listEvents",
    "listConfigurations",
    "updateConfiguration",
    "listCapacity",
    "listResourceLimits",
)
TIER_2 = (
    "scaleVirtualMachine",
    "migrateVirtualMachine",
    "recoverVirtualMachine",
    "resizeVolume",
    "copyTemplate",
    "extractTemplate",
    "deleteIso",
    "extractIso",
    "createSnapshot",
    "listSnapshots",
    "revertSnapshot",
    "deleteSnapshot",
    "createSnapshotPolicy",
    "listSnapshotPolicies",
    "listSecurityGroups",
    "createSecurityGroup",
    "authorizeSecurityGroupIngress",
    "authorizeSecurityGroupEgress",
    "disassociateIpAddress",
    "createFirewallRule",
    "listFirewallRules",
    "deleteFirewallRule",
    "createPortForwardingRule",
    "listPortForwardingRules",
    "deletePortForwardingRule",
    "createLoadBalancerRule",
    "listLoadBalancerRules",
    "assignToLoadBalancerRule",
    "deleteLoadBalancerRule",
    "createVPC",
    "listVPCs",
    "deleteVPC",
    "listVPCOfferings",
    "createAffinityGroup",
    "listAffinityGroups",
    "deleteAffinityGroup",
    "createTags",
    "listTags",
    "deleteTags",
    "listUsageRecords",
    "generateUsageRecords",
    "listUsageTypes",
    "updateResourceLimit",
    "createPhysicalNetwork",
    "addTrafficType",
    "createVlanIpRange",
)


def area_of(spec: CommandSpec) -> str:
    """The command module's name (``commands/users.py`` → ``users``): one area per resource."""
    module = spec.handler.__module__
    return module.rsplit(".", 1)[-1]


def declared(specs: Iterable[CommandSpec]) -> list[CommandSpec]:
    """Commands of the real command package only (tests may declare probes of their own)."""
    return [s for s in specs if s.handler.__module__.startswith(COMMANDS_PACKAGE + ".")]


def roles_text(spec: CommandSpec) -> str:
    if spec.public:
        return "anyone (before login)"
    if spec.roles == ALL_ROLES:
        return "all"
    return ", ".join(r.value for r in RoleType if r in spec.roles)


def cell(text: str | None) -> str:
    """Markdown table cells may not hold a newline or an unescaped pipe."""
    if not text:
        return ""
    return " ".join(text.split()).replace("|", "\\|")


def _kind_counts(specs: list[CommandSpec]) -> str:
    counts = Counter(s.kind for s in specs)
    return ", ".join(f"{counts[k]} {k.value}" for k in KIND_ORDER)


def _header(specs: list[CommandSpec], areas: dict[str, list[CommandSpec]]) -> list[str]:
    lines = [
        "# CloudStack API coverage",
        "",
        "Generated from the command registry by `python -m cumulo.api.cloudstack.coverage`",
        "(`make docs`); do not edit by hand. A test fails when this page and the registry differ.",
        "",
        f"**{len(specs)} commands** ({_kind_counts(specs)}) in {len(areas)} areas.",
        "Kinds follow CloudStack's class hierarchy: `sync`, `list` (paged, with `count`),",
        "`async` (answers `jobid`) and `async-create` (answers `id` and `jobid`).",
        "",
        "| area | commands |",
        "|---|---|",
    ]
    lines += [f"| [{name}](#{name}) | {len(group)} |" for name, group in areas.items()]
    return [*lines, ""]


def _area(name: str, group: list[CommandSpec]) -> list[str]:
    noun = "command" if len(group) == 1 else "commands"
    lines = [
        f"## {name}",
        "",
        f"`commands/{name}.py`: {len(group)} {noun} ({_kind_counts(group)}).",
        "",
        "| command | kind | roles | since | event | description |",
        "|---|---|---|---|---|---|",
    ]
    for s in group:
        row = (
            f"`{s.name}`",
            s.kind.value,
            roles_text(s),
            cell(s.since),
            f"`{s.event}`" if s.event else "",
            cell(s.description),
        )
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _tier(title: str, wanted: tuple[str, ...], have: set[str]) -> list[str]:
    done = [n for n in wanted if n.lower() in have]
    missing = [n for n in wanted if n.lower() not in have]
    lines = [f"### {title}: {len(done)} of {len(wanted)}", ""]
    lines.append("Missing: " + (", ".join(f"`{n}`" for n in missing) if missing else "none") + ".")
    return [*lines, ""]


def _mvp(specs: list[CommandSpec]) -> list[str]:
    have = {s.name.lower() for s in specs}
    lines = [
        "## Against the proposed MVP",
        "",
        'The two tiers of reference/cloudstack-api.md §4 "Proposed MVP".',
        "",
    ]
    lines += _tier("Tier 1", TIER_1, have)
    lines += _tier("Tier 2", TIER_2, have)
    return lines


def render() -> str:
    """The whole page; importing the commands package declares every command first."""
    import cumulo.api.cloudstack.commands  # noqa: F401

    specs = sorted(declared(REGISTRY.values()), key=lambda s: s.name.lower())
    grouped: dict[str, list[CommandSpec]] = defaultdict(list)
    for spec in specs:
        grouped[area_of(spec)].append(spec)
    areas = {name: grouped[name] for name in sorted(grouped)}
    lines = _header(specs, areas)
    for name, group in areas.items():
        lines += _area(name, group)
    lines += _mvp(specs)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
