"""Accounts: creating one with its first user, and the states it moves through.

An account lives in one domain, has one role, and owns users and (later) resources. Its
``type`` (0 user, 1 root admin, 2 domain admin) must agree with its role's type, because
access checks read the role type while clients and usage records read the account type.

States (CloudStack's Account.State): ``enabled`` ⇄ ``disabled`` | ``locked``; deletion sets
``removed`` and keeps the row, so events and usage can still name the account. Disabling,
locking or deleting ends the users' sessions at once; their API keys stop verifying because
the key lookup refuses any account that is not enabled.
"""

from __future__ import annotations

import re
import uuid as uuidlib
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain, Role, User
from cumulo.services.access import ROLE_FOR_ACCOUNT_TYPE, AccountType, Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied, ResourceInUse
from cumulo.services.identity.auth import close_user_sessions
from cumulo.services.identity.users import create_user

ENABLED, DISABLED, LOCKED = "enabled", "disabled", "locked"
# RFC 1123 host labels joined by dots: CloudStack checks networkdomain the same way.
_NETWORK_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


@dataclass(frozen=True)
class NewAccount:
    """What createAccount asks for; ``name`` defaults to the username."""

    username: str
    password: str
    firstname: str
    lastname: str
    email: str
    name: str | None = None
    account_type: int | None = None
    role_uuid: str | None = None
    timezone: str | None = None
    network_domain: str | None = None
    account_uuid: str | None = None
    user_uuid: str | None = None


def check_network_domain(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _NETWORK_DOMAIN.match(value):
        raise ParamError(
            f"Invalid network domain {value}. Total length shouldn't exceed 190 chars. Each "
            "domain label must be between 1 and 63 characters long, can contain ASCII letters "
            "'a' through 'z', the digits '0' through '9', and the hyphen ('-'); can't start or "
            'end with "-"; and can\'t start with digit'
        )
    return value


def check_uuid(value: str | None, what: str) -> str | None:
    """accountid/userid come from external provisioning systems: they must be real UUIDs."""
    if value is None:
        return None
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        raise ParamError(f"Invalid {what} {value}: not a UUID") from None


def find_account(session: Session, uuid: str) -> Account:
    account = session.scalar(select(Account).where(Account.uuid == uuid, Account.removed.is_(None)))
    if account is None:
        raise ParamError(f"Unable to find account by id {uuid}")
    return account


def find_account_by_name(session: Session, name: str, domain: Domain) -> Account:
    account = session.scalar(
        select(Account).where(
            Account.name == name, Account.domain_id == domain.id, Account.removed.is_(None)
        )
    )
    if account is None:
        raise ParamError(f"Unable to find account {name} in domain {domain.name}")
    return account


def account_name_taken(session: Session, name: str, domain_id: int) -> bool:
    return (
        session.scalar(
            select(Account.id).where(
                Account.name == name, Account.domain_id == domain_id, Account.removed.is_(None)
            )
        )
        is not None
    )


def default_role(session: Session, role_type: RoleType) -> Role:
    """The first built-in role of a type (Root Admin, Domain Admin, User)."""
    role = session.scalar(
        select(Role)
        .where(Role.type == role_type.value, Role.is_default.is_(True), Role.removed.is_(None))
        .order_by(Role.id)
        .limit(1)
    )
    if role is None:
        raise ParamError(f"No default role of type {role_type.value} exists")
    return role


def account_type_of(role: Role) -> AccountType:
    for account_type, role_type in ROLE_FOR_ACCOUNT_TYPE.items():
        if role_type.value == role.type:
            return account_type
    raise ParamError(f"Role {role.name} has an unsupported type {role.type}")


def pick_role(
    session: Session, account_type: int | None, role_uuid: str | None
) -> tuple[AccountType, Role]:
    """accounttype, roleid or both; when both are given their types must agree."""
    if account_type is None and role_uuid is None:
        raise ParamError("Please specify a valid role id or account type")
    if account_type is not None and account_type not in AccountType._value2member_map_:
        raise ParamError(f"Invalid account type {account_type}: 0 user, 1 admin, 2 domain admin")
    if role_uuid is None:
        assert account_type is not None
        kind = AccountType(account_type)
        return kind, default_role(session, ROLE_FOR_ACCOUNT_TYPE[kind])
    role = session.scalar(select(Role).where(Role.uuid == role_uuid, Role.removed.is_(None)))
    if role is None:
        raise ParamError(f"Unable to find role by id {role_uuid}")
    kind = account_type_of(role)
    if account_type is not None and account_type != kind:
        raise ParamError(
            f"Role {role.name} of type {role.type} does not match account type {account_type}"
        )
    return kind, role


def check_may_create(caller: Caller, domain: Domain, kind: AccountType) -> None:
    """Domain admins create in their subtree only, and never root admins."""
    caller.check_domain(domain)
    if kind is AccountType.ADMIN and not caller.is_root_admin:
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to create an account "
            "of type Admin"
        )
    if kind is AccountType.ADMIN and domain.parent_id is not None:
        raise ParamError(
            f"Invalid account type {int(kind)} given for an account in domain {domain.name}; "
            "unable to create an account of admin role type in a non-ROOT domain"
        )
    if domain.state != "Active":
        raise ParamError(f"The domain {domain.name} is not active")


def create_account(session: Session, caller: Caller, domain: Domain, new: NewAccount) -> Account:
    """Create an account and its first user in one transaction (createAccount)."""
    kind, role = pick_role(session, new.account_type, new.role_uuid)
    check_may_create(caller, domain, kind)
    name = new.name if new.name else new.username
    if not name.strip():
        raise ParamError("account name must not be empty")
    if account_name_taken(session, name, domain.id):
        raise ParamError(f"The specified account: {name} already exists in domain {domain.name}")
    account = Account(
        name=name,
        domain_id=domain.id,
        type=int(kind),
        role_id=role.id,
        network_domain=check_network_domain(new.network_domain),
    )
    account_uuid = check_uuid(new.account_uuid, "accountid")
    if account_uuid is not None:
        _check_uuid_free(session, account_uuid)
        account.uuid = account_uuid
    session.add(account)
    session.flush()
    _first_user(session, account, new)
    return account


def _check_uuid_free(session: Session, uuid: str) -> None:
    if session.scalar(select(Account.id).where(Account.uuid == uuid)) is not None:
        raise ParamError(f"An account with id {uuid} already exists")


def _first_user(session: Session, account: Account, new: NewAccount) -> User:
    return create_user(
        session,
        account,
        username=new.username,
        password=new.password,
        firstname=new.firstname,
        lastname=new.lastname,
        email=new.email,
        timezone=new.timezone,
        uuid=check_uuid(new.user_uuid, "userid"),
    )


def _user_ids(session: Session, account_id: int) -> list[int]:
    return list(
        session.scalars(
            select(User.id).where(User.account_id == account_id, User.removed.is_(None))
        )
    )


def _active_root_admins(session: Session, *, enabled_only: bool) -> int:
    stmt = (
        select(func.count(Account.id))
        .join(Role, Account.role_id == Role.id)
        .where(Account.removed.is_(None), Role.type == RoleType.ADMIN.value)
    )
    if enabled_only:
        stmt = stmt.where(Account.state == ENABLED)
    return int(session.scalar(stmt) or 0)


def check_not_last_admin(session: Session, account: Account, *, enabled_only: bool) -> None:
    """Without a root admin account nobody could administer the cloud again."""
    if account.role.type != RoleType.ADMIN.value:
        return
    if enabled_only and account.state != ENABLED:
        return
    if _active_root_admins(session, enabled_only=enabled_only) <= 1:
        raise ResourceInUse(
            f"Account {account.name} is the last root admin account; it cannot be "
            + ("disabled or locked" if enabled_only else "deleted")
        )


def check_may_manage(caller: Caller, account: Account) -> None:
    """Raise 531 unless the caller administers ``account``: its own subtree, and only a root
    admin touches a root-admin account (a domain admin of ROOT could otherwise take over).
    """
    caller.check_account(account)
    if not caller.is_root_admin and account.role.type == RoleType.ADMIN.value:
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to operate "
            f"within account {account.name}"
        )


def check_may_delete(session: Session, caller: Caller, account: Account) -> None:
    check_may_manage(caller, account)
    if account.id == caller.account_id and not caller.is_root_admin:
        raise PermissionDenied("A domain admin cannot delete its own account")
    check_not_last_admin(session, account, enabled_only=False)


def delete_account(session: Session, account: Account) -> bool:
    """Mark the account and its users removed and end their sessions; False if it already was.

    Safe to run twice: a job re-run after a crash finds the account removed and does nothing.
    """
    if account.removed is not None:
        return False
    now = utcnow()
    user_ids = _user_ids(session, account.id)
    if user_ids:
        close_user_sessions(session, user_ids)
        # A removed user's key must never verify again, and its name may be reused.
        session.execute(
            update(User)
            .where(User.id.in_(user_ids))
            .values(removed=now, state=DISABLED, api_key=None, secret_key_enc=None)
        )
    account.removed = now
    account.state = DISABLED
    session.flush()
    return True


def set_state(session: Session, account: Account, state: str) -> bool:
    """enabled / disabled / locked; leaving ``enabled`` ends the users' sessions."""
    if state != ENABLED:
        check_not_last_admin(session, account, enabled_only=True)
    if account.state == state:
        return False
    account.state = state
    if state != ENABLED:
        close_user_sessions(session, _user_ids(session, account.id))
    session.flush()
    return True


def check_may_change_state(caller: Caller, account: Account) -> None:
    """Admins act on accounts they manage, but never switch their own off or on."""
    check_may_manage(caller, account)
    if account.id == caller.account_id:
        raise PermissionDenied(f"Account {account.name} cannot disable, lock or enable itself")


def rename_account(session: Session, account: Account, new_name: str) -> None:
    if not new_name.strip():
        raise ParamError("newname must not be empty")
    if new_name == account.name:
        return
    if account_name_taken(session, new_name, account.domain_id):
        raise ParamError(
            f"The specified account: {new_name} already exists in domain {account.domain.name}"
        )
    account.name = new_name


def change_role(session: Session, account: Account, role_uuid: str) -> None:
    """A new role must have the account's type: the type is fixed at creation."""
    kind, role = pick_role(session, None, role_uuid)
    if kind != account.type:
        raise ParamError(
            f"Role {role.name} of type {role.type} cannot be given to account {account.name} "
            f"of type {account.type}"
        )
    account.role_id = role.id
