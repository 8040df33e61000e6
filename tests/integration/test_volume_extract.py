"""extractVolume on simulated hosts through the real `cs` client: a stopped VM's volume and a
detached one are exported into the image store and downloaded through the signed link (bytes
compared with the export); running attached volumes, FTP_UPLOAD and forged links are refused;
the copy is removed once its link expires."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.integration.test_browser_uploads import leftovers
from tests.integration.test_volumes import create, offerings, ok, run, running_vm, sim, volumes
from tests.support.simzone import SimZone

__all__ = ["offerings", "sim"]


def extract(sim: SimZone, tenant: Tenant, volume_id: str) -> dict[str, Any]:
    job = run(
        sim, tenant, "extractVolume", id=volume_id, zoneid=sim.zone["id"], mode="HTTP_DOWNLOAD"
    )
    return ok(job)


def attached_volume(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> tuple[Tenant, dict[str, Any], dict[str, Any]]:
    """A new tenant's running VM with a data volume attached (so the volume has a file)."""
    tenant = make_tenant(sim.cloud, make_domain(sim.cloud)["id"])
    vm = running_vm(sim, tenant)
    volume = create(sim, tenant, offerings["fixed"])
    ok(run(sim, tenant, "attachVolume", id=volume["id"], virtualmachineid=vm["id"]))
    return tenant, vm, volume


def refused(sim: SimZone, tenant: Tenant, volume_id: str, mode: str) -> tuple[int, str]:
    status, body = error(
        tenant.raw("extractVolume", id=volume_id, zoneid=sim.zone["id"], mode=mode),
        "extractVolume",
    )
    return status, str(body["errortext"])


def test_extract_stopped_vm_volume_and_download(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    tenant, vm, volume = attached_volume(sim, offerings)
    status, text = refused(sim, tenant, volume["id"], "HTTP_DOWNLOAD")
    assert status == 431 and "Running" in text
    assert refused(sim, tenant, volume["id"], "FTP_UPLOAD")[0] == 432
    stopped = sim.cloud.wait_job(
        tenant.call("stopVirtualMachine", id=vm["id"])["jobid"], tenant.keys
    )
    assert stopped["jobstatus"] == 1, stopped
    extracted = extract(sim, tenant, volume["id"])
    assert extracted["state"] == "DOWNLOAD_URL_CREATED"
    assert extracted["extractMode"] == "HTTP_DOWNLOAD" and extracted["id"] == volume["id"]
    url = extracted["url"]
    assert urlsplit(url).path.startswith("/extract/v1/")
    stored = [p for p in leftovers(sim, extracted["extractId"]) if p.is_file()]
    assert len(stored) == 1
    got = httpx.get(url, timeout=60)
    assert got.status_code == 200 and got.content == stored[0].read_bytes()
    assert volumes(tenant, id=volume["id"])[0]["state"] == "Ready"
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    forged = {"expires": query["expires"][0], "signature": "0" * 64}
    bad = httpx.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(forged)}")
    assert bad.status_code == 403 and bad.content != got.content
    longer = {"expires": int(query["expires"][0]) + 3600, "signature": query["signature"][0]}
    assert (
        httpx.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(longer)}").status_code
        == 403
    )


def test_detached_volume_extract_expires(
    sim: SimZone, offerings: dict[str, dict[str, Any]]
) -> None:
    tenant, _, volume = attached_volume(sim, offerings)
    ok(run(sim, tenant, "detachVolume", id=volume["id"]))
    sim.cloud.call("updateConfiguration", name="extract.url.expiration.interval", value="2")
    try:
        extracted = extract(sim, tenant, volume["id"])
    finally:
        sim.cloud.call("updateConfiguration", name="extract.url.expiration.interval", value="14400")
    assert httpx.get(extracted["url"], timeout=60).status_code == 200
    deadline = time.monotonic() + 30
    while leftovers(sim, extracted["extractId"]):
        assert time.monotonic() < deadline, "the expired extract was never removed"
        time.sleep(0.5)
    assert httpx.get(extracted["url"], timeout=60).status_code == 403
    # A volume with no file yet cannot be extracted, and nothing is written.
    fresh = create(sim, tenant, offerings["fixed"])
    assert refused(sim, tenant, fresh["id"], "HTTP_DOWNLOAD")[0] == 431
    assert volumes(tenant, id=fresh["id"])[0]["state"] == "Allocated"
