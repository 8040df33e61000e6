"""The first rows of a new cloud: the ROOT domain, the built-in roles and the admin.

No default password: the admin gets a random one, returned once so ``cumulo up`` can print it
and store it 0600 under the data directory.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.ids import new_password
from cumulo.db.models import Account, Domain, User
from cumulo.services.access import AccountType, RoleType
from cumulo.services.identity.passwords import hash_password
from cumulo.services.identity.roles import create_default_roles

ADMIN_NAME = "admin"


def ensure_cloud(session: Session) -> str | None:
    """Create what a new cloud needs; return the admin password if it was created now."""
    if session.scalar(select(Domain.id).where(Domain.parent_id.is_(None))) is not None:
        return None
    root = Domain(name="ROOT", path="/", level=0)
    session.add(root)
    session.flush()
    roles = create_default_roles(session)
    account = Account(
        name=ADMIN_NAME, domain_id=root.id, type=AccountType.ADMIN, role_id=roles[RoleType.ADMIN].id
    )
    session.add(account)
    session.flush()
    password = new_password()
    session.add(
        User(
            username=ADMIN_NAME,
            password_hash=hash_password(password),
            firstname="Admin",
            lastname="User",
            account_id=account.id,
            is_default=True,
        )
    )
    return password
