"""copyTemplate between zones and extractTemplate as a download link."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.support.cloud import Cloud
from tests.support.simzone import IMAGE, SimZone, build, http_files


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with http_files({"sim.qcow2": IMAGE}, tmp_path_factory.mktemp("xferfiles")) as url:
        yield url


@pytest.fixture(scope="module")
def zones(
    cloud: Cloud, base: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SimZone, SimZone, Path]:
    work = tmp_path_factory.mktemp("xfer")
    return build(cloud, work, base, hosts=1), build(cloud, work, base, hosts=1), work


def test_copy_template_to_another_zone(cloud: Cloud, zones: tuple[SimZone, SimZone, Path]) -> None:
    a, b, work = zones
    done = cloud.wait_job(
        cloud.call(
            "copyTemplate", id=a.template["id"], sourcezoneid=a.zone["id"], destzoneid=b.zone["id"]
        )["jobid"]
    )
    assert done["jobstatus"] == 1, done
    copied = done["jobresult"]["template"]
    assert copied["zoneid"] == b.zone["id"] and copied["isready"] is True
    listed = cloud.call("listTemplates", id=a.template["id"], templatefilter="all")["template"]
    assert {t["zoneid"] for t in listed} == {a.zone["id"], b.zone["id"]}
    files = [p for p in work.rglob(f"{a.template['id']}.qcow2") if p.is_file()]
    assert len(files) == 2 and all(p.read_bytes() == IMAGE for p in files)
    # A VM in zone B can use it now.
    job = b.deploy(templateid=a.template["id"])
    assert job["jobstatus"] == 1, job


def test_bad_copies_are_refused(cloud: Cloud, zones: tuple[SimZone, SimZone, Path]) -> None:
    a, b, _ = zones
    same = cloud.signed(
        "copyTemplate", id=a.template["id"], destzoneid=a.zone["id"], sourcezoneid=a.zone["id"]
    )
    assert error(same, "copyTemplate")[0] == 431
    none = cloud.signed("copyTemplate", id=a.template["id"])
    assert error(none, "copyTemplate")[0] == 431
    tenant = make_tenant(cloud, make_domain(cloud)["id"])
    other = cloud.signed("copyTemplate", tenant.keys, id=a.template["id"], destzoneid=b.zone["id"])
    assert error(other, "copyTemplate")[0] == 531


def test_extract_gives_a_working_download_link(
    cloud: Cloud, zones: tuple[SimZone, SimZone, Path], base: str
) -> None:
    a, _, _ = zones
    done = cloud.wait_job(
        cloud.call("extractTemplate", id=a.template["id"], mode="HTTP_DOWNLOAD")["jobid"]
    )
    assert done["jobstatus"] == 1, done
    extracted = done["jobresult"]["template"]
    assert extracted["state"] == "DOWNLOAD_URL_CREATED" and extracted["zoneid"] == a.zone["id"]
    resp = httpx.get(extracted["url"])
    assert resp.status_code == 200 and resp.content == IMAGE
    tampered = httpx.get(extracted["url"].replace("signature=", "signature=0"))
    assert tampered.status_code == 403


def test_extract_needs_an_extractable_template_and_http_mode(
    cloud: Cloud, zones: tuple[SimZone, SimZone, Path], base: str
) -> None:
    a, _, _ = zones
    tenant: Tenant = make_tenant(cloud, make_domain(cloud)["id"])
    mine = cloud.call(
        "registerTemplate",
        tenant.keys,
        name="mine",
        displaytext="mine",
        url=f"{base}/sim.qcow2",
        zoneid=a.zone["id"],
        format="QCOW2",
        hypervisor="Simulator",
        isextractable=False,
    )["template"][0]
    deadline = time.monotonic() + 20
    while not cloud.call("listTemplates", tenant.keys, id=mine["id"], templatefilter="self")[
        "template"
    ][0]["isready"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    own = cloud.signed("extractTemplate", tenant.keys, id=mine["id"], mode="HTTP_DOWNLOAD")
    code, body = error(own, "extractTemplate")
    assert code == 531 and "not extractable" in body["errortext"]
    ftp = cloud.signed(
        "extractTemplate", id=a.template["id"], mode="FTP_UPLOAD", url="ftp://example.org/x"
    )
    assert error(ftp, "extractTemplate")[0] == 431
    public = cloud.signed("extractTemplate", tenant.keys, id=a.template["id"], mode="HTTP_DOWNLOAD")
    assert error(public, "extractTemplate")[0] == 531  # someone else's, not theirs to take
