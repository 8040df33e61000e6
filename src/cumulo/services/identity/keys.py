"""API key pairs: 86-character URL-safe keys, the secret sealed with the master key."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_api_key
from cumulo.common.secretbox import SecretBox
from cumulo.db.models import User
from cumulo.services.errors import InternalError


def register_keys(session: Session, box: SecretBox, user: User) -> tuple[str, str]:
    """Replace the user's key pair; retries on the (astronomically unlikely) collision."""
    for _ in range(10):
        api_key = new_api_key()
        if session.scalar(select(User.id).where(User.api_key == api_key)) is None:
            secret = new_api_key()
            user.api_key, user.secret_key_enc = api_key, box.seal(secret)
            return api_key, secret
    raise InternalError("could not generate a unique api key")


def user_keys(box: SecretBox, user: User) -> tuple[str | None, str | None]:
    if user.api_key is None or user.secret_key_enc is None:
        return None, None
    return user.api_key, box.open(user.secret_key_enc)
