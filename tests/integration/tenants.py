"""Building small identity trees on the shared test server: domains, accounts, keyed clients.

Everything is named with a random suffix: the server lives for the whole test session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from cs import CloudStack

from tests.support.cloud import Cloud, Keys

PASSWORD = "s3cret-Pw"
USER, ADMIN, DOMAIN_ADMIN = 0, 1, 2


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def client(cloud: Cloud, keys: Keys) -> CloudStack:
    return CloudStack(
        endpoint=cloud.endpoint, key=keys.api_key, secret=keys.secret, poll_interval=0.1
    )


@dataclass
class Tenant:
    """An account with one user holding API keys."""

    cloud: Cloud
    keys: Keys
    account: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.account["name"])

    @property
    def account_id(self) -> str:
        return str(self.account["id"])

    @property
    def user_id(self) -> str:
        return str(self.account["user"][0]["id"])

    @property
    def username(self) -> str:
        return str(self.account["user"][0]["username"])

    @property
    def domain_id(self) -> str:
        return str(self.account["domainid"])

    @property
    def cs(self) -> CloudStack:
        return client(self.cloud, self.keys)

    def raw(self, command: str, **params: Any) -> httpx.Response:
        return self.cloud.signed(command, self.keys, **params)

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        return self.cloud.call(command, self.keys, **params)


def make_domain(cloud: Cloud, parent: str | None = None) -> dict[str, Any]:
    params = {"name": uniq("dom")}
    if parent is not None:
        params["parentdomainid"] = parent
    domain: dict[str, Any] = cloud.call("createDomain", **params)["domain"]
    return domain


def make_tenant(
    cloud: Cloud, domain_id: str | None = None, account_type: int = USER, by: Keys | None = None
) -> Tenant:
    """createAccount then registerUserKeys, as an operator onboarding someone would."""
    params: dict[str, Any] = {
        "username": uniq("u"),
        "password": PASSWORD,
        "firstname": "Test",
        "lastname": "Tenant",
        "email": "tenant@example.org",
        "accounttype": account_type,
    }
    if domain_id is not None:
        params["domainid"] = domain_id
    account = cloud.call("createAccount", by, **params)["account"]
    keys = cloud.call("registerUserKeys", by, id=account["user"][0]["id"])["userkeys"]
    return Tenant(cloud, Keys(keys["apikey"], keys["secretkey"]), account)


def new_account(cloud: Cloud, prefix: str = "acct") -> dict[str, Any]:
    """A User account made by the root admin, without API keys (make_tenant adds them)."""
    name = uniq(prefix)
    body: dict[str, Any] = cloud.call(
        "createAccount",
        username=name,
        password="pw-" + uuid.uuid4().hex,
        firstname="Test",
        lastname="Account",
        email=f"{name}@example.com",
        accounttype=0,
    )["account"]
    return body


def add_user(cloud: Cloud, account: dict[str, Any], username: str) -> dict[str, Any]:
    """createUser in an existing account, as the root admin."""
    body: dict[str, Any] = cloud.call(
        "createUser",
        account=account["name"],
        domainid=account["domainid"],
        username=username,
        password="pw-123456",
        firstname="F",
        lastname="L",
        email="f@example.com",
    )["user"]
    return body


@dataclass
class World:
    """A fresh domain with two users and a domain admin, and a child domain with one user:
    enough to show who sees what at each level. Test modules build their own (module scope)."""

    domain: dict[str, Any]
    sub: dict[str, Any]
    user: Tenant
    other: Tenant
    sub_user: Tenant
    da: Tenant


def make_world(cloud: Cloud) -> World:
    d = make_domain(cloud)
    s = make_domain(cloud, d["id"])
    return World(
        domain=d,
        sub=s,
        user=make_tenant(cloud, d["id"]),
        other=make_tenant(cloud, d["id"]),
        sub_user=make_tenant(cloud, s["id"]),
        da=make_tenant(cloud, d["id"], DOMAIN_ADMIN),
    )


def error(resp: httpx.Response, command: str) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the error body of a failed call (they must agree, CloudStack-wise)."""
    body: dict[str, Any] = resp.json()[f"{command.lower()}response"]
    assert body["errorcode"] == resp.status_code, resp.text
    return resp.status_code, body
