"""The web dashboard in a real Chromium (playwright-core from npm, Debian's chromium).

The browser script (web/e2e/dashboard.mjs) logs in as a plain user and as the operator and
does the everyday things; this wrapper starts the server with a simulator zone, runs it,
and checks the cloud's side through the API: the VM the browser deployed exists, belongs to
the user and is Stopped; the host the operator disabled is Disabled. Screenshots land in
build/artifacts/dashboard/ (linked from docs/dashboard.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser import ARTIFACTS, CHROMIUM, ROOT, WEB, run_script
from tests.integration.tenants import PASSWORD, Tenant, make_domain, make_tenant
from tests.support.cloud import Cloud
from tests.support.netzone import add_networking
from tests.support.simzone import IMAGE, SimZone, build, http_files, uniq

NET_OFFERING = "DefaultIsolatedNetworkOfferingWithSourceNatService"

DIST = ROOT / "src" / "cumulo" / "dashboard" / "dist" / "index.html"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(
        not (WEB / "node_modules" / "playwright-core").exists() or not DIST.exists(),
        reason="the dashboard is not built (make install runs npm in web/)",
    ),
]


@pytest.fixture(scope="module")
def sim(
    cloud: Cloud, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimZone]:
    if "pg" in request.node.name or "pg" in str(getattr(request, "param", "")):
        pytest.skip("the dashboard is an API client: its server paths run on PostgreSQL elsewhere")
    root = tmp_path_factory.mktemp("uifiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        zone = build(cloud, tmp_path_factory.mktemp("uiwork"), url, hosts=2)
        add_networking(zone, vnis=(7600, 7649), public=(150, 170))
        yield zone


@pytest.fixture(scope="module")
def user(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


@pytest.fixture(scope="module")
def iso(
    cloud: Cloud, sim: SimZone, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, object]]:
    """A public ISO, Ready in the zone, for the instance page's Attach ISO."""
    with http_files({"boot.iso": b"CD001" + bytes(4096)}, tmp_path_factory.mktemp("uiiso")) as url:
        made = cloud.call(
            "registerIso",
            name=uniq("iso"),
            displaytext="install disc",
            url=f"{url}/boot.iso",
            zoneid=sim.zone["id"],
            ispublic=True,
        )["iso"][0]
        for _ in range(200):
            found = cloud.call("listIsos", isofilter="all", id=made["id"])["iso"][0]
            if found["isready"]:
                break
            time.sleep(0.3)
        assert found["isready"], found
        yield dict(found)


def _run_browser(
    cloud: Cloud, sim: SimZone, user: Tenant, names: dict[str, str]
) -> dict[str, object]:
    domain = cloud.call("listDomains", id=user.domain_id)["domain"][0]
    env = {
        "BASE_URL": f"http://127.0.0.1:{cloud.port}",
        "USER_NAME": user.username,
        "USER_PASSWORD": PASSWORD,
        "USER_DOMAIN": domain["path"],
        "ADMIN_PASSWORD": cloud.admin_password,
        "ZONE_NAME": sim.zone["name"],
        "TEMPLATE_NAME": sim.template["name"],
        "HOST_NAME": sim.hosts[0]["name"],
        "NET_OFFERING": NET_OFFERING,
        **names,
    }
    return run_script("dashboard.mjs", env, timeout=480)


def test_user_and_operator_everyday_paths(
    cloud: Cloud, sim: SimZone, user: Tenant, iso: dict[str, object]
) -> None:
    disk = cloud.call("createDiskOffering", name=uniq("do"), displaytext="1 GB", disksize=1)
    names = {
        "VM_NAME": uniq("web"),
        "NET_NAME": uniq("net"),
        "VOL_NAME": uniq("vol"),
        "DISK_OFFERING": disk["diskoffering"]["name"],
        "ISO_NAME": str(iso["name"]),
    }
    vm_name = names["VM_NAME"]
    result = _run_browser(cloud, sim, user, names)
    assert (
        "unable to authenticate" in str(result["badLoginError"]).lower() or result["badLoginError"]
    )
    assert result["userSeesOperatorMenu"] is False and result["operatorUrlRefused"] is True
    assert result["reachedRunning"] is True and result["stopped"] is True
    assert result["fullReloads"] == 0
    assert result["liveStream"] is True  # the push stream connected
    assert result["detailNetwork"] >= 1 and result["detailRootVolume"] == 1
    assert result["charts"] == 3
    assert result["sessionSurvivesReload"] is True
    assert result["storageKeys"] == []  # nothing, let alone a secret, in web storage
    assert result["pageErrors"] == []
    assert result["adminSeesOperatorMenu"] is True and result["hostDisabled"] is True
    visited = set(result["pagesVisited"])  # type: ignore[arg-type]
    assert {"Hosts", "Virtual routers", "Alerts", "Webhooks", "Usage and cost"} <= visited
    assert len(visited) >= 30
    # this server runs no S3 service: the object browser says so plainly, every other page works
    failures = list(result["pageFailures"])  # type: ignore[call-overload]
    s3_pages = ("Object storage", "S3 users")
    assert all("does not answer" in f for f in failures if f.startswith(s3_pages))
    assert [f for f in failures if not f.startswith(s3_pages)] == []
    assert result["opsPageErrors"] == []

    # the cloud's side of what the browser did
    vms = cloud.call("listVirtualMachines", user.keys, name=vm_name)["virtualmachine"]
    assert len(vms) == 1 and vms[0]["state"] == "Stopped" and vms[0]["account"] == user.name
    assert vms[0]["zoneid"] == sim.zone["id"]
    assert result["networkCreated"] and result["volumeAttached"] and result["portForwarded"]
    assert result["isoAttached"] == 1 and result["isoDetached"] is True  # Attach/Detach ISO
    assert "isoid" not in vms[0]
    for kind in ("ISO.ATTACH", "ISO.DETACH"):
        events = cloud.call("listEvents", user.keys, type=kind).get("event", [])
        assert any(e["state"] == "Completed" for e in events), (kind, events)
    volume = cloud.call("listVolumes", user.keys, name=names["VOL_NAME"])["volume"][0]
    assert volume["virtualmachineid"] == vms[0]["id"] and volume["type"] == "DATADISK"
    network = cloud.call("listNetworks", user.keys, name=names["NET_NAME"])["network"][0]
    assert vms[0]["nic"][0]["networkid"] == network["id"]
    rules = cloud.call("listPortForwardingRules", user.keys, ipaddress=result["acquiredIp"])
    rule = rules["portforwardingrule"][0]
    assert (rule["publicport"], rule["privateport"]) == ("2222", "22")
    assert rule["virtualmachineid"] == vms[0]["id"]
    today = datetime.now(UTC).date()
    statement = cloud.call(
        "quotaStatement",
        user.keys,
        account=user.name,
        domainid=user.domain_id,
        startdate=today.replace(day=1).isoformat(),
        enddate=today.isoformat(),
    )["statement"]
    currency, amount = str(result["usageTotal"]).split(" ", 1)
    assert currency == statement["currency"]
    assert float(amount) == float(statement["totalquota"])
    host = cloud.call("listHosts", id=sim.hosts[0]["id"])["host"][0]
    assert host["resourcestate"] == "Disabled"
    cloud.call("updateHost", id=sim.hosts[0]["id"], allocationstate="Enable")
    shots = ("home-user", "forbidden", "deploy", "instances", "instance", "volumes")
    shots += ("port-forwarding", "usage")
    for shot in (*shots, "home-admin", "hosts"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 5000, shot


def test_dashboard_pages_are_locked_down(cloud: Cloud, sim: SimZone) -> None:
    import httpx

    base = f"http://127.0.0.1:{cloud.port}"
    page = httpx.get(f"{base}/client/", timeout=10)
    assert page.status_code == 200 and '<div id="app">' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{base}/", timeout=10).headers["location"] == "/client/"
    # a path outside the build never escapes it
    escaped = httpx.get(f"{base}/client/..%2f..%2fapi%2fserver.py", timeout=10)
    assert "ManagementServer" not in escaped.text
    # the session route answers only with valid session cookies, and is never cached
    anonymous = httpx.get(f"{base}/client/session", timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers["cache-control"] == "no-store"
    forged = httpx.get(
        f"{base}/client/session", cookies={"JSESSIONID": "x", "sessionkey": "y"}, timeout=10
    )
    assert forged.status_code == 401
    with httpx.Client(base_url=base, timeout=10) as browser:
        login = browser.post(
            "/client/api",
            data={
                "command": "login",
                "username": "admin",
                "password": cloud.admin_password,
                "domain": "/",
                "response": "json",
            },
        )
        key = login.json()["loginresponse"]["sessionkey"]
        me = browser.get("/client/session")
        assert me.status_code == 200 and me.json()["sessionkey"] == key
        assert me.json()["username"] == "admin" and "access-control-allow-origin" not in me.headers


def test_upload_from_this_computer_and_download(
    cloud: Cloud, sim: SimZone, user: Tenant, tmp_path: Path
) -> None:
    """Issue 11: a template and a volume uploaded from the browser go Ready/Uploaded; a VM
    deploys from that template, the volume attaches; a volume downloads byte for byte."""
    import hashlib
    import subprocess
    from urllib.parse import unquote, urlparse, urlsplit

    import httpx

    image = tmp_path / "small.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    disk = cloud.call("createDiskOffering", name=uniq("do"), displaytext="1 GB", disksize=1)
    made = user.call(
        "createVolume",
        name=uniq("dl"),
        zoneid=sim.zone["id"],
        diskofferingid=disk["diskoffering"]["id"],
    )
    vm = sim.deploy(user.keys)["jobresult"]["virtualmachine"]
    for cmd, args in (
        ("attachVolume", {"id": made["id"], "virtualmachineid": vm["id"]}),
        ("detachVolume", {"id": made["id"]}),
    ):
        job = cloud.wait_job(user.call(cmd, **args)["jobid"], user.keys)
        assert job["jobstatus"] == 1, job
    dl_name = cloud.call("listVolumes", user.keys, id=made["id"])["volume"][0]["name"]
    domain = cloud.call("listDomains", id=user.domain_id)["domain"][0]
    names = {"TMPL_NAME": uniq("uptmpl"), "UPVOL_NAME": uniq("upvol")}
    result = run_script(
        "uploads.mjs",
        {
            "BASE_URL": f"http://127.0.0.1:{cloud.port}",
            "USER_NAME": user.username,
            "USER_PASSWORD": PASSWORD,
            "USER_DOMAIN": domain["path"],
            "ZONE_NAME": sim.zone["name"],
            "IMAGE": str(image),
            "DL_VOLUME": dl_name,
            "WORK": str(tmp_path),
            **names,
        },
        timeout=300,
    )
    assert result["templateReady"] and result["volumeUploaded"] and result["pageErrors"] == []
    template = cloud.call(
        "listTemplates", user.keys, templatefilter="self", name=names["TMPL_NAME"]
    )
    template = template["template"][0]
    assert template["isready"] is True and template["size"] == image.stat().st_size
    deployed = sim.deploy(user.keys, templateid=template["id"])
    assert deployed["jobstatus"] == 1, deployed
    volume = cloud.call("listVolumes", user.keys, name=names["UPVOL_NAME"])["volume"][0]
    assert volume["state"] == "Uploaded" and volume["size"] == 64 << 20
    job = cloud.wait_job(
        user.call("attachVolume", id=volume["id"], virtualmachineid=vm["id"])["jobid"], user.keys
    )
    assert job["jobstatus"] == 1 and job["jobresult"]["volume"]["state"] == "Ready", job
    # the download is the extracted copy in the image store, byte for byte
    store = cloud.call("listImageStores", zoneid=sim.zone["id"])["imagestore"][0]
    extract_id = urlsplit(str(result["downloadUrl"])).path.rsplit("/", 1)[1]
    root = Path(unquote(urlparse(store["url"]).path))
    copy = next(root.rglob(f"{extract_id}.qcow2"))
    assert result["downloadSha"] == hashlib.sha256(copy.read_bytes()).hexdigest()
    assert httpx.get(f"http://127.0.0.1:{cloud.port}/extract/v1/{extract_id}").status_code == 403
