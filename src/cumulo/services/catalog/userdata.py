"""Registered user data: named, base64-encoded cloud-init payloads an account reuses.

The text is stored as registered (base64); only its decoded size is limited, by
``vm.userdata.max.length`` (CloudStack's default is 32 KiB).
"""

from __future__ import annotations

import base64
import binascii
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.db.models_catalog import UserData
from cumulo.services.access import Caller
from cumulo.services.errors import ParamError

PARAM_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def decode(text: str, max_length: int) -> bytes:
    """Strict base64 (line breaks allowed, as encoders wrap); 431 if bad, empty or too long."""
    compact = "".join(text.split())
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ParamError("User data is not base64 encoded") from None
    if not raw:
        raise ParamError("User data is empty")
    if len(raw) > max_length:
        raise ParamError(f"User data is too long: {len(raw)} bytes decoded, at most {max_length}")
    return raw


def normal_params(params: list[str] | None) -> str | None:
    """The variable names the user data declares, as CloudStack's comma list."""
    if not params:
        return None
    names = [p.strip() for p in params if p.strip()]
    bad = [p for p in names if not PARAM_NAME.match(p)]
    if bad:
        raise ParamError(f"Invalid user data parameter names: {', '.join(bad)}")
    return ",".join(dict.fromkeys(names)) or None


def register(
    session: Session,
    owner: Account,
    name: str,
    text: str,
    params: list[str] | None,
    max_length: int,
) -> UserData:
    name = name.strip()
    if not name:
        raise ParamError("The user data name can't be empty")
    decode(text, max_length)
    mine = select(UserData.name).where(UserData.account_id == owner.id)
    if session.scalar(mine.where(UserData.name == name)) is not None:
        raise ParamError(f"A userdata with name {name} already exists for this account")
    compact = "".join(text.split())
    same = session.scalar(mine.where(UserData.user_data == compact))
    if same is not None:
        raise ParamError(f"Userdata already exists with same content: '{same}'")
    entry = UserData(
        name=name,
        account_id=owner.id,
        domain_id=owner.domain_id,
        user_data=compact,
        params=normal_params(params),
    )
    session.add(entry)
    session.flush()
    return entry


def find(session: Session, caller: Caller, uuid: str) -> UserData:
    """The entry, if the caller may act on its account (431 unknown, 531 someone else's)."""
    entry = session.scalar(select(UserData).where(UserData.uuid == uuid))
    owner = session.get(Account, entry.account_id) if entry is not None else None
    if entry is None or owner is None:
        raise ParamError(f"Unable to find user data by id {uuid}")
    caller.check_account(owner)
    return entry
