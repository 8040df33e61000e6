"""Templates and ISOs end to end: registration by URL into a Directory image store.

Files are served by a loopback ``http.server`` started here; the image store is a temporary
directory, so the test can look at the bytes that landed (or did not).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.integration.tenants import Tenant, client, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud
from tests.support.simzone import http_files

IMAGE = b"QFI\xfb" + bytes(range(256)) * 4096  # ~1 MiB, a qcow2-ish magic for looks
SHA256 = hashlib.sha256(IMAGE).hexdigest()
KVM_ARGS = {"format": "QCOW2", "hypervisor": "KVM"}


@dataclass
class Site:
    zone: dict[str, Any]
    store_root: Path
    base_url: str


@pytest.fixture(scope="module")
def site(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    served = tmp_path_factory.mktemp("served")
    root = tmp_path_factory.mktemp("imagestore")
    admin = client(cloud, cloud.admin)
    zone = admin.createZone(
        name=uniq("tzone"), networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2"
    )["zone"]
    admin.addImageStore(
        name=uniq("dir"), provider="Directory", zoneid=zone["id"], url=f"file://{root}"
    )
    with http_files({"disk.qcow2": IMAGE, "boot.iso": IMAGE[:4096]}, served) as base_url:
        yield Site(zone, root, base_url)


@pytest.fixture(scope="module")
def users(cloud: Cloud) -> tuple[Tenant, Tenant]:
    domain = make_domain(cloud)
    return make_tenant(cloud, domain["id"]), make_tenant(cloud, domain["id"])


def register(cloud: Cloud, site: Site, keys: Any = None, **params: Any) -> dict[str, Any]:
    args = {
        "name": uniq("tmpl"),
        "displaytext": "a test template",
        "url": f"{site.base_url}/disk.qcow2",
        "zoneid": site.zone["id"],
        **KVM_ARGS,
        **params,
    }
    body = cloud.call("registerTemplate", keys, **args)["template"]
    assert isinstance(body, list) and len(body) == 1
    template: dict[str, Any] = body[0]
    return template


def settled(cloud: Cloud, template_id: str, keys: Any = None, iso: bool = False) -> dict[str, Any]:
    """Poll until the download ended one way or the other (never stuck in progress)."""
    cmd, flt = ("listIsos", "isofilter") if iso else ("listTemplates", "templatefilter")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = cloud.call(cmd, keys, id=template_id, **{flt: "all"})
        item: dict[str, Any] = found["iso" if iso else "template"][0]
        if item["isready"] or not item["status"].endswith(("in progress", "Downloaded")):
            return item
        time.sleep(0.1)
    raise AssertionError(f"{template_id} still downloading: {item['status']}")


def files_of(site: Site, template_id: str) -> list[Path]:
    return [p for p in site.store_root.rglob("*") if p.is_file() and template_id in p.name]


def names(cloud: Cloud, keys: Any, flt: str) -> set[str]:
    body = cloud.call("listTemplates", keys, templatefilter=flt)
    return {t["name"] for t in body.get("template", [])}


def test_register_downloads_verifies_and_reaches_ready(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site, checksum=f"{{SHA-256}}{SHA256}")
    assert t["isready"] is False and t["status"] == "Download in progress"
    assert t["zoneid"] == site.zone["id"] and t["templatetype"] == "USER"
    assert "url" not in t
    done = settled(cloud, t["id"])
    assert done["isready"] is True and done["status"] == "Download Complete", done
    assert done["size"] == len(IMAGE) and done["checksum"] == f"{{SHA-256}}{SHA256}"
    (path,) = files_of(site, t["id"])
    assert path.read_bytes() == IMAGE
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]


def test_bare_md5_checksum_is_accepted(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site, checksum=hashlib.md5(IMAGE).hexdigest())
    assert settled(cloud, t["id"])["isready"] is True


def test_wrong_checksum_ends_in_error_and_leaves_no_file(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site, checksum="0" * 64)
    done = settled(cloud, t["id"])
    assert done["isready"] is False and "checksum mismatch" in done["status"]
    assert "size" not in done
    assert files_of(site, t["id"]) == []
    assert not [p for p in site.store_root.rglob("*.part")]


def test_missing_url_ends_in_error_with_the_reason(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site, url=f"{site.base_url}/no-such.qcow2")
    done = settled(cloud, t["id"])
    assert done["isready"] is False and "404" in done["status"], done
    refused = register(cloud, site, url="http://127.0.0.1:1/x.qcow2")
    gone = settled(cloud, refused["id"])
    assert gone["isready"] is False and "failed to download" in gone["status"]


def test_bad_input_is_431_and_writes_nothing(cloud: Cloud, site: Site) -> None:
    name = uniq("bad")
    for params in (
        {"url": "file:///etc/passwd"},
        {"checksum": "xyz"},
        {"format": "NOPE"},
        {"hypervisor": "Nope"},
    ):
        args = {
            "name": name,
            "displaytext": "x",
            "url": f"{site.base_url}/disk.qcow2",
            "zoneid": site.zone["id"],
            **KVM_ARGS,
            **params,
        }
        code, _ = error(cloud.signed("registerTemplate", **args), "registerTemplate")
        assert code == 431, params
    assert cloud.call("listTemplates", templatefilter="all", name=name) == {}


def test_nfs_only_zone_fails_the_download_clearly(cloud: Cloud, site: Site) -> None:
    admin = client(cloud, cloud.admin)
    zone = admin.createZone(
        name=uniq("nfszone"), networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.2"
    )["zone"]
    admin.addImageStore(
        name=uniq("nfs"), provider="NFS", zoneid=zone["id"], url="nfs://10.9.9.9/export/x"
    )
    t = register(cloud, site, zoneid=zone["id"])
    done = settled(cloud, t["id"])
    assert done["isready"] is False and "only Directory stores" in done["status"]


def test_visibility_and_template_filters(
    cloud: Cloud, site: Site, users: tuple[Tenant, Tenant]
) -> None:
    alice, bob = users
    private = register(cloud, site, alice.keys)
    public = register(cloud, site, alice.keys, ispublic=True)
    featured = register(cloud, site, ispublic=True, isfeatured=True)
    # A user's isfeatured is ignored, as in CloudStack.
    not_featured = register(cloud, site, bob.keys, ispublic=True, isfeatured=True)
    assert not_featured["isfeatured"] is False
    for t in (private, public, featured, not_featured):
        assert settled(cloud, t["id"], cloud.admin)["isready"] is True
    a_self = names(cloud, alice.keys, "self")
    assert {private["name"], public["name"]} <= a_self
    assert featured["name"] not in a_self
    b_exec = names(cloud, bob.keys, "executable")
    assert {public["name"], featured["name"], not_featured["name"]} <= b_exec
    assert private["name"] not in b_exec
    assert private["name"] not in names(cloud, bob.keys, "all")
    assert featured["name"] in names(cloud, bob.keys, "featured")
    community = names(cloud, bob.keys, "community")
    assert public["name"] in community and featured["name"] not in community
    assert private["name"] not in names(cloud, bob.keys, "sharedexecutable")
    assert cloud.call("listTemplates", bob.keys, templatefilter="self", id=private["id"]) == {}
    # Sharing the private template with bob by account.
    cloud.call(
        "updateTemplatePermissions", alice.keys, id=private["id"], accounts=bob.name, op="add"
    )
    perms = cloud.call("listTemplatePermissions", alice.keys, id=private["id"])
    assert perms["templatepermission"]["account"] == [bob.name]
    assert private["name"] in names(cloud, bob.keys, "sharedexecutable")
    assert private["name"] in names(cloud, bob.keys, "executable")
    # Bob may not change or delete what he only may use.
    code, _ = error(
        cloud.signed("updateTemplate", bob.keys, id=private["id"], name="x"), "updateTemplate"
    )
    assert code == 531
    code, _ = error(
        cloud.signed("updateTemplatePermissions", alice.keys, id=private["id"], isfeatured=True),
        "updateTemplatePermissions",
    )
    assert code == 531
    cloud.call(
        "updateTemplatePermissions", alice.keys, id=private["id"], accounts=bob.name, op="remove"
    )
    assert private["name"] not in names(cloud, bob.keys, "executable")
    # An unknown filter is a parameter error.
    code, _ = error(cloud.signed("listTemplates", templatefilter="nope"), "listTemplates")
    assert code == 431


def test_update_template(cloud: Cloud, site: Site, users: tuple[Tenant, Tenant]) -> None:
    alice, _ = users
    t = register(cloud, site, alice.keys)
    os_type = cloud.call("listOsTypes", description="Ubuntu 22.04 LTS")["ostype"][0]
    body = cloud.call(
        "updateTemplate",
        alice.keys,
        id=t["id"],
        displaytext="renamed",
        ostypeid=os_type["id"],
        passwordenabled=True,
    )["template"]
    assert body["displaytext"] == "renamed" and body["passwordenabled"] is True
    assert body["ostypename"] == "Ubuntu 22.04 LTS"


def test_delete_removes_the_file_and_the_listing(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site)
    assert settled(cloud, t["id"])["isready"] is True
    assert len(files_of(site, t["id"])) == 1
    job = cloud.wait_job(cloud.call("deleteTemplate", id=t["id"])["jobid"])
    assert job["jobresult"]["success"] is True
    assert files_of(site, t["id"]) == []
    assert cloud.call("listTemplates", templatefilter="all", id=t["id"]) == {}
    # Deleting again is a 431 (it is gone), not a crash.
    code, _ = error(cloud.signed("deleteTemplate", id=str(uuid4())), "deleteTemplate")
    assert code == 431


def test_template_limit_is_532_and_writes_nothing(cloud: Cloud, site: Site) -> None:
    domain = make_domain(cloud)
    tenant = make_tenant(cloud, domain["id"])
    cloud.call(
        "updateResourceLimit", resourcetype=4, max=1, account=tenant.name, domainid=domain["id"]
    )
    first = register(cloud, site, tenant.keys)
    args = {
        "name": uniq("over"),
        "displaytext": "x",
        "url": f"{site.base_url}/disk.qcow2",
        "zoneid": site.zone["id"],
        **KVM_ARGS,
    }
    code, _ = error(cloud.signed("registerTemplate", tenant.keys, **args), "registerTemplate")
    assert code == 532
    listed = cloud.call("listTemplates", tenant.keys, templatefilter="self")["template"]
    assert [t["id"] for t in listed] == [first["id"]]
    # Deleting the first gives the count back.
    settled(cloud, first["id"], tenant.keys)
    cloud.wait_job(cloud.call("deleteTemplate", tenant.keys, id=first["id"])["jobid"])
    again = register(cloud, site, tenant.keys)
    assert again["id"] != first["id"]


def test_iso_register_list_and_delete(cloud: Cloud, site: Site) -> None:
    checksum = hashlib.sha1(IMAGE[:4096]).hexdigest()
    body = cloud.call(
        "registerIso",
        name=uniq("iso"),
        displaytext="an iso",
        url=f"{site.base_url}/boot.iso",
        zoneid=site.zone["id"],
        checksum=checksum,
        bootable=True,
    )["iso"]
    iso = body[0]
    assert iso["format"] == "ISO" and "hypervisor" not in iso
    done = settled(cloud, iso["id"], iso=True)
    assert done["isready"] is True and done["bootable"] is True
    assert cloud.call("listTemplates", templatefilter="all", id=iso["id"]) == {}
    ready = cloud.call("listIsos", isofilter="self", isready=True, id=iso["id"])["iso"]
    assert [i["id"] for i in ready] == [iso["id"]]
    assert files_of(site, iso["id"])[0].read_bytes() == IMAGE[:4096]
    cloud.wait_job(cloud.call("deleteIso", id=iso["id"])["jobid"])
    assert files_of(site, iso["id"]) == []
    assert cloud.call("listIsos", isofilter="all", id=iso["id"]) == {}


def test_libcloud_list_images_shows_the_ready_template(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site, ispublic=True)
    assert settled(cloud, t["id"])["isready"] is True
    drv = get_driver(Provider.CLOUDSTACK)(
        cloud.admin.api_key,
        cloud.admin.secret,
        host="127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )
    images = {i.id: i for i in drv.list_images()}
    assert t["id"] in images and images[t["id"]].name == t["name"]


def test_secondary_storage_limit_fails_the_download_and_keeps_no_file(
    cloud: Cloud, site: Site
) -> None:
    domain = make_domain(cloud)
    tenant = make_tenant(cloud, domain["id"])
    cloud.call(
        "updateResourceLimit", resourcetype=11, max=0, account=tenant.name, domainid=domain["id"]
    )
    t = register(cloud, site, tenant.keys)
    done = settled(cloud, t["id"], tenant.keys)
    assert done["isready"] is False and "secondary storage limit" in done["status"], done
    assert files_of(site, t["id"]) == []
    # Raising the limit lets the same account's next download through.
    cloud.call(
        "updateResourceLimit", resourcetype=11, max=1, account=tenant.name, domainid=domain["id"]
    )
    again = register(cloud, site, tenant.keys)
    assert settled(cloud, again["id"], tenant.keys)["isready"] is True


def test_download_events_are_recorded(cloud: Cloud, site: Site) -> None:
    t = register(cloud, site)
    assert settled(cloud, t["id"])["isready"] is True
    bad = register(cloud, site, url=f"{site.base_url}/missing.qcow2")
    settled(cloud, bad["id"])
    events = cloud.call("listEvents", pagesize=500)["event"]
    kinds = {e["type"] for e in events}
    assert {"TEMPLATE.CREATE", "TEMPLATE.DOWNLOAD.START", "TEMPLATE.DOWNLOAD.SUCCESS"} <= kinds
    assert "TEMPLATE.DOWNLOAD.FAILED" in kinds
