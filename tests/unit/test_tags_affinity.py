"""Tags and affinity groups as services: the list filter and renderer other lists will use,
re-run safety of the tag job, owned-resource access, and a group with VMs refusing delete."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account, User
from cumulo.db.models_affinity import AffinityGroupVmMap
from cumulo.db.models_catalog import ServiceOffering
from cumulo.services import affinity, tags
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied, ResourceInUse
from cumulo.services.identity import auth


def _admin(session: Session) -> Caller:
    user_id = session.scalar(select(User.id).where(User.username == "admin"))
    assert user_id is not None
    caller = auth.caller_by_user_id(session, user_id)
    assert caller is not None
    return caller


def _offerings(session: Session) -> list[ServiceOffering]:
    return list(session.scalars(select(ServiceOffering).order_by(ServiceOffering.id)))


def _tag(session: Session, caller: Caller, so: ServiceOffering, **pairs: str) -> None:
    maps = [{"key": k, "value": v} for k, v in pairs.items()]
    plan = tags.plan_create(session, caller, "serviceoffering", [so.uuid], maps)
    tags.create_tags(session, caller, plan, rerun=False)


def test_filter_by_tags_needs_every_pair(session: Session) -> None:
    caller = _admin(session)
    small, medium = _offerings(session)[:2]
    _tag(session, caller, small, env="prod", tier="1")
    _tag(session, caller, medium, env="prod", tier="2")
    base = select(ServiceOffering.id).order_by(ServiceOffering.id)

    def ids(pairs: list[dict[str, str]]) -> list[int]:
        stmt = tags.filter_by_tags(base, "ServiceOffering", ServiceOffering.id, pairs)
        return list(session.scalars(stmt))

    assert ids([{"key": "env", "value": "prod"}]) == [small.id, medium.id]
    assert ids([{"key": "env", "value": "prod"}, {"key": "tier", "value": "2"}]) == [medium.id]
    assert ids([{"key": "env", "value": "dev"}]) == []
    assert ids([{"key": "tier"}]) == [small.id, medium.id]  # a key alone: any value


def test_tags_for_renders_in_one_lookup(session: Session) -> None:
    caller = _admin(session)
    small, medium = _offerings(session)[:2]
    _tag(session, caller, small, a="1", b="2")
    rendered = tags.tags_for(session, "ServiceOffering", [small.id, medium.id])
    assert medium.id not in rendered
    assert [(t["key"], t["value"], t["resourceid"]) for t in rendered[small.id]] == [
        ("a", "1", small.uuid),
        ("b", "2", small.uuid),
    ]
    assert tags.tags_for(session, "ServiceOffering", []) == {}


def test_rerun_of_create_adds_nothing_twice_but_a_new_value_is_refused(session: Session) -> None:
    caller = _admin(session)
    so = _offerings(session)[0]
    maps = [{"key": "k", "value": "v"}]
    plan = tags.plan_create(session, caller, "ServiceOffering", [so.uuid], maps)
    tags.create_tags(session, caller, plan, rerun=False)
    assert tags.create_tags(session, caller, plan, rerun=True) == []
    with pytest.raises(ParamError):
        tags.create_tags(session, caller, plan, rerun=False)
    other = tags.plan_create(
        session, caller, "ServiceOffering", [so.uuid], [{"key": "k", "value": "w"}]
    )
    with pytest.raises(ParamError):
        tags.create_tags(session, caller, other, rerun=True)


def test_request_validation(session: Session) -> None:
    caller = _admin(session)
    so = _offerings(session)[0]
    with pytest.raises(ParamError):
        tags.plan_create(session, caller, "ServiceOffering", [so.uuid], [])
    with pytest.raises(ParamError):  # a key twice in one request
        tags.plan_create(
            session,
            caller,
            "ServiceOffering",
            [so.uuid],
            [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}],
        )
    with pytest.raises(ParamError):  # no value
        tags.plan_create(session, caller, "ServiceOffering", [so.uuid], [{"key": "a"}])
    with pytest.raises(ParamError):
        tags.resource_type_name("Nonsense")


@pytest.fixture
def owned_type() -> Iterator[str]:
    """A resource type owned by the admin account, as VMs and volumes will be."""
    name = "UnitOwnedThing"

    def resolve(session: Session, uuid: str) -> tags.Taggable | None:
        admin = session.scalar(select(Account).where(Account.name == "admin"))
        assert admin is not None
        return tags.Taggable(7, uuid, admin.id, admin.domain_id) if uuid == "thing" else None

    tags.register_taggable(name, resolve)
    yield name
    tags._RESOLVERS.pop(name)
    tags._CANONICAL.pop(name.lower())


def test_owned_resources_are_tagged_by_owner_or_admins_only(
    session: Session, owned_type: str
) -> None:
    caller = _admin(session)
    plan = tags.plan_create(session, caller, owned_type, ["thing"], [{"key": "a", "value": "1"}])
    (row,) = tags.create_tags(session, caller, plan)
    assert row.account_id == caller.account_id
    other_admin = Caller(998, "r", "r", 998, "r", "r", 1, 1, "d", "d", "/", 1, RoleType.ADMIN)
    user = Caller(999, "u", "u", 999, "a", "a", 0, 1, "d", "d", "/", 1, RoleType.USER)
    with pytest.raises(PermissionDenied):
        tags.plan_create(session, user, owned_type, ["thing"], [{"key": "b", "value": "1"}])
    with pytest.raises(PermissionDenied):
        tags.plan_delete(session, user, owned_type, ["thing"])
    # a root admin of another account may
    tags.plan_delete(session, other_admin, owned_type, ["thing"])


def test_group_with_vms_refuses_delete(session: Session) -> None:
    admin = session.scalar(select(Account).where(Account.name == "admin"))
    assert admin is not None
    group = affinity.create(session, admin, " spread ", "Host Anti-Affinity", None)
    assert (group.name, group.type) == ("spread", "host anti-affinity")
    session.add(AffinityGroupVmMap(group_id=group.id, vm_id=42))
    session.flush()
    assert affinity.vm_ids_of(session, [group.id]) == {group.id: [42]}
    with pytest.raises(ResourceInUse):
        affinity.delete_group(session, group)
    session.query(AffinityGroupVmMap).delete()
    affinity.delete_group(session, group)
    assert affinity.find_by_name(session, admin, "spread") is None


def test_templates_and_isos_resolve_only_as_their_own_kind(session: Session) -> None:
    from cumulo.db.models_images import Template

    admin = session.scalar(select(Account).where(Account.name == "admin"))
    assert admin is not None
    common = {"account_id": admin.id, "domain_id": admin.domain_id, "url": "http://x/y"}
    tmpl = Template(name="t", format="QCOW2", is_iso=False, **common)
    iso = Template(name="i", format="ISO", is_iso=True, **common)
    session.add_all([tmpl, iso])
    session.flush()
    found = tags.resolve(session, "template", tmpl.uuid)
    assert found is not None and (found.pk, found.account_id) == (tmpl.id, admin.id)
    assert tags.resolve(session, "Template", iso.uuid) is None
    assert tags.resolve(session, "ISO", tmpl.uuid) is None
    iso_found = tags.resolve(session, "iso", iso.uuid)
    assert iso_found is not None and iso_found.pk == iso.id
