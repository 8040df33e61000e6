"""attachIso/detachIso on simulated hosts through `cs`: the VM answers with isoid/isoname/
isodisplaytext, a stopped VM keeps the ISO for its next start, the events, and the refusals
(a second ISO, an ISO not ready, another account's private ISO, nothing to detach) with their
error codes and nothing changed; on a real KVM host (test_kvm_volumes' zone) QMP ``query-block``
shows the medium inserted into the VM's CD-ROM drive and gone after detachIso."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant
from tests.integration.test_kvm_volumes import (  # noqa: F401  (fixtures)
    Kvm,
    client,
    deploy,
    host_netns,
    kvm,
    qmp,
    tiny,
)
from tests.support.cloud import Cloud, Keys
from tests.support.simzone import IMAGE, SimZone, build, http_files, uniq

ISO_BYTES = b"CD001" + bytes(4096)


@pytest.fixture(scope="module")
def site(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimZone, str]]:
    root = tmp_path_factory.mktemp("isofiles")
    files = {"sim.qcow2": IMAGE, "boot.iso": ISO_BYTES}
    with http_files(files, root) as url:
        yield build(cloud, tmp_path_factory.mktemp("isowork"), url), url


@pytest.fixture()
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def register(
    cloud: Cloud, zone: str, url: str, keys: Keys | None = None, *, public: bool = False
) -> dict[str, Any]:
    """An ISO registered and, when its URL is good, waited Ready."""
    iso: dict[str, Any] = cloud.call(
        "registerIso",
        keys,
        name=uniq("iso"),
        displaytext="install disc",
        url=url,
        zoneid=zone,
        ispublic=public,
        checksum="{SHA-256}" + hashlib.sha256(ISO_BYTES).hexdigest(),
    )["iso"][0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = cloud.call("listIsos", keys, isofilter="all", id=iso["id"]).get("iso", [])
        status = str(found[0].get("status", "")) if found else "in progress"
        if found and (found[0]["isready"] or not status.endswith(("progress", "Downloaded"))):
            return dict(found[0])
        time.sleep(0.3)
    raise AssertionError(f"ISO {iso['id']} did not settle")


def run(cloud: Cloud, keys: Keys, command: str, **params: Any) -> dict[str, Any]:
    return cloud.wait_job(cloud.call(command, keys, **params)["jobid"], keys)


def vm_of(cloud: Cloud, keys: Keys, vm_id: str) -> dict[str, Any]:
    found: dict[str, Any] = cloud.call("listVirtualMachines", keys, id=vm_id)["virtualmachine"][0]
    return found


def test_attach_and_detach_on_a_running_and_a_stopped_vm(
    site: tuple[SimZone, str], tenant: Tenant
) -> None:
    sim, url = site
    iso = register(sim.cloud, sim.zone["id"], f"{url}/boot.iso", tenant.keys)
    assert iso["isready"] is True
    vm = sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    attached = tenant.cs.attachIso(id=iso["id"], virtualmachineid=vm["id"], fetch_result=True)[
        "virtualmachine"
    ]
    assert attached["isoid"] == iso["id"] and attached["isoname"] == iso["name"]
    assert attached["isodisplaytext"] == "install disc"
    assert vm_of(sim.cloud, tenant.keys, vm["id"])["isoid"] == iso["id"]

    # A second ISO is refused and the first stays.
    other = register(sim.cloud, sim.zone["id"], f"{url}/boot.iso", tenant.keys)
    status, body = error(
        tenant.raw("attachIso", id=other["id"], virtualmachineid=vm["id"]), "attachIso"
    )
    assert status == 431 and "already attached" in body["errortext"], body
    assert vm_of(sim.cloud, tenant.keys, vm["id"])["isoid"] == iso["id"]

    detached = tenant.cs.detachIso(virtualmachineid=vm["id"], fetch_result=True)["virtualmachine"]
    assert "isoid" not in detached and "isoid" not in vm_of(sim.cloud, tenant.keys, vm["id"])
    status, body = error(tenant.raw("detachIso", virtualmachineid=vm["id"]), "detachIso")
    assert status == 431, body

    # Stopped: recorded, kept across the next start.
    stopped = run(sim.cloud, tenant.keys, "stopVirtualMachine", id=vm["id"])
    assert stopped["jobstatus"] == 1, stopped
    done = run(sim.cloud, tenant.keys, "attachIso", id=other["id"], virtualmachineid=vm["id"])
    assert done["jobresult"]["virtualmachine"]["isoid"] == other["id"]
    started = run(sim.cloud, tenant.keys, "startVirtualMachine", id=vm["id"])
    assert started["jobresult"]["virtualmachine"]["state"] == "Running"
    assert started["jobresult"]["virtualmachine"]["isoid"] == other["id"]

    events = sim.cloud.call("listEvents", listall=True, type="ISO.ATTACH", pagesize=500)
    mine = [e for e in events.get("event", []) if e.get("account") == tenant.name]
    assert len([e for e in mine if e["state"] == "Completed"]) == 2, mine
    events = sim.cloud.call("listEvents", listall=True, type="ISO.DETACH", pagesize=500)
    assert any(e.get("account") == tenant.name for e in events.get("event", []))


def test_refusals_change_nothing(site: tuple[SimZone, str], tenant: Tenant, cloud: Cloud) -> None:
    sim, url = site
    vm = sim.deploy(tenant.keys)["jobresult"]["virtualmachine"]
    stranger = make_tenant(cloud, make_domain(cloud)["id"])
    private = register(cloud, sim.zone["id"], f"{url}/boot.iso", stranger.keys)
    public = register(cloud, sim.zone["id"], f"{url}/boot.iso", stranger.keys, public=True)
    broken = register(cloud, sim.zone["id"], f"{url}/missing.iso", tenant.keys)
    assert broken["isready"] is False
    cases: list[tuple[dict[str, Any], int]] = [
        ({"id": private["id"], "virtualmachineid": vm["id"]}, 531),
        ({"id": broken["id"], "virtualmachineid": vm["id"]}, 431),
        ({"id": vm["id"], "virtualmachineid": vm["id"]}, 431),  # not an ISO
        ({"id": public["id"]}, 431),
        ({"id": public["id"], "virtualmachineid": "nope"}, 431),
    ]
    for params, code in cases:
        status, body = error(tenant.raw("attachIso", **params), "attachIso")
        assert status == code, (params, body)
        assert "isoid" not in vm_of(cloud, tenant.keys, vm["id"])
    # Another account cannot touch this VM's drive either.
    status, body = error(
        stranger.raw("attachIso", id=public["id"], virtualmachineid=vm["id"]), "attachIso"
    )
    assert status == 531, body
    # A public ISO of another account is fine.
    done = run(cloud, tenant.keys, "attachIso", id=public["id"], virtualmachineid=vm["id"])
    assert done["jobresult"]["virtualmachine"]["isoid"] == public["id"]


# --- a real KVM host (TCG) ------------------------------------------------------------------


@pytest.mark.vm
@pytest.mark.net
@pytest.mark.slow
def test_the_iso_is_inserted_into_the_running_qemu(kvm: Kvm, tmp_path: Path) -> None:  # noqa: F811
    cloud, ctx, _, state, _ = kvm
    with http_files({"boot.iso": ISO_BYTES}, tmp_path) as url:
        iso = register(cloud, ctx["zone"]["id"], f"{url}/boot.iso", public=True)
    assert iso["isready"] is True
    vm = deploy(client(cloud), ctx, state)
    sock = state / "vms" / vm["instancename"] / "qmp.sock"

    def cdrom() -> dict[str, Any]:
        found = [b for b in qmp(sock, "query-block") if b.get("qdev", "").endswith("cdrom0")]
        assert len(found) == 1, found
        return dict(found[0])

    assert "inserted" not in cdrom()  # every VM starts with an empty drive
    done = run(cloud, cloud.admin, "attachIso", id=iso["id"], virtualmachineid=vm["id"])
    assert done["jobresult"]["virtualmachine"]["isoid"] == iso["id"], done
    inserted = cdrom()["inserted"]
    assert Path(inserted["file"]).read_bytes() == ISO_BYTES and inserted["ro"] is True
    done = run(cloud, cloud.admin, "detachIso", virtualmachineid=vm["id"])
    assert "isoid" not in done["jobresult"]["virtualmachine"], done
    assert "inserted" not in cdrom()
