"""Events over the CloudStack API: the shape, who sees what, job event chains, archiving.

A small tree per module: domain D with two users, a domain admin and (in a child domain S) a
third user. Events come from real commands (updateUser, deleteAccount) written by the
dispatcher, never inserted by hand.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cs import CloudStackApiException

from tests.integration.tenants import (
    Tenant,
    World,
    error,
    make_tenant,
    make_world,
    uniq,
)
from tests.support.cloud import Cloud

WIRE_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")


@pytest.fixture(scope="module")
def world(cloud: Cloud) -> World:
    return make_world(cloud)


def touch(t: Tenant) -> dict[str, Any]:
    """A USER.UPDATE event owned by ``t``'s account: the user renames itself."""
    t.call("updateUser", id=t.user_id, firstname=uniq("fn"))
    events = t.call("listEvents", type="USER.UPDATE", resourceid=t.user_id, resourcetype="User")
    return events["event"][0]


def listed(t: Tenant, **params: Any) -> list[dict[str, Any]]:
    body = t.call("listEvents", pagesize=-1, **params)
    return list(body.get("event", []))


def ids(events: list[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in events}


def test_user_sees_its_own_events_in_cloudstack_shape(world: World) -> None:
    mine = touch(world.user)
    theirs = touch(world.other)
    assert mine["type"] == "USER.UPDATE"
    assert mine["level"] == "INFO"
    assert mine["state"] == "Completed"
    assert mine["archived"] is False
    assert mine["account"] == world.user.name
    assert mine["username"] == world.user.username
    assert mine["domainid"] == world.domain["id"]
    assert mine["domain"] == world.domain["name"]
    assert mine["domainpath"] == f"ROOT/{world.domain['name']}"
    assert mine["resourceid"] == world.user.user_id
    assert mine["resourcetype"] == "User"
    assert mine["resourcename"] == world.user.username
    assert WIRE_DATE.match(mine["created"])
    assert mine["description"]
    assert "parentid" not in mine

    for params in ({}, {"listall": "true"}):
        seen = listed(world.user, **params)
        assert {e["account"] for e in seen} == {world.user.name}
        assert mine["id"] in ids(seen) and theirs["id"] not in ids(seen)
    assert world.user.call("listEvents", id=theirs["id"]) == {}


def test_user_naming_a_domain_is_refused(world: World) -> None:
    status, body = error(world.user.raw("listEvents", domainid=world.domain["id"]), "listEvents")
    assert status == 531
    assert body["cserrorcode"] == 4365


def test_domain_admin_sees_its_subtree_with_listall(cloud: Cloud, world: World) -> None:
    wanted = {touch(t)["id"] for t in (world.user, world.other, world.sub_user)}
    own_only = listed(world.da, type="USER.UPDATE")
    assert not wanted & ids(own_only)
    everything = listed(world.da, type="USER.UPDATE", listall="true")
    assert wanted <= ids(everything)
    assert all(e["domainpath"].startswith(f"ROOT/{world.domain['name']}") for e in everything)
    # The root admin's own events (ROOT domain) stay out of the domain admin's sight.
    admin_event = cloud.call("listEvents", type="DOMAIN.CREATE")["event"][0]
    assert admin_event["id"] not in ids(listed(world.da, listall="true"))
    # Only the child domain, not recursive past it: sub_user's event only.
    sub_only = listed(world.da, type="USER.UPDATE", domainid=world.sub["id"])
    assert {e["account"] for e in sub_only} == {world.sub_user.name}


def test_root_admin_lists_a_domain_subtree(cloud: Cloud, world: World) -> None:
    e3 = touch(world.sub_user)
    flat = cloud.call("listEvents", domainid=world.domain["id"], type="USER.UPDATE")
    assert e3["id"] not in ids(flat.get("event", []))
    deep = cloud.call(
        "listEvents", domainid=world.domain["id"], isrecursive="true", type="USER.UPDATE"
    )
    assert e3["id"] in ids(deep["event"])
    by_account = cloud.call(
        "listEvents", domainid=world.sub["id"], account=world.sub_user.name, type="USER.UPDATE"
    )
    assert {e["account"] for e in by_account["event"]} == {world.sub_user.name}


def test_async_job_events_chain_by_parentid(cloud: Cloud, world: World) -> None:
    victim = make_tenant(cloud, world.domain["id"])
    job = world.da.call("deleteAccount", id=victim.account_id)
    assert cloud.wait_job(job["jobid"], world.da.keys)["jobstatus"] == 1
    chain = listed(world.da, type="ACCOUNT.DELETE", resourceid=victim.account_id,
                   resourcetype="Account")  # fmt: skip
    states = {e["state"]: e for e in chain}
    assert set(states) == {"Scheduled", "Completed"}
    scheduled, completed = states["Scheduled"], states["Completed"]
    assert completed["parentid"] == scheduled["id"]
    assert completed["resourcename"] == scheduled["resourcename"] == victim.name
    assert "parentid" not in scheduled
    assert scheduled["account"] == world.da.name
    by_start = listed(world.da, startid=scheduled["id"])
    assert ids(by_start) == {scheduled["id"], completed["id"]}


def test_filters_narrow_and_bad_filters_are_431(world: World) -> None:
    e = touch(world.user)
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    assert e["id"] in ids(listed(world.user, startdate=past, enddate=future))
    assert listed(world.user, startdate=future) == []
    assert listed(world.user, enddate=past) == []
    assert listed(world.user, level="ERROR") == []
    assert e["id"] in ids(listed(world.user, level="INFO", keyword="user.upd"))
    assert listed(world.user, keyword=uniq("nothing-like-this")) == []
    assert e["id"] in ids(listed(world.user, state="Completed"))
    for bad in (
        {"resourceid": world.user.user_id},
        {"state": "Sleeping"},
        {"level": "LOUD"},
        {"entrytime": 5, "duration": 10},
        {"startdate": "yesterday"},
    ):
        status, _ = error(world.user.raw("listEvents", **bad), "listEvents")
        assert status == 431, bad


def test_pending_jobs_by_entrytime_and_duration(world: World) -> None:
    """Nothing of the user's is pending: the pair answers an empty list, not an error."""
    assert listed(world.user, entrytime=3600, duration=0) == []


def test_cs_client_lists_events_and_types(world: World) -> None:
    touch(world.other)
    with_cs = world.other.cs.listEvents(type="USER.UPDATE", fetch_list=True)
    assert with_cs and all(e["account"] == world.other.name for e in with_cs)
    types = world.other.cs.listEventTypes()
    names = [t["name"] for t in types["eventtype"]]
    assert types["count"] == len(names) == len(set(names))
    for expected in ("VM.CREATE", "USER.UPDATE", "CONFIGURATION.VALUE.EDIT", "ACCOUNT.DELETE"):
        assert expected in names
    assert all(set(t) == {"name"} for t in types["eventtype"])


def test_archive_hides_and_archived_true_shows(world: World) -> None:
    e = touch(world.user)
    assert world.user.call("archiveEvents", ids=e["id"]) == {"success": True}
    assert e["id"] not in ids(listed(world.user))
    archived = listed(world.user, archived="true")
    assert e["id"] in ids(archived)
    assert all(x["archived"] is True for x in archived)
    assert world.user.call("listEvents", id=e["id"])["event"][0]["archived"] is True


def test_archiving_someone_elses_event_fails_and_changes_nothing(world: World) -> None:
    mine, theirs = touch(world.user), touch(world.other)
    for target in (theirs["id"], f"{mine['id']},{theirs['id']}"):
        status, body = error(world.user.raw("archiveEvents", ids=target), "archiveEvents")
        assert status == 530
        assert "one or more parameters has invalid values" in body["errortext"]
    assert mine["id"] in ids(listed(world.user))  # all or nothing: mine was not archived either
    assert theirs["id"] in ids(listed(world.other))


def test_archive_and_delete_need_a_criterion(world: World) -> None:
    before = ids(listed(world.user))
    for cmd in ("archiveEvents", "deleteEvents"):
        status, body = error(world.user.raw(cmd), cmd)
        assert status == 431
        assert body["errortext"] == "either ids, type or enddate must be specified"
        status, body = error(world.user.raw(cmd, startdate="2020-01-01", type="X"), cmd)
        assert status == 431
        assert body["errortext"] == "enddate must be specified with startdate parameter"
    assert ids(listed(world.user)) == before


def test_delete_by_type_removes_only_the_callers_events(world: World) -> None:
    mine, theirs = touch(world.user), touch(world.other)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert world.user.call("deleteEvents", type="USER.UPDATE", enddate=tomorrow)["success"]
    assert world.user.call("listEvents", id=mine["id"]) == {}
    assert listed(world.user, type="USER.UPDATE") == []
    assert theirs["id"] in ids(listed(world.other, type="USER.UPDATE"))


def test_delete_by_id_and_archived_events_stay(world: World) -> None:
    keep, drop = touch(world.other), touch(world.other)
    world.other.call("archiveEvents", ids=keep["id"])
    assert world.other.call("deleteEvents", ids=drop["id"])["success"]
    assert world.other.call("listEvents", id=drop["id"]) == {}
    # CloudStack deletes only events that are not archived: naming one fails, nothing goes.
    status, _ = error(world.other.raw("deleteEvents", ids=keep["id"]), "deleteEvents")
    assert status == 530
    assert world.other.call("listEvents", id=keep["id"])["event"][0]["archived"] is True


def test_domain_admin_archives_events_of_its_accounts(world: World) -> None:
    e = touch(world.sub_user)
    world.da.call("archiveEvents", ids=e["id"])
    assert e["id"] in ids(listed(world.sub_user, archived="true"))


def test_cs_raises_on_error(world: World) -> None:
    with pytest.raises(CloudStackApiException) as exc:
        world.user.cs.archiveEvents()
    assert exc.value.error["errorcode"] == 431
