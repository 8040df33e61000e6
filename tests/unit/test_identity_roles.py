"""Roles as a service: rule matching, the rule cache, and what may never change."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account, Domain, Role
from cumulo.services.access import AccountType, RoleType
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.identity import roles


def default_role(session: Session, name: str) -> Role:
    role = session.scalar(select(Role).where(Role.name == name))
    assert role is not None
    return role


def rules(session: Session, role: Role) -> list[tuple[str, str]]:
    return [(p.rule, p.permission) for p in roles.permissions_of(session, role.id)]


@pytest.mark.parametrize("rule", ["listUsers", "list*", "*", "get*Keys", "api2"])
def test_valid_rules(rule: str) -> None:
    assert roles.validate_rule(rule) == rule


@pytest.mark.parametrize("rule", ["", "list Users", "list-users", "list?", "a.b", "list[a]"])
def test_invalid_rules(rule: str) -> None:
    with pytest.raises(ParamError):
        roles.validate_rule(rule)


def test_role_types_and_permissions_parse_case_insensitively() -> None:
    assert roles.parse_role_type("domainadmin") is RoleType.DOMAIN_ADMIN
    assert roles.parse_role_type(" User ") is RoleType.USER
    assert roles.parse_permission("ALLOW") == "allow"
    for bad in ("ResourceAdmin", "Unknown", ""):
        with pytest.raises(ParamError):
            roles.parse_role_type(bad)
    with pytest.raises(ParamError):
        roles.parse_permission("maybe")


def test_first_matching_rule_decides_and_no_match_denies(session: Session) -> None:
    role = roles.create_role(session, "ordered", type=RoleType.USER)
    for rule, perm in (("listUsers", "deny"), ("list*", "allow"), ("deleteUser", "allow")):
        roles.add_permission(session, role, rule, perm, None)
    cache = roles.RuleCache()
    assert not cache.permits(session, role.id, "listUsers")
    assert cache.permits(session, role.id, "LISTZONES")
    assert cache.permits(session, role.id, "deleteUser")
    assert not cache.permits(session, role.id, "createUser")


def test_rule_cache_keeps_rules_until_forgotten(session: Session) -> None:
    role = roles.create_role(session, "cached", type=RoleType.USER)
    cache = roles.RuleCache()
    assert not cache.permits(session, role.id, "listUsers")
    roles.add_permission(session, role, "listUsers", "allow", None)
    assert not cache.permits(session, role.id, "listUsers")  # still the cached, empty rules
    cache.forget(role.id)
    assert cache.permits(session, role.id, "listUsers")


def test_new_rules_go_last_and_clone_keeps_order(session: Session) -> None:
    source = roles.create_role(session, "source", type=RoleType.DOMAIN_ADMIN)
    for rule, perm in (("list*", "allow"), ("*", "deny"), ("getUserKeys", "allow")):
        roles.add_permission(session, source, rule, perm, "d")
    clone = roles.create_role(session, "clone", clone_from=source, description="copy")
    assert clone.type == RoleType.DOMAIN_ADMIN.value and not clone.is_default
    assert rules(session, clone) == rules(session, source)
    assert rules(session, clone)[-1] == ("getUserKeys", "allow")


def test_create_role_needs_exactly_one_of_type_and_source(session: Session) -> None:
    source = default_role(session, "User")
    with pytest.raises(ParamError):
        roles.create_role(session, "both", type=RoleType.USER, clone_from=source)
    with pytest.raises(ParamError):
        roles.create_role(session, "neither")
    with pytest.raises(ParamError):
        roles.create_role(session, "user", type=RoleType.USER)  # names compare caselessly


def test_default_roles_never_change(session: Session) -> None:
    role = default_role(session, "Read-Only User - Default")
    before = rules(session, role)
    first = roles.permissions_of(session, role.id)[0]
    attempts = (
        lambda: roles.add_permission(session, role, "deleteUser", "allow", None),
        lambda: roles.update_role(session, role, name="mine"),
        lambda: roles.delete_role(session, role),
        lambda: roles.set_permission(session, role, first.uuid, "deny"),
        lambda: roles.reorder_permissions(
            session, role, [p.uuid for p in reversed(roles.permissions_of(session, role.id))]
        ),
    )
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert rules(session, role) == before and role.name == "Read-Only User - Default"


def test_reorder_must_name_every_rule_once(session: Session) -> None:
    role = roles.create_role(session, "reorder", type=RoleType.USER)
    a = roles.add_permission(session, role, "listUsers", "allow", None)
    b = roles.add_permission(session, role, "*", "deny", None)
    for bad in ([a.uuid], [a.uuid, a.uuid], [a.uuid, b.uuid, "not-a-rule"]):
        with pytest.raises(ParamError):
            roles.reorder_permissions(session, role, bad)
    assert rules(session, role) == [("listUsers", "allow"), ("*", "deny")]
    roles.reorder_permissions(session, role, [b.uuid, a.uuid])
    assert rules(session, role) == [("*", "deny"), ("listUsers", "allow")]


def test_role_in_use_keeps_its_type_and_is_not_deleted(session: Session) -> None:
    role = roles.create_role(session, "used", type=RoleType.USER)
    root = session.scalar(select(Domain).where(Domain.path == "/"))
    assert root is not None
    session.add(Account(name="user-a", domain_id=root.id, type=AccountType.USER, role_id=role.id))
    session.flush()
    with pytest.raises(PermissionDenied):
        roles.delete_role(session, role)
    with pytest.raises(PermissionDenied):
        roles.update_role(session, role, type=RoleType.ADMIN)
    roles.update_role(session, role, type=RoleType.USER, description="same type is fine")
    assert role.type == "User" and role.removed is None


def test_deleted_role_loses_its_rules_and_its_name(session: Session) -> None:
    role = roles.create_role(session, "gone", type=RoleType.USER)
    roles.add_permission(session, role, "*", "allow", None)
    roles.delete_role(session, role)
    assert role.removed is not None and rules(session, role) == []
    again = roles.create_role(session, "gone", type=RoleType.USER)
    assert again.id != role.id
