"""Who is calling, and which accounts and domains a call may see or touch.

Scoping is applied inside the SQL of every list (``ListScope.where``), never by filtering
rows afterwards, so paging and ``count`` stay right and nothing leaks through a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, false, select, true
from sqlalchemy.orm import Session

from cumulo.db.models import Account, Domain
from cumulo.services.errors import ParamError, PermissionDenied


class RoleType(StrEnum):
    ADMIN = "Admin"
    DOMAIN_ADMIN = "DomainAdmin"
    USER = "User"


class AccountType(IntEnum):
    USER = 0
    ADMIN = 1
    DOMAIN_ADMIN = 2


ROLE_FOR_ACCOUNT_TYPE = {
    AccountType.USER: RoleType.USER,
    AccountType.ADMIN: RoleType.ADMIN,
    AccountType.DOMAIN_ADMIN: RoleType.DOMAIN_ADMIN,
}
ALL_ROLES = frozenset(RoleType)
ADMINS = frozenset({RoleType.ADMIN, RoleType.DOMAIN_ADMIN})
ROOT_ADMIN = frozenset({RoleType.ADMIN})


@dataclass(frozen=True)
class Caller:
    user_id: int
    user_uuid: str
    username: str
    account_id: int
    account_uuid: str
    account_name: str
    account_type: int
    domain_id: int
    domain_uuid: str
    domain_name: str
    domain_path: str
    role_id: int
    role_type: RoleType

    @property
    def is_root_admin(self) -> bool:
        return self.role_type is RoleType.ADMIN

    @property
    def is_domain_admin(self) -> bool:
        return self.role_type is RoleType.DOMAIN_ADMIN

    def owns_domain(self, path: str) -> bool:
        """A root admin owns every domain; a domain admin its subtree; a user none."""
        if self.is_root_admin:
            return True
        return self.is_domain_admin and path.startswith(self.domain_path)

    def check_account(self, account: Account) -> None:
        """Raise 531 unless the caller may act on ``account``."""
        if account.id == self.account_id or self.owns_domain(account.domain.path):
            return
        raise PermissionDenied(
            f"Account {self.account_name} does not have permission to operate "
            f"within account {account.name}"
        )

    def check_domain(self, domain: Domain) -> None:
        if not self.owns_domain(domain.path):
            raise PermissionDenied(
                f"Account {self.account_name} does not have permission to access "
                f"domain {domain.name}"
            )


@dataclass(frozen=True)
class ListScope:
    """What a list may show: one account, a domain (or its subtree), or everything."""

    account_id: int | None = None
    domain_path: str | None = None
    recursive: bool = True

    def where(self, account_col: Any, domain_path_col: Any) -> ColumnElement[bool]:
        clauses: list[ColumnElement[bool]] = []
        if self.account_id is not None:
            clauses.append(account_col == self.account_id)
        if self.domain_path is not None:
            if self.recursive:
                clauses.append(domain_path_col.startswith(self.domain_path, autoescape=True))
            else:
                clauses.append(domain_path_col == self.domain_path)
        return and_(true(), *clauses) if clauses else true()

    def domain_where(self, domain_path_col: Any) -> ColumnElement[bool]:
        """For lists of domains themselves; an account-only scope sees no domain list."""
        if self.account_id is not None and self.domain_path is None:
            return false()
        return self.where(None, domain_path_col) if self.domain_path else true()


def find_domain(session: Session, uuid: str) -> Domain:
    domain = session.scalar(select(Domain).where(Domain.uuid == uuid, Domain.removed.is_(None)))
    if domain is None:
        raise ParamError(f"Unable to find domain by id {uuid}")
    return domain


def resolve_scope(
    session: Session,
    caller: Caller,
    *,
    listall: bool = False,
    domainid: str | None = None,
    account: str | None = None,
    isrecursive: bool = False,
) -> ListScope:
    """CloudStack's buildACLSearchParameters: own account unless listall or a domain is named."""
    if account is not None and domainid is None:
        raise ParamError("account must be specified with domainid")
    if domainid is not None:
        domain = find_domain(session, domainid)
        caller.check_domain(domain)
        if account is not None:
            acct = session.scalar(
                select(Account).where(
                    Account.name == account,
                    Account.domain_id == domain.id,
                    Account.removed.is_(None),
                )
            )
            if acct is None:
                raise ParamError(f"Unable to find account {account} in domain {domain.name}")
            return ListScope(account_id=acct.id)
        return ListScope(domain_path=domain.path, recursive=isrecursive or listall)
    if caller.role_type is RoleType.USER or not listall:
        return ListScope(account_id=caller.account_id)
    if caller.is_root_admin:
        return ListScope()
    return ListScope(domain_path=caller.domain_path, recursive=True)
