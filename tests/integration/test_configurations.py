"""Global settings over the CloudStack API: listing, scoped values, validation, throttling.

The server is shared by the whole session: every setting a test changes is put back in a
``finally`` (with retries, since throttling may be on when it has to be turned off).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.tenants import World, error, make_domain, make_world
from tests.support.cloud import Cloud, Keys

FIELDS = {
    "name",
    "value",
    "defaultvalue",
    "category",
    "description",
    "scope",
    "isdynamic",
    "type",
    "displaytext",
    "component",
    "group",
    "subgroup",
}
PER_ACCOUNT = "allow.user.view.destroyed.vm"  # global + account scope, default false


@pytest.fixture(scope="module")
def world(cloud: Cloud) -> World:
    return make_world(cloud)


def one(cloud: Cloud, name: str, keys: Keys | None = None, **scope: Any) -> dict[str, Any]:
    items = cloud.call("listConfigurations", keys, name=name, **scope)["configuration"]
    exact = [c for c in items if c["name"] == name]
    assert len(exact) == 1, items
    return exact[0]


def retrying(cloud: Cloud, command: str, **params: Any) -> dict[str, Any]:
    """An admin call that waits out throttling (429) instead of failing."""
    deadline = time.monotonic() + 30
    while True:
        resp = cloud.signed(command, **params)
        if resp.status_code != 429 or time.monotonic() > deadline:
            assert resp.status_code == 200, resp.text
            body: dict[str, Any] = resp.json()[f"{command.lower()}response"]
            return body
        time.sleep(0.5)


@pytest.fixture
def restore(cloud: Cloud) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """Settings to reset at the end of a test, whatever happened: (name, scope params)."""
    changed: list[tuple[str, dict[str, str]]] = []
    try:
        yield changed
    finally:
        for name, scope in reversed(changed):
            retrying(cloud, "resetConfiguration", name=name, **scope)


def test_a_setting_has_the_cloudstack_shape(cloud: Cloud) -> None:
    c = one(cloud, "event.purge.delay")
    assert set(c) >= FIELDS
    assert c["value"] == c["defaultvalue"] == "15"
    assert c["type"] == "Number"
    assert c["scope"] == "global"
    assert c["isdynamic"] is True
    assert c["category"] == "Advanced"
    assert c["displaytext"] == "Event purge delay"
    assert "id" not in c


def test_filters_by_name_part_keyword_category_and_group(cloud: Cloud) -> None:
    names = lambda body: {c["name"] for c in body.get("configuration", [])}  # noqa: E731
    throttling = {"api.throttling.enabled", "api.throttling.interval", "api.throttling.max"}
    assert names(cloud.call("listConfigurations", name="api.throttling")) == throttling
    rate = names(cloud.call("listConfigurations", keyword="rate LIMIT"))
    assert "api.throttling.enabled" in rate and "api.throttling.max" not in rate
    account_defaults = names(
        cloud.call("listConfigurations", category="Account Defaults", pagesize=-1)
    )
    assert {"max.account.user.vms", "max.account.cpus", "max.account.memory"} <= account_defaults
    assert all(n.startswith("max.account.") for n in account_defaults)
    api = names(cloud.call("listConfigurations", group="Management Server", subgroup="API"))
    assert throttling <= api
    status, body = error(cloud.signed("listConfigurations", subgroup="API"), "listConfigurations")
    assert status == 431
    assert "group name must be specified" in body["errortext"]


def test_paging_counts_all_matches(cloud: Cloud) -> None:
    first = cloud.call("listConfigurations", page=1, pagesize=2)
    second = cloud.call("listConfigurations", page=2, pagesize=2)
    assert first["count"] == second["count"] > 4
    assert len(first["configuration"]) == len(second["configuration"]) == 2
    assert {c["name"] for c in first["configuration"]}.isdisjoint(
        c["name"] for c in second["configuration"]
    )


def test_limit_defaults_are_listed(cloud: Cloud) -> None:
    assert one(cloud, "max.account.user.vms")["defaultvalue"] == "20"
    assert one(cloud, "max.account.memory")["defaultvalue"] == "40960"
    assert one(cloud, "max.domain.cpus")["defaultvalue"] == "80"
    assert one(cloud, "max.domain.secondary.storage")["category"] == "Domain Defaults"


def test_who_may_list_and_update(world: World) -> None:
    status, _ = error(world.user.raw("listConfigurations"), "listConfigurations")
    assert status == 432
    assert world.da.call("listConfigurations", name="event.purge.delay")["count"] == 1
    for caller in (world.user, world.da):
        resp = caller.raw("updateConfiguration", name="event.purge.delay", value="3")
        assert error(resp, "updateConfiguration")[0] == 432
    # A domain admin cannot read the values of an account outside its domain.
    root_admin = world.user.cloud.call("listAccounts", name="admin", listall="true")["account"][0]
    status, _ = error(
        world.da.raw("listConfigurations", accountid=root_admin["id"], name=PER_ACCOUNT),
        "listConfigurations",
    )
    assert status == 531


def test_update_global_value_records_an_event_and_reset_restores(
    cloud: Cloud, restore: list[tuple[str, dict[str, str]]]
) -> None:
    restore.append(("event.purge.delay", {}))
    updated = cloud.call("updateConfiguration", name="event.purge.delay", value="30")
    assert updated["configuration"]["value"] == "30"
    assert updated["configuration"]["scope"] == "global"
    assert one(cloud, "event.purge.delay")["value"] == "30"
    event = cloud.call("listEvents", type="CONFIGURATION.VALUE.EDIT")["event"][0]
    assert event["resourcename"] == "event.purge.delay"
    reset = cloud.call("resetConfiguration", name="event.purge.delay")["configuration"]
    assert reset["value"] == "15"
    assert one(cloud, "event.purge.delay")["value"] == "15"


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("max.account.user.vms", "many", "expected Long"),
        ("max.account.user.vms", "-5", "outside"),
        ("api.throttling.enabled", "yes", "expected Boolean"),
        ("api.throttling.interval", "0", "outside"),
        ("no.such.setting", "1", "not found"),
    ],
)
def test_bad_values_are_431_and_change_nothing(
    cloud: Cloud, name: str, value: str, why: str
) -> None:
    before = cloud.call("listConfigurations", name=name).get("configuration")
    status, body = error(
        cloud.signed("updateConfiguration", name=name, value=value), "updateConfiguration"
    )
    assert status == 431
    assert why in body["errortext"]
    assert cloud.call("listConfigurations", name=name).get("configuration") == before


def test_account_value_overrides_global_for_that_account_only(
    cloud: Cloud, world: World, restore: list[tuple[str, dict[str, str]]]
) -> None:
    scope = {"accountid": world.user.account_id}
    restore.append((PER_ACCOUNT, scope))
    body = cloud.call("updateConfiguration", name=PER_ACCOUNT, value="true", **scope)
    assert body["configuration"]["scope"] == "account"
    assert body["configuration"]["value"] == "true"
    assert one(cloud, PER_ACCOUNT, **scope)["value"] == "true"
    assert one(cloud, PER_ACCOUNT, accountid=world.other.account_id)["value"] == "false"
    assert one(cloud, PER_ACCOUNT)["value"] == "false"
    # listConfigurations for an account shows only settings that have an account scope.
    listed = cloud.call("listConfigurations", pagesize=-1, **scope)["configuration"]
    assert {c["scope"] for c in listed} == {"account"}
    assert "api.throttling.max" not in {c["name"] for c in listed}
    # The domain admin of the account's domain may read it.
    assert one(cloud, PER_ACCOUNT, world.da.keys, **scope)["value"] == "true"
    reset = cloud.call("resetConfiguration", name=PER_ACCOUNT, **scope)["configuration"]
    assert reset["value"] == "false"
    assert one(cloud, PER_ACCOUNT, **scope)["value"] == "false"


def test_scope_mistakes_are_431_and_change_nothing(cloud: Cloud, world: World) -> None:
    cases = [
        {"name": PER_ACCOUNT, "value": "true", "accountid": world.user.account_id,
         "domainid": world.domain["id"]},
        {"name": "api.throttling.max", "value": "7", "accountid": world.user.account_id},
        {"name": PER_ACCOUNT, "value": "true", "domainid": world.domain["id"]},
        {"name": PER_ACCOUNT, "value": "true",
         "accountid": "00000000-0000-4000-8000-000000000000"},
    ]  # fmt: skip
    for params in cases:
        status, _ = error(cloud.signed("updateConfiguration", **params), "updateConfiguration")
        assert status == 431, params
    assert one(cloud, PER_ACCOUNT, accountid=world.user.account_id)["value"] == "false"
    assert one(cloud, "api.throttling.max")["value"] == "25"


def _burst(cloud: Cloud, keys: Keys, n: int) -> list[httpx.Response]:
    return [cloud.signed("listEventTypes", keys) for _ in range(n)]


def test_throttling_limits_one_account_and_not_another(
    cloud: Cloud, world: World, restore: list[tuple[str, dict[str, str]]]
) -> None:
    limit, interval = 4, 3
    restore.extend(
        [
            ("api.throttling.max", {}),
            ("api.throttling.interval", {}),
            ("api.throttling.enabled", {}),
        ]
    )
    cloud.call("updateConfiguration", name="api.throttling.max", value=str(limit))
    cloud.call("updateConfiguration", name="api.throttling.interval", value=str(interval))
    cloud.call("updateConfiguration", name="api.throttling.enabled", value="true")
    # Settings are cached per server for up to 3 s: wait until throttling is seen to bite.
    deadline = time.monotonic() + 15
    while all(r.status_code == 200 for r in _burst(cloud, world.user.keys, limit + 1)):
        assert time.monotonic() < deadline, "throttling never took effect"
    time.sleep(interval + 0.5)  # a fresh window for the user

    replies = _burst(cloud, world.user.keys, limit + 2)
    assert [r.status_code for r in replies] == [200] * limit + [429, 429]
    status, body = error(replies[-1], "listEventTypes")
    assert status == body["errorcode"] == 429
    assert body["errortext"].startswith("The given user has reached his/her account api limit")
    # Another account has its own allowance.
    assert cloud.signed("listEventTypes", world.other.keys).status_code == 200

    retrying(cloud, "resetConfiguration", name="api.throttling.enabled")
    deadline = time.monotonic() + 15
    while not all(r.status_code == 200 for r in _burst(cloud, world.user.keys, limit + 2)):
        assert time.monotonic() < deadline, "throttling never turned off"
        time.sleep(0.5)


def test_domain_admin_reads_domain_scope_of_its_domain_only(cloud: Cloud, world: World) -> None:
    other_domain = make_domain(cloud)
    status, _ = error(
        world.da.raw("listConfigurations", domainid=other_domain["id"]), "listConfigurations"
    )
    assert status == 531
    assert world.da.call("listConfigurations", domainid=world.domain["id"]) == {}
