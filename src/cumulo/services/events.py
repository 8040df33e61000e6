"""Events: one row per state change, written in the same transaction as the change.

Event types are CloudStack's (``USER.CREATE``, ``ACCOUNT.DELETE`` …); async commands write
``Scheduled`` when accepted and ``Completed`` (or an ERROR ``Completed``) when the job ends,
as CloudStack's ActionEventUtils does.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cumulo.db.models import Event
from cumulo.services.access import Caller


def record(
    session: Session,
    caller: Caller,
    type: str,
    description: str,
    *,
    state: str = "Completed",
    level: str = "INFO",
    resource_id: str | None = None,
    resource_type: str | None = None,
    resource_name: str | None = None,
    job_id: str | None = None,
    account_id: int | None = None,
    domain_id: int | None = None,
) -> Event:
    event = Event(
        type=type,
        state=state,
        level=level,
        description=description,
        user_id=caller.user_id,
        account_id=account_id if account_id is not None else caller.account_id,
        domain_id=domain_id if domain_id is not None else caller.domain_id,
        resource_id=resource_id,
        resource_type=resource_type,
        resource_name=resource_name,
        job_id=job_id,
    )
    session.add(event)
    return event
