"""Reading the outbox for the push stream: a caller's events after a given id, scoped in SQL.

A user sees its own account's events, a domain admin those of its domain subtree, the root
admin everything including operator events (alerts, hosts) that belong to no account: the
same rule as archiving events (services.events.permitted_scope).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cumulo.db.models_eventbus import OutboxEvent
from cumulo.services.access import ListScope

BATCH = 500


@dataclass(frozen=True)
class Pushed:
    id: int
    category: str
    data: dict[str, Any]


def latest_id(session: Session) -> int:
    return int(session.scalar(select(func.max(OutboxEvent.id))) or 0)


def after(session: Session, scope: ListScope, last_id: int) -> list[Pushed]:
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.id > last_id)
        .where(scope.where(OutboxEvent.account_id, OutboxEvent.domain_path))
        .order_by(OutboxEvent.id)
        .limit(BATCH)
    )
    return [_pushed(row) for row in session.scalars(stmt)]


def _pushed(row: OutboxEvent) -> Pushed:
    data = {
        "eventid": row.uuid,
        "category": row.category,
        "type": row.type,
        "resourcetype": row.resource_type,
        "resourceuuid": row.resource_uuid,
        **row.payload,
    }
    return Pushed(row.id, row.category, data)
