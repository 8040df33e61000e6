"""Whose key pair or user data a call acts on: CloudStack's ``finalizeOwner``.

``account`` with ``domainid`` names another account, which the caller must be allowed to act
for (a domain admin within its subtree, the root admin anywhere); neither means the caller's
own account. Projects do not exist yet, so any ``projectid`` is an unknown project.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cumulo.db.models import Account
from cumulo.services.access import Caller, find_domain
from cumulo.services.errors import ParamError
from cumulo.services.identity.accounts import find_account_by_name


def resolve_owner(
    session: Session,
    caller: Caller,
    account: str | None,
    domainid: str | None,
    projectid: str | None = None,
) -> Account:
    if projectid is not None:
        raise ParamError(f"Unable to find project by id {projectid}")
    if account is None and domainid is None:
        own = session.get(Account, caller.account_id)
        assert own is not None, "a caller's account exists while it calls"
        return own
    if account is None or domainid is None:
        raise ParamError("account and domainid must be given together")
    owner = find_account_by_name(session, account, find_domain(session, domainid))
    caller.check_account(owner)
    return owner
