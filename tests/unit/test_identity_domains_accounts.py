"""Domains and accounts as services: roles and types, who may create what, the path tree,
deletion that can run twice, and the rule that a cloud keeps a root admin."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.time import utcnow
from cumulo.db.models import Account, ApiSession, Domain, Role, User
from cumulo.services.access import AccountType, Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied, ResourceInUse
from cumulo.services.identity import accounts, auth, domains


def root(session: Session) -> Domain:
    found = session.scalar(select(Domain).where(Domain.parent_id.is_(None)))
    assert found is not None
    return found


def admin(session: Session) -> Caller:
    user_id = session.scalar(select(User.id).where(User.username == "admin"))
    assert user_id is not None
    caller = auth.caller_by_user_id(session, user_id)
    assert caller is not None
    return caller


def new(name: str, kind: int | None = 0, role: str | None = None) -> accounts.NewAccount:
    return accounts.NewAccount(
        username=name,
        password="pw",
        firstname="F",
        lastname="L",
        email=f"{name}@example.org",
        account_type=kind,
        role_uuid=role,
    )


def make_account(session: Session, domain: Domain, name: str, kind: int = 0) -> Account:
    return accounts.create_account(session, admin(session), domain, new(name, kind))


def caller_of(session: Session, account: Account) -> Caller:
    user_id = session.scalar(select(User.id).where(User.account_id == account.id))
    assert user_id is not None
    caller = auth.caller_by_user_id(session, user_id)
    assert caller is not None
    return caller


def child(session: Session, parent: Domain, name: str) -> Domain:
    return domains.create_domain(session, admin(session), parent, name)


# --- roles and types -----------------------------------------------------------------------


def test_account_type_alone_picks_the_default_role(session: Session) -> None:
    kind, role = accounts.pick_role(session, 2, None)
    assert kind is AccountType.DOMAIN_ADMIN
    assert (role.type, role.name) == ("DomainAdmin", "Domain Admin")


def test_role_alone_decides_the_account_type(session: Session) -> None:
    role = session.scalar(select(Role).where(Role.name == "Read-Only Admin - Default"))
    assert role is not None
    assert accounts.pick_role(session, None, role.uuid) == (AccountType.ADMIN, role)


@pytest.mark.parametrize(("kind", "role_name"), [(None, None), (5, None), (0, "Root Admin")])
def test_bad_type_and_role_combinations(
    session: Session, kind: int | None, role_name: str | None
) -> None:
    role = session.scalar(select(Role).where(Role.name == role_name)) if role_name else None
    with pytest.raises(ParamError):
        accounts.pick_role(session, kind, role.uuid if role else None)


# --- creating accounts -----------------------------------------------------------------------


def test_create_account_defaults_its_name_and_makes_the_first_user(session: Session) -> None:
    account = make_account(session, root(session), "alice")
    assert (account.name, account.type, account.state) == ("alice", 0, "enabled")
    [user] = session.scalars(select(User).where(User.account_id == account.id))
    assert user.username == "alice"


def test_external_ids_are_kept_and_checked(session: Session) -> None:
    account_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    spec = accounts.NewAccount(
        "ext", "pw", "F", "L", "e@x", account_type=0, account_uuid=account_id, user_uuid=user_id
    )
    made = accounts.create_account(session, admin(session), root(session), spec)
    assert made.uuid == account_id
    assert session.scalar(select(User.uuid).where(User.account_id == made.id)) == user_id
    again = accounts.NewAccount(
        "ext2", "pw", "F", "L", "e@x", account_type=0, account_uuid=account_id
    )
    with pytest.raises(ParamError):
        accounts.create_account(session, admin(session), root(session), again)
    bad = accounts.NewAccount("ext3", "pw", "F", "L", "e@x", account_type=0, account_uuid="x")
    with pytest.raises(ParamError):
        accounts.create_account(session, admin(session), root(session), bad)


def test_duplicate_names_in_one_domain_only(session: Session) -> None:
    other = child(session, root(session), "other")
    make_account(session, root(session), "bob")
    with pytest.raises(ParamError, match="already exists"):
        accounts.create_account(
            session,
            admin(session),
            root(session),
            accounts.NewAccount("bob2", "pw", "F", "L", "e", name="bob", account_type=0),
        )
    assert make_account(session, other, "bob").domain_id == other.id


def test_root_admins_only_in_root_and_only_by_root_admins(session: Session) -> None:
    sub = child(session, root(session), "sub")
    with pytest.raises(ParamError, match="non-ROOT"):
        make_account(session, sub, "boss", 1)
    dadmin = caller_of(session, make_account(session, sub, "dadmin", 2))
    with pytest.raises(PermissionDenied):
        accounts.create_account(session, dadmin, sub, new("escalate", 1))
    assert accounts.create_account(session, dadmin, sub, new("peer", 2)).type == 2


def test_domain_admin_creates_only_in_its_subtree(session: Session) -> None:
    mine, sibling = child(session, root(session), "mine"), child(session, root(session), "sib")
    below = child(session, mine, "below")
    dadmin = caller_of(session, make_account(session, mine, "da", 2))
    assert accounts.create_account(session, dadmin, below, new("ok")).domain_id == below.id
    with pytest.raises(PermissionDenied):
        accounts.create_account(session, dadmin, sibling, new("nope"))
    assert session.scalar(select(Account).where(Account.name == "nope")) is None


# --- deleting and switching off --------------------------------------------------------------


def open_session_for(session: Session, account: Account) -> None:
    user_id = session.scalar(select(User.id).where(User.account_id == account.id))
    assert user_id is not None
    session.add(
        ApiSession(
            cookie_hash=uuid.uuid4().hex,
            key_hash="k",
            user_id=user_id,
            expires=utcnow() + timedelta(hours=1),
        )
    )
    session.flush()


def sessions_of(session: Session, account: Account) -> int:
    return len(
        session.scalars(
            select(ApiSession.id)
            .join(User, ApiSession.user_id == User.id)
            .where(User.account_id == account.id)
        ).all()
    )


def test_delete_account_removes_users_keys_and_sessions_and_can_run_twice(
    session: Session,
) -> None:
    account = make_account(session, root(session), "gone")
    user = session.scalars(select(User).where(User.account_id == account.id)).one()
    user.api_key, user.secret_key_enc = "key-" + uuid.uuid4().hex, "enc"
    open_session_for(session, account)
    assert accounts.delete_account(session, account) is True
    session.refresh(user)
    assert account.removed is not None and user.removed is not None
    assert (user.api_key, user.secret_key_enc) == (None, None)
    assert sessions_of(session, account) == 0
    assert accounts.delete_account(session, account) is False
    # The name is free for a new account.
    assert make_account(session, root(session), "gone").id != account.id


def test_the_last_root_admin_stays(session: Session) -> None:
    builtin = session.scalars(select(Account).where(Account.name == "admin")).one()
    with pytest.raises(ResourceInUse):
        accounts.check_may_delete(session, admin(session), builtin)
    with pytest.raises(ResourceInUse):
        accounts.set_state(session, builtin, accounts.DISABLED)
    second = make_account(session, root(session), "admin2", 1)
    accounts.check_may_delete(session, admin(session), builtin)
    accounts.set_state(session, second, accounts.LOCKED)
    # A locked admin does not count as one that can still administer the cloud.
    with pytest.raises(ResourceInUse):
        accounts.set_state(session, builtin, accounts.DISABLED)


def test_set_state_ends_sessions_and_reports_change(session: Session) -> None:
    account = make_account(session, root(session), "carol")
    open_session_for(session, account)
    assert accounts.set_state(session, account, accounts.LOCKED) is True
    assert sessions_of(session, account) == 0
    assert accounts.set_state(session, account, accounts.LOCKED) is False
    assert accounts.set_state(session, account, accounts.ENABLED) is True


def test_domain_admin_of_root_cannot_touch_root_admins(session: Session) -> None:
    dadmin = caller_of(session, make_account(session, root(session), "rootda", 2))
    builtin = session.scalars(select(Account).where(Account.name == "admin")).one()
    with pytest.raises(PermissionDenied):
        accounts.check_may_manage(dadmin, builtin)
    with pytest.raises(PermissionDenied):
        accounts.check_may_change_state(admin(session), builtin)  # not even its own


def test_change_role_keeps_the_account_type(session: Session) -> None:
    account = make_account(session, root(session), "dave")
    admin_role = accounts.default_role(session, RoleType.ADMIN)
    with pytest.raises(ParamError):
        accounts.change_role(session, account, admin_role.uuid)
    read_only = session.scalar(select(Role).where(Role.name == "Read-Only User - Default"))
    assert read_only is not None
    accounts.change_role(session, account, read_only.uuid)
    assert account.role_id == read_only.id


# --- domains ---------------------------------------------------------------------------------


def test_paths_and_levels(session: Session) -> None:
    a = child(session, root(session), "a")
    b = child(session, a, "b")
    assert (a.path, a.level, b.path, b.level) == ("/a/", 1, "/a/b/", 2)
    with pytest.raises(ParamError):
        child(session, a, "b")
    with pytest.raises(ParamError):
        child(session, a, "x/y")


def test_rename_rewrites_the_subtree_and_nothing_else(session: Session) -> None:
    a_ = child(session, root(session), "a_")
    deep = child(session, child(session, a_, "b"), "c")
    # "ab" would match a LIKE 'a_%' that forgot to escape the underscore.
    lookalike = child(session, root(session), "ab")
    lookalike_child = child(session, lookalike, "z")
    assert domains.rename_domain(session, a_, "moved") is True
    session.refresh(deep)
    session.refresh(lookalike_child)
    assert (a_.path, deep.path) == ("/moved/", "/moved/b/c/")
    assert lookalike_child.path == "/ab/z/"
    assert domains.rename_domain(session, a_, "moved") is False
    with pytest.raises(ParamError):
        domains.rename_domain(session, a_, "ab")


def test_root_and_own_domain_are_not_changed(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        domains.check_may_change(admin(session), root(session))
    mine = child(session, root(session), "mine")
    below = child(session, mine, "below")
    dadmin = caller_of(session, make_account(session, mine, "da", 2))
    with pytest.raises(PermissionDenied):
        domains.check_may_change(dadmin, mine)
    domains.check_may_change(dadmin, below)


def test_delete_domain_refuses_without_cleanup_and_cleans_up_with_it(session: Session) -> None:
    top = child(session, root(session), "top")
    below = child(session, top, "below")
    account = make_account(session, below, "tenant")
    with pytest.raises(ResourceInUse, match="child domains"):
        domains.delete_domain(session, top, cleanup=False)
    with pytest.raises(ResourceInUse, match="accounts"):
        domains.delete_domain(session, below, cleanup=False)
    assert domains.delete_domain(session, top, cleanup=True) is True
    assert top.removed is not None and below.removed is not None
    assert (top.state, below.state) == ("Inactive", "Inactive")
    session.refresh(account)
    assert account.removed is not None
    assert domains.delete_domain(session, top, cleanup=True) is False
    # The name may be used again under the same parent.
    assert child(session, root(session), "top").path == "/top/"
