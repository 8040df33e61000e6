"""Usage of port-forwarding (type 12) and load-balancer (type 11) rules with a controlled
clock: seconds hand-computed across a period boundary, a re-run identical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_network import NetworkOffering
from cumulo.db.models_usage import UsageRecord
from cumulo.services.usage import aggregate
from cumulo.services.usage import events as ev
from cumulo.services.usage import types as ut

D = datetime(2026, 3, 10, tzinfo=UTC)  # a day in the past: every period here has ended
DAY = timedelta(days=1)
PF_UUID = "30000000-0000-0000-0000-000000000001"
LB_UUID = "40000000-0000-0000-0000-000000000002"


def at(hours: float) -> datetime:
    return D + timedelta(hours=hours)


def rule_event(session: Session, type: str, rtype: str, uuid: str, when: datetime) -> None:
    acct = session.scalar(select(Account).order_by(Account.id))
    assert acct is not None
    ev.record(
        session, type, account_id=acct.id, domain_id=acct.domain_id, zone_id=1,
        resource_type=rtype, resource_id=int(uuid[-1]), resource_uuid=uuid,
        resource_name="web" if rtype == "LoadBalancer" else None, at=when,
    )  # fmt: skip


def records(session: Session, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    rows = session.scalars(
        select(UsageRecord)
        .where(UsageRecord.start_date == start, UsageRecord.end_date == end)
        .order_by(UsageRecord.usage_type, UsageRecord.usage_uuid)
    )
    return [(r.usage_type, r.usage_uuid, r.seconds, r.raw_usage, r.description) for r in rows]


def test_rules_are_billed_from_creation_to_deletion_across_the_period_boundary(
    session: Session,
) -> None:
    # PF rule: created 21:00 the day before, deleted 02:30 the day after D.
    rule_event(session, ev.RULE_ADD, "PortForwardingRule", PF_UUID, at(-3))
    rule_event(session, ev.RULE_DELETE, "PortForwardingRule", PF_UUID, at(26.5))
    # LB rule: created 18:00 on D, deleted 01:15 the day after.
    rule_event(session, ev.LB_CREATE, "LoadBalancer", LB_UUID, at(18))
    rule_event(session, ev.LB_DELETE, "LoadBalancer", LB_UUID, at(25.25))
    # A delete resent (a re-run job) changes nothing.
    rule_event(session, ev.LB_DELETE, "LoadBalancer", LB_UUID, at(25.5))

    assert aggregate.run(session, D, D + DAY) == 2
    assert aggregate.run(session, D + DAY, D + 2 * DAY) == 2
    assert aggregate.run(session, D + 2 * DAY, D + 3 * DAY) == 0
    day1 = records(session, D, D + DAY)
    assert day1 == [
        (ut.LOAD_BALANCER_POLICY, LB_UUID, 6 * 3600, 6.0, "Load Balancing Policy: web usage time"),
        (
            ut.PORT_FORWARDING_RULE,
            PF_UUID,
            24 * 3600,
            24.0,
            f"Port Forwarding Rule: {PF_UUID} usage time",
        ),
    ]
    assert [(r[0], r[2]) for r in records(session, D + DAY, D + 2 * DAY)] == [
        (ut.LOAD_BALANCER_POLICY, 4500),
        (ut.PORT_FORWARDING_RULE, int(2.5 * 3600)),
    ]
    aggregate.run(session, D, D + DAY)
    assert records(session, D, D + DAY) == day1


def test_a_rule_still_open_is_clipped_to_the_period(session: Session) -> None:
    rule_event(session, ev.RULE_ADD, "PortForwardingRule", PF_UUID, at(20.5))
    aggregate.run(session, D, D + DAY)
    assert [(r[0], r[2]) for r in records(session, D, D + DAY)] == [
        (ut.PORT_FORWARDING_RULE, int(3.5 * 3600))
    ]


def test_a_nic_is_billed_to_its_vm_by_its_network_offering(session: Session) -> None:
    acct = session.scalar(select(Account).order_by(Account.id))
    offering = session.scalar(select(NetworkOffering).order_by(NetworkOffering.id))
    assert acct is not None and offering is not None
    vm_uuid = "50000000-0000-0000-0000-000000000003"
    for type_, when in ((ev.OFFERING_ASSIGN, at(22)), (ev.OFFERING_REMOVE, at(27))):
        ev.record(
            session, type_, account_id=acct.id, domain_id=acct.domain_id, zone_id=1,
            resource_type="NicOffering", resource_id=3, resource_uuid=vm_uuid,
            resource_name="vm-3", offering_id=offering.id, at=when,
        )  # fmt: skip
    aggregate.run(session, D, D + DAY)
    aggregate.run(session, D + DAY, D + 2 * DAY)
    day1 = session.scalars(select(UsageRecord).where(UsageRecord.start_date == D)).all()
    assert [(r.usage_type, r.seconds) for r in day1] == [(ut.NETWORK_OFFERING, 2 * 3600)]
    rec = day1[0]
    assert (rec.usage_uuid, rec.vm_uuid, rec.vm_name) == (vm_uuid, vm_uuid, "vm-3")
    assert rec.offering_uuid == offering.uuid
    assert rec.description == "Network offering usage for VM vm-3"
    day2 = session.scalars(select(UsageRecord).where(UsageRecord.start_date == D + DAY)).all()
    assert [(r.usage_type, r.seconds) for r in day2] == [(ut.NETWORK_OFFERING, 3 * 3600)]


def test_a_security_group_membership_is_billed_while_the_vm_is_in_it(session: Session) -> None:
    acct = session.scalar(select(Account).order_by(Account.id))
    assert acct is not None
    group_uuid = "60000000-0000-0000-0000-000000000004"
    for type_, when in ((ev.SG_ASSIGN, at(-1)), (ev.SG_REMOVE, at(12.75))):
        ev.record(
            session, type_, account_id=acct.id, domain_id=acct.domain_id, zone_id=1,
            resource_type="SecurityGroupMember", resource_id=4, resource_uuid=group_uuid,
            resource_name="default", at=when,
        )  # fmt: skip
    aggregate.run(session, D, D + DAY)
    assert records(session, D, D + DAY) == [
        (
            ut.SECURITY_GROUP,
            group_uuid,
            int(12.75 * 3600),
            12.75,
            "Security Group: default usage time",
        )
    ]
    assert aggregate.run(session, D + DAY, D + 2 * DAY) == 0
