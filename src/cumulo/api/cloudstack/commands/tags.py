"""Resource tags: createTags, deleteTags, listTags.

Both writes are async in CloudStack. Every refusal (unknown type or resource, no right to
a resource, a key already there) is answered by the request itself; the job then writes or
deletes all the tags at once, so a failed request leaves no tag behind.
"""

from __future__ import annotations

from typing import Annotated

from sqlalchemy import or_

from cumulo.api.cloudstack.registry import Kind, Param, command
from cumulo.api.cloudstack.results import Ctx, Listing, Submit, Success
from cumulo.db.models import Domain
from cumulo.db.models_tags import ResourceTag
from cumulo.services import tags as svc

TAG_FIELDS = (
    "key",
    "value",
    "resourcetype",
    "resourceid",
    "account",
    "domainid",
    "domain",
    "customer",
)

ResourceIds = Annotated[list[str], Param("list of resources to create the tags for", required=True)]
ResourceType = Annotated[str, Param("type of the resource", required=True)]


@command(
    "createTags",
    kind=Kind.ASYNC,
    description="Creates resource tag(s)",
    event="CREATE_TAGS",
    entity="ResourceTag",
    since="4.0.0",
)
def create_tags(
    ctx: Ctx,
    resourceids: ResourceIds,
    resourcetype: ResourceType,
    tags: Annotated[
        list[dict[str, str]],
        Param("Map of tags (key/value pairs)", required=True),
    ],
    customer: Annotated[
        str | None,
        Param(
            "identifies client specific tag. When the value is not null, the tag can't be "
            "used by cloudStack code internally"
        ),
    ] = None,
) -> Submit:
    plan = svc.plan_create(ctx.session, ctx.caller, resourcetype, resourceids, tags)
    svc.check_new(ctx.session, plan)
    return Submit(
        params={
            "resourceids": [r.uuid for r in plan.resources],
            "resourcetype": plan.resource_type,
            "tags": tags,
            "customer": customer,
        },
        instance_type=plan.resource_type,
        instance_id=plan.resources[0].uuid,
    )


@create_tags.runs
def run_create_tags(
    ctx: Ctx,
    resourceids: list[str],
    resourcetype: str,
    tags: list[dict[str, str]],
    customer: str | None = None,
) -> Success:
    """A re-run after a crash finds its own tags written and adds nothing twice."""
    plan = svc.plan_create(ctx.session, ctx.caller, resourcetype, resourceids, tags)
    svc.create_tags(ctx.session, ctx.caller, plan, customer, rerun=True)
    return Success()


@command(
    "deleteTags",
    kind=Kind.ASYNC,
    description="Deleting resource tag(s)",
    event="DELETE_TAGS",
    entity="ResourceTag",
    since="4.0.0",
)
def delete_tags(
    ctx: Ctx,
    resourceids: Annotated[list[str], Param("Delete tags for resource id(s)", required=True)],
    resourcetype: Annotated[str, Param("Delete tag by resource type", required=True)],
    tags: Annotated[
        list[dict[str, str]] | None,
        Param("Delete tags matching key/value pairs"),
    ] = None,
) -> Submit:
    plan = svc.plan_delete(ctx.session, ctx.caller, resourcetype, resourceids, tags)
    return Submit(
        params={
            "resourceids": [r.uuid for r in plan.resources],
            "resourcetype": plan.resource_type,
            "tags": tags,
        },
        instance_type=plan.resource_type,
        instance_id=plan.resources[0].uuid,
    )


@delete_tags.runs
def run_delete_tags(
    ctx: Ctx,
    resourceids: list[str],
    resourcetype: str,
    tags: list[dict[str, str]] | None = None,
) -> Success:
    """Idempotent: the resources are looked up again and whatever still matches goes."""
    resolved = [svc.resolve(ctx.session, resourcetype, uuid) for uuid in resourceids]
    plan = svc.TagPlan(resourcetype, [r for r in resolved if r is not None], svc.tag_pairs(tags))
    if plan.resources:
        svc.delete_tags(ctx.session, plan)
    return Success()


@command(
    "listTags",
    kind=Kind.LIST,
    description="List resource tag(s)",
    response="tag",
    scoped=True,
    fields=TAG_FIELDS,
    since="4.0.0",
)
def list_tags(
    ctx: Ctx,
    resourceid: Annotated[str | None, Param("list by resource id")] = None,
    resourcetype: Annotated[str | None, Param("list by resource type")] = None,
    key: Annotated[str | None, Param("list by key")] = None,
    value: Annotated[str | None, Param("list by value")] = None,
    customer: Annotated[str | None, Param("list by customer name")] = None,
    projectid: Annotated[
        str | None, Param("list objects by project; if projectid=-1 lists All VMs")
    ] = None,
) -> Listing:
    if projectid is not None and projectid != "-1":
        return Listing([], 0)  # no projects exist, so none of them owns a tag
    stmt = svc.tags_select().where(ctx.scope.where(ResourceTag.account_id, Domain.path))
    if resourceid is not None:
        stmt = stmt.where(ResourceTag.resource_uuid == resourceid)
    if resourcetype is not None:
        stmt = stmt.where(ResourceTag.resource_type == svc.resource_type_name(resourcetype))
    if key is not None:
        stmt = stmt.where(ResourceTag.key == key)
    if value is not None:
        stmt = stmt.where(ResourceTag.value == value)
    if customer is not None:
        stmt = stmt.where(ResourceTag.customer == customer)
    if ctx.paging.keyword:
        pattern = f"%{ctx.paging.keyword}%"
        stmt = stmt.where(or_(ResourceTag.key.ilike(pattern), ResourceTag.value.ilike(pattern)))
    rows, total = ctx.page_records(stmt.order_by(ResourceTag.id))
    return Listing([svc.tag_response(r) for r in rows], total)
