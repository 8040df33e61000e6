"""Domains: a tree of tenants, each row carrying its full path for one-query subtree lookups.

The path is "/" for ROOT and "/a/b/" below it. Every scope check and every scoped list
compares path prefixes, so the path of a domain and of all its descendants must change
together, in one statement, when a domain is renamed. Names are unique among siblings
(the path is what login and scoping use) and never contain "/".
"""

from __future__ import annotations

import uuid as uuidlib

from sqlalchemy import String, func, literal, select, update
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain
from cumulo.services.access import Caller
from cumulo.services.errors import ParamError, PermissionDenied, ResourceInUse
from cumulo.services.identity.accounts import check_network_domain, delete_account

ACTIVE, INACTIVE = "Active", "Inactive"


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ParamError("Domain name must not be empty")
    if "/" in name:
        raise ParamError(f"Invalid domain name {name}: it must not contain '/'")
    return name


def sibling_named(session: Session, parent: Domain, name: str) -> Domain | None:
    return session.scalar(
        select(Domain).where(
            Domain.parent_id == parent.id, Domain.name == name, Domain.removed.is_(None)
        )
    )


def _external_uuid(session: Session, value: str | None) -> str | None:
    """createDomain's ``domainid`` lets another region keep its domain's id."""
    if value is None:
        return None
    try:
        value = str(uuidlib.UUID(value))
    except ValueError:
        raise ParamError(f"Invalid domainid {value}: not a UUID") from None
    if session.scalar(select(Domain.id).where(Domain.uuid == value)) is not None:
        raise ParamError(f"A domain with id {value} already exists")
    return value


def create_domain(
    session: Session,
    caller: Caller,
    parent: Domain,
    name: str,
    network_domain: str | None = None,
    uuid: str | None = None,
) -> Domain:
    """A child of ``parent``; domain admins create only inside their own subtree."""
    caller.check_domain(parent)
    name = check_name(name)
    if parent.state != ACTIVE:
        raise ParamError(f"The parent domain {parent.name} is not active")
    if sibling_named(session, parent, name) is not None:
        raise ParamError(f"Domain with name {name} already exists for the parent {parent.name}")
    domain = Domain(
        name=name,
        path=f"{parent.path}{name}/",
        parent_id=parent.id,
        level=parent.level + 1,
        network_domain=check_network_domain(network_domain),
    )
    external = _external_uuid(session, uuid)
    if external is not None:
        domain.uuid = external
    session.add(domain)
    session.flush()
    return domain


def check_may_change(caller: Caller, domain: Domain) -> None:
    """ROOT is fixed, and a domain admin never changes the domain it sits in (only below)."""
    caller.check_domain(domain)
    if domain.parent_id is None:
        raise PermissionDenied("The ROOT domain cannot be renamed or deleted")
    if not caller.is_root_admin and domain.id == caller.domain_id:
        raise PermissionDenied(
            f"Account {caller.account_name} cannot change its own domain {domain.name}"
        )


def rename_domain(session: Session, domain: Domain, name: str) -> bool:
    """Rename and rewrite the paths of the whole subtree in one statement."""
    name = check_name(name)
    if name == domain.name:
        return False
    parent = domain.parent
    assert parent is not None
    if sibling_named(session, parent, name) is not None:
        raise ParamError(f"Domain with name {name} already exists for the parent {parent.name}")
    old, new = domain.path, f"{parent.path}{name}/"
    session.execute(
        update(Domain)
        .where(Domain.path.startswith(old, autoescape=True), Domain.removed.is_(None))
        .values(path=literal(new, String) + func.substr(Domain.path, len(old) + 1)),
        execution_options={"synchronize_session": False},
    )
    session.expire_all()
    domain.name = name
    session.flush()
    return True


def subtree(session: Session, domain: Domain) -> list[Domain]:
    """The domain and every live descendant, deepest first (the order to remove them in)."""
    return list(
        session.scalars(
            select(Domain)
            .where(Domain.path.startswith(domain.path, autoescape=True), Domain.removed.is_(None))
            .order_by(Domain.level.desc(), Domain.id)
        )
    )


def _accounts_in(session: Session, domain_ids: list[int]) -> list[Account]:
    return list(
        session.scalars(
            select(Account).where(Account.domain_id.in_(domain_ids), Account.removed.is_(None))
        )
    )


def check_deletable(session: Session, domain: Domain, cleanup: bool) -> None:
    """Without cleanup a domain must be empty: no child domains and no accounts."""
    if cleanup:
        return
    tree = subtree(session, domain)
    if len(tree) > 1:
        raise ResourceInUse(
            f"Domain {domain.name} has child domains; delete them first or use cleanup=true"
        )
    if _accounts_in(session, [domain.id]):
        raise ResourceInUse(
            f"Domain {domain.name} still has accounts; delete them first or use cleanup=true"
        )


def delete_domain(session: Session, domain: Domain, cleanup: bool) -> bool:
    """Remove the domain (with cleanup: its subtree and their accounts); False if gone already.

    Safe to run again after a crash: removed rows are skipped, the rest is finished.
    """
    if domain.removed is not None:
        return False
    check_deletable(session, domain, cleanup)
    tree = subtree(session, domain)
    for account in _accounts_in(session, [d.id for d in tree]):
        delete_account(session, account)
    now = utcnow()
    for each in tree:
        each.removed, each.state = now, INACTIVE
    session.flush()
    return True


def update_network_domain(domain: Domain, value: str) -> None:
    """An empty value clears it, as CloudStack's updateDomain does."""
    domain.network_domain = check_network_domain(value)
