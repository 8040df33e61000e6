"""Affinity groups through the real server: libcloud's affinity methods, raw calls for the
async-create reply, tenant scoping and refusals."""

from __future__ import annotations

from typing import Any

from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.integration.tenants import Tenant, error, make_tenant, uniq
from tests.support.cloud import Cloud


def _driver(tenant: Tenant) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        tenant.keys.api_key,
        tenant.keys.secret,
        host="127.0.0.1",
        port=tenant.cloud.port,
        path="/client/api",
        secure=False,
    )


def _groups(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    return list(tenant.call("listAffinityGroups", **params).get("affinitygroup", []))


def test_create_is_async_create_and_job_reports_group(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    name = uniq("ag")
    body = tenant.call(
        "createAffinityGroup", name=name, type="host anti-affinity", description="spread"
    )
    assert set(body) == {"id", "jobid"}
    job = cloud.wait_job(body["jobid"], tenant.keys)
    assert job["jobstatus"] == 1, job
    group = job["jobresult"]["affinitygroup"]
    assert group["id"] == body["id"]
    assert group["name"] == name and group["type"] == "host anti-affinity"
    assert group["description"] == "spread"
    assert group["account"] == tenant.name and group["domainid"] == tenant.domain_id
    assert group["virtualmachineIds"] == []
    assert [g["id"] for g in _groups(tenant, id=body["id"])] == [body["id"]]
    events = tenant.call("listEvents", type="AG.CREATE", pagesize=-1).get("event", [])
    assert "Completed" in {e["state"] for e in events if e.get("resourceid") == body["id"]}


def test_libcloud_create_list_delete_and_types(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    driver = _driver(tenant)
    types = {t.type for t in driver.ex_list_affinity_group_types()}
    assert types == {"host affinity", "host anti-affinity"}
    name = uniq("ag")
    group = driver.ex_create_affinity_group(name, types_by_name(types, "host affinity"))
    assert group.name == name and group.type.type == "host affinity"
    listed = driver.ex_list_affinity_groups()
    assert [(g.id, g.name) for g in listed] == [(group.id, name)]
    assert driver.ex_delete_affinity_group(group)
    assert driver.ex_list_affinity_groups() == []
    # the name is free again once the group is gone
    again = driver.ex_create_affinity_group(name, types_by_name(types, "host affinity"))
    assert again.id != group.id


def types_by_name(types: set[str], name: str) -> Any:
    """libcloud's create takes an AffinityGroupType object."""
    from libcloud.compute.drivers.cloudstack import CloudStackAffinityGroupType

    assert name in types
    return CloudStackAffinityGroupType(name)


def test_listing_is_per_tenant(cloud: Cloud) -> None:
    owner, stranger = make_tenant(cloud), make_tenant(cloud)
    body = owner.call("createAffinityGroup", name=uniq("ag"), type="host affinity")
    cloud.wait_job(body["jobid"], owner.keys)
    assert _groups(stranger) == []
    assert _groups(stranger, id=body["id"]) == []
    assert _groups(stranger, listall=True) == []
    # the root admin sees it with listall, or by naming the account
    admin_view = cloud.call("listAffinityGroups", listall=True, id=body["id"])["affinitygroup"]
    assert [g["account"] for g in admin_view] == [owner.name]
    by_account = cloud.call("listAffinityGroups", account=owner.name, domainid=owner.domain_id)[
        "affinitygroup"
    ]
    assert [g["id"] for g in by_account] == [body["id"]]
    # and a stranger cannot delete it
    resp = stranger.raw("deleteAffinityGroup", id=body["id"])
    assert error(resp, "deleteAffinityGroup")[0] == 531
    assert len(_groups(owner)) == 1


def test_duplicate_name_and_bad_type_refused(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    name = uniq("ag")
    tenant.call("createAffinityGroup", name=name, type="host affinity")
    resp = tenant.raw("createAffinityGroup", name=name, type="host anti-affinity")
    assert error(resp, "createAffinityGroup")[0] == 431
    resp = tenant.raw("createAffinityGroup", name=uniq("ag"), type="rack affinity")
    assert error(resp, "createAffinityGroup")[0] == 431
    resp = tenant.raw(
        "createAffinityGroup",
        name=uniq("ag"),
        type="host affinity",
        projectid="8d1c6f3e-1b7a-4c8e-9b7e-2f1d0c9a8b7e",
    )
    assert error(resp, "createAffinityGroup")[0] == 431
    groups = _groups(tenant)
    assert [(g["name"], g["type"]) for g in groups] == [(name, "host affinity")]
    # another account may use the same name
    other = make_tenant(cloud)
    other.call("createAffinityGroup", name=name, type="host affinity")
    assert [g["name"] for g in _groups(other)] == [name]


def test_delete_by_name_and_filters(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    keep, drop = uniq("keep"), uniq("drop")
    for name, kind in ((keep, "host affinity"), (drop, "host anti-affinity")):
        tenant.call("createAffinityGroup", name=name, type=kind)
    assert [g["name"] for g in _groups(tenant, type="host anti-affinity")] == [drop]
    assert [g["name"] for g in _groups(tenant, keyword="keep")] == [keep]
    assert _groups(tenant, virtualmachineid="8d1c6f3e-1b7a-4c8e-9b7e-2f1d0c9a8b7e") == []
    body = tenant.call("deleteAffinityGroup", name=drop)
    assert cloud.wait_job(body["jobid"], tenant.keys)["jobstatus"] == 1
    assert [g["name"] for g in _groups(tenant)] == [keep]
    resp = tenant.raw("deleteAffinityGroup", name=drop)
    assert error(resp, "deleteAffinityGroup")[0] == 431
    resp = tenant.raw("deleteAffinityGroup")
    assert error(resp, "deleteAffinityGroup")[0] == 431
    assert [g["name"] for g in _groups(tenant)] == [keep]
