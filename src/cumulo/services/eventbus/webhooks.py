"""Webhooks (CloudStack 4.20's webhook plugin): who gets which events, and one delivery.

A webhook receives the events of its owner: ``Local`` its own account's, ``Domain`` those of
every account in its owner's domain subtree (domain admins and the root admin only),
``Global`` all events (the root admin only). The match is a SQL condition on the outbox row,
decided when the row is fanned out.

A delivery POSTs the event's JSON; with a secret key the body is signed with HMAC-SHA256 and
the hex digest sent in ``X-CS-Signature`` (reference §7.2), so a receiver can tell the body
came from this cloud and was not changed. Targets are checked against
``webhook.allowed.target.networks`` when the webhook is saved and again at each delivery (a
name may resolve elsewhere later): a cloud's servers usually sit inside a private network a
tenant must not be able to probe through them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain
from cumulo.db.models_eventbus import OutboxEvent, Webhook, WebhookDelivery
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied

STATES = ("Enabled", "Disabled")
SCOPES = ("Local", "Domain", "Global")
SIGNATURE_HEADER = "X-CS-Signature"
RESPONSE_KEEP = 4096  # characters of a receiver's answer kept in the delivery record


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- validation --------------------------------------------------------------------------------


def _networks(allowed: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for part in allowed.split(","):
        if part.strip():
            out.append(ipaddress.ip_network(part.strip(), strict=False))
    return out


def check_url(url: str, allowed: str) -> None:
    """An http(s) URL whose host resolves only into the allowed networks (431 otherwise)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParamError(f"Invalid payload URL: {url}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError):
        raise ParamError(f"Invalid payload URL, its host does not resolve: {url}") from None
    networks = _networks(allowed)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not any(address in net for net in networks):
            raise ParamError(
                f"Payload URL {url} resolves to {address}, outside the networks webhooks may "
                "reach (webhook.allowed.target.networks)"
            )


def check_scope(caller: Caller, scope: str) -> None:
    if scope not in SCOPES:
        raise ParamError(f"Invalid scope {scope}: one of {', '.join(SCOPES)}")
    if scope == "Global" and not caller.is_root_admin:
        raise PermissionDenied("Only the root admin may create a Global webhook")
    if scope == "Domain" and caller.role_type is RoleType.USER:
        raise PermissionDenied("Only admins may create a Domain webhook")


def check_state(state: str) -> None:
    if state not in STATES:
        raise ParamError(f"Invalid state {state}: one of {', '.join(STATES)}")


# --- finding -----------------------------------------------------------------------------------


def find(session: Session, caller: Caller, uuid: str) -> Webhook:
    """A webhook the caller may manage: its own account's, or its domain subtree's (admins)."""
    row = session.execute(
        select(Webhook, Account, Domain)
        .join(Account, Account.id == Webhook.account_id)
        .join(Domain, Domain.id == Webhook.domain_id)
        .where(Webhook.uuid == uuid)
    ).first()
    if row is None:
        raise ParamError(f"Unable to find webhook with the specified ID: {uuid}")
    webhook, account, _domain = row
    caller.check_account(account)
    return webhook


def receives(event: OutboxEvent, webhook: Webhook, owner_path: str, role: RoleType) -> bool:
    """The same rule as ``owner_scope_matches``, for one row already loaded."""
    if webhook.scope == "Global" and role is RoleType.ADMIN:
        return True
    if webhook.scope == "Domain" and role is not RoleType.USER:
        return event.domain_path is not None and event.domain_path.startswith(owner_path)
    return event.account_id == webhook.account_id


@dataclass(frozen=True)
class Target:
    id: int
    uuid: str
    name: str
    url: str
    secret: str | None
    verify: bool


def enabled_with_owners(session: Session) -> list[tuple[Webhook, str, RoleType]]:
    """Every enabled webhook with its owner's domain path and role type."""
    from cumulo.db.models import Role

    rows = session.execute(
        select(Webhook, Domain.path, Role.type)
        .join(Account, Account.id == Webhook.account_id)
        .join(Domain, Domain.id == Webhook.domain_id)
        .join(Role, Role.id == Account.role_id)
        .where(Webhook.state == "Enabled", Account.removed.is_(None))
    ).all()
    return [(w, path, _role(role)) for w, path, role in rows]


def _role(text: str) -> RoleType:
    try:
        return RoleType(text)
    except ValueError:  # a role type this cloud has no scoping rule for: the narrowest
        return RoleType.USER


def scope_clause(caller: Caller) -> ColumnElement[bool]:
    """Webhooks a caller may list: its own, its domain subtree's (admins), all (root)."""
    if caller.is_root_admin:
        return and_(Webhook.id.is_not(None))
    if caller.is_domain_admin:
        return Domain.path.startswith(caller.domain_path, autoescape=True)
    return or_(Webhook.account_id == caller.account_id, false())


# --- one delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    success: bool
    code: int | None
    response: str
    headers: dict[str, str]
    body: str
    started: Any
    ended: Any
    duration_ms: int


def deliver(target: Target, body: bytes, event_type: str, timeout: float) -> Outcome:
    """POST one payload; success is a 2xx answer. Never raises: failures are outcomes."""
    headers = {"Content-Type": "application/json", "X-CS-Event-Type": event_type}
    if target.secret:
        headers[SIGNATURE_HEADER] = sign(target.secret, body)
    started, t0 = utcnow(), time.monotonic()
    code: int | None = None
    try:
        with httpx.Client(verify=target.verify, timeout=timeout, trust_env=False) as client:
            reply = client.post(target.url, content=body, headers=headers)
        code, text = reply.status_code, reply.text[:RESPONSE_KEEP]
    except httpx.HTTPError as err:
        text = f"{type(err).__name__}: {err}"[:RESPONSE_KEEP]
    ended = utcnow()
    return Outcome(
        success=code is not None and 200 <= code < 300,
        code=code,
        response=text,
        headers=headers,
        body=body.decode(),
        started=started,
        ended=ended,
        duration_ms=int((time.monotonic() - t0) * 1000),
    )


def refused(body: bytes, event_type: str, reason: str) -> Outcome:
    """A try that never left this server (its target is not allowed)."""
    now = utcnow()
    headers = {"Content-Type": "application/json", "X-CS-Event-Type": event_type}
    return Outcome(False, None, reason[:RESPONSE_KEEP], headers, body.decode(), now, now, 0)


def record(
    session: Session,
    webhook_id: int,
    event_uuid: str | None,
    event_type: str,
    outcome: Outcome,
    server_id: int | None,
) -> WebhookDelivery:
    row = WebhookDelivery(
        webhook_id=webhook_id,
        event_uuid=event_uuid,
        event_type=event_type,
        server_id=server_id,
        headers=json.dumps(outcome.headers),
        payload=outcome.body,
        success=outcome.success,
        response_code=outcome.code,
        response=outcome.response,
        start_date=outcome.started,
        end_date=outcome.ended,
        duration_ms=outcome.duration_ms,
    )
    session.add(row)
    return row


def body_of(event: OutboxEvent) -> bytes:
    """The delivered JSON: the category's payload plus what a receiver needs to route it."""
    doc = {
        "eventid": event.uuid,
        "category": event.category,
        "type": event.type,
        "resourcetype": event.resource_type,
        "resourceuuid": event.resource_uuid,
        **event.payload,
    }
    return json.dumps(doc, sort_keys=True).encode()
