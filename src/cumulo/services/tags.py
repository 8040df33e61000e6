"""Resource tags: a registry of taggable resource types and the tag rules CloudStack applies.

Each resource family registers, under its CloudStack ``ResourceObjectType`` name, how to turn
a resource uuid into its integer key and owner (``register_taggable``); tags then work for
that family with no further code. Resources with no owner account (offerings, zones) are
the cloud's own and only the root admin tags them.

List commands use ``filter_by_tags`` for their ``tags[…]`` parameter (an EXISTS per pair,
inside the SQL so paging stays right) and ``tags_for`` to render ``tags`` on a page of
objects with one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, delete, exists, or_, select
from sqlalchemy.orm import Session

from cumulo.db.models import Account, Domain
from cumulo.db.models_catalog import DiskOffering, ServiceOffering
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_images import Template
from cumulo.db.models_infra import Zone
from cumulo.db.models_tags import ResourceTag
from cumulo.services.access import Caller
from cumulo.services.errors import ParamError, PermissionDenied


@dataclass(frozen=True)
class Taggable:
    """A resource as tags see it: its key and, unless the cloud owns it, its owner."""

    pk: int
    uuid: str
    account_id: int | None
    domain_id: int | None


Resolver = Callable[[Session, str], Taggable | None]
_RESOLVERS: dict[str, Resolver] = {}
_CANONICAL: dict[str, str] = {}  # lower-case name -> registered spelling


def register_taggable(resource_type: str, resolver: Resolver) -> None:
    """Make ``resource_type`` taggable; ``resolver`` returns None for an unknown uuid."""
    _RESOLVERS[resource_type] = resolver
    _CANONICAL[resource_type.lower()] = resource_type


def taggable_types() -> list[str]:
    return sorted(_RESOLVERS)


def resource_type_name(text: str) -> str:
    """The registered spelling of a type (CloudStack matches it case-insensitively)."""
    name = _CANONICAL.get(text.strip().lower())
    if name is None:
        raise ParamError(f"Invalid resource type: {text}")
    return name


def tag_pairs(tags: Sequence[dict[str, str]] | None) -> list[tuple[str, str | None]]:
    """``tags[n].key/value`` maps as (key, value) pairs, keys named in any letter case."""
    pairs: list[tuple[str, str | None]] = []
    for entry in tags or ():
        lowered = {k.lower(): v for k, v in entry.items()}
        key = (lowered.get("key") or "").strip()
        if not key:
            raise ParamError("Tag key must be specified for every tag")
        pairs.append((key, lowered.get("value")))
    return pairs


def resolve(session: Session, resource_type: str, uuid: str) -> Taggable | None:
    """The resource of a registered type, or None if no such resource exists."""
    return _RESOLVERS[resource_type_name(resource_type)](session, uuid)


def _resolve_all(
    session: Session, caller: Caller, resource_type: str, uuids: Iterable[str]
) -> list[Taggable]:
    """Each named resource, checking the caller may tag it; any failure refuses them all."""
    resolver = _RESOLVERS[resource_type]
    found: list[Taggable] = []
    for uuid in dict.fromkeys(uuids):
        res = resolver(session, uuid)
        if res is None:
            raise ParamError(f"Unable to find resource by id {uuid} and type {resource_type}")
        _check_access(session, caller, resource_type, res)
        found.append(res)
    return found


def _check_access(session: Session, caller: Caller, resource_type: str, res: Taggable) -> None:
    if res.account_id is None:
        if not caller.is_root_admin:
            raise PermissionDenied(
                f"Account {caller.account_name} does not have permission to tag "
                f"{resource_type} {res.uuid}"
            )
        return
    owner = session.get(Account, res.account_id)
    assert owner is not None, "a tagged resource's owner exists"
    caller.check_account(owner)


@dataclass(frozen=True)
class TagPlan:
    """A checked createTags/deleteTags request: the type, the resources and the pairs."""

    resource_type: str
    resources: list[Taggable]
    pairs: list[tuple[str, str | None]]


def plan_create(
    session: Session,
    caller: Caller,
    resource_type: str,
    resource_uuids: Sequence[str],
    tags: Sequence[dict[str, str]] | None,
) -> TagPlan:
    """Every refusal createTags can give, before anything is written: the request answers
    them at once and its job then writes all the tags or none."""
    resource_type = resource_type_name(resource_type)
    pairs = tag_pairs(tags)
    if not pairs:
        raise ParamError("At least one tag must be specified")
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ParamError("A tag key may be given only once per request")
    for key, value in pairs:
        if value is None or value == "":
            raise ParamError(f"Value for the key {key} must be specified")
    resources = _resolve_all(session, caller, resource_type, resource_uuids)
    return TagPlan(resource_type, resources, pairs)


def _existing(session: Session, plan: TagPlan) -> dict[tuple[int, str], str]:
    rows = session.execute(
        select(ResourceTag.resource_id, ResourceTag.key, ResourceTag.value).where(
            ResourceTag.resource_type == plan.resource_type,
            ResourceTag.resource_id.in_([r.pk for r in plan.resources]),
            ResourceTag.key.in_([k for k, _ in plan.pairs]),
        )
    )
    return {(r.resource_id, r.key): r.value for r in rows}


def check_new(session: Session, plan: TagPlan, rerun: bool = False) -> None:
    """431 if a key is already on a resource; a job re-run after a crash accepts the very
    same key and value (its own earlier write)."""
    existing = _existing(session, plan)
    for res in plan.resources:
        for key, value in plan.pairs:
            if (res.pk, key) in existing and not (rerun and existing[(res.pk, key)] == value):
                raise ParamError(
                    f"A tag with key {key} already exists on {plan.resource_type} {res.uuid}"
                )


def create_tags(
    session: Session,
    caller: Caller,
    plan: TagPlan,
    customer: str | None = None,
    rerun: bool = True,
) -> list[ResourceTag]:
    """All the tags on all the resources, or (on any refusal) none: every check runs before
    the first row is added, and the transaction rolls back on an error anyway."""
    check_new(session, plan, rerun=rerun)
    existing = _existing(session, plan)
    rows = [
        ResourceTag(
            key=key,
            value=value,
            resource_type=plan.resource_type,
            resource_id=res.pk,
            resource_uuid=res.uuid,
            # The cloud's own resources are tagged by (and listed for) the tagging admin.
            account_id=res.account_id if res.account_id is not None else caller.account_id,
            domain_id=res.domain_id if res.domain_id is not None else caller.domain_id,
            customer=customer,
        )
        for res in plan.resources
        for key, value in plan.pairs
        if (res.pk, key) not in existing
    ]
    session.add_all(rows)
    session.flush()
    return rows


def plan_delete(
    session: Session,
    caller: Caller,
    resource_type: str,
    resource_uuids: Sequence[str],
    tags: Sequence[dict[str, str]] | None = None,
) -> TagPlan:
    """deleteTags' refusals: unknown type or resource, no right to it, nothing to delete."""
    resource_type = resource_type_name(resource_type)
    plan = TagPlan(
        resource_type,
        _resolve_all(session, caller, resource_type, resource_uuids),
        tag_pairs(tags),
    )
    if session.scalar(select(ResourceTag.id).where(*_delete_where(plan)).limit(1)) is None:
        raise ParamError("Unable to find any tags which conform to specified delete parameters")
    return plan


def _delete_where(plan: TagPlan) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        ResourceTag.resource_type == plan.resource_type,
        ResourceTag.resource_id.in_([r.pk for r in plan.resources]),
    ]
    if plan.pairs:
        where.append(or_(*(_pair_where(k, v) for k, v in plan.pairs)))
    return where


def delete_tags(session: Session, plan: TagPlan) -> None:
    """Without pairs every tag of the resources goes; a key alone removes that key; a key
    with a value removes it only where the value matches. Deleting twice is harmless."""
    session.execute(delete(ResourceTag).where(*_delete_where(plan)))


def _pair_where(key: str, value: str | None) -> ColumnElement[bool]:
    if value is None or value == "":
        return ResourceTag.key == key
    return and_(ResourceTag.key == key, ResourceTag.value == value)


T = TypeVar("T", bound=tuple[Any, ...])


def filter_by_tags(
    stmt: Select[T], resource_type: str, pk_column: Any, tags: Sequence[dict[str, str]] | None
) -> Select[T]:
    """``stmt`` restricted to resources carrying every given key/value pair (a list's
    ``tags[…]`` parameter); a pair without value asks only for the key."""
    for key, value in tag_pairs(tags):
        stmt = stmt.where(
            exists().where(
                ResourceTag.resource_type == resource_type,
                ResourceTag.resource_id == pk_column,
                _pair_where(key, value),
            )
        )
    return stmt


def tags_for(
    session: Session, resource_type: str, pks: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """Rendered ``tags`` of each resource (missing keys: no tags), in one query."""
    ids = list(pks)
    out: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return out
    stmt = (
        tags_select()
        .where(ResourceTag.resource_type == resource_type, ResourceTag.resource_id.in_(ids))
        .order_by(ResourceTag.id)
    )
    for row in session.execute(stmt):
        out.setdefault(row.resource_id, []).append(tag_response(row))
    return out


def tags_select() -> Select[*tuple[Any, ...]]:
    return (
        select(
            ResourceTag.resource_id,
            ResourceTag.key,
            ResourceTag.value,
            ResourceTag.resource_type,
            ResourceTag.resource_uuid,
            ResourceTag.customer,
            Account.name.label("account"),
            Domain.uuid.label("domainid"),
            Domain.name.label("domain"),
            Domain.path.label("domainpath"),
        )
        .select_from(ResourceTag)
        .outerjoin(Account, Account.id == ResourceTag.account_id)
        .outerjoin(Domain, Domain.id == ResourceTag.domain_id)
    )


def tag_response(row: Any) -> dict[str, Any]:
    """CloudStack's ResourceTagResponse (object ``tag``)."""
    out: dict[str, Any] = {
        "key": row.key,
        "value": row.value,
        "resourcetype": row.resource_type,
        "resourceid": row.resource_uuid,
        "account": row.account,
        "domainid": row.domainid,
        "domain": row.domain,
    }
    if row.customer is not None:
        out["customer"] = row.customer
    return out


# --- the types whose tables exist today -------------------------------------------------


def _cloud_owned(model: Any) -> Resolver:
    def resolve(session: Session, uuid: str) -> Taggable | None:
        pk = session.scalar(select(model.id).where(model.uuid == uuid, model.removed.is_(None)))
        return None if pk is None else Taggable(pk, uuid, None, None)

    return resolve


register_taggable("ServiceOffering", _cloud_owned(ServiceOffering))
register_taggable("DiskOffering", _cloud_owned(DiskOffering))
register_taggable("Zone", _cloud_owned(Zone))


def _image(is_iso: bool) -> Resolver:
    """Templates and ISOs share one table; each type finds only its own kind."""

    def resolve(session: Session, uuid: str) -> Taggable | None:
        row = session.execute(
            select(Template.id, Template.account_id, Template.domain_id).where(
                Template.uuid == uuid, Template.is_iso.is_(is_iso), Template.removed.is_(None)
            )
        ).first()
        return None if row is None else Taggable(row.id, uuid, row.account_id, row.domain_id)

    return resolve


register_taggable("Template", _image(False))
register_taggable("ISO", _image(True))


def owned(model: Any) -> Resolver:
    """The resolver of an account-owned table with ``uuid``, ``account_id``, ``domain_id`` and
    ``removed`` columns: a row not yet removed (a destroyed VM can still be tagged, as in
    CloudStack)."""

    def resolve(session: Session, uuid: str) -> Taggable | None:
        row = session.execute(
            select(model.id, model.account_id, model.domain_id).where(
                model.uuid == uuid, model.removed.is_(None)
            )
        ).first()
        return None if row is None else Taggable(row.id, uuid, row.account_id, row.domain_id)

    return resolve


register_taggable("UserVm", owned(VirtualMachine))
