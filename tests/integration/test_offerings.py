"""Service and disk offerings, OS categories and types, through the real server.

Offerings are global, so every test names its own and deletes the custom ones it made:
libcloud's ``list_sizes`` reads ``cpunumber`` of every offering it sees, as it does against
CloudStack, and a custom offering has none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.integration.tenants import (
    DOMAIN_ADMIN,
    Tenant,
    error,
    make_domain,
    make_tenant,
    uniq,
)
from tests.support.cloud import Cloud, Keys

SMALL = "3a850554-6e02-57de-9854-cd3ef7252137"
OTHER_LINUX_64 = "62b63051-59a7-53c6-a762-85d6f246ea00"


def _driver(cloud: Cloud, keys: Keys) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        keys.api_key,
        keys.secret,
        host="127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )


def _offering_names(cloud: Cloud, keys: Keys | None, command: str, **params: Any) -> set[str]:
    body = cloud.call(command, keys, **params)
    key = "serviceoffering" if command == "listServiceOfferings" else "diskoffering"
    return {o["name"] for o in body.get(key, [])}


@contextmanager
def service_offering(cloud: Cloud, **params: Any) -> Iterator[dict[str, Any]]:
    offering = cloud.call("createServiceOffering", name=uniq("so"), **params)["serviceoffering"]
    try:
        yield offering
    finally:
        cloud.call("deleteServiceOffering", id=offering["id"])


def test_defaults_are_seeded_with_fixed_ids(cloud: Cloud) -> None:
    small = cloud.call("listServiceOfferings", id=SMALL)["serviceoffering"][0]
    assert (small["name"], small["cpunumber"], small["cpuspeed"], small["memory"]) == (
        "Small Instance",
        1,
        500,
        512,
    )
    assert small["iscustomized"] is False and small["issystem"] is False
    disks = {d["name"]: d for d in cloud.call("listDiskOfferings")["diskoffering"]}
    assert disks["Medium"]["disksize"] == 20 and disks["Medium"]["iscustomized"] is False
    assert disks["Custom"]["iscustomized"] is True
    os_type = cloud.call("listOsTypes", id=OTHER_LINUX_64)["ostype"][0]
    assert os_type["description"] == "Other Linux (64-bit)"
    assert os_type["oscategoryname"] == "Other" and os_type["isuserdefined"] is False
    names = {c["name"] for c in cloud.call("listOsCategories")["oscategory"]}
    assert {"CentOS", "Debian", "Ubuntu", "Windows", "Other"} <= names


def test_os_types_filter_by_category_and_keyword(cloud: Cloud) -> None:
    ubuntu = cloud.call("listOsCategories", name="Ubuntu")["oscategory"][0]
    types = cloud.call("listOsTypes", oscategoryid=ubuntu["id"])["ostype"]
    assert {t["description"] for t in types} >= {"Ubuntu 22.04 LTS", "Ubuntu 24.04 LTS"}
    assert {t["oscategoryid"] for t in types} == {ubuntu["id"]}
    found = cloud.call("listOsTypes", keyword="Windows Server 2022")["ostype"]
    assert [t["description"] for t in found] == ["Windows Server 2022 (64-bit)"]


def test_fixed_offering_shape_and_event(cloud: Cloud) -> None:
    name = uniq("fixed")
    so = cloud.call(
        "createServiceOffering",
        name=name,
        cpunumber=2,
        cpuspeed=1500,
        memory=2048,
        offerha="true",
        hosttags="fast, ssd",
        storagetype="local",
    )["serviceoffering"]
    assert (so["cpunumber"], so["cpuspeed"], so["memory"]) == (2, 1500, 2048)
    assert so["iscustomized"] is False and so["offerha"] is True
    assert so["hosttags"] == "fast,ssd" and so["storagetype"] == "local"
    assert so["displaytext"] == name and so["state"] == "Active"
    events = cloud.call("listEvents", type="SERVICE.OFFERING.CREATE", listall="true")
    assert any(e.get("resourceid") == so["id"] for e in events.get("event", []))
    cloud.call("deleteServiceOffering", id=so["id"])
    assert "serviceoffering" not in cloud.call("listServiceOfferings", id=so["id"])


def test_custom_offering_shape(cloud: Cloud) -> None:
    with service_offering(
        cloud, customized="true", mincpunumber=1, maxcpunumber=4, minmemory=512, maxmemory=4096
    ) as so:
        assert so["iscustomized"] is True
        assert "cpunumber" not in so and "memory" not in so
        assert so["serviceofferingdetails"] == {
            "mincpunumber": "1",
            "maxcpunumber": "4",
            "minmemory": "512",
            "maxmemory": "4096",
        }
        listed = cloud.call("listServiceOfferings", iscustomized="true", name=so["name"])
        assert [o["id"] for o in listed["serviceoffering"]] == [so["id"]]
        assert "serviceoffering" not in cloud.call(
            "listServiceOfferings", iscustomized="false", name=so["name"]
        )


@pytest.mark.parametrize(
    "params",
    [
        {"cpunumber": 1, "memory": 512},  # fixed but no cpuspeed
        {"cpunumber": 1, "cpuspeed": 500, "memory": 16},  # too little memory
        {"customized": "true", "cpunumber": 2},  # custom offerings take no cpunumber
        {"mincpunumber": 4, "maxcpunumber": 2},  # bounds upside down
        {"cpunumber": 1, "cpuspeed": 500, "memory": 512, "storagetype": "nfs"},
        {"cpunumber": 1, "cpuspeed": 500, "memory": 512, "issystem": "true"},
    ],
)
def test_bad_service_offering_is_refused_and_nothing_is_written(
    cloud: Cloud, params: dict[str, Any]
) -> None:
    name = uniq("bad")
    resp = cloud.signed("createServiceOffering", name=name, **params)
    assert error(resp, "createServiceOffering")[0] == 431
    assert name not in _offering_names(cloud, None, "listServiceOfferings", keyword=name)


def test_offering_visibility_follows_domains(cloud: Cloud) -> None:
    parent = make_domain(cloud)
    child = make_domain(cloud, parent["id"])
    other = make_domain(cloud)
    child_user = make_tenant(cloud, child["id"])
    other_user = make_tenant(cloud, other["id"])
    parent_admin = make_tenant(cloud, parent["id"], DOMAIN_ADMIN)
    with (
        service_offering(
            cloud, cpunumber=1, cpuspeed=100, memory=128, domainid=parent["id"]
        ) as for_parent,
        service_offering(
            cloud, cpunumber=1, cpuspeed=100, memory=128, domainid=child["id"]
        ) as for_child,
    ):
        assert for_parent["domainid"] == parent["id"]
        assert for_parent["domain"] == parent["name"]
        mine = _offering_names(cloud, child_user.keys, "listServiceOfferings")
        assert {for_parent["name"], for_child["name"], "Small Instance"} <= mine
        theirs = _offering_names(cloud, other_user.keys, "listServiceOfferings")
        assert for_parent["name"] not in theirs and for_child["name"] not in theirs
        assert "Small Instance" in theirs
        # A domain admin of the parent also sees what is limited to domains below it.
        admin_sees = _offering_names(cloud, parent_admin.keys, "listServiceOfferings")
        assert {for_parent["name"], for_child["name"]} <= admin_sees
        by_domain = _offering_names(cloud, None, "listServiceOfferings", domainid=child["id"])
        assert by_domain == {for_child["name"]}
        # An offering the caller cannot see is not found by id either.
        assert "serviceoffering" not in other_user.call("listServiceOfferings", id=for_child["id"])


def test_update_moves_an_offering_between_domains(cloud: Cloud) -> None:
    domain = make_domain(cloud)
    user = make_tenant(cloud, domain["id"])
    outsider = make_tenant(cloud, make_domain(cloud)["id"])
    with service_offering(cloud, cpunumber=1, cpuspeed=100, memory=128) as so:
        assert so["name"] in _offering_names(cloud, outsider.keys, "listServiceOfferings")
        new_name = uniq("renamed")
        updated = cloud.call(
            "updateServiceOffering", id=so["id"], name=new_name, domainid=domain["id"]
        )["serviceoffering"]
        assert updated["name"] == new_name and updated["domainid"] == domain["id"]
        assert new_name in _offering_names(cloud, user.keys, "listServiceOfferings")
        assert new_name not in _offering_names(cloud, outsider.keys, "listServiceOfferings")
        cloud.call("updateServiceOffering", id=so["id"], domainid="public")
        assert new_name in _offering_names(cloud, outsider.keys, "listServiceOfferings")


def test_users_and_domain_admins_cannot_manage_offerings(cloud: Cloud) -> None:
    user = make_tenant(cloud)
    domain_admin = make_tenant(cloud, make_domain(cloud)["id"], DOMAIN_ADMIN)
    for caller in (user, domain_admin):
        name = uniq("nope")
        resp = caller.raw("createServiceOffering", name=name, cpunumber=1, cpuspeed=1, memory=64)
        assert error(resp, "createServiceOffering")[0] == 432
        resp = caller.raw("createDiskOffering", name=name, disksize=1)
        assert error(resp, "createDiskOffering")[0] == 432
        resp = caller.raw("deleteServiceOffering", id=SMALL)
        assert error(resp, "deleteServiceOffering")[0] == 432
        assert name not in _offering_names(cloud, None, "listServiceOfferings", keyword=name)
        assert name not in _offering_names(cloud, None, "listDiskOfferings", keyword=name)
    assert "serviceoffering" in cloud.call("listServiceOfferings", id=SMALL)


def test_disk_offerings_fixed_custom_and_details(cloud: Cloud) -> None:
    domain = make_domain(cloud)
    user = make_tenant(cloud, domain["id"])
    outsider = make_tenant(cloud)
    fixed = cloud.call(
        "createDiskOffering",
        name=uniq("disk"),
        disksize=50,
        tags="ssd",
        provisioningtype="sparse",
        bytesreadrate=1048576,
        domainid=domain["id"],
    )["diskoffering"]
    assert (fixed["disksize"], fixed["iscustomized"], fixed["tags"]) == (50, False, "ssd")
    assert fixed["provisioningtype"] == "sparse" and fixed["diskBytesReadRate"] == "1048576"
    custom = cloud.call(
        "createDiskOffering", name=uniq("cdisk"), customized="true", domainid=domain["id"]
    )["diskoffering"]
    assert custom["iscustomized"] is True and custom["disksize"] == 0
    names = _offering_names(cloud, user.keys, "listDiskOfferings")
    assert {fixed["name"], custom["name"], "Small"} <= names
    assert fixed["name"] not in _offering_names(cloud, outsider.keys, "listDiskOfferings")
    cloud.call("updateDiskOffering", id=fixed["id"], displaytext="fifty")
    assert cloud.call("listDiskOfferings", id=fixed["id"])["diskoffering"][0]["displaytext"] == (
        "fifty"
    )
    cloud.call("deleteDiskOffering", id=fixed["id"])
    assert "diskoffering" not in cloud.call("listDiskOfferings", id=fixed["id"])


@pytest.mark.parametrize(
    "params",
    [{}, {"disksize": 0}, {"customized": "true", "disksize": 5}, {"disksize": 5, "cachemode": "x"}],
)
def test_bad_disk_offering_is_refused(cloud: Cloud, params: dict[str, Any]) -> None:
    name = uniq("baddisk")
    resp = cloud.signed("createDiskOffering", name=name, **params)
    assert error(resp, "createDiskOffering")[0] == 431
    assert name not in _offering_names(cloud, None, "listDiskOfferings", keyword=name)


def _zone(cloud: Cloud) -> dict[str, Any]:
    params = {"name": uniq("z"), "networktype": "Advanced", "dns1": "10.0.0.2"}
    zone: dict[str, Any] = cloud.call("createZone", internaldns1="10.0.0.2", **params)["zone"]
    return zone


def test_zone_limited_offerings(cloud: Cloud) -> None:
    here, elsewhere = _zone(cloud), _zone(cloud)
    with service_offering(cloud, cpunumber=1, cpuspeed=100, memory=128, zoneid=here["id"]) as so:
        assert (so["zoneid"], so["zone"]) == (here["id"], here["name"])
        there = _offering_names(cloud, None, "listServiceOfferings", zoneid=here["id"])
        assert {so["name"], "Small Instance"} <= there
        other = _offering_names(cloud, None, "listServiceOfferings", zoneid=elsewhere["id"])
        assert so["name"] not in other and "Small Instance" in other
        cloud.call("updateServiceOffering", id=so["id"], zoneid="all")
        other = _offering_names(cloud, None, "listServiceOfferings", zoneid=elsewhere["id"])
        assert so["name"] in other
    # An unknown zone fails after the offering row was written: the whole call rolls back.
    name = uniq("d")
    missing = "5b3a2f43-0000-4000-8000-0000000000aa"
    resp = cloud.signed("createDiskOffering", name=name, disksize=1, zoneid=missing)
    assert error(resp, "createDiskOffering")[0] == 431
    assert name not in _offering_names(cloud, None, "listDiskOfferings", keyword=name)


def test_cs_client_lists_the_catalog(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    offerings = tenant.cs.listServiceOfferings(fetch_list=True)
    assert SMALL in {o["id"] for o in offerings}
    os_types = tenant.cs.listOsTypes(fetch_list=True, keyword="Debian")
    assert {"Debian GNU/Linux 12 (64-bit)"} <= {t["description"] for t in os_types}
    disks = tenant.cs.listDiskOfferings(fetch_list=True, name="Large")
    assert [(d["disksize"], d["iscustomized"]) for d in disks] == [(100, False)]


def test_libcloud_list_sizes(cloud: Cloud) -> None:
    tenant: Tenant = make_tenant(cloud)
    sizes = {s.id: s for s in _driver(cloud, tenant.keys).list_sizes()}
    assert sizes[SMALL].name == "Small Instance"
    assert sizes[SMALL].ram == 512 and sizes[SMALL].extra["cpu"] == 1


def test_user_defined_guest_os(cloud: Cloud) -> None:
    other = cloud.call("listOsCategories", name="Other")["oscategory"][0]
    name = uniq("MyOS")
    submitted = cloud.call("addGuestOs", oscategoryid=other["id"], osdisplayname=name)
    job = cloud.wait_job(submitted["jobid"])
    assert job["jobstatus"] == 1, job
    os_type = job["jobresult"]["ostype"]
    assert os_type["id"] == submitted["id"] and os_type["isuserdefined"] is True
    resp = cloud.signed("removeGuestOs", id=OTHER_LINUX_64)
    assert error(resp, "removeGuestOs")[0] == 431
    assert "ostype" in cloud.call("listOsTypes", id=OTHER_LINUX_64)
    done = cloud.wait_job(cloud.call("removeGuestOs", id=os_type["id"])["jobid"])
    assert done["jobstatus"] == 1, done
    assert "ostype" not in cloud.call("listOsTypes", id=os_type["id"])
