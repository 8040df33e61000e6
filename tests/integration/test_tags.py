"""Resource tags through the real server: createTags/listTags/deleteTags with raw calls,
the cs client and libcloud's tag methods, on the cloud's own resources (offerings)."""

from __future__ import annotations

from typing import Any

from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.integration.tenants import error, make_tenant, uniq
from tests.support.cloud import Cloud


def _offering(cloud: Cloud) -> str:
    body = cloud.call(
        "createServiceOffering",
        name=uniq("so"),
        displaytext="tagged",
        cpunumber=1,
        cpuspeed=500,
        memory=256,
    )
    return str(body["serviceoffering"]["id"])


def _tags(cloud: Cloud, keys: Any = None, **params: Any) -> list[dict[str, Any]]:
    return list(cloud.call("listTags", keys, **params).get("tag", []))


def _done(cloud: Cloud, body: dict[str, Any], keys: Any = None) -> dict[str, Any]:
    job = cloud.wait_job(body["jobid"], keys)
    assert job["jobstatus"] == 1, job
    return job


def _tag_params(resource_ids: list[str], pairs: dict[str, str]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "resourceids": ",".join(resource_ids),
        "resourcetype": "ServiceOffering",
    }
    for i, (k, v) in enumerate(pairs.items()):
        params[f"tags[{i}].key"] = k
        params[f"tags[{i}].value"] = v
    return params


def _driver(cloud: Cloud) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    return cls(
        cloud.admin.api_key,
        cloud.admin.secret,
        host="127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )


def test_create_list_filter_delete_on_service_offering(cloud: Cloud) -> None:
    so = _offering(cloud)
    body = cloud.call("createTags", **_tag_params([so], {"env": "prod", "team": "blue"}))
    assert set(body) == {"jobid"}
    _done(cloud, body)
    events = cloud.call("listEvents", type="CREATE_TAGS", pagesize=-1).get("event", [])
    assert "Completed" in {e["state"] for e in events if e.get("resourceid") == so}
    tags = _tags(cloud, resourceid=so)
    assert {(t["key"], t["value"]) for t in tags} == {("env", "prod"), ("team", "blue")}
    tag = next(t for t in tags if t["key"] == "env")
    assert tag["resourcetype"] == "ServiceOffering"
    assert tag["resourceid"] == so
    assert tag["account"] == "admin" and tag["domain"] == "ROOT"
    # filters: key, value, resource type (any letter case), keyword
    assert [t["value"] for t in _tags(cloud, resourceid=so, key="team")] == ["blue"]
    assert _tags(cloud, resourceid=so, key="env", value="staging") == []
    assert len(_tags(cloud, resourceid=so, resourcetype="serviceoffering")) == 2
    assert [t["key"] for t in _tags(cloud, resourceid=so, keyword="blu")] == ["team"]
    # key+value that does not match deletes nothing (and says so)
    resp = cloud.signed(
        "deleteTags",
        resourceids=so,
        resourcetype="ServiceOffering",
        **{"tags[0].key": "env", "tags[0].value": "staging"},
    )
    assert error(resp, "deleteTags")[0] == 431
    assert len(_tags(cloud, resourceid=so)) == 2
    # key only deletes that key
    _done(
        cloud,
        cloud.call(
            "deleteTags", resourceids=so, resourcetype="ServiceOffering", **{"tags[0].key": "env"}
        ),
    )
    assert [t["key"] for t in _tags(cloud, resourceid=so)] == ["team"]
    # no tags: every tag of the resource goes
    _done(cloud, cloud.call("deleteTags", resourceids=so, resourcetype="ServiceOffering"))
    assert _tags(cloud, resourceid=so) == []


def test_libcloud_creates_and_deletes_tags(cloud: Cloud) -> None:
    so = _offering(cloud)
    driver = _driver(cloud)
    assert driver.ex_create_tags([so], "ServiceOffering", {"owner": "libcloud", "tier": "1"})
    assert {t["key"]: t["value"] for t in _tags(cloud, resourceid=so)} == {
        "owner": "libcloud",
        "tier": "1",
    }
    assert driver.ex_delete_tags([so], "ServiceOffering", ["owner"])
    assert [t["key"] for t in _tags(cloud, resourceid=so)] == ["tier"]


def test_user_cannot_tag_the_clouds_resources(cloud: Cloud) -> None:
    so = _offering(cloud)
    tenant = make_tenant(cloud)
    resp = tenant.raw("createTags", **_tag_params([so], {"mine": "yes"}))
    assert error(resp, "createTags")[0] == 531
    assert _tags(cloud, resourceid=so, listall=True) == []
    assert tenant.call("listTags").get("count", 0) == 0


def test_duplicate_key_refused_without_partial_write(cloud: Cloud) -> None:
    first, second = _offering(cloud), _offering(cloud)
    _done(cloud, cloud.call("createTags", **_tag_params([second], {"env": "old"})))
    # one of the two resources already has "env": nothing at all is written
    resp = cloud.signed("createTags", **_tag_params([first, second], {"env": "new", "x": "1"}))
    code, body = error(resp, "createTags")
    assert code == 431 and "env" in body["errortext"]
    assert _tags(cloud, resourceid=first) == []
    assert [(t["key"], t["value"]) for t in _tags(cloud, resourceid=second)] == [("env", "old")]


def test_unknown_resource_or_type_refused(cloud: Cloud) -> None:
    so = _offering(cloud)
    resp = cloud.signed(
        "createTags",
        resourceids=so,
        resourcetype="NoSuchThing",
        **{"tags[0].key": "a", "tags[0].value": "b"},
    )
    assert error(resp, "createTags")[0] == 431
    missing = "8d1c6f3e-1b7a-4c8e-9b7e-2f1d0c9a8b7e"
    resp = cloud.signed("createTags", **_tag_params([so, missing], {"a": "b"}))
    assert error(resp, "createTags")[0] == 431
    assert _tags(cloud, resourceid=so) == []


def test_tag_disk_offering_with_cs(cloud: Cloud) -> None:
    from cs import CloudStack

    cs = CloudStack(
        endpoint=cloud.endpoint,
        key=cloud.admin.api_key,
        secret=cloud.admin.secret,
        poll_interval=0.1,
    )
    disk = cs.createDiskOffering(name=uniq("do"), displaytext="d", disksize=1)["diskoffering"]
    cs.createTags(
        resourceids=disk["id"],
        resourcetype="DiskOffering",
        tags=[{"key": "media", "value": "ssd"}],
        fetch_result=True,
    )
    listed = cs.listTags(resourceid=disk["id"], resourcetype="DiskOffering")["tag"]
    assert [(t["key"], t["value"], t["resourcetype"]) for t in listed] == [
        ("media", "ssd", "DiskOffering")
    ]


def test_zone_tags_admin_only_and_gone_with_delete_by_value(cloud: Cloud) -> None:
    zone = cloud.call(
        "createZone",
        name=uniq("zone"),
        networktype="Advanced",
        dns1="8.8.8.8",
        internaldns1="10.0.0.2",
    )["zone"]
    params = {
        "resourceids": zone["id"],
        "resourcetype": "Zone",
        "tags[0].key": "region",
        "tags[0].value": "north",
    }
    tenant = make_tenant(cloud)
    assert error(tenant.raw("createTags", **params), "createTags")[0] == 531
    assert _tags(cloud, resourceid=zone["id"]) == []
    _done(cloud, cloud.call("createTags", **params))
    assert [(t["key"], t["value"]) for t in _tags(cloud, resourceid=zone["id"])] == [
        ("region", "north")
    ]
    # the tag is the admin's: a user neither sees it nor may delete it
    assert _tags(cloud, tenant.keys, resourceid=zone["id"]) == []
    resp = tenant.raw("deleteTags", resourceids=zone["id"], resourcetype="Zone")
    assert error(resp, "deleteTags")[0] == 531
    _done(cloud, cloud.call("deleteTags", **params))
    assert _tags(cloud, resourceid=zone["id"]) == []


def test_owner_tags_own_template_other_user_gets_531(cloud: Cloud, tmp_path: Any) -> None:
    """A template is its account's: the owner tags it, another user may not; the download
    itself does not matter (the URL here leads nowhere)."""
    zone = cloud.call(
        "createZone",
        name=uniq("zone"),
        networktype="Advanced",
        dns1="8.8.8.8",
        internaldns1="10.0.0.2",
    )["zone"]
    cloud.call(
        "addImageStore",
        name=uniq("dir"),
        provider="Directory",
        zoneid=zone["id"],
        url=f"file://{tmp_path}",
    )
    owner, other = make_tenant(cloud), make_tenant(cloud)
    template = owner.call(
        "registerTemplate",
        name=uniq("tmpl"),
        displaytext="t",
        zoneid=zone["id"],
        url="http://127.0.0.1:9/none.qcow2",
        format="QCOW2",
        hypervisor="KVM",
        ostypeid=cloud.call("listOsTypes")["ostype"][0]["id"],
    )["template"][0]
    params = {
        "resourceids": template["id"],
        "resourcetype": "Template",
        "tags[0].key": "app",
        "tags[0].value": "web",
    }
    assert error(other.raw("createTags", **params), "createTags")[0] == 531
    assert owner.call("listTags").get("tag", []) == []
    _done(cloud, owner.call("createTags", **params), owner.keys)
    listed = owner.call("listTags", resourcetype="Template")["tag"]
    assert [(t["key"], t["resourceid"], t["account"]) for t in listed] == [
        ("app", template["id"], owner.name)
    ]
    assert other.call("listTags").get("count", 0) == 0
    # ISO is a different type: the template is not found under it
    params["resourcetype"] = "ISO"
    assert error(owner.raw("createTags", **params), "createTags")[0] == 431
