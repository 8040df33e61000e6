"""Domains and accounts over the CloudStack API, with the real ``cs`` client.

The server is shared by the whole session, so every name carries a random suffix and no test
assumes global counts. Non-admin callers log in with a session (login + sessionkey + cookie),
the way the CloudStack UI does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException

from tests.support.cloud import Cloud, make_cloud

PASSWORD = "s3cret-Pw"


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_client(cloud: Cloud) -> CloudStack:
    return CloudStack(
        endpoint=cloud.endpoint,
        key=cloud.admin.api_key,
        secret=cloud.admin.secret,
        poll_interval=0.1,
        job_timeout=30,
    )


@dataclass
class SessionClient:
    """A logged-in user: every call sends the session cookie and the sessionkey parameter."""

    cloud: Cloud
    http: httpx.Client
    key: str

    def raw(self, command: str, **params: Any) -> httpx.Response:
        data = {"command": command, "response": "json", "sessionkey": self.key, **params}
        return self.http.post(self.cloud.endpoint, data={k: str(v) for k, v in data.items()})

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        resp = self.raw(command, **params)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()[f"{command.lower()}response"]
        return body

    def wait_job(self, jobid: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = self.call("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job {jobid} still running")


def login(cloud: Cloud, username: str, domain_path: str = "/") -> SessionClient:
    http = httpx.Client(timeout=30)
    resp = http.post(
        cloud.endpoint,
        data={
            "command": "login",
            "response": "json",
            "username": username,
            "password": PASSWORD,
            "domain": domain_path,
        },
    )
    assert resp.status_code == 200, resp.text
    return SessionClient(cloud, http, resp.json()["loginresponse"]["sessionkey"])


def create_account(
    cs: CloudStack, accounttype: int | None = 0, domainid: str | None = None, **extra: Any
) -> dict[str, Any]:
    name = uniq("acct")
    params: dict[str, Any] = {
        "accounttype": accounttype,
        "username": name,
        "password": PASSWORD,
        "firstname": "First",
        "lastname": "Last",
        "email": f"{name}@example.org",
        **extra,
    }
    if domainid:
        params["domainid"] = domainid
    if accounttype is None:
        del params["accounttype"]
    account: dict[str, Any] = cs.createAccount(**params)["account"]
    return account


def account_ids(cs: CloudStack, **params: Any) -> set[str]:
    found = cs.listAccounts(listall=True, **params)
    return {a["id"] for a in found.get("account", [])}


def api_error(exc: pytest.ExceptionInfo[CloudStackApiException]) -> tuple[int, str]:
    return exc.value.error["errorcode"], exc.value.error["errortext"]


# --- accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accounttype", "roletype"), [(0, "User"), (1, "Admin"), (2, "DomainAdmin")]
)
def test_create_account_of_each_type(cloud: Cloud, accounttype: int, roletype: str) -> None:
    cs = admin_client(cloud)
    account = create_account(cs, accounttype, networkdomain="tenant.example")
    assert account["accounttype"] == accounttype
    assert account["roletype"] == roletype
    assert account["state"] == "enabled"
    assert account["domain"] == "ROOT"
    assert account["domainpath"] == "ROOT"
    assert account["networkdomain"] == "tenant.example"
    assert account["isdefault"] is False
    [user] = account["user"]
    assert user["username"] == account["name"]
    assert user["accountid"] == account["id"]
    listed = cs.listAccounts(id=account["id"])
    assert listed["count"] == 1
    assert listed["account"][0]["name"] == account["name"]


def test_create_account_with_role_and_account_name(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    user_role = create_account(cs, 0)["roleid"]
    name = uniq("named")
    account = create_account(cs, None, roleid=user_role, account=name)
    assert account["name"] == name
    assert account["roleid"] == user_role
    assert account["accounttype"] == 0
    assert account["user"][0]["username"] != name


@pytest.mark.parametrize(
    "bad",
    [
        {"accounttype": 1, "roleid": "role:User"},  # role type does not match account type
        {"accounttype": 7},
        {"accounttype": "x"},
        {"email": None},  # a required parameter missing
        {"domainid": "not-a-uuid"},
        {"domainid": str(uuid.uuid4())},
        {"networkdomain": "-bad_domain"},
        {"accountid": "nope"},
    ],
)
def test_create_account_bad_input_is_431_and_writes_nothing(
    cloud: Cloud, bad: dict[str, Any]
) -> None:
    cs = admin_client(cloud)
    name = uniq("bad")
    params: dict[str, Any] = {
        "accounttype": 0,
        "username": name,
        "password": PASSWORD,
        "firstname": "F",
        "lastname": "L",
        "email": "x@example.org",
    }
    if bad.get("roleid") == "role:User":
        bad = {**bad, "roleid": create_account(cs, 0)["roleid"]}
    params.update(bad)
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(CloudStackApiException) as exc:
        cs.createAccount(**params)
    assert api_error(exc)[0] == 431
    assert cs.listAccounts(listall=True, name=name) == {}
    assert cs.listUsers(listall=True, username=name) == {}


def test_duplicate_account_name_is_refused(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    first = create_account(cs)
    with pytest.raises(CloudStackApiException) as exc:
        create_account(cs, account=first["name"])
    code, text = api_error(exc)
    assert code == 431 and "already exists" in text
    assert len(cs.listAccounts(listall=True, name=first["name"])["account"]) == 1


def test_delete_account_removes_it_and_ends_its_session(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    account = create_account(cs, 0)
    user = login(cloud, account["name"])
    assert user.call("listAccounts")["account"][0]["id"] == account["id"]

    job = cs.deleteAccount(id=account["id"], fetch_result=True)
    assert job["success"] is True
    assert account["id"] not in account_ids(cs)
    assert cs.listUsers(listall=True, username=account["name"]) == {}
    assert user.raw("listAccounts").status_code == 401


def test_delete_account_job_status_and_events(cloud: Cloud) -> None:
    account = create_account(admin_client(cloud), 2)
    submitted = cloud.call("deleteAccount", id=account["id"])
    job = cloud.wait_job(submitted["jobid"])
    assert job["jobstatus"] == 1
    assert job["jobresultcode"] == 0
    assert job["jobinstancetype"] == "Account"
    assert job["jobinstanceid"] == account["id"]
    assert job["jobresult"]["success"] is True
    again = cloud.signed("deleteAccount", id=account["id"])
    assert again.status_code == 431


def test_delete_unknown_account_is_431(cloud: Cloud) -> None:
    resp = cloud.signed("deleteAccount", id=str(uuid.uuid4()))
    assert resp.status_code == 431
    assert resp.json()["deleteaccountresponse"]["errorcode"] == 431


@pytest.fixture(scope="module")
def lone_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A cloud of its own, where the built-in admin is surely the only root admin account."""
    c = make_cloud(tmp_path_factory.mktemp("lone-cloud"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_last_root_admin_account_cannot_be_deleted(lone_cloud: Cloud) -> None:
    cs = admin_client(lone_cloud)
    [builtin] = cs.listAccounts(listall=True, accounttype=1)["account"]
    assert builtin["isdefault"] is True
    with pytest.raises(CloudStackApiException) as exc:
        cs.deleteAccount(id=builtin["id"])
    code, text = api_error(exc)
    assert code == 536 and "last root admin" in text
    second = create_account(cs, 1)
    other = login(lone_cloud, second["name"])
    # The job runs as the deleted admin, so only the other admin can still watch it.
    assert other.wait_job(cs.deleteAccount(id=builtin["id"])["jobid"])["jobstatus"] == 1
    listed = other.call("listAccounts", listall="true", accounttype=1)["account"]
    assert [a["id"] for a in listed] == [second["id"]]


def test_user_cannot_call_account_admin_commands(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    account = create_account(cs, 0)
    victim = create_account(cs, 0)
    user = login(cloud, account["name"])
    assert user.raw("deleteAccount", id=victim["id"]).status_code == 432
    resp = user.raw(
        "createAccount",
        accounttype=0,
        username=uniq("x"),
        password=PASSWORD,
        firstname="f",
        lastname="l",
        email="e@example.org",
    )
    assert resp.status_code == 432
    assert victim["id"] in account_ids(cs)


def test_user_lists_only_its_own_account(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    mine = create_account(cs, 0)
    create_account(cs, 0)
    user = login(cloud, mine["name"])
    listed = user.call("listAccounts", listall="true")
    assert [a["id"] for a in listed["account"]] == [mine["id"]]
    assert listed["count"] == 1
