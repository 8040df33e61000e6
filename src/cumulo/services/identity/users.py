"""Creating users, shared by createAccount (its first user) and createUser."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account, Domain, User
from cumulo.services.errors import ParamError
from cumulo.services.identity.passwords import hash_password

MIN_PASSWORD = 1


def username_taken(session: Session, username: str, domain_id: int) -> bool:
    """CloudStack usernames are unique within a domain (login names a domain and a user)."""
    return (
        session.scalar(
            select(User.id)
            .join(Account, User.account_id == Account.id)
            .where(
                User.username == username, Account.domain_id == domain_id, User.removed.is_(None)
            )
        )
        is not None
    )


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
