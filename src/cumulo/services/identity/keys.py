"""API key pairs: 86-character URL-safe keys, the secret sealed with the master key.

Secrets leave this module only in return values that go straight to the caller's reply; they
are never logged. Whoever changes keys must also drop the process's key cache
(``KeyCache.forget_all``) so an old key stops working on this server at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_api_key
from cumulo.common.secretbox import SecretBox
from cumulo.db.models import User
from cumulo.services.errors import InternalError, ParamError


def _key_in_use(session: Session, api_key: str, except_user: int | None = None) -> bool:
    stmt = select(User.id).where(User.api_key == api_key)
    if except_user is not None:
        stmt = stmt.where(User.id != except_user)
    return session.scalar(stmt.limit(1)) is not None


def register_keys(session: Session, box: SecretBox, user: User) -> tuple[str, str]:
    """Replace the user's key pair; retries on the (astronomically unlikely) collision."""
    for _ in range(10):
        api_key = new_api_key()
        if not _key_in_use(session, api_key):
            secret = new_api_key()
            user.api_key, user.secret_key_enc = api_key, box.seal(secret)
            return api_key, secret
    raise InternalError("could not generate a unique api key")


def set_keys(session: Session, box: SecretBox, user: User, api_key: str, secret: str) -> None:
    """updateUser's userapikey/usersecretkey: an admin-chosen pair, unique across users."""
    if not api_key.strip() or not secret.strip():
        raise ParamError("userapikey and usersecretkey must not be empty")
    if _key_in_use(session, api_key, except_user=user.id):
        raise ParamError("The api key is already in use by another user")
    user.api_key, user.secret_key_enc = api_key, box.seal(secret)


def user_keys(box: SecretBox, user: User) -> tuple[str | None, str | None]:
    if user.api_key is None or user.secret_key_enc is None:
        return None, None
    return user.api_key, box.open(user.secret_key_enc)
