"""Users and their API keys, through the real server with the real clients (cs, libcloud)."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.support.cloud import Cloud, Keys

KEY_SHAPE = re.compile(r"^[A-Za-z0-9_-]{86}$")


@dataclass
class Person:
    id: str
    username: str
    password: str
    keys: Keys
    account: str


def root_domain_id(cloud: Cloud) -> str:
    admin = cloud.call("listUsers", username="admin", listall="true")["user"][0]
    return str(admin["domainid"])


def register(cloud: Cloud, user_id: str, keys: Keys | None = None) -> Keys:
    body = cloud.call("registerUserKeys", keys, id=user_id)["userkeys"]
    return Keys(body["apikey"], body["secretkey"])


def admin_account_user(cloud: Cloud) -> Person:
    """A new user in the root admin's own account: a root admin caller."""
    name, password = f"adm-{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    user = cloud.call(
        "createUser",
        account="admin",
        domainid=root_domain_id(cloud),
        username=name,
        password=password,
        firstname="Ada",
        lastname="Admin",
        email=f"{name}@example.test",
    )["user"]
    return Person(user["id"], name, password, register(cloud, user["id"]), "admin")


def user_account(cloud: Cloud, **extra: Any) -> Person:
    """A new User-type account with one user and keys: a regular, non-admin caller."""
    name, password = f"usr-{uuid.uuid4().hex[:10]}", f"pw-{uuid.uuid4().hex}"
    params = {"accounttype": 0, "domainid": None, **extra}
    if "roleid" in extra:
        params.pop("accounttype")
    params["domainid"] = params["domainid"] or root_domain_id(cloud)
    cloud.call(
        "createAccount",
        account=name,
        username=name,
        password=password,
        firstname="Uma",
        lastname="User",
        email=f"{name}@example.test",
        **params,
    )
    user = cloud.call("listUsers", username=name, domainid=params["domainid"])["user"][0]
    return Person(user["id"], name, password, register(cloud, user["id"]), name)


def client(cloud: Cloud, keys: Keys) -> CloudStack:
    return CloudStack(endpoint=cloud.endpoint, key=keys.api_key, secret=keys.secret)


def login(cloud: Cloud, username: str, password: str, **domain: str) -> httpx.Response:
    """A session login in the ROOT domain ("/"), or in the one ``domainId=...`` names."""
    form = {"command": "login", "username": username, "password": password, "response": "json"}
    return httpx.post(cloud.endpoint, data={**form, **(domain or {"domain": "/"})}, timeout=30)


def error_code(cloud: Cloud, command: str, keys: Keys | None = None, **params: Any) -> int:
    resp = cloud.signed(command, keys, **params)
    assert resp.status_code != 200, resp.text
    body = resp.json()
    inner = next(iter(body.values()))
    assert inner["errorcode"] == resp.status_code
    return resp.status_code


def get_user(cloud: Cloud, user_id: str) -> dict[str, Any]:
    return dict(cloud.call("listUsers", id=user_id, listall="true")["user"][0])


# --- createUser ---------------------------------------------------------------------------


def test_created_user_registers_keys_and_signs_with_cs(cloud: Cloud) -> None:
    person = admin_account_user(cloud)
    assert KEY_SHAPE.match(person.keys.api_key) and KEY_SHAPE.match(person.keys.secret)
    me = client(cloud, person.keys).listUsers(id=person.id)
    assert me["count"] == 1
    assert me["user"][0]["username"] == person.username
    assert me["user"][0]["apikey"] == person.keys.api_key
    assert "secretkey" not in me["user"][0]
    keys = cloud.call("getUserKeys", id=person.id)["userkeys"]
    assert keys["apikey"] == person.keys.api_key and keys["secretkey"] == person.keys.secret


def test_create_user_response_matches_the_account(cloud: Cloud) -> None:
    name = f"cu-{uuid.uuid4().hex[:10]}"
    fixed = str(uuid.uuid4())
    user = cloud.call(
        "createUser",
        account="admin",
        username=name,
        password="secret-1",
        firstname="F",
        lastname="L",
        email="f@example.test",
        timezone="Europe/Paris",
        userid=fixed,
    )["user"]
    assert user["id"] == fixed
    assert (user["account"], user["roletype"], user["state"]) == ("admin", "Admin", "enabled")
    assert user["timezone"] == "Europe/Paris"
    assert user["domainid"] == root_domain_id(cloud)
    assert "apikey" not in user


def test_duplicate_username_in_domain_is_refused(cloud: Cloud) -> None:
    person = admin_account_user(cloud)
    code = error_code(
        cloud,
        "createUser",
        account="admin",
        username=person.username,
        password="other",
        firstname="X",
        lastname="Y",
        email="x@example.test",
    )
    assert code == 431
    same = cloud.call("listUsers", username=person.username, listall="true")
    assert same["count"] == 1 and same["user"][0]["id"] == person.id


def test_create_user_missing_email_or_unknown_account_writes_nothing(cloud: Cloud) -> None:
    name = f"nope-{uuid.uuid4().hex[:10]}"
    base = {"username": name, "password": "p", "firstname": "F", "lastname": "L"}
    assert error_code(cloud, "createUser", account="admin", **base) == 431
    assert (
        error_code(cloud, "createUser", account=f"ghost-{name}", email="e@example.test", **base)
        == 431
    )
    assert cloud.call("listUsers", username=name, listall="true") == {}


def test_regular_user_cannot_create_users(cloud: Cloud) -> None:
    person = user_account(cloud)
    name = f"sneaky-{uuid.uuid4().hex[:10]}"
    code = error_code(
        cloud,
        "createUser",
        person.keys,
        account=person.account,
        username=name,
        password="p",
        firstname="F",
        lastname="L",
        email="e@example.test",
    )
    assert code == 432
    assert cloud.call("listUsers", username=name, listall="true") == {}


# --- passwords ----------------------------------------------------------------------------


def test_user_changes_own_password_with_current_password(cloud: Cloud) -> None:
    person = user_account(cloud)
    new = f"new-{uuid.uuid4().hex}"
    client(cloud, person.keys).updateUser(
        id=person.id, password=new, currentpassword=person.password
    )
    assert login(cloud, person.username, new).status_code == 200
    assert login(cloud, person.username, person.password).status_code == 401


def test_wrong_or_missing_current_password_changes_nothing(cloud: Cloud) -> None:
    person = user_account(cloud)
    before = get_user(cloud, person.id)
    for current in ("wrong-password", None):
        extra = {"currentpassword": current} if current else {}
        code = error_code(
            cloud,
            "updateUser",
            person.keys,
            id=person.id,
            password="hijacked",
            firstname="Changed",
            **extra,
        )
        assert code == 431
    assert login(cloud, person.username, person.password).status_code == 200
    assert login(cloud, person.username, "hijacked").status_code == 401
    assert get_user(cloud, person.id)["firstname"] == before["firstname"]


def test_admin_resets_another_users_password_without_current(cloud: Cloud) -> None:
    person = user_account(cloud)
    cloud.call("updateUser", id=person.id, password="reset-by-admin")
    assert login(cloud, person.username, "reset-by-admin").status_code == 200


def test_admin_changing_own_password_needs_current(cloud: Cloud) -> None:
    admin = admin_account_user(cloud)
    assert error_code(cloud, "updateUser", admin.keys, id=admin.id, password="x") == 431
    assert login(cloud, admin.username, admin.password).status_code == 200


def test_user_updates_own_profile(cloud: Cloud) -> None:
    person = user_account(cloud)
    user = cloud.call(
        "updateUser", person.keys, id=person.id, firstname="Renamed", email="new@example.test"
    )["user"]
    assert (user["firstname"], user["email"]) == ("Renamed", "new@example.test")
    assert get_user(cloud, person.id)["firstname"] == "Renamed"


def test_user_cannot_update_another_user(cloud: Cloud) -> None:
    me, other = user_account(cloud), user_account(cloud)
    before = get_user(cloud, other.id)
    code = error_code(cloud, "updateUser", me.keys, id=other.id, firstname="Mallory")
    assert code == 531
    assert error_code(cloud, "updateUser", me.keys, id=other.id, password="pwned") == 531
    assert get_user(cloud, other.id)["firstname"] == before["firstname"]
    assert login(cloud, other.username, other.password).status_code == 200


def test_username_change_must_stay_unique(cloud: Cloud) -> None:
    a, b = admin_account_user(cloud), admin_account_user(cloud)
    assert error_code(cloud, "updateUser", id=a.id, username=b.username) == 431
    assert get_user(cloud, a.id)["username"] == a.username


# --- keys ---------------------------------------------------------------------------------


def test_user_regenerates_own_keys_and_old_ones_stop_working(cloud: Cloud) -> None:
    person = user_account(cloud)
    new = register(cloud, person.id, person.keys)
    assert new.api_key != person.keys.api_key and new.secret != person.keys.secret
    assert cloud.signed("listUsers", person.keys).status_code == 401
    assert cloud.call("listUsers", new, id=person.id)["user"][0]["apikey"] == new.api_key


def test_user_cannot_touch_another_users_keys(cloud: Cloud) -> None:
    me, other = user_account(cloud), user_account(cloud)
    assert error_code(cloud, "registerUserKeys", me.keys, id=other.id) == 531
    assert error_code(cloud, "getUserKeys", me.keys, id=other.id) == 531
    assert cloud.call("listUsers", other.keys, id=other.id)["count"] == 1


def test_register_keys_for_unknown_user_is_431(cloud: Cloud) -> None:
    assert error_code(cloud, "registerUserKeys", id=str(uuid.uuid4())) == 431


def test_admin_sets_a_key_pair_with_update_user(cloud: Cloud) -> None:
    person = user_account(cloud)
    chosen = Keys(f"k{uuid.uuid4().hex}", f"s{uuid.uuid4().hex}")
    assert error_code(cloud, "updateUser", id=person.id, userapikey=chosen.api_key) == 431
    assert cloud.signed("listUsers", person.keys).status_code == 200
    cloud.call("updateUser", id=person.id, userapikey=chosen.api_key, usersecretkey=chosen.secret)
    assert cloud.call("listUsers", chosen, id=person.id)["count"] == 1
    assert cloud.signed("listUsers", person.keys).status_code == 401


def test_register_user_keys_is_an_event(cloud: Cloud) -> None:
    person = user_account(cloud)
    if "listEvents" not in {a["name"] for a in cloud.call("listApis").get("api", [])}:
        pytest.skip("listEvents is not served yet")
    events = cloud.call("listEvents", type="REGISTER.USER.KEY", listall="true", pagesize=500)
    assert any(e.get("resourceid") == person.id for e in events.get("event", []))
    assert all(person.keys.secret not in str(e) for e in events.get("event", []))


# --- states -------------------------------------------------------------------------------


def libcloud_driver(cloud: Cloud, keys: Keys) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        keys.api_key,
        keys.secret,
        host="127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )


def test_disable_user_is_async_and_its_keys_stop_working(cloud: Cloud) -> None:
    person = user_account(cloud)
    drv = libcloud_driver(cloud, cloud.admin)
    result = drv._async_request(command="disableUser", params={"id": person.id}, method="GET")
    assert result["user"]["state"] == "disabled"
    assert cloud.signed("listUsers", person.keys).status_code == 401
    assert login(cloud, person.username, person.password).status_code == 401
    users = drv._sync_request(command="listUsers", params={"id": person.id, "listall": "true"})
    assert users["user"][0]["state"] == "disabled"
    cloud.call("enableUser", id=person.id)
    assert cloud.signed("listUsers", person.keys).status_code == 200


def test_disable_user_ends_sessions(cloud: Cloud) -> None:
    person = user_account(cloud)
    resp = login(cloud, person.username, person.password)
    key = resp.json()["loginresponse"]["sessionkey"]
    params = {"command": "listUsers", "response": "json", "sessionkey": key}
    assert httpx.get(cloud.endpoint, params=params, cookies=resp.cookies).status_code == 200
    job = cloud.call("disableUser", id=person.id)
    assert cloud.wait_job(job["jobid"])["jobstatus"] == 1
    cloud.call("enableUser", id=person.id)
    assert httpx.get(cloud.endpoint, params=params, cookies=resp.cookies).status_code == 401


def test_lock_user_blocks_keys_and_login(cloud: Cloud) -> None:
    person = user_account(cloud)
    assert cloud.call("lockUser", id=person.id)["user"]["state"] == "locked"
    assert cloud.signed("listUsers", person.keys).status_code == 401
    assert login(cloud, person.username, person.password).status_code == 401


def test_regular_user_cannot_disable_or_lock(cloud: Cloud) -> None:
    me, other = user_account(cloud), user_account(cloud)
    assert error_code(cloud, "disableUser", me.keys, id=other.id) == 432
    assert error_code(cloud, "lockUser", me.keys, id=other.id) == 432
    assert get_user(cloud, other.id)["state"] == "enabled"


def test_admin_cannot_disable_itself(cloud: Cloud) -> None:
    admin = admin_account_user(cloud)
    assert error_code(cloud, "disableUser", admin.keys, id=admin.id) == 431
    assert error_code(cloud, "lockUser", admin.keys, id=admin.id) == 431
    assert get_user(cloud, admin.id)["state"] == "enabled"


def test_delete_user_removes_it_and_its_keys(cloud: Cloud) -> None:
    person = admin_account_user(cloud)
    cs = client(cloud, cloud.admin)
    assert cs.deleteUser(id=person.id)["success"] is True
    assert cloud.call("listUsers", id=person.id, listall="true") == {}
    assert cloud.signed("listUsers", person.keys).status_code == 401
    assert error_code(cloud, "deleteUser", id=person.id) == 431


def test_default_admin_and_self_cannot_be_deleted(cloud: Cloud) -> None:
    admin_id = cloud.call("listUsers", username="admin", listall="true")["user"][0]["id"]
    other = admin_account_user(cloud)
    assert error_code(cloud, "deleteUser", other.keys, id=admin_id) == 431
    assert error_code(cloud, "deleteUser", other.keys, id=other.id) == 431
    assert get_user(cloud, admin_id)["state"] == "enabled"
    assert get_user(cloud, other.id)["state"] == "enabled"


def test_cs_raises_for_refused_calls(cloud: Cloud) -> None:
    person = user_account(cloud)
    with pytest.raises(CloudStackApiException) as err:
        client(cloud, person.keys).updateUser(id=person.id, password="x", currentpassword="bad")
    assert err.value.error["errorcode"] == 431
    # Keys still work (nothing was changed) a moment later too: no stale cache surprises.
    time.sleep(0.1)
    assert client(cloud, person.keys).listUsers(id=person.id)["count"] == 1


# --- domain admins ------------------------------------------------------------------------


def test_domain_admin_manages_users_in_its_subtree_only(cloud: Cloud) -> None:
    domain = cloud.call("createDomain", name=f"d-{uuid.uuid4().hex[:10]}")["domain"]
    dadmin = user_account(cloud, accounttype=2, domainid=domain["id"])
    inside = user_account(cloud, domainid=domain["id"])
    outside = user_account(cloud)
    admin_id = cloud.call("listUsers", username="admin", listall="true")["user"][0]["id"]
    name = f"du-{uuid.uuid4().hex[:10]}"
    created = cloud.call(
        "createUser",
        dadmin.keys,
        account=inside.account,
        domainid=domain["id"],
        username=name,
        password="p",
        firstname="F",
        lastname="L",
        email="e@example.test",
    )["user"]
    assert created["domainid"] == domain["id"] and created["account"] == inside.account
    cloud.call("updateUser", dadmin.keys, id=inside.id, password="set-by-domain-admin")
    relogin = login(cloud, inside.username, "set-by-domain-admin", domainId=domain["id"])
    assert relogin.status_code == 200
    refused = {
        "account": "admin",
        "domainid": root_domain_id(cloud),
        "username": f"x{name}",
        "password": "p",
        "firstname": "F",
        "lastname": "L",
        "email": "e@example.test",
    }
    assert error_code(cloud, "createUser", dadmin.keys, **refused) == 531
    for target in (outside.id, admin_id):
        assert error_code(cloud, "updateUser", dadmin.keys, id=target, password="pwned") == 531
        assert error_code(cloud, "registerUserKeys", dadmin.keys, id=target) == 531
    assert login(cloud, outside.username, outside.password).status_code == 200
    assert cloud.call("listUsers", username=f"x{name}", listall="true") == {}


def events_for(cloud: Cloud, resource_id: str, types: set[str]) -> set[str]:
    """The types among ``types`` that have an event naming ``resource_id`` (newest first)."""
    found = set()
    for kind in types:
        listed = cloud.call("listEvents", listall="true", pagesize=500, type=kind)
        if any(e.get("resourceid") == resource_id for e in listed.get("event", [])):
            found.add(kind)
    return found


def test_user_changes_are_events(cloud: Cloud) -> None:
    person = admin_account_user(cloud)
    cloud.call("updateUser", id=person.id, lastname="Lovelace")
    cloud.call("lockUser", id=person.id)
    cloud.call("enableUser", id=person.id)
    cloud.wait_job(cloud.call("disableUser", id=person.id)["jobid"])
    cloud.call("deleteUser", id=person.id)
    expected = {"USER.CREATE", "REGISTER.USER.KEY", "USER.UPDATE", "USER.LOCK", "USER.ENABLE"}
    expected |= {"USER.DISABLE", "USER.DELETE"}
    assert events_for(cloud, person.id, expected) == expected


def test_secrets_never_reach_the_server_log(cloud: Cloud) -> None:
    person = user_account(cloud)
    new_password = f"pw-{uuid.uuid4().hex}"
    chosen_secret = f"secret-{uuid.uuid4().hex}"
    client(cloud, person.keys).updateUser(
        id=person.id, password=new_password, currentpassword=person.password
    )
    cloud.call(
        "updateUser", id=person.id, userapikey=f"k-{uuid.uuid4().hex}", usersecretkey=chosen_secret
    )
    error_code(cloud, "updateUser", person.keys, id=person.id, password="x", currentpassword="bad")
    text = cloud.log_path.read_text()
    for secret in (person.keys.secret, person.password, new_password, chosen_secret):
        assert secret not in text
