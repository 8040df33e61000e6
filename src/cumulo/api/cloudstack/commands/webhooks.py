"""Webhooks (CloudStack 4.20): createWebhook, listWebhooks, updateWebhook, deleteWebhook,
executeWebhookDelivery, listWebhookDeliveries, deleteWebhookDelivery.

The behaviour (scopes, signing, the target guard, delivery) is in services.eventbus.webhooks;
deliveries of events are made by the event dispatcher, never by the request that caused them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import delete, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Listing, Success
from cumulo.common.time import to_wire
from cumulo.db.models import Account, Domain
from cumulo.db.models_eventbus import OutboxTask, Webhook, WebhookDelivery
from cumulo.services.catalog.owners import resolve_owner
from cumulo.services.errors import ParamError
from cumulo.services.eventbus import keys
from cumulo.services.eventbus import webhooks as svc

WEBHOOK_FIELDS = (
    "id",
    "name",
    "description",
    "state",
    "domainid",
    "domain",
    "account",
    "payloadurl",
    "secretkey",
    "sslverification",
    "scope",
    "created",
)
DELIVERY_FIELDS = (
    "id",
    "eventid",
    "eventtype",
    "webhookid",
    "webhookname",
    "managementserverid",
    "headers",
    "payload",
    "success",
    "response",
    "startdate",
    "enddate",
)
DATE_HELP = ' (use format "yyyy-MM-dd" or "yyyy-MM-dd HH:mm:ss")'
WebhookId = Annotated[UUIDStr | None, Param("The ID of the Webhook", entity="Webhook")]


def webhook_response(hook: Webhook, account: Account, domain: Domain) -> dict[str, Any]:
    return {
        "id": hook.uuid,
        "name": hook.name,
        "description": hook.description,
        "state": hook.state,
        "domainid": domain.uuid,
        "domain": domain.name,
        "account": account.name,
        "payloadurl": hook.payload_url,
        "secretkey": hook.secret_key,
        "sslverification": hook.ssl_verification,
        "scope": hook.scope,
        "created": to_wire(hook.created),
    }


def _rendered(ctx: Ctx, hook: Webhook) -> dict[str, Any]:
    ctx.session.flush()
    account = ctx.session.get(Account, hook.account_id)
    domain = ctx.session.get(Domain, hook.domain_id)
    assert account is not None and domain is not None
    return webhook_response(hook, account, domain)


def _check_url(ctx: Ctx, url: str) -> None:
    svc.check_url(url, str(ctx.runtime.config.get(ctx.session, keys.WEBHOOK_ALLOWED_NETWORKS)))


@command(
    "createWebhook",
    description="Creates a Webhook",
    response="webhook",
    event="WEBHOOK.CREATE",
    entity="Webhook",
    fields=WEBHOOK_FIELDS,
    since="4.20.0",
)
def create_webhook(
    ctx: Ctx,
    name: Annotated[str, Param("Name for the Webhook", required=True)],
    payloadurl: Annotated[str, Param("Payload URL of the Webhook", required=True)],
    description: Annotated[str | None, Param("Description for the Webhook")] = None,
    state: Annotated[str, Param("State of the Webhook")] = "Enabled",
    account: Annotated[
        str | None, Param("An optional account for the Webhook. Must be used with domainId.")
    ] = None,
    domainid: Annotated[
        UUIDStr | None,
        Param(
            "an optional domainId for the Webhook. If the account parameter is used, domainId "
            "must also be used.",
            entity="Domain",
        ),
    ] = None,
    projectid: Annotated[UUIDStr | None, Param("Project for the Webhook", entity="Project")] = None,
    secretkey: Annotated[str | None, Param("Secret key of the Webhook")] = None,
    sslverification: Annotated[
        bool,
        Param("If set to true then SSL verification will be done for the Webhook otherwise not"),
    ] = False,
    scope: Annotated[str, Param("Scope of the Webhook")] = "Local",
) -> dict[str, Any]:
    svc.check_state(state)
    svc.check_scope(ctx.caller, scope)
    _check_url(ctx, payloadurl)
    owner = resolve_owner(ctx.session, ctx.caller, account, domainid, projectid)
    hook = Webhook(
        name=name,
        description=description,
        state=state,
        account_id=owner.id,
        domain_id=owner.domain_id,
        payload_url=payloadurl,
        secret_key=secretkey,
        ssl_verification=sslverification,
        scope=scope,
    )
    ctx.session.add(hook)
    return _rendered(ctx, hook)


@command(
    "listWebhooks",
    kind=Kind.LIST,
    description="Lists Webhooks",
    response="webhook",
    scoped=True,
    fields=WEBHOOK_FIELDS,
    since="4.20.0",
)
def list_webhooks(
    ctx: Ctx,
    id: WebhookId = None,
    state: Annotated[str | None, Param("The state of the Webhook")] = None,
    name: Annotated[str | None, Param("The name of the Webhook")] = None,
    scope: Annotated[str | None, Param("The scope of the Webhook")] = None,
    projectid: Annotated[UUIDStr | None, Param("list objects by project", entity="Project")] = None,
) -> Listing:
    if projectid is not None:
        return Listing([], 0)  # no projects exist, so none of them owns a webhook
    stmt = (
        select(Webhook, Account, Domain)
        .join(Account, Account.id == Webhook.account_id)
        .join(Domain, Domain.id == Webhook.domain_id)
        .where(ctx.scope.where(Webhook.account_id, Domain.path))
    )
    if id is not None:
        stmt = stmt.where(Webhook.uuid == id)
    if state is not None:
        stmt = stmt.where(Webhook.state == state)
    if name is not None:
        stmt = stmt.where(Webhook.name == name)
    if scope is not None:
        stmt = stmt.where(Webhook.scope == scope)
    if ctx.paging.keyword:
        stmt = stmt.where(Webhook.name.ilike(f"%{ctx.paging.keyword}%"))
    rows, total = ctx.page_rows(stmt.order_by(Webhook.id))
    return Listing([webhook_response(*r) for r in rows], total)


@command(
    "updateWebhook",
    description="Updates a Webhook",
    response="webhook",
    event="WEBHOOK.UPDATE",
    entity="Webhook",
    fields=WEBHOOK_FIELDS,
    since="4.20.0",
)
def update_webhook(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("The ID of the Webhook", required=True, entity="Webhook")],
    name: Annotated[str | None, Param("Name for the Webhook")] = None,
    description: Annotated[str | None, Param("Description for the Webhook")] = None,
    state: Annotated[str | None, Param("State of the Webhook")] = None,
    payloadurl: Annotated[str | None, Param("Payload URL of the Webhook")] = None,
    secretkey: Annotated[str | None, Param("Secret key of the Webhook")] = None,
    sslverification: Annotated[
        bool | None,
        Param("If set to true then SSL verification will be done for the Webhook otherwise not"),
    ] = None,
    scope: Annotated[str | None, Param("Scope of the Webhook")] = None,
) -> dict[str, Any]:
    hook = svc.find(ctx.session, ctx.caller, id)
    if state is not None:
        svc.check_state(state)
    if scope is not None:
        svc.check_scope(ctx.caller, scope)
    if payloadurl is not None:
        _check_url(ctx, payloadurl)
    changes = {
        "name": name,
        "description": description,
        "state": state,
        "payload_url": payloadurl,
        "secret_key": secretkey,
        "ssl_verification": sslverification,
        "scope": scope,
    }
    for attr, value in changes.items():
        if value is not None:
            setattr(hook, attr, value)
    return _rendered(ctx, hook)


@command(
    "deleteWebhook",
    description="Deletes a Webhook",
    event="WEBHOOK.DELETE",
    entity="Webhook",
    fields=("success", "displaytext"),
    since="4.20.0",
)
def delete_webhook(
    ctx: Ctx,
    id: Annotated[UUIDStr, Param("The ID of the Webhook", required=True, entity="Webhook")],
) -> Success:
    hook = svc.find(ctx.session, ctx.caller, id)
    ctx.event_resource = (hook.uuid, hook.name)
    ctx.session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    ctx.session.execute(delete(OutboxTask).where(OutboxTask.webhook_id == hook.id))
    ctx.session.delete(hook)
    return Success()


# --- deliveries --------------------------------------------------------------------------------


def delivery_response(row: WebhookDelivery, hook: Webhook, server: str | None) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "eventid": row.event_uuid,
        "eventtype": row.event_type,
        "webhookid": hook.uuid,
        "webhookname": hook.name,
        "managementserverid": server,
        "headers": row.headers,
        "payload": row.payload,
        "success": row.success,
        "response": row.response,
        "responsecode": row.response_code,
        "duration": row.duration_ms,
        "startdate": to_wire(row.start_date),
        "enddate": to_wire(row.end_date),
    }


def _deliveries(ctx: Ctx) -> Any:
    from cumulo.db.models import ManagementServer

    return (
        select(WebhookDelivery, Webhook, ManagementServer.uuid)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .join(Account, Account.id == Webhook.account_id)
        .join(Domain, Domain.id == Webhook.domain_id)
        .outerjoin(ManagementServer, ManagementServer.id == WebhookDelivery.server_id)
        .where(svc.scope_clause(ctx.caller))
    )


def _filtered(
    ctx: Ctx,
    stmt: Any,
    id: str | None,
    webhookid: str | None,
    startdate: datetime | None,
    enddate: datetime | None,
) -> Any:
    if id is not None:
        stmt = stmt.where(WebhookDelivery.uuid == id)
    if webhookid is not None:
        hook = svc.find(ctx.session, ctx.caller, webhookid)
        stmt = stmt.where(WebhookDelivery.webhook_id == hook.id)
    if startdate is not None:
        stmt = stmt.where(WebhookDelivery.start_date >= startdate)
    if enddate is not None:
        stmt = stmt.where(WebhookDelivery.end_date <= enddate)
    return stmt


@command(
    "listWebhookDeliveries",
    kind=Kind.LIST,
    description="Lists Webhook deliveries",
    response="webhookdelivery",
    fields=DELIVERY_FIELDS,
    since="4.20.0",
)
def list_webhook_deliveries(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("The ID of the Webhook delivery", entity="WebhookDelivery")
    ] = None,
    webhookid: WebhookId = None,
    startdate: Annotated[
        datetime | None, Param("The start date range for the Webhook delivery" + DATE_HELP)
    ] = None,
    enddate: Annotated[
        datetime | None, Param("The end date range for the Webhook delivery" + DATE_HELP)
    ] = None,
    eventtype: Annotated[str | None, Param("The event type of the Webhook delivery")] = None,
) -> Listing:
    stmt = _filtered(ctx, _deliveries(ctx), id, webhookid, startdate, enddate)
    if eventtype is not None:
        stmt = stmt.where(WebhookDelivery.event_type == eventtype)
    rows, total = ctx.page_rows(stmt.order_by(WebhookDelivery.id.desc()))
    return Listing([delivery_response(*r) for r in rows], total)


@command(
    "deleteWebhookDelivery",
    description="Deletes Webhook delivery",
    entity="WebhookDelivery",
    fields=("success", "displaytext"),
    since="4.20.0",
)
def delete_webhook_delivery(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None, Param("The ID of the Webhook delivery", entity="WebhookDelivery")
    ] = None,
    webhookid: WebhookId = None,
    startdate: Annotated[
        datetime | None, Param("The start date range for the Webhook delivery" + DATE_HELP)
    ] = None,
    enddate: Annotated[
        datetime | None, Param("The end date range for the Webhook delivery" + DATE_HELP)
    ] = None,
) -> Success:
    if id is None and webhookid is None and startdate is None and enddate is None:
        raise ParamError("Either id, webhookid, startdate or enddate must be specified")
    stmt = _filtered(ctx, _deliveries(ctx), id, webhookid, startdate, enddate)
    found = [r[0].id for r in ctx.session.execute(stmt).all()]
    if id is not None and not found:
        raise ParamError(f"Unable to find webhook delivery with the specified ID: {id}")
    if found:
        ctx.session.execute(delete(WebhookDelivery).where(WebhookDelivery.id.in_(found)))
    return Success()


@command(
    "executeWebhookDelivery",
    description="Executes a Webhook delivery",
    response="webhookdelivery",
    entity="WebhookDelivery",
    fields=DELIVERY_FIELDS,
    since="4.20.0",
)
def execute_webhook_delivery(
    ctx: Ctx,
    id: Annotated[
        UUIDStr | None,
        Param("The ID of the Webhook delivery for redelivery", entity="WebhookDelivery"),
    ] = None,
    webhookid: WebhookId = None,
    payloadurl: Annotated[str | None, Param("Payload URL of the Webhook delivery")] = None,
    secretkey: Annotated[str | None, Param("Secret key of the Webhook delivery")] = None,
    sslverification: Annotated[
        bool | None,
        Param(
            "If set to true then SSL verification will be done for the Webhook delivery "
            "otherwise not"
        ),
    ] = None,
    payload: Annotated[str | None, Param("Payload of the Webhook delivery")] = None,
) -> dict[str, Any]:
    """Re-send a recorded delivery (``id``), or test a webhook (``webhookid``) or a bare URL
    with a payload; the attempt is recorded when it belongs to a webhook."""
    previous, hook = _redelivery_source(ctx, id, webhookid)
    url = payloadurl or (hook.payload_url if hook else None)
    if url is None:
        raise ParamError("Either id, webhookid or payloadurl must be specified")
    _check_url(ctx, url)
    target = svc.Target(
        hook.id if hook else 0,
        hook.uuid if hook else "",
        hook.name if hook else "",
        url,
        secretkey if secretkey is not None else (hook.secret_key if hook else None),
        sslverification if sslverification is not None else bool(hook and hook.ssl_verification),
    )
    body = _body(previous, payload)
    event_type = previous.event_type if previous else "WEBHOOK.TEST"
    timeout = float(ctx.runtime.config.get(ctx.session, keys.WEBHOOK_TIMEOUT))
    outcome = svc.deliver(target, body, event_type, timeout)
    if hook is None:
        return _unrecorded(outcome, event_type)
    row = svc.record(
        ctx.session,
        hook.id,
        previous.event_uuid if previous else None,
        event_type,
        outcome,
        ctx.runtime.server_id,
    )
    ctx.session.flush()
    return delivery_response(row, hook, ctx.runtime.server_uuid)


def _redelivery_source(
    ctx: Ctx, id: str | None, webhookid: str | None
) -> tuple[WebhookDelivery | None, Webhook | None]:
    if id is not None:
        row = ctx.session.execute(_deliveries(ctx).where(WebhookDelivery.uuid == id)).first()
        if row is None:
            raise ParamError(f"Unable to find webhook delivery with the specified ID: {id}")
        return row[0], row[1]
    if webhookid is not None:
        return None, svc.find(ctx.session, ctx.caller, webhookid)
    return None, None


def _body(previous: WebhookDelivery | None, payload: str | None) -> bytes:
    if payload is not None:
        return payload.encode()
    if previous is not None:
        return previous.payload.encode()
    return json.dumps({"event": "WEBHOOK.TEST", "description": "Test delivery"}).encode()


def _unrecorded(outcome: svc.Outcome, event_type: str) -> dict[str, Any]:
    return {
        "eventtype": event_type,
        "headers": json.dumps(outcome.headers),
        "payload": outcome.body,
        "success": outcome.success,
        "response": outcome.response,
        "responsecode": outcome.code,
        "duration": outcome.duration_ms,
        "startdate": to_wire(outcome.started),
        "enddate": to_wire(outcome.ended),
    }
