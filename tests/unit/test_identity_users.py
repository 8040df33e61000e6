"""Users and keys as services: who may act on whom, passwords, states, key pairs."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.common.secretbox import SecretBox
from cumulo.db.models import Account, ApiSession, Domain, Role, User
from cumulo.services.access import AccountType, Caller, RoleType
from cumulo.services.errors import ParamError, PermissionDenied
from cumulo.services.identity import auth, keys, users
from cumulo.services.identity.passwords import verify_password

KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{86}$")


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


def account(session: Session, name: str, kind: AccountType, path: str = "/") -> Account:
    domain = session.scalar(select(Domain).where(Domain.path == path))
    if domain is None:
        root = session.scalar(select(Domain).where(Domain.path == "/"))
        assert root is not None
        domain = Domain(name=path.strip("/"), path=path, parent_id=root.id, level=1)
        session.add(domain)
        session.flush()
    role_type = {
        AccountType.USER: RoleType.USER,
        AccountType.ADMIN: RoleType.ADMIN,
        AccountType.DOMAIN_ADMIN: RoleType.DOMAIN_ADMIN,
    }[kind]
    role = session.scalar(
        select(Role).where(Role.type == role_type.value, Role.is_default.is_(True))
    )
    assert role is not None
    acct = Account(name=name, domain_id=domain.id, type=kind, role_id=role.id)
    session.add(acct)
    session.flush()
    return acct


def person(session: Session, acct: Account, name: str) -> tuple[User, Caller]:
    user = users.create_user(session, acct, username=name, password=f"{name}-pw")
    caller = auth.caller_by_user_id(session, user.id)
    assert caller is not None
    return user, caller


def root_admin(session: Session) -> tuple[User, Caller]:
    user = session.scalar(select(User).where(User.is_default.is_(True)))
    assert user is not None
    caller = auth.caller_by_user_id(session, user.id)
    assert caller is not None
    return user, caller


def test_usernames_are_unique_per_domain_only(session: Session) -> None:
    a = account(session, "a", AccountType.USER)
    b = account(session, "b", AccountType.USER, "/sub/")
    users.create_user(session, a, username="same", password="p")
    users.create_user(session, b, username="same", password="p")
    with pytest.raises(ParamError):
        users.create_user(session, a, username="same", password="q")
    with pytest.raises(ParamError):
        users.create_user(session, a, username="  ", password="q")


def test_users_act_on_themselves_only(session: Session) -> None:
    acct = account(session, "team", AccountType.USER)
    me, me_caller = person(session, acct, "me")
    colleague, _ = person(session, acct, "colleague")
    users.check_user_access(me_caller, me)
    with pytest.raises(PermissionDenied):
        users.check_user_access(me_caller, colleague)  # same account, still refused


def test_domain_admin_scope(session: Session) -> None:
    dadmin, dcaller = person(
        session, account(session, "dadm", AccountType.DOMAIN_ADMIN, "/d/"), "da"
    )
    inside, _ = person(session, account(session, "in", AccountType.USER, "/d/"), "inside")
    outside, _ = person(session, account(session, "out", AccountType.USER, "/e/"), "outside")
    admin, _ = root_admin(session)
    users.check_user_access(dcaller, inside)
    users.check_user_access(dcaller, dadmin)
    for target in (outside, admin):
        with pytest.raises(PermissionDenied):
            users.check_user_access(dcaller, target)


def test_domain_admin_at_root_still_cannot_touch_root_admins(session: Session) -> None:
    _, dcaller = person(session, account(session, "rootda", AccountType.DOMAIN_ADMIN), "rda")
    admin, _ = root_admin(session)
    with pytest.raises(PermissionDenied):
        users.check_user_access(dcaller, admin)


def test_own_password_needs_the_current_one(session: Session) -> None:
    user, caller = person(session, account(session, "pw", AccountType.USER), "pwuser")
    for current in (None, "", "wrong"):
        with pytest.raises(ParamError):
            users.change_password(caller, user, "new-pw", current)
        assert verify_password(user.password_hash, "pwuser-pw")
    users.change_password(caller, user, "new-pw", "pwuser-pw")
    assert verify_password(user.password_hash, "new-pw")


def test_admin_resets_someone_elses_password_without_it(session: Session) -> None:
    user, _ = person(session, account(session, "reset", AccountType.USER), "resetme")
    _, admin = root_admin(session)
    users.change_password(admin, user, "fresh", None)
    assert verify_password(user.password_hash, "fresh")
    with pytest.raises(ParamError):
        users.change_password(admin, user, "", None)


def test_disabling_ends_sessions_and_is_idempotent(session: Session) -> None:
    user, caller = person(session, account(session, "st", AccountType.USER), "stuser")
    auth.open_session(session, caller, 600)
    session.flush()
    _, admin = root_admin(session)
    assert users.set_state(session, admin, user, users.DISABLED) is True
    assert users.set_state(session, admin, user, users.DISABLED) is False
    assert session.scalar(select(ApiSession).where(ApiSession.user_id == user.id)) is None
    assert auth.caller_by_user_id(session, user.id) is None
    assert users.set_state(session, admin, user, users.ENABLED) is True
    assert auth.caller_by_user_id(session, user.id) is not None


def test_nobody_disables_or_deletes_themself(session: Session) -> None:
    admin_user, admin = root_admin(session)
    for state in (users.DISABLED, users.LOCKED):
        with pytest.raises(ParamError):
            users.set_state(session, admin, admin_user, state)
    other_admin, other = person(session, account(session, "adm2", AccountType.ADMIN), "adm2")
    with pytest.raises(ParamError):
        users.delete_user(session, other, other_admin)
    with pytest.raises(ParamError):
        users.delete_user(session, other, admin_user)  # the cloud's default admin
    assert admin_user.removed is None and other_admin.removed is None


def test_deleted_user_loses_keys_and_frees_its_name(session: Session, box: SecretBox) -> None:
    acct = account(session, "del", AccountType.USER)
    user, _ = person(session, acct, "deleteme")
    keys.register_keys(session, box, user)
    _, admin = root_admin(session)
    users.delete_user(session, admin, user)
    assert user.removed is not None and user.api_key is None and user.secret_key_enc is None
    with pytest.raises(ParamError):
        users.find_user(session, user.uuid)
    users.create_user(session, acct, username="deleteme", password="p")


def test_keys_are_sealed_and_round_trip(session: Session, box: SecretBox) -> None:
    user, _ = person(session, account(session, "k", AccountType.USER), "keyuser")
    assert keys.user_keys(box, user) == (None, None)
    api_key, secret = keys.register_keys(session, box, user)
    assert KEY_SHAPE.match(api_key) and KEY_SHAPE.match(secret) and api_key != secret
    assert user.secret_key_enc is not None and secret not in user.secret_key_enc
    assert keys.user_keys(box, user) == (api_key, secret)
    again = keys.register_keys(session, box, user)
    assert again[0] != api_key and again[1] != secret


def test_chosen_keys_must_be_unique(session: Session, box: SecretBox) -> None:
    acct = account(session, "ck", AccountType.USER)
    a, _ = person(session, acct, "ka")
    b, _ = person(session, acct, "kb")
    api_key, _ = keys.register_keys(session, box, a)
    session.flush()
    with pytest.raises(ParamError):
        keys.set_keys(session, box, b, api_key, "whatever")
    with pytest.raises(ParamError):
        keys.set_keys(session, box, b, "", "s")
    keys.set_keys(session, box, a, api_key, "new-secret")  # re-setting one's own key is fine
    assert keys.user_keys(box, a) == (api_key, "new-secret")


def test_profile_update_keeps_usernames_unique(session: Session) -> None:
    acct = account(session, "prof", AccountType.USER)
    a, _ = person(session, acct, "pa")
    person(session, acct, "pb")
    with pytest.raises(ParamError):
        users.update_profile(session, a, users.UserChanges(username="pb"))
    users.update_profile(session, a, users.UserChanges(username="pa", email="a@example.test"))
    assert (a.username, a.email, a.firstname) == ("pa", "a@example.test", "")
