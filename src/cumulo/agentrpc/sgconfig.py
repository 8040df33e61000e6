"""The desired security-group filtering of one VM NIC, as plain typed data.

The cloud renders it (``services.network.port_rules``: the rules of all the VM's groups, with
rules naming another group expanded to that group's members' ``/32`` addresses) and a host's
network layer applies it to the NIC's tap (``agent.network.sg_nft``). It lives in
``agentrpc`` because both sides need it and neither may import the other; the fields mirror
``port_rules.PortConfig`` / ``PortRule`` one to one. Frozen, tuples in a deterministic
order: two renderings of unchanged rows compare equal.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SecurityGroupRule:
    protocol: str  # tcp | udp | icmp | all
    start_port: int | None  # None: every port
    end_port: int | None
    icmp_type: int | None  # None or -1: any
    icmp_code: int | None
    cidrs: tuple[str, ...]  # remote addresses: the rule's CIDR or a group's member IPs


@dataclass(frozen=True)
class SecurityGroupConfig:
    vm_id: str
    nic_id: str
    mac: str
    ip: str | None
    bridge: str
    ingress: tuple[SecurityGroupRule, ...]  # default deny: only these come in
    egress: tuple[SecurityGroupRule, ...]
    egress_default_allow: bool  # True while no group of the VM has an egress rule
    device_id: int = 0  # the NIC's slot: with the VM's name, it names the tap on the host


def to_wire(config: SecurityGroupConfig) -> dict[str, Any]:
    """JSON-ready data (``StartVm``'s NIC spec and ``ApplySecurityGroups`` carry it)."""
    data = dataclasses.asdict(config)
    for direction in ("ingress", "egress"):
        data[direction] = [{**r, "cidrs": list(r["cidrs"])} for r in data[direction]]
    return data


def _rule(data: dict[str, Any]) -> SecurityGroupRule:
    return SecurityGroupRule(**{**data, "cidrs": tuple(data["cidrs"])})


def from_wire(data: dict[str, Any]) -> SecurityGroupConfig:
    """The config ``to_wire`` made ``data`` from (lists back to tuples)."""
    return SecurityGroupConfig(
        **{
            **data,
            "ingress": tuple(_rule(r) for r in data["ingress"]),
            "egress": tuple(_rule(r) for r in data["egress"]),
        }
    )
