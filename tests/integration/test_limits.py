"""Resource limits and counts over the CloudStack API: defaults, who may set what, recounts.

The 532 path itself (a resource creation refused) is exercised against a real database in
tests/unit/test_limits.py until commands that create counted resources exist.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.tenants import Tenant, World, error, make_domain, make_tenant, make_world
from tests.support.cloud import Cloud

ACCOUNT_DEFAULTS = {
    "user_vm": 20,
    "public_ip": 20,
    "volume": 20,
    "snapshot": 20,
    "template": 20,
    "project": 10,
    "network": 20,
    "vpc": 20,
    "cpu": 40,
    "memory": 40960,
    "primary_storage": 200,
    "secondary_storage": 400,
}


@pytest.fixture(scope="module")
def world(cloud: Cloud) -> World:
    return make_world(cloud)


def limits_of(t: Tenant | Cloud, **params: Any) -> dict[str, int]:
    body = t.call("listResourceLimits", **params)
    return {x["resourcetypename"]: x["max"] for x in body["resourcelimit"]}


def test_a_user_sees_its_own_default_limits(world: World) -> None:
    body = world.user.call("listResourceLimits")
    assert body["count"] == 12
    items = body["resourcelimit"]
    assert [x["resourcetype"] for x in items] == [str(i) for i in range(12)]
    assert {x["account"] for x in items} == {world.user.name}
    assert {x["domainid"] for x in items} == {world.domain["id"]}
    assert {x["domain"] for x in items} == {world.domain["name"]}
    assert {x["resourcetypename"]: x["max"] for x in items} == ACCOUNT_DEFAULTS


def test_filter_by_type_number_or_name(world: World) -> None:
    assert limits_of(world.user, resourcetype=8) == {"cpu": 40}
    assert limits_of(world.user, resourcetypename="memory") == {"memory": 40960}
    assert limits_of(world.user, resourcetype=8, resourcetypename="vpc") == {"vpc": 20}
    for bad in ({"resourcetype": 12}, {"resourcetypename": "gpu"}):
        status, _ = error(world.user.raw("listResourceLimits", **bad), "listResourceLimits")
        assert status == 431, bad


def test_root_admin_account_and_root_domain_are_unlimited(cloud: Cloud) -> None:
    assert set(limits_of(cloud).values()) == {-1}
    root = cloud.call("listDomains", level=0)["domain"][0]
    assert set(limits_of(cloud, domainid=root["id"]).values()) == {-1}
    body = cloud.call("listResourceLimits", domainid=root["id"])["resourcelimit"]
    assert all("account" not in x for x in body)


def test_admin_sets_an_account_limit_the_user_sees_it(cloud: Cloud, world: World) -> None:
    t = make_tenant(cloud, world.domain["id"])
    body = cloud.call(
        "updateResourceLimit", resourcetype=0, max=3, account=t.name, domainid=world.domain["id"]
    )["resourcelimit"]
    assert body == {
        "account": t.name,
        "domainid": world.domain["id"],
        "domain": world.domain["name"],
        "resourcetype": "0",
        "resourcetypename": "user_vm",
        "max": 3,
    }
    assert limits_of(t, resourcetype=0) == {"user_vm": 3}
    same = cloud.call(
        "listResourceLimits", domainid=world.domain["id"], account=t.name, resourcetype=0
    )
    assert same["resourcelimit"][0]["max"] == 3
    # No max means unlimited again.
    cloud.call("updateResourceLimit", resourcetype=0, account=t.name, domainid=world.domain["id"])
    assert limits_of(t, resourcetype=0) == {"user_vm": -1}


def test_domain_limit_is_inherited_by_a_child_domain(cloud: Cloud) -> None:
    d = make_domain(cloud)
    s = make_domain(cloud, d["id"])
    assert limits_of(cloud, domainid=d["id"], resourcetype=8) == {"cpu": 80}  # max.domain.cpus
    cloud.call("updateResourceLimit", resourcetype=8, max=12, domainid=d["id"])
    assert limits_of(cloud, domainid=d["id"], resourcetype=8) == {"cpu": 12}
    assert limits_of(cloud, domainid=s["id"], resourcetype=8) == {"cpu": 12}
    # A child may not be given more than its parent allows.
    status, body = error(
        cloud.signed("updateResourceLimit", resourcetype=8, max=13, domainid=s["id"]),
        "updateResourceLimit",
    )
    assert status == 431
    assert "please specify a value less than or equal to 12" in body["errortext"]
    cloud.call("updateResourceLimit", resourcetype=8, max=6, domainid=s["id"])
    assert limits_of(cloud, domainid=s["id"], resourcetype=8) == {"cpu": 6}


def test_bad_updates_are_431_and_change_nothing(cloud: Cloud, world: World) -> None:
    owner = {"account": world.user.name, "domainid": world.domain["id"]}
    cases = [
        {"resourcetype": 0, "max": -2, **owner},  # below -1
        {"resourcetype": 99, "max": 1, **owner},  # no such type
        {"resourcetype": 0, "max": 1, "account": world.user.name},  # account without domainid
        {"resourcetype": 0, "max": 1},  # no owner at all
        {"resourcetype": 0, "max": 1, "account": "nobody-here", "domainid": owner["domainid"]},
    ]
    before = limits_of(world.user)
    for params in cases:
        status, _ = error(cloud.signed("updateResourceLimit", **params), "updateResourceLimit")
        assert status == 431, params
    assert limits_of(world.user) == before == ACCOUNT_DEFAULTS


def test_root_admin_account_only_takes_unlimited_and_root_domain_none(cloud: Cloud) -> None:
    root = cloud.call("listDomains", level=0)["domain"][0]
    status, body = error(
        cloud.signed(
            "updateResourceLimit", resourcetype=0, max=5, account="admin", domainid=root["id"]
        ),
        "updateResourceLimit",
    )
    assert status == 431
    assert "Root Admin" in body["errortext"]
    status, _ = error(
        cloud.signed("updateResourceLimit", resourcetype=0, max=5, domainid=root["id"]),
        "updateResourceLimit",
    )
    assert status == 531
    assert set(limits_of(cloud, domainid=root["id"]).values()) == {-1}


def test_domain_admin_sets_limits_below_itself_only(cloud: Cloud, world: World) -> None:
    d, s = world.domain["id"], world.sub["id"]
    da = world.da
    body = da.call(
        "updateResourceLimit", resourcetype=2, max=7, account=world.user.name, domainid=d
    )
    assert body["resourcelimit"]["max"] == 7
    assert limits_of(world.user, resourcetype=2) == {"volume": 7}
    assert (
        da.call("updateResourceLimit", resourcetype=2, max=9, domainid=s)["resourcelimit"]["max"]
        == 9
    )
    refused = [
        {"account": da.name, "domainid": d},  # its own account
        {"domainid": d},  # its own domain
        {"account": "admin", "domainid": cloud.call("listDomains", level=0)["domain"][0]["id"]},
    ]
    for owner in refused:
        status, _ = error(
            da.raw("updateResourceLimit", resourcetype=2, max=1, **owner), "updateResourceLimit"
        )
        assert status == 531, owner
    assert limits_of(da, resourcetype=2) == {"volume": 20}
    assert limits_of(cloud, domainid=d, resourcetype=2) == {"volume": 40}


def test_users_may_not_update_limits_or_counts(world: World) -> None:
    for cmd, params in (
        ("updateResourceLimit", {"resourcetype": 0, "max": 100}),
        ("updateResourceCount", {"domainid": world.domain["id"]}),
    ):
        status, _ = error(world.user.raw(cmd, **params), cmd)
        assert status == 432
    assert limits_of(world.user, resourcetype=0) == {"user_vm": 20}


def test_a_user_cannot_read_someone_elses_limits(world: World) -> None:
    status, _ = error(
        world.user.raw("listResourceLimits", domainid=world.domain["id"]), "listResourceLimits"
    )
    assert status == 531


def test_update_resource_count_for_a_domain_and_an_account(cloud: Cloud, world: World) -> None:
    body = cloud.call("updateResourceCount", domainid=world.domain["id"])
    assert body["count"] == 12
    counts = body["resourcecount"]
    assert [c["resourcetypename"] for c in counts] == list(ACCOUNT_DEFAULTS)
    assert all(c["resourcecount"] == 0 for c in counts)  # nothing countable exists yet
    assert {c["domainid"] for c in counts} == {world.domain["id"]}
    assert all("account" not in c for c in counts)
    one = cloud.call(
        "updateResourceCount",
        domainid=world.domain["id"],
        account=world.user.name,
        resourcetype=9,
    )["resourcecount"]
    assert one == [
        {
            "account": world.user.name,
            "domainid": world.domain["id"],
            "domain": world.domain["name"],
            "resourcetype": "9",
            "resourcecount": 0,
            "resourcetypename": "memory",
        }
    ]


def test_domain_admin_recounts_its_domain_but_not_root(cloud: Cloud, world: World) -> None:
    assert world.da.call("updateResourceCount", domainid=world.sub["id"])["count"] == 12
    root = cloud.call("listDomains", level=0)["domain"][0]
    status, _ = error(
        world.da.raw("updateResourceCount", domainid=root["id"]), "updateResourceCount"
    )
    assert status == 531
    status, _ = error(
        cloud.signed("updateResourceCount", domainid=world.domain["id"], resourcetype=42),
        "updateResourceCount",
    )
    assert status == 431
