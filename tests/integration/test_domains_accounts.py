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

from tests.integration.tenants import PASSWORD, uniq
from tests.support.cloud import Cloud, make_cloud

# What createAccount needs besides a name, for calls made as a (non-root) session user.
PROFILE = {"password": PASSWORD, "firstname": "f", "lastname": "l", "email": "e@example.org"}


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
        **PROFILE,
    )
    assert resp.status_code == 432
    assert victim["id"] in account_ids(cs)


def test_user_lists_only_its_own_account(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    mine = create_account(cs, 0)
    other = create_account(cs, 0)
    user = login(cloud, mine["name"])
    listed = user.call("listAccounts", listall="true")
    assert [a["id"] for a in listed["account"]] == [mine["id"]]
    assert listed["count"] == 1
    assert user.raw("listAccounts", id=other["id"]).status_code == 531


# --- keys, states and updates ----------------------------------------------------------------


def user_client(cloud: Cloud, account: dict[str, Any]) -> CloudStack:
    """A cs client signing with keys registered for the account's first user."""
    keys = cloud.call("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return CloudStack(endpoint=cloud.endpoint, key=keys["apikey"], secret=keys["secretkey"])


def test_deleted_account_api_key_stops_working(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    account = create_account(cs, 0)
    mine = user_client(cloud, account)
    assert mine.listAccounts()["account"][0]["id"] == account["id"]
    cs.deleteAccount(id=account["id"], fetch_result=True)
    with pytest.raises(CloudStackApiException) as exc:
        mine.listAccounts()
    assert api_error(exc)[0] == 401


def test_disable_lock_and_enable_account(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    account = create_account(cs, 0)
    session = login(cloud, account["name"])
    mine = user_client(cloud, account)

    locked = cs.disableAccount(id=account["id"], lock=True, fetch_result=True)["account"]
    assert locked["state"] == "locked"
    assert session.raw("listAccounts").status_code == 401
    with pytest.raises(CloudStackApiException) as exc:
        mine.listAccounts()
    assert api_error(exc)[0] == 401

    enabled = cs.enableAccount(id=account["id"])["account"]
    assert enabled["state"] == "enabled"
    assert mine.listAccounts()["account"][0]["state"] == "enabled"

    by_name = {"account": account["name"], "domainid": account["domainid"]}
    disabled = cs.disableAccount(lock=False, fetch_result=True, **by_name)["account"]
    assert disabled["state"] == "disabled"
    cs.enableAccount(**by_name)
    assert cs.lockAccount(**by_name)["account"]["state"] == "locked"
    assert cs.listAccounts(id=account["id"])["account"][0]["state"] == "locked"


def test_disable_account_requires_lock_and_a_target(cloud: Cloud) -> None:
    account = create_account(admin_client(cloud), 0)
    assert cloud.signed("disableAccount", id=account["id"]).status_code == 431
    assert cloud.signed("disableAccount", lock="true").status_code == 431
    assert cloud.signed("lockAccount", account=account["name"]).status_code == 431
    listed = cloud.call("listAccounts", id=account["id"])["account"][0]
    assert listed["state"] == "enabled"


def test_update_account_name_network_domain_and_role(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    account = create_account(cs, 0)
    other = create_account(cs, 0)
    new_name = uniq("renamed")
    updated = cs.updateAccount(id=account["id"], newname=new_name, networkdomain="n.example")
    assert updated["account"]["name"] == new_name
    assert updated["account"]["networkdomain"] == "n.example"
    with pytest.raises(CloudStackApiException) as exc:
        cs.updateAccount(id=account["id"], newname=other["name"])
    assert api_error(exc)[0] == 431
    admin_role = create_account(cs, 2)["roleid"]
    with pytest.raises(CloudStackApiException) as exc:
        cs.updateAccount(id=account["id"], roleid=admin_role)
    assert api_error(exc)[0] == 431
    listed = cs.listAccounts(id=account["id"])["account"][0]
    assert (listed["name"], listed["roletype"]) == (new_name, "User")


# --- domains -------------------------------------------------------------------------------


def create_domain(cs: CloudStack, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"name": uniq("dom"), **extra}
    if parent:
        params["parentdomainid"] = parent
    domain: dict[str, Any] = cs.createDomain(**params)["domain"]
    return domain


def test_nested_domains_have_paths_levels_and_parents(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    top = create_domain(cs, networkdomain="top.example")
    mid = create_domain(cs, top["id"])
    leaf = create_domain(cs, mid["id"])
    assert top["path"] == f"ROOT/{top['name']}"
    assert top["level"] == 1 and top["parentdomainname"] == "ROOT"
    assert top["networkdomain"] == "top.example"
    assert leaf["path"] == f"ROOT/{top['name']}/{mid['name']}/{leaf['name']}"
    assert leaf["level"] == 3 and leaf["parentdomainid"] == mid["id"]
    assert leaf["haschild"] is False and leaf["state"] == "Active"
    [listed_top] = cs.listDomains(id=top["id"])["domain"]
    assert listed_top["haschild"] is True
    children = cs.listDomainChildren(id=top["id"])["domain"]
    assert [d["id"] for d in children] == [mid["id"]]
    tree = cs.listDomainChildren(id=top["id"], isrecursive=True)["domain"]
    assert {d["id"] for d in tree} == {mid["id"], leaf["id"]}
    everything = {d["id"] for d in cs.listDomains(listall=True)["domain"]}
    assert {top["id"], mid["id"], leaf["id"]} <= everything


@pytest.mark.parametrize("name", ["a/b", " "])
def test_bad_domain_names_are_431(cloud: Cloud, name: str) -> None:
    cs = admin_client(cloud)
    parent = create_domain(cs)
    with pytest.raises(CloudStackApiException) as exc:
        cs.createDomain(name=name, parentdomainid=parent["id"])
    assert api_error(exc)[0] == 431
    assert cs.listDomainChildren(id=parent["id"]) == {}


def test_sibling_domains_need_distinct_names(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    parent = create_domain(cs)
    first = create_domain(cs, parent["id"])
    with pytest.raises(CloudStackApiException) as exc:
        cs.createDomain(name=first["name"], parentdomainid=parent["id"])
    assert api_error(exc)[0] == 431
    assert len(cs.listDomainChildren(id=parent["id"])["domain"]) == 1
    # The same name under another parent is fine.
    assert create_domain(cs, first["id"], name=first["name"])["level"] == 3


def test_rename_domain_rewrites_the_subtree_paths(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    top = create_domain(cs)
    child = create_domain(cs, top["id"])
    account = create_account(cs, 0, domainid=child["id"])
    new_name = uniq("moved")
    renamed = cs.updateDomain(id=top["id"], name=new_name)["domain"]
    assert renamed["path"] == f"ROOT/{new_name}"
    [listed_child] = cs.listDomains(id=child["id"])["domain"]
    assert listed_child["path"] == f"ROOT/{new_name}/{child['name']}"
    moved = cs.listAccounts(id=account["id"])["account"][0]
    assert moved["domainpath"] == f"ROOT/{new_name}/{child['name']}"
    # Login takes the new path; the old one is gone.
    login(cloud, account["name"], f"/ROOT/{new_name}/{child['name']}")
    http = httpx.post(
        cloud.endpoint,
        data={
            "command": "login",
            "response": "json",
            "username": account["name"],
            "password": PASSWORD,
            "domain": f"/ROOT/{top['name']}/{child['name']}",
        },
    )
    assert http.status_code == 401


def test_root_domain_cannot_be_renamed_or_deleted(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    [root] = cs.listDomains(name="ROOT")["domain"]
    assert root["path"] == "ROOT" and root["level"] == 0
    assert cloud.signed("updateDomain", id=root["id"], name="TOP").status_code == 531
    assert cloud.signed("deleteDomain", id=root["id"], cleanup="true").status_code == 531
    assert cs.listDomains(id=root["id"])["domain"][0]["name"] == "ROOT"


def test_delete_domain_without_cleanup_is_refused_while_in_use(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    parent = create_domain(cs)
    child = create_domain(cs, parent["id"])
    account = create_account(cs, 0, domainid=child["id"])
    session = login(cloud, account["name"], child["path"])

    for domain in (parent, child):  # a child domain, then an account, block the delete
        with pytest.raises(CloudStackApiException) as exc:
            cs.deleteDomain(id=domain["id"])
        code, text = api_error(exc)
        assert code == 536 and "cleanup=true" in text
    assert cs.listDomains(id=child["id"])["count"] == 1
    assert account["id"] in account_ids(cs, domainid=child["id"])

    job = cs.deleteDomain(id=parent["id"], cleanup=True, fetch_result=True)
    assert job["success"] is True
    assert cloud.signed("listDomains", id=parent["id"]).status_code == 431
    assert cloud.signed("listDomains", id=child["id"]).status_code == 431
    assert account["id"] not in account_ids(cs)
    assert session.raw("listAccounts").status_code == 401


def test_empty_domain_deletes_without_cleanup(cloud: Cloud) -> None:
    cs = admin_client(cloud)
    parent = create_domain(cs)
    child = create_domain(cs, parent["id"])
    submitted = cloud.call("deleteDomain", id=child["id"])
    job = cloud.wait_job(submitted["jobid"])
    assert (job["jobstatus"], job["jobinstancetype"]) == (1, "Domain")
    assert cs.listDomainChildren(id=parent["id"]) == {}
    assert cs.listDomains(id=parent["id"])["domain"][0]["haschild"] is False
    # The name is free again.
    assert create_domain(cs, parent["id"], name=child["name"])["id"] != child["id"]


# --- a domain admin ------------------------------------------------------------------------


@dataclass
class Tenancy:
    """Two sibling domains, a child under the first, and a domain admin of the first."""

    mine: dict[str, Any]
    child: dict[str, Any]
    sibling: dict[str, Any]
    admin_account: dict[str, Any]
    admin: SessionClient
    accounts_mine: set[str]
    accounts_sibling: set[str]


@pytest.fixture
def tenancy(cloud: Cloud) -> Tenancy:
    cs = admin_client(cloud)
    mine, sibling = create_domain(cs), create_domain(cs)
    child = create_domain(cs, mine["id"])
    admin_account = create_account(cs, 2, domainid=mine["id"])
    in_mine = {
        admin_account["id"],
        create_account(cs, 0, domainid=mine["id"])["id"],
        create_account(cs, 0, domainid=child["id"])["id"],
        create_account(cs, 2, domainid=child["id"])["id"],
    }
    in_sibling = {create_account(cs, 0, domainid=sibling["id"])["id"]}
    admin = login(cloud, admin_account["name"], mine["path"])
    return Tenancy(mine, child, sibling, admin_account, admin, in_mine, in_sibling)


def test_domain_admin_sees_exactly_its_subtree(tenancy: Tenancy) -> None:
    t = tenancy
    listed = t.admin.call("listAccounts", listall="true")
    assert {a["id"] for a in listed["account"]} == t.accounts_mine
    assert listed["count"] == len(t.accounts_mine)
    domains = t.admin.call("listDomains", listall="true")["domain"]
    assert {d["id"] for d in domains} == {t.mine["id"], t.child["id"]}
    own_level = t.admin.call("listAccounts")["account"]
    assert all(a["domainid"] == t.mine["id"] for a in own_level)
    users = t.admin.call("listUsers", listall="true")["user"]
    assert {u["accountid"] for u in users} == t.accounts_mine


def test_domain_admin_cannot_reach_a_sibling_domain(cloud: Cloud, tenancy: Tenancy) -> None:
    t = tenancy
    [sibling_account] = t.accounts_sibling
    assert t.admin.raw("listAccounts", domainid=t.sibling["id"]).status_code == 531
    assert t.admin.raw("listAccounts", id=sibling_account).status_code == 531
    assert t.admin.raw("listDomains", id=t.sibling["id"]).status_code == 531
    assert t.admin.raw("listDomainChildren", id=t.sibling["id"]).status_code == 531
    assert t.admin.raw("deleteAccount", id=sibling_account).status_code == 531
    assert t.admin.raw("disableAccount", id=sibling_account, lock="true").status_code == 531
    assert t.admin.raw("createDomain", name="x", parentdomainid=t.sibling["id"]).status_code == 531
    name = uniq("intruder")
    resp = t.admin.raw(
        "createAccount",
        accounttype=0,
        username=name,
        **PROFILE,
        domainid=t.sibling["id"],
    )
    assert resp.status_code == 531
    assert resp.json()["createaccountresponse"]["errorcode"] == 531
    cs = admin_client(cloud)
    assert cs.listAccounts(listall=True, name=name) == {}
    assert account_ids(cs, domainid=t.sibling["id"]) == t.accounts_sibling


def test_domain_admin_manages_its_subtree(cloud: Cloud, tenancy: Tenancy) -> None:
    t = tenancy
    name = uniq("sub")
    made = t.admin.call(
        "createAccount",
        accounttype=0,
        username=name,
        **PROFILE,
        domainid=t.child["id"],
    )["account"]
    assert made["domainid"] == t.child["id"] and made["accounttype"] == 0
    sub = t.admin.call("createDomain", name=uniq("grand"), parentdomainid=t.child["id"])
    assert sub["domain"]["level"] == 3
    job = t.admin.wait_job(t.admin.call("deleteAccount", id=made["id"])["jobid"])
    assert job["jobstatus"] == 1
    assert made["id"] not in account_ids(admin_client(cloud))


def test_domain_admin_never_creates_a_root_admin(cloud: Cloud, tenancy: Tenancy) -> None:
    t = tenancy
    name = uniq("root")
    resp = t.admin.raw(
        "createAccount",
        accounttype=1,
        username=name,
        **PROFILE,
    )
    assert resp.status_code == 531
    assert admin_client(cloud).listAccounts(listall=True, name=name) == {}


def test_domain_admin_cannot_change_its_own_domain(tenancy: Tenancy) -> None:
    t = tenancy
    assert t.admin.raw("updateDomain", id=t.mine["id"], name="x").status_code == 531
    assert t.admin.raw("deleteDomain", id=t.mine["id"], cleanup="true").status_code == 531
    assert t.admin.raw("deleteAccount", id=t.admin_account["id"]).status_code == 531
    assert t.admin.call("listDomains", id=t.mine["id"])["domain"][0]["name"] == t.mine["name"]


def test_users_may_not_list_domains(cloud: Cloud) -> None:
    account = create_account(admin_client(cloud), 0)
    user = login(cloud, account["name"])
    assert user.raw("listDomains").status_code == 432
    assert user.raw("createDomain", name=uniq("d")).status_code == 432
