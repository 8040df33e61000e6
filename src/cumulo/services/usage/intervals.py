"""From one resource's usage events to the intervals it was billable, per usage type.

A rule names the events that open an interval, close it, or change what it is billed by
(an offering upgrade, a resize). Events are read as a history, not as increments: an open
interval opened again, or a closed one closed again, is still one interval. That is what
makes a resent or duplicated event harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cumulo.services.usage import events as ev
from cumulo.services.usage import types as ut


@dataclass(frozen=True)
class Rule:
    usage_type: int
    resource_type: str
    opens: frozenset[str]
    closes: frozenset[str]
    changes: frozenset[str] = frozenset()


def _rule(usage_type: int, rtype: str, opens: str, closes: str, changes: str = "") -> Rule:
    """A rule from space-separated event types (the table below stays one line per rule)."""
    return Rule(
        usage_type,
        rtype,
        frozenset(opens.split()),
        frozenset(closes.split()),
        frozenset(changes.split()),
    )


RULES: tuple[Rule, ...] = (
    _rule(ut.RUNNING_VM, "VirtualMachine", "VM.START", "VM.STOP VM.DESTROY", "VM.UPGRADE"),
    _rule(ut.ALLOCATED_VM, "VirtualMachine", "VM.CREATE", "VM.DESTROY", "VM.UPGRADE"),
    _rule(ut.VOLUME, "Volume", "VOLUME.CREATE VOLUME.UPLOAD", "VOLUME.DELETE", "VOLUME.RESIZE"),
    _rule(ut.TEMPLATE, "Template", "TEMPLATE.CREATE", "TEMPLATE.DELETE"),
    _rule(ut.ISO, "Iso", "ISO.CREATE", "ISO.DELETE"),
    _rule(ut.SNAPSHOT, "Snapshot", "SNAPSHOT.CREATE", "SNAPSHOT.DELETE"),
    _rule(ut.VM_SNAPSHOT, "VMSnapshot", "VMSNAPSHOT.CREATE", "VMSNAPSHOT.DELETE"),
    _rule(ut.IP_ADDRESS, "PublicIpAddress", "NET.IPASSIGN", "NET.IPRELEASE"),
    _rule(ut.PORT_FORWARDING_RULE, "PortForwardingRule", "NET.RULEADD", "NET.RULEDELETE"),
    _rule(ut.LOAD_BALANCER_POLICY, "LoadBalancer", "LB.CREATE", "LB.DELETE"),
    _rule(ut.NETWORK_OFFERING, "NicOffering", "NETWORK.OFFERING.ASSIGN", "NETWORK.OFFERING.REMOVE"),
    _rule(ut.SECURITY_GROUP, "SecurityGroupMember", "SG.ASSIGN", "SG.REMOVE"),
)
assert all(t in ev.USAGE_EVENT_TYPES for r in RULES for t in r.opens | r.closes | r.changes)
RESOURCE_TYPES = tuple(sorted({r.resource_type for r in RULES}))


@dataclass(frozen=True)
class Interval:
    """``[start, end)`` billed as ``attrs`` (the event that opened or last changed it)."""

    usage_type: int
    start: datetime
    end: datetime
    attrs: Any  # a usage event row: account, zone, offering, template, size …


def intervals(events: Iterable[Any], until: datetime) -> Iterator[Interval]:
    """One resource's events, oldest first (``created``, ``type`` …): every interval of every
    rule that applies, an interval still open at ``until`` ending there."""
    history = list(events)
    if not history:
        return
    rtype = history[0].resource_type
    for rule in RULES:
        if rule.resource_type == rtype:
            yield from _rule_intervals(rule, history, until)


def _rule_intervals(rule: Rule, history: list[Any], until: datetime) -> Iterator[Interval]:
    opened: Any = None  # the event the open interval is billed by
    since: datetime | None = None
    for event in history:
        at = event.created
        if event.type in rule.opens and opened is None:
            opened, since = event, at
        elif event.type in rule.closes and opened is not None:
            assert since is not None
            yield Interval(rule.usage_type, since, at, opened)
            opened = since = None
        elif event.type in rule.changes and opened is not None:
            assert since is not None
            yield Interval(rule.usage_type, since, at, opened)
            opened, since = event, at
    if opened is not None and since is not None:
        yield Interval(rule.usage_type, since, until, opened)


def overlap_seconds(interval: Interval, start: datetime, end: datetime) -> int:
    """Whole seconds of ``interval`` inside ``[start, end)`` (events carry whole seconds
    or finer; billing in whole seconds keeps re-runs bit-identical)."""
    lo, hi = max(interval.start, start), min(interval.end, end)
    return max(0, int((hi - lo).total_seconds()))
