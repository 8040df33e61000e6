"""Uploads from a user's machine (issue 11): getUploadParamsForVolume/Template/Iso through the
real `cs` client, then the POST to postURL as a browser (multipart, X-* headers) or curl (raw
body) sends it; every bad POST leaves no file and the right state."""

from __future__ import annotations

import hashlib
import socket
import struct
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

import httpx
import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.integration.test_volumes import counts, ok, run, running_vm, sim, volumes
from tests.support.simzone import SimZone, uniq

__all__ = ["sim"]
GIB = 1024**3


def qcow2(virtual_gib: int, pad: int = 4096) -> bytes:
    header = b"QFI\xfb" + struct.pack(">IQIIQ", 3, 0, 0, 16, virtual_gib * GIB)
    return header + b"\0" * pad


def iso() -> bytes:
    data = bytearray(0x9000)
    data[0x8001:0x8006] = b"CD001"
    return bytes(data)


def headers(params: dict[str, Any]) -> dict[str, str]:
    return {
        "X-signature": params["signature"],
        "X-metadata": params["metadata"],
        "X-expires": params["expires"],
    }


def post_form(params: dict[str, Any], data: bytes, **extra: str) -> httpx.Response:
    """As the dashboard's upload form: multipart/form-data with a ``file`` field."""
    return httpx.post(
        params["postURL"],
        files={"file": ("disk.img", data, "application/octet-stream")},
        headers={**headers(params), **extra},
        timeout=60,
    )


def post_raw(params: dict[str, Any], data: bytes) -> httpx.Response:
    """As ``curl --data-binary``: the body is the file."""
    return httpx.post(
        params["postURL"],
        content=data,
        headers={**headers(params), "Content-Type": "application/octet-stream"},
        timeout=60,
    )


def store_root(sim: SimZone) -> Path:
    found = sim.call("listImageStores", zoneid=sim.zone["id"])["imagestore"][0]
    return Path(unquote(urlparse(found["url"]).path))


def leftovers(sim: SimZone, uuid: str) -> list[Path]:
    return sorted(p for p in store_root(sim).rglob(f"*{uuid}*"))


def volume_params(sim: SimZone, tenant: Tenant, **params: Any) -> dict[str, Any]:
    found: dict[str, Any] = tenant.cs.getUploadParamsForVolume(
        name=uniq("bu"), zoneid=sim.zone["id"], format="QCOW2", **params
    )["getuploadparams"]
    return found


def state(tenant: Tenant, volume_id: str) -> str:
    return str(volumes(tenant, id=volume_id)[0]["state"])


@pytest.fixture
def tenant(sim: SimZone) -> Tenant:
    return make_tenant(sim.cloud, make_domain(sim.cloud)["id"])


def test_volume_upload_from_the_browser_then_attach(sim: SimZone, tenant: Tenant) -> None:
    before = counts(sim.cloud, tenant)
    image = qcow2(2)
    params = volume_params(sim, tenant, checksum=hashlib.sha256(image).hexdigest())
    assert set(params) == {"id", "postURL", "metadata", "expires", "signature"}
    assert urlsplit(params["postURL"]).path.startswith("/upload/v1/")
    assert state(tenant, params["id"]) == "NotUploaded"
    assert counts(sim.cloud, tenant)["volume"] == before["volume"] + 1
    response = post_form(params, image)
    assert response.status_code == 200, response.text
    uploaded = volumes(tenant, id=params["id"])[0]
    assert (uploaded["state"], uploaded["size"]) == ("Uploaded", 2 * GIB)
    stored = [p for p in leftovers(sim, params["id"]) if p.is_file()]
    assert len(stored) == 1 and stored[0].read_bytes() == image
    assert counts(sim.cloud, tenant) == {
        "volume": before["volume"] + 1,
        "primary": before["primary"] + 2,
    }
    replay = post_form(params, image)
    assert replay.status_code == 409
    assert state(tenant, params["id"]) == "Uploaded"
    vm = running_vm(sim, tenant)
    attached = ok(run(sim, tenant, "attachVolume", id=params["id"], virtualmachineid=vm["id"]))
    assert attached["state"] == "Ready" and attached["size"] == 2 * GIB


def test_template_upload_raw_body_then_deploy(sim: SimZone, tenant: Tenant) -> None:
    image = qcow2(1)
    params = tenant.cs.getUploadParamsForTemplate(
        name=uniq("butmpl"),
        displaytext="uploaded",
        zoneid=sim.zone["id"],
        format="QCOW2",
        hypervisor="Simulator",
        checksum="{SHA-256}" + hashlib.sha256(image).hexdigest(),
    )["getuploadparams"]
    listed = tenant.cs.listTemplates(templatefilter="self", id=params["id"])["template"][0]
    assert listed["isready"] is False
    account = sim.cloud.call("listAccounts", tenant.keys)["account"][0]
    assert int(account["templatetotal"]) == 1
    response = post_raw(params, image)
    assert response.status_code == 200, response.text
    listed = tenant.cs.listTemplates(templatefilter="self", id=params["id"])["template"][0]
    assert listed["isready"] is True and listed["status"] == "Download Complete"
    job = sim.deploy(tenant.keys, templateid=params["id"])
    assert job["jobstatus"] == 1, job
    assert job["jobresult"]["virtualmachine"]["templateid"] == params["id"]


def test_iso_upload_is_sniffed(sim: SimZone, tenant: Tenant) -> None:
    params = tenant.cs.getUploadParamsForIso(name=uniq("buiso"), zoneid=sim.zone["id"])[
        "getuploadparams"
    ]
    wrong = post_form(params, qcow2(1))  # a qcow2 is not an ISO
    assert wrong.status_code == 400 and "ISO" in wrong.text
    assert leftovers(sim, params["id"]) == []
    listed = tenant.cs.listIsos(isofilter="self", id=params["id"])["iso"][0]
    assert listed["isready"] is False and "not the declared format" in listed["status"]
    params = tenant.cs.getUploadParamsForIso(name=uniq("buiso"), zoneid=sim.zone["id"])[
        "getuploadparams"
    ]
    assert post_form(params, iso()).status_code == 200
    listed = tenant.cs.listIsos(isofilter="self", id=params["id"])["iso"][0]
    assert listed["isready"] is True


def test_bad_posts_leave_nothing(sim: SimZone, tenant: Tenant) -> None:
    image = qcow2(1)
    # A wrong signature: 403, the volume still waits and the link still works.
    params = volume_params(sim, tenant)
    forged = dict(params, signature="0" * 64)
    assert post_form(forged, image).status_code == 403
    tampered = dict(params, expires="2099-01-01T00:00:00+0000")
    assert post_form(tampered, image).status_code == 403
    assert state(tenant, params["id"]) == "NotUploaded"
    # Declared format and bytes disagree: 400, UploadError, no file.
    response = post_raw(params, b"not a qcow2 image" * 100)
    assert response.status_code == 400 and "QCOW2" in response.text
    assert state(tenant, params["id"]) == "UploadError"
    assert leftovers(sim, params["id"]) == []
    assert post_raw(params, image).status_code == 409  # the link was used
    # A checksum mismatch.
    params = volume_params(sim, tenant, checksum="0" * 64)
    response = post_form(params, image)
    assert response.status_code == 400 and "checksum" in response.text
    assert state(tenant, params["id"]) == "UploadError"
    assert leftovers(sim, params["id"]) == []
    # A multipart body cut short (no closing boundary).
    params = volume_params(sim, tenant)
    body = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="d"\r\n\r\n'
    response = httpx.post(
        params["postURL"],
        content=body + image,
        headers={**headers(params), "Content-Type": "multipart/form-data; boundary=XyZ"},
    )
    assert response.status_code == 400 and "truncated" in response.text
    assert state(tenant, params["id"]) == "UploadError"
    assert leftovers(sim, params["id"]) == []
    # A client that vanishes mid-body.
    params = volume_params(sim, tenant)
    assert _send_cut(params, 1 << 20, image) == b""  # still reading when the client left
    deadline = time.monotonic() + 20
    while state(tenant, params["id"]) != "UploadError":
        assert time.monotonic() < deadline, state(tenant, params["id"])
        time.sleep(0.2)
    assert leftovers(sim, params["id"]) == []
    # Failed uploads can be deleted: their count goes back.
    before = counts(sim.cloud, tenant)["volume"]
    assert tenant.cs.deleteVolume(id=params["id"])["success"]
    assert counts(sim.cloud, tenant)["volume"] == before - 1


def raw_head(params: dict[str, Any], declared: int) -> bytes:
    """The head of a raw POST to postURL that declares ``declared`` body bytes."""
    url = urlsplit(params["postURL"])
    return (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {declared}\r\n"
        "Content-Type: application/octet-stream\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers(params).items())
        + "\r\n"
    ).encode()


def _send_cut(params: dict[str, Any], declared: int, sent: bytes) -> bytes:
    """A raw POST that declares ``declared`` bytes, sends ``sent`` and hangs up: the reply
    read so far (empty when the server was still waiting for the rest)."""
    url = urlsplit(params["postURL"])
    with socket.create_connection((url.hostname or "", url.port or 80)) as sock:
        sock.sendall(raw_head(params, declared) + sent)
        sock.settimeout(0.5)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b""


def test_oversized_and_limits(sim: SimZone, tenant: Tenant) -> None:
    params = volume_params(sim, tenant)
    sim.cloud.call("updateConfiguration", name="max.upload.volume.size", value="1")
    try:
        big = volume_params(sim, tenant)
    finally:
        sim.cloud.call("updateConfiguration", name="max.upload.volume.size", value="500")
    reply = _send_cut(big, 2 * GIB, b"\0" * 1024)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert state(tenant, big["id"]) == "NotUploaded"
    # The volume count limit, checked and counted at request time as CloudStack does.
    used = counts(sim.cloud, tenant)["volume"]
    sim.cloud.call(
        "updateResourceLimit",
        account=tenant.name,
        domainid=tenant.domain_id,
        resourcetype=2,
        max=used,
    )
    name = uniq("over")
    status, _ = error(
        tenant.raw("getUploadParamsForVolume", name=name, zoneid=sim.zone["id"], format="QCOW2"),
        "getUploadParamsForVolume",
    )
    assert status == 532
    assert volumes(tenant, name=name) == []
    assert counts(sim.cloud, tenant)["volume"] == used
    assert state(tenant, params["id"]) == "NotUploaded"


def test_bad_requests_write_nothing(sim: SimZone, tenant: Tenant) -> None:
    before = counts(sim.cloud, tenant)
    name = uniq("badfmt")
    status, _ = error(
        tenant.raw("getUploadParamsForVolume", name=name, zoneid=sim.zone["id"], format="EXE"),
        "getUploadParamsForVolume",
    )
    assert status == 431
    status, _ = error(
        tenant.raw(
            "getUploadParamsForVolume",
            name=name,
            zoneid=sim.zone["id"],
            format="QCOW2",
            checksum="xyz",
        ),
        "getUploadParamsForVolume",
    )
    assert status == 431
    assert volumes(tenant, name=name) == [] and counts(sim.cloud, tenant) == before


def test_expired_link_is_refused_then_abandoned(sim: SimZone, tenant: Tenant) -> None:
    sim.cloud.call("updateConfiguration", name="upload.operation.timeout", value="1")
    try:
        params = volume_params(sim, tenant)
    finally:
        sim.cloud.call("updateConfiguration", name="upload.operation.timeout", value="60")
    used = counts(sim.cloud, tenant)["volume"]
    assert used >= 1
    time.sleep(61)
    assert post_form(params, qcow2(1)).status_code == 410
    deadline = time.monotonic() + 30
    while volumes(tenant, id=params["id"]):
        assert time.monotonic() < deadline, "the expired upload was never abandoned"
        time.sleep(0.5)
    assert counts(sim.cloud, tenant)["volume"] == used - 1
    assert leftovers(sim, params["id"]) == []


def test_upload_whose_server_went_away_is_failed_by_the_sweep(sim: SimZone, tenant: Tenant) -> None:
    """An upload still InProgress a day after its link expired: its server died mid-body.
    The sweep puts it in UploadError with no staged file; a late end of the body gets 409."""
    import sqlite3

    db = sim.cloud.data_dir / "cumulo.db"
    if not db.exists():
        pytest.skip("ages the transfer row in the SQLite database directly")
    image = qcow2(1, pad=1 << 20)
    params = volume_params(sim, tenant)
    url = urlsplit(params["postURL"])
    with socket.create_connection((url.hostname or "", url.port or 80)) as sock:
        sock.sendall(raw_head(params, len(image)) + image[:4096])
        deadline = time.monotonic() + 20
        while state(tenant, params["id"]) != "UploadInProgress":
            assert time.monotonic() < deadline, state(tenant, params["id"])
            time.sleep(0.2)
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE image_transfers SET expires = '2000-01-01 00:00:00.000000' WHERE uuid = ?",
                (url.path.rsplit("/", 1)[1],),
            )
        deadline = time.monotonic() + 30
        while state(tenant, params["id"]) != "UploadError":
            assert time.monotonic() < deadline, state(tenant, params["id"])
            time.sleep(0.5)
        sock.sendall(image[4096:])
        sock.settimeout(30)
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 409"), reply
    assert state(tenant, params["id"]) == "UploadError"
    assert leftovers(sim, params["id"]) == []


def test_cors_answers_only_this_servers_origin(sim: SimZone, tenant: Tenant) -> None:
    params = volume_params(sim, tenant)
    parts = urlsplit(params["postURL"])
    own = f"{parts.scheme}://{parts.netloc}"
    wanted = {"Access-Control-Request-Method": "POST"}
    mine = httpx.options(params["postURL"], headers={"Origin": own, **wanted})
    assert mine.status_code == 204 and mine.headers["access-control-allow-origin"] == own
    assert "x-signature" in mine.headers["access-control-allow-headers"].lower()
    other = httpx.options(params["postURL"], headers={"Origin": "https://evil.example", **wanted})
    assert "access-control-allow-origin" not in other.headers
    posted = post_form(params, qcow2(1), Origin="https://evil.example")
    assert "access-control-allow-origin" not in posted.headers
    assert state(tenant, params["id"]) == "Uploaded"  # CORS binds browsers, not the link
