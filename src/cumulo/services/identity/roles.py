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

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Role, RolePermission
from cumulo.services.access import RoleType
from cumulo.services.errors import ParamError

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
