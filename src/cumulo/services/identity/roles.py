"""Roles and their ordered allow/deny rules (CloudStack dynamic roles).

A role's type is a ceiling: a rule can never let a User-type role run a command declared for
admins only. Within that ceiling, the first rule whose pattern matches the API name decides;
no match means deny. Rules are cached per process for a few seconds (hot path of every call).
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Role, RolePermission
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied

CACHE_SECONDS = 2.0
RULE_PATTERN = re.compile(r"^[A-Za-z0-9*]+$")


@dataclass(frozen=True)
class DefaultRole:
    name: str
    type: RoleType
    description: str
    rules: tuple[tuple[str, str], ...]


DEFAULT_ROLES = (
    DefaultRole("Root Admin", RoleType.ADMIN, "Default root admin role", (("*", "allow"),)),
    DefaultRole(
        "Domain Admin", RoleType.DOMAIN_ADMIN, "Default domain admin role", (("*", "allow"),)
    ),
    DefaultRole("User", RoleType.USER, "Default user role", (("*", "allow"),)),
    DefaultRole(
        "Read-Only User - Default",
        RoleType.USER,
        "Default read-only user role",
        (
            ("list*", "allow"),
            ("get*", "allow"),
            ("query*", "allow"),
            ("login", "allow"),
            ("logout", "allow"),
            ("*", "deny"),
        ),
    ),
    DefaultRole(
        "Read-Only Admin - Default",
        RoleType.ADMIN,
        "Default read-only admin role",
        (
            ("list*", "allow"),
            ("get*", "allow"),
            ("query*", "allow"),
            ("login", "allow"),
            ("logout", "allow"),
            ("*", "deny"),
        ),
    ),
)


def validate_rule(rule: str) -> str:
    if not RULE_PATTERN.match(rule):
        raise ParamError(
            f"Invalid rule {rule!r}: an API name or a pattern of letters, digits and '*'"
        )
    return rule


class RuleCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[int, tuple[float, list[tuple[str, bool]]]] = {}

    def rules(self, session: Session, role_id: int) -> list[tuple[str, bool]]:
        now = time.monotonic()
        with self._lock:
            hit = self._rules.get(role_id)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        rows = session.execute(
            select(RolePermission.rule, RolePermission.permission)
            .where(RolePermission.role_id == role_id)
            .order_by(RolePermission.sort_order, RolePermission.id)
        ).all()
        rules = [(rule.lower(), perm == "allow") for rule, perm in rows]
        with self._lock:
            self._rules[role_id] = (now, rules)
        return rules

    def forget(self, role_id: int) -> None:
        with self._lock:
            self._rules.pop(role_id, None)

    def permits(self, session: Session, role_id: int, api_name: str) -> bool:
        name = api_name.lower()
        for rule, allow in self.rules(session, role_id):
            if fnmatch.fnmatchcase(name, rule):
                return allow
        return False


def create_default_roles(session: Session) -> dict[RoleType, Role]:
    """Insert the built-in roles once; returns the first role of each type."""
    first: dict[RoleType, Role] = {}
    for spec in DEFAULT_ROLES:
        role = Role(
            name=spec.name, type=spec.type.value, description=spec.description, is_default=True
        )
        session.add(role)
        session.flush()
        for order, (rule, perm) in enumerate(spec.rules):
            session.add(
                RolePermission(role_id=role.id, rule=rule, permission=perm, sort_order=order)
            )
        first.setdefault(spec.type, role)
    return first


# --- managing roles (dynamic roles: createRole, updateRolePermission …) -------------------
#
# CloudStack refuses changes to default roles and to roles in use with PermissionDenied (531,
# RoleManagerImpl); bad input is 431. Admin-type roles are invisible to anyone but a root
# admin, so a domain admin cannot even learn their ids.

PERMISSIONS = ("allow", "deny")


def parse_role_type(text: str) -> RoleType:
    """Role types compare case-insensitively, as CloudStack's RoleType.fromString does."""
    for kind in RoleType:
        if kind.value.lower() == text.strip().lower():
            return kind
    raise ParamError(f"Invalid role type provided: {text} (valid: Admin, DomainAdmin, User)")


def parse_permission(text: str) -> str:
    if text.strip().lower() not in PERMISSIONS:
        raise ParamError("Values for permission parameter should be: allow or deny")
    return text.strip().lower()


def visible(caller: Caller, role: Role) -> bool:
    return caller.is_root_admin or RoleType(role.type) is not RoleType.ADMIN


def find_role(session: Session, caller: Caller, uuid: str) -> Role:
    role = session.scalar(select(Role).where(Role.uuid == uuid, Role.removed.is_(None)))
    if role is None or not visible(caller, role):
        raise ParamError("Invalid role id provided")
    return role


def _check_mutable(role: Role, what: str) -> None:
    if role.is_default:
        raise PermissionDenied(f"Default roles cannot be {what}")


def _check_name_free(session: Session, name: str, except_role: int | None = None) -> None:
    if not name.strip():
        raise ParamError("Invalid role name provided")
    stmt = select(Role.id).where(func.lower(Role.name) == name.lower(), Role.removed.is_(None))
    if except_role is not None:
        stmt = stmt.where(Role.id != except_role)
    if session.scalar(stmt.limit(1)) is not None:
        raise ParamError(f"A role with name {name} already exists")


def role_in_use(session: Session, role_id: int) -> bool:
    stmt = select(Account.id).where(Account.role_id == role_id, Account.removed.is_(None))
    return session.scalar(stmt.limit(1)) is not None


def _check_unused(session: Session, role: Role, what: str) -> None:
    """Accounts take their permissions from their role: retyping or deleting one in use
    would change, or take away, what those accounts may do."""
    if role_in_use(session, role.id):
        raise PermissionDenied(f"Found accounts that have role in use, won't allow to {what}")


def permissions_of(session: Session, role_id: int) -> list[RolePermission]:
    return list(
        session.scalars(
            select(RolePermission)
            .where(RolePermission.role_id == role_id)
            .order_by(RolePermission.sort_order, RolePermission.id)
        )
    )


def create_role(
    session: Session,
    name: str,
    *,
    type: RoleType | None = None,
    clone_from: Role | None = None,
    description: str | None = None,
) -> Role:
    """A new role of ``type``, or a copy (type and ordered rules) of ``clone_from``."""
    if type is not None and clone_from is not None:
        raise ParamError("Both role type and role ID should not be specified")
    if clone_from is not None:
        kind = RoleType(clone_from.type)
    elif type is not None:
        kind = type
    else:
        raise ParamError("Neither role type nor role ID is provided")
    _check_name_free(session, name)
    role = Role(name=name, type=kind.value, description=description or "", is_default=False)
    session.add(role)
    session.flush()
    if clone_from is not None:
        for order, perm in enumerate(permissions_of(session, clone_from.id)):
            session.add(
                RolePermission(
                    role_id=role.id,
                    rule=perm.rule,
                    permission=perm.permission,
                    description=perm.description,
                    sort_order=order,
                )
            )
    return role


def update_role(
    session: Session,
    role: Role,
    *,
    name: str | None = None,
    type: RoleType | None = None,
    description: str | None = None,
) -> None:
    """A role's type is its ceiling: it may only change while no account uses the role."""
    _check_mutable(role, "updated")
    if name:
        _check_name_free(session, name, except_role=role.id)
        role.name = name
    if type is not None and type.value != role.type:
        _check_unused(session, role, "change role type")
        role.type = type.value
    if description:
        role.description = description


def delete_role(session: Session, role: Role) -> None:
    _check_mutable(role, "deleted")
    _check_unused(session, role, "delete role")
    session.execute(delete(RolePermission).where(RolePermission.role_id == role.id))
    role.removed = utcnow()


def add_permission(
    session: Session, role: Role, rule: str, permission: str, description: str | None
) -> RolePermission:
    """Append a rule: new rules go last, so they never shadow the existing ones."""
    if role.is_default:
        raise PermissionDenied("Role permission cannot be added for Default roles")
    validate_rule(rule)
    existing = permissions_of(session, role.id)
    if any(p.rule.lower() == rule.lower() for p in existing):
        raise PermissionDenied(f"Rule already exists for the role: {role.name}")
    last = max((p.sort_order for p in existing), default=-1)
    perm = RolePermission(
        role_id=role.id,
        rule=rule,
        permission=parse_permission(permission),
        description=description or "",
        sort_order=last + 1,
    )
    session.add(perm)
    session.flush()
    return perm


def reorder_permissions(session: Session, role: Role, order: list[str]) -> None:
    """``order`` must name every rule of the role exactly once; anything else changes nothing."""
    if role.is_default:
        raise PermissionDenied("Role permission cannot be updated for Default roles")
    current = {p.uuid: p for p in permissions_of(session, role.id)}
    if len(order) != len(set(order)) or set(order) != set(current):
        raise ParamError(
            "Provided role permission(s) do not match the role's permissions: ruleorder must "
            "list every permission of the role exactly once"
        )
    for position, uuid in enumerate(order):
        current[uuid].sort_order = position


def find_permission(session: Session, uuid: str) -> RolePermission:
    perm = session.scalar(select(RolePermission).where(RolePermission.uuid == uuid))
    if perm is None:
        raise ParamError("Invalid rule id provided")
    return perm


def set_permission(session: Session, role: Role, rule_uuid: str, permission: str) -> None:
    if role.is_default:
        raise PermissionDenied("Role permission cannot be updated for Default roles")
    perm = find_permission(session, rule_uuid)
    if perm.role_id != role.id:
        raise ParamError("Invalid rule id provided")
    perm.permission = parse_permission(permission)


def delete_permission(session: Session, caller: Caller, uuid: str) -> tuple[RolePermission, Role]:
    perm = find_permission(session, uuid)
    role = session.get(Role, perm.role_id)
    if role is None or role.removed is not None or not visible(caller, role):
        raise ParamError("Invalid rule id provided")
    if role.is_default:
        raise PermissionDenied("Role permission cannot be deleted for Default roles")
    session.delete(perm)
    return perm, role
