"""Users: creating them (shared by createAccount and createUser), changing, locking, removing.

Who may touch a user: the user themself, or an admin whose domain holds the user's account.
Only root admins touch users of Admin-role accounts other than their own, so a domain admin
cannot take over the cloud by resetting a root admin's password or keys. Regular users act on
themselves only (stricter than CloudStack's account-level check: a user never sees a
colleague's secret key or changes their password).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, Domain, User
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.identity.auth import close_user_sessions
from cumulo.services.identity.passwords import hash_password, verify_password

MIN_PASSWORD = 1
ENABLED, DISABLED, LOCKED = "enabled", "disabled", "locked"


def username_taken(
    session: Session, username: str, domain_id: int, except_user: int | None = None
) -> bool:
    """CloudStack usernames are unique within a domain (login names a domain and a user)."""
    stmt = (
        select(User.id)
        .join(Account, User.account_id == Account.id)
        .where(User.username == username, Account.domain_id == domain_id, User.removed.is_(None))
    )
    if except_user is not None:
        stmt = stmt.where(User.id != except_user)
    return session.scalar(stmt.limit(1)) is not None


def create_user(
    session: Session,
    account: Account,
    *,
    username: str,
    password: str,
    firstname: str = "",
    lastname: str = "",
    email: str = "",
    timezone: str | None = None,
    uuid: str | None = None,
) -> User:
    domain: Domain = account.domain
    if not username.strip():
        raise ParamError("username must not be empty")
    if len(password) < MIN_PASSWORD:
        raise ParamError("password must not be empty")
    if username_taken(session, username, domain.id):
        raise ParamError(f"The user {username} already exists in domain {domain.name}")
    if uuid and session.scalar(select(User.id).where(User.uuid == uuid)) is not None:
        raise ParamError(f"A user with id {uuid} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        firstname=firstname,
        lastname=lastname,
        email=email,
        timezone=timezone,
        account_id=account.id,
    )
    if uuid:
        user.uuid = uuid
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, uuid: str) -> User:
    user = session.scalar(select(User).where(User.uuid == uuid, User.removed.is_(None)))
    if user is None:
        raise ParamError(f"Unable to find user by id {uuid}")
    return user


def check_account_admin(caller: Caller, account: Account) -> None:
    """Raise 531 unless the caller administers ``account`` (its own, or one in its subtree).

    A domain admin may not manage a root admin's account even when it sits in its domain.
    """
    caller.check_account(account)
    if account.id == caller.account_id or caller.is_root_admin:
        return
    if RoleType(account.role.type) is RoleType.ADMIN:
        raise PermissionDenied(
            f"Account {caller.account_name} does not have permission to operate "
            f"within account {account.name}"
        )


def check_user_access(caller: Caller, user: User) -> None:
    """Raise 531 unless ``user`` is the caller, or the caller is an admin over its account."""
    if user.id == caller.user_id:
        return
    if caller.role_type is RoleType.USER:
        raise PermissionDenied(
            f"User {caller.username} does not have permission to operate on user {user.username}"
        )
    check_account_admin(caller, user.account)


@dataclass(frozen=True)
class UserChanges:
    username: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    email: str | None = None
    timezone: str | None = None


def update_profile(session: Session, user: User, changes: UserChanges) -> None:
    if changes.username is not None and changes.username != user.username:
        if not changes.username.strip():
            raise ParamError("username must not be empty")
        if username_taken(session, changes.username, user.account.domain_id, user.id):
            raise ParamError(
                f"The username {changes.username} is already in use in domain "
                f"{user.account.domain.name}"
            )
        user.username = changes.username
    for field in ("firstname", "lastname", "email", "timezone"):
        value = getattr(changes, field)
        if value is not None:
            setattr(user, field, value)


def change_password(caller: Caller, user: User, new: str, current: str | None) -> None:
    """Anyone changing their own password proves they know the current one.

    An admin resetting someone else's password (in its scope, checked before) needs no proof:
    that is how a forgotten password is recovered. A stolen session alone cannot lock its
    owner out.
    """
    if len(new) < MIN_PASSWORD:
        raise ParamError("password must not be empty")
    if user.id == caller.user_id:
        if not current:
            raise ParamError("To set a new password the current password must be provided.")
        if not verify_password(user.password_hash, current):
            raise ParamError("Current password is incorrect.")
    user.password_hash = hash_password(new)


def set_state(session: Session, caller: Caller, user: User, state: str) -> bool:
    """Move a user to ``state``; returns whether anything changed (re-runs are harmless).

    Leaving ``enabled`` ends the user's sessions so a disabled user is out at once.
    """
    if state != ENABLED and user.id == caller.user_id:
        raise ParamError("A user cannot disable or lock themself")
    if user.state == state:
        return False
    user.state = state
    if state != ENABLED:
        close_user_sessions(session, [user.id])
    return True


def delete_user(session: Session, caller: Caller, user: User) -> None:
    """Remove a user; the default admin user of the cloud and the caller are never removed."""
    if user.is_default:
        raise ParamError("The user is default and can't be (re)moved")
    if user.id == caller.user_id:
        raise ParamError("A user cannot delete themself")
    user.removed = utcnow()
    user.state = DISABLED
    # A removed user's key must not be found again, and its name may be reused.
    user.api_key, user.secret_key_enc = None, None
    close_user_sessions(session, [user.id])
