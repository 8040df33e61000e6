"""The VM commands beyond the lifecycle, through the real `cs` client on simulated hosts:
update, change service, scale, migrate, restore, password and SSH key resets, getVMPassword,
affinity groups and tags. Every refusal is checked for its code and for having changed
nothing (the VM as listed, the owner's counts, the hosts' capacity)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cs import CloudStackApiException

from tests.integration.tenants import Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud, Keys
from tests.support.simzone import IMAGE, SimZone, build, http_files

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("vmadminfiles")
    with http_files({"sim.qcow2": IMAGE}, root) as url:
        yield url


@pytest.fixture(scope="module")
def sim(cloud: Cloud, files: str, tmp_path_factory: pytest.TempPathFactory) -> SimZone:
    return build(cloud, tmp_path_factory.mktemp("vmadmin"), files, hosts=3)


@pytest.fixture(scope="module")
def tight(cloud: Cloud, files: str, tmp_path_factory: pytest.TempPathFactory) -> SimZone:
    """One small host (2 x 1000 MHz, 2 GiB): room for little more than one VM's growth."""
    return build(cloud, tmp_path_factory.mktemp("tight"), files, hosts=1, cpus=2, memory_mib=2048)


@pytest.fixture
def tenant(cloud: Cloud) -> Tenant:
    """A fresh account per test: its counts and limits are that test's alone."""
    return make_tenant(cloud, make_domain(cloud)["id"])


def template(sim: SimZone, url: str, **flags: Any) -> dict[str, Any]:
    """A Ready Simulator template with the given flags (passwordenabled, ...)."""
    made: dict[str, Any] = sim.call(
        "registerTemplate",
        name=uniq("tmpl"),
        displaytext="admin test template",
        url=f"{url}/sim.qcow2",
        zoneid=sim.zone["id"],
        format="QCOW2",
        hypervisor="Simulator",
        ispublic=True,
        **flags,
    )["template"][0]
    deadline = time.monotonic() + 20
    while not sim.call("listTemplates", id=made["id"], templatefilter="all")["template"][0][
        "isready"
    ]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return made


@pytest.fixture(scope="module")
def scalable(sim: SimZone, files: str) -> dict[str, Any]:
    return template(sim, files, isdynamicallyscalable=True, passwordenabled=True)


@pytest.fixture(scope="module")
def plain(sim: SimZone, files: str) -> dict[str, Any]:
    return template(sim, files, passwordenabled=False)


def offering(sim: SimZone, **size: Any) -> dict[str, Any]:
    made: dict[str, Any] = sim.call(
        "createServiceOffering", name=uniq("so"), displaytext="test size", **size
    )["serviceoffering"]
    return made


def deployed(sim: SimZone, keys: Keys, **params: Any) -> dict[str, Any]:
    job = sim.deploy(keys, **params)
    assert job["jobstatus"] == 1, job
    vm: dict[str, Any] = job["jobresult"]["virtualmachine"]
    return vm


def run(cloud: Cloud, keys: Keys, command: str, **params: Any) -> dict[str, Any]:
    """Submit an async command and wait for its job."""
    return cloud.wait_job(cloud.call(command, keys, **params)["jobid"], keys)


def stop(sim: SimZone, keys: Keys, vm_id: str) -> None:
    assert run(sim.cloud, keys, "stopVirtualMachine", id=vm_id)["jobstatus"] == 1


def counts(cloud: Cloud, tenant: Tenant) -> dict[str, int]:
    account = cloud.call("listAccounts", tenant.keys)["account"][0]
    return {k: int(account[f"{k}total"]) for k in ("vm", "cpu", "memory", "volume")}


def host_used(cloud: Cloud, host_id: str) -> tuple[int, int]:
    host = cloud.call("listHosts", id=host_id)["host"][0]
    return int(host["cpuallocatedvalue"]), int(host["memoryallocatedbytes"])


def zone_used(sim: SimZone) -> tuple[int, int]:
    caps = sim.capacity_used()
    return caps["1"], caps["0"]


def refused(cloud: Cloud, keys: Keys, command: str, **params: Any) -> int:
    code, _ = error(cloud.signed(command, keys, **params), command)
    return code


# --- updateVirtualMachine -------------------------------------------------------------------


def test_update_changes_settings_and_refuses_bad_ones(sim: SimZone, tenant: Tenant) -> None:
    vm = deployed(sim, tenant.keys, startvm=False)
    new_name = uniq("renamed")
    out = tenant.cs.updateVirtualMachine(
        id=vm["id"],
        displayname="Shiny",
        group="web",
        name=new_name,
        **{"details[0].purpose": "tests"},
    )["virtualmachine"]
    assert (out["displayname"], out["group"], out["name"]) == ("Shiny", "web", new_name)
    assert out["details"]["purpose"] == "tests"
    listed = sim.vm(vm["id"], tenant.keys)
    assert (listed["name"], listed["group"]) == (new_name, "web")
    events = tenant.cs.listEvents(type="VM.UPDATE")["event"]
    assert any(e.get("resourceid") == vm["id"] for e in events), events

    running = deployed(sim, tenant.keys)
    bad: list[tuple[str, dict[str, Any], int]] = [
        (running["id"], {"name": uniq("late")}, 431),  # only while Stopped
        (vm["id"], {"haenable": "true"}, 431),  # the offering offers no HA
        (vm["id"], {"isdynamicallyscalable": "true"}, 431),  # the template does not allow it
        (vm["id"], {"ostypeid": "7d6c0e3c-54c9-4f1f-8d89-000000000000"}, 431),
        (vm["id"], {"userdata": "not base64!!"}, 431),
        (vm["id"], {"name": "9digit"}, 431),
        (vm["id"], {"displayvm": "false"}, 531),  # root admins only
        (vm["id"], {"details[0].extraconfig": "x"}, 431),
    ]
    for vm_id, params, code in bad:
        before = sim.vm(vm_id, tenant.keys)
        assert refused(sim.cloud, tenant.keys, "updateVirtualMachine", id=vm_id, **params) == code
        after = sim.vm(vm_id, tenant.keys)
        for key in (
            "name",
            "haenable",
            "isdynamicallyscalable",
            "displayvm",
            "details",
            "ostypeid",
        ):
            assert after.get(key) == before.get(key), (params, key)


def test_update_refuses_another_accounts_vm(sim: SimZone, tenant: Tenant, cloud: Cloud) -> None:
    vm = deployed(sim, tenant.keys, startvm=False)
    other = make_tenant(cloud, make_domain(cloud)["id"])
    assert refused(cloud, other.keys, "updateVirtualMachine", id=vm["id"], displayname="x") == 531
    assert sim.vm(vm["id"], tenant.keys)["displayname"] == vm["displayname"]


# --- changeServiceForVirtualMachine ---------------------------------------------------------


def test_change_service_needs_a_stopped_vm_and_moves_counts(
    sim: SimZone, tenant: Tenant, cloud: Cloud
) -> None:
    big = offering(sim, cpunumber=2, cpuspeed=500, memory=1024)
    vm = deployed(sim, tenant.keys)
    before = counts(cloud, tenant)
    code = refused(
        cloud,
        tenant.keys,
        "changeServiceForVirtualMachine",
        id=vm["id"],
        serviceofferingid=big["id"],
    )
    assert code == 431 and sim.vm(vm["id"])["serviceofferingid"] == sim.offering["id"]
    assert counts(cloud, tenant) == before
    stop(sim, tenant.keys, vm["id"])
    out = tenant.cs.changeServiceForVirtualMachine(id=vm["id"], serviceofferingid=big["id"])
    got = out["virtualmachine"]
    assert (got["serviceofferingid"], got["cpunumber"], got["memory"]) == (big["id"], 2, 1024)
    after = counts(cloud, tenant)
    assert after["cpu"] == before["cpu"] + 1 and after["memory"] == before["memory"] + 512
    again = refused(
        cloud,
        tenant.keys,
        "changeServiceForVirtualMachine",
        id=vm["id"],
        serviceofferingid=big["id"],
    )
    assert again == 431 and counts(cloud, tenant) == after
    started = run(cloud, tenant.keys, "startVirtualMachine", id=vm["id"])
    assert started["jobresult"]["virtualmachine"]["cpunumber"] == 2


# --- scaleVirtualMachine --------------------------------------------------------------------


def test_scale_a_stopped_vm_to_a_custom_offering(
    sim: SimZone, tenant: Tenant, cloud: Cloud
) -> None:
    # No size: the request gives it. Scoped to the tenant's domain, so other tests' clients
    # (libcloud's list_sizes needs every offering to have a cpunumber) never see it.
    custom = offering(sim, domainid=tenant.domain_id)
    vm = deployed(sim, tenant.keys, startvm=False)
    before = counts(cloud, tenant)
    missing = refused(
        cloud, tenant.keys, "scaleVirtualMachine", id=vm["id"], serviceofferingid=custom["id"]
    )
    assert missing == 431 and counts(cloud, tenant) == before
    result = tenant.cs.scaleVirtualMachine(
        id=vm["id"],
        serviceofferingid=custom["id"],
        **{"details[0].cpuNumber": "3", "details[0].cpuSpeed": "400", "details[0].memory": "768"},
        fetch_result=True,
    )
    got = result["virtualmachine"]
    assert (got["cpunumber"], got["cpuspeed"], got["memory"], got["state"]) == (
        3,
        400,
        768,
        "Stopped",
    )
    after = counts(cloud, tenant)
    assert after["cpu"] == before["cpu"] + 2 and after["memory"] == before["memory"] + 256


def test_scale_a_running_vm_grows_on_its_host(
    sim: SimZone, tenant: Tenant, cloud: Cloud, scalable: dict[str, Any]
) -> None:
    bigger = offering(sim, cpunumber=2, cpuspeed=500, memory=1024)
    smaller = offering(sim, cpunumber=1, cpuspeed=500, memory=256)
    vm = deployed(sim, tenant.keys, templateid=scalable["id"])
    assert vm["isdynamicallyscalable"] is True
    host = sim.vm(vm["id"])["hostid"]
    used0, before = host_used(cloud, host), counts(cloud, tenant)
    down = refused(
        cloud, tenant.keys, "scaleVirtualMachine", id=vm["id"], serviceofferingid=smaller["id"]
    )
    assert down == 431 and host_used(cloud, host) == used0
    job = run(
        cloud, tenant.keys, "scaleVirtualMachine", id=vm["id"], serviceofferingid=bigger["id"]
    )
    assert job["jobstatus"] == 1, job
    got = job["jobresult"]["virtualmachine"]
    assert (got["state"], got["cpunumber"], got["memory"]) == ("Running", 2, 1024)
    assert host_used(cloud, host) == (used0[0] + 500, used0[1] + 512 * MIB)
    after = counts(cloud, tenant)
    assert after["cpu"] == before["cpu"] + 1 and after["memory"] == before["memory"] + 512
    stop(sim, tenant.keys, vm["id"])
    assert host_used(cloud, host) == (used0[0] - 500, used0[1] - 512 * MIB)


def test_scale_refuses_a_running_vm_that_is_not_scalable(sim: SimZone, tenant: Tenant) -> None:
    bigger = offering(sim, cpunumber=2, cpuspeed=500, memory=1024)
    vm = deployed(sim, tenant.keys)
    code = refused(
        sim.cloud, tenant.keys, "scaleVirtualMachine", id=vm["id"], serviceofferingid=bigger["id"]
    )
    assert code == 431 and sim.vm(vm["id"])["cpunumber"] == 1


def test_scale_beyond_the_hosts_capacity_fails_with_533_and_changes_nothing(
    tight: SimZone, tenant: Tenant, cloud: Cloud, files: str
) -> None:
    tmpl = template(tight, files, isdynamicallyscalable=True)
    huge = offering(tight, cpunumber=1, cpuspeed=500, memory=4096)
    vm = deployed(tight, tenant.keys, templateid=tmpl["id"])
    host = tight.hosts[0]["id"]
    used0, before = host_used(cloud, host), counts(cloud, tenant)
    job = run(cloud, tenant.keys, "scaleVirtualMachine", id=vm["id"], serviceofferingid=huge["id"])
    assert job["jobstatus"] == 2 and job["jobresultcode"] == 533, job
    assert host_used(cloud, host) == used0 and counts(cloud, tenant) == before
    listed = tight.vm(vm["id"])
    assert (listed["memory"], listed["state"], listed["serviceofferingid"]) == (
        512,
        "Running",
        tight.offering["id"],
    )


def test_racing_scale_ups_never_overcommit_the_host(
    cloud: Cloud, files: str, tmp_path_factory: pytest.TempPathFactory, tenant: Tenant
) -> None:
    """Two VMs on a host with room for one of their growths: exactly one grows."""
    solo = build(cloud, tmp_path_factory.mktemp("solo"), files, hosts=1, cpus=2, memory_mib=2048)
    tmpl = template(solo, files, isdynamicallyscalable=True)
    grown = offering(solo, cpunumber=1, cpuspeed=500, memory=1280)  # +768 MiB each
    vms = [deployed(solo, tenant.keys, templateid=tmpl["id"])["id"] for _ in range(2)]
    host = solo.hosts[0]["id"]
    used0 = host_used(cloud, host)
    assert used0 == (1000, 1024 * MIB)
    jobs = [
        cloud.call("scaleVirtualMachine", tenant.keys, id=v, serviceofferingid=grown["id"])["jobid"]
        for v in vms
    ]
    results = sorted(cloud.wait_job(j, tenant.keys)["jobstatus"] for j in jobs)
    assert results == [1, 2]
    assert host_used(cloud, host) == (1000, (1024 + 768) * MIB)
    assert sorted(solo.vm(v)["memory"] for v in vms) == [512, 1280]


def test_scale_over_the_cpu_limit_fails_with_532_and_changes_nothing(
    sim: SimZone, cloud: Cloud, scalable: dict[str, Any]
) -> None:
    owner = make_tenant(cloud, make_domain(cloud)["id"])
    vm = deployed(sim, owner.keys, templateid=scalable["id"])
    cloud.call(
        "updateResourceLimit",
        account=owner.name,
        domainid=owner.domain_id,
        resourcetype=8,
        max=1,
    )
    bigger = offering(sim, cpunumber=2, cpuspeed=500, memory=512)
    host = sim.vm(vm["id"])["hostid"]
    used0, before = host_used(cloud, host), counts(cloud, owner)
    job = run(cloud, owner.keys, "scaleVirtualMachine", id=vm["id"], serviceofferingid=bigger["id"])
    assert job["jobstatus"] == 2 and job["jobresultcode"] == 532, job
    assert host_used(cloud, host) == used0 and counts(cloud, owner) == before
    assert sim.vm(vm["id"])["cpunumber"] == 1


# --- migrateVirtualMachine ------------------------------------------------------------------


def test_migrate_to_a_chosen_host_then_to_the_planners(sim: SimZone, tenant: Tenant) -> None:
    cloud = sim.cloud
    vm = deployed(sim, tenant.keys)
    source = sim.vm(vm["id"])["hostid"]
    target = next(h["id"] for h in sim.hosts if h["id"] != source)
    src0, dst0 = host_used(cloud, source), host_used(cloud, target)
    job = run(cloud, cloud.admin, "migrateVirtualMachine", virtualmachineid=vm["id"], hostid=target)
    assert job["jobstatus"] == 1, job
    moved = job["jobresult"]["virtualmachine"]
    assert (moved["state"], moved["hostid"]) == ("Running", target)
    assert host_used(cloud, source) == (src0[0] - 500, src0[1] - 512 * MIB)
    assert host_used(cloud, target) == (dst0[0] + 500, dst0[1] + 512 * MIB)
    again = run(cloud, cloud.admin, "migrateVirtualMachine", virtualmachineid=vm["id"])
    assert again["jobstatus"] == 1 and again["jobresult"]["virtualmachine"]["hostid"] != target
    events = cloud.call("listEvents", type="VM.MIGRATE", listall=True, pagesize=500)["event"]
    assert sum(e.get("resourceid") == vm["id"] for e in events) >= 2
    # the VM really moved on the simulated hosts: its new host stops it
    stop(sim, tenant.keys, vm["id"])
    assert host_used(cloud, target) == dst0


def test_migrate_refusals_change_nothing(sim: SimZone, tenant: Tenant) -> None:
    cloud = sim.cloud
    vm = deployed(sim, tenant.keys)
    here = sim.vm(vm["id"])["hostid"]
    stopped = deployed(sim, tenant.keys, startvm=False)
    cases: list[tuple[Keys, dict[str, Any], int]] = [
        (tenant.keys, {"virtualmachineid": vm["id"]}, 432),  # admins only
        (cloud.admin, {"virtualmachineid": vm["id"], "hostid": here}, 431),  # same host
        (cloud.admin, {"virtualmachineid": stopped["id"]}, 431),  # not running
        (cloud.admin, {"virtualmachineid": vm["id"], "hostid": sim.pool["id"]}, 431),
    ]
    used = host_used(cloud, here)
    for keys, params, code in cases:
        assert refused(cloud, keys, "migrateVirtualMachine", **params) == code, params
    listed = sim.vm(vm["id"])
    assert (listed["hostid"], listed["state"]) == (here, "Running")
    assert host_used(cloud, here) == used


def test_a_failing_migration_leaves_the_vm_running_on_its_host(
    sim: SimZone, tenant: Tenant
) -> None:
    cloud = sim.cloud
    vm = deployed(sim, tenant.keys)
    source = sim.vm(vm["id"])["hostid"]
    target = next(h["id"] for h in sim.hosts if h["id"] != source)
    src0, dst0 = host_used(cloud, source), host_used(cloud, target)
    mock = cloud.call(
        "configureSimulator", name="MigrateCommand", value="result:fail", hostid=source
    )["simulatormock"]
    try:
        job = run(
            cloud, cloud.admin, "migrateVirtualMachine", virtualmachineid=vm["id"], hostid=target
        )
    finally:
        cloud.call("cleanupSimulatorMock", id=mock["id"])
    assert job["jobstatus"] == 2 and job["jobresultcode"] == 530, job
    assert "MigrateCommand failed" in job["jobresult"]["errortext"]
    listed = sim.vm(vm["id"])
    assert (listed["state"], listed["hostid"]) == ("Running", source)
    assert host_used(cloud, source) == src0 and host_used(cloud, target) == dst0
    rebooted = run(cloud, tenant.keys, "rebootVirtualMachine", id=vm["id"])
    assert rebooted["jobstatus"] == 1  # it still runs on the source


@contextmanager
def mocked(cloud: Cloud, value: str, host: str) -> Iterator[None]:
    mock = cloud.call("configureSimulator", name="MigrateCommand", value=value, hostid=host)
    try:
        yield
    finally:
        cloud.call("cleanupSimulatorMock", id=mock["simulatormock"]["id"])


@contextmanager
def setting(cloud: Cloud, name: str, value: str) -> Iterator[None]:
    old = cloud.call("listConfigurations", name=name)["configuration"][0]["value"]
    cloud.call("updateConfiguration", name=name, value=value)
    try:
        yield
    finally:
        cloud.call("updateConfiguration", name=name, value=old)


def test_a_lost_migration_answer_is_settled_by_asking_the_target(
    sim: SimZone, tenant: Tenant
) -> None:
    cloud = sim.cloud
    vm = deployed(sim, tenant.keys)
    source = sim.vm(vm["id"])["hostid"]
    target = next(h["id"] for h in sim.hosts if h["id"] != source)
    src0, dst0 = host_used(cloud, source), host_used(cloud, target)
    with mocked(cloud, "timeout:true", source):  # done on the hosts, the answer lost
        job = run(
            cloud, cloud.admin, "migrateVirtualMachine", virtualmachineid=vm["id"], hostid=target
        )
    assert job["jobstatus"] == 1, job
    assert sim.vm(vm["id"])["hostid"] == target
    assert host_used(cloud, source) == (src0[0] - 500, src0[1] - 512 * MIB)
    assert host_used(cloud, target) == (dst0[0] + 500, dst0[1] + 512 * MIB)


def test_a_migration_too_slow_for_the_wait_stays_on_the_source(
    sim: SimZone, tenant: Tenant
) -> None:
    cloud = sim.cloud
    vm = deployed(sim, tenant.keys)
    source = sim.vm(vm["id"])["hostid"]
    target = next(h["id"] for h in sim.hosts if h["id"] != source)
    src0, dst0 = host_used(cloud, source), host_used(cloud, target)
    with setting(cloud, "wait", "1"), mocked(cloud, "wait:1500", source):
        job = run(
            cloud, cloud.admin, "migrateVirtualMachine", virtualmachineid=vm["id"], hostid=target
        )
    assert job["jobstatus"] == 2 and "timed out" in job["jobresult"]["errortext"], job
    listed = sim.vm(vm["id"])
    assert (listed["state"], listed["hostid"]) == ("Running", source)
    assert host_used(cloud, source) == src0 and host_used(cloud, target) == dst0


# --- restoreVirtualMachine ------------------------------------------------------------------


def restore_call(cloud: Cloud, keys: Keys, **params: Any) -> tuple[int, dict[str, Any]]:
    resp = cloud.signed("restoreVirtualMachine", keys, **params)
    body: dict[str, Any] = resp.json()["restorevmresponse"]
    return resp.status_code, body


def test_restore_gives_a_running_vm_a_fresh_root_disk(
    sim: SimZone, tenant: Tenant, cloud: Cloud, scalable: dict[str, Any]
) -> None:
    job = sim.deploy(tenant.keys)
    vm, first_password = (
        job["jobresult"]["virtualmachine"],
        job["jobresult"]["virtualmachine"]["password"],
    )
    before = counts(cloud, tenant)
    used0 = zone_used(sim)
    status, body = restore_call(cloud, tenant.keys, virtualmachineid=vm["id"])
    assert status == 200
    done = cloud.wait_job(body["jobid"], tenant.keys)
    assert done["jobstatus"] == 1, done
    got = done["jobresult"]["virtualmachine"]
    assert (got["state"], got["templateid"]) == ("Running", sim.template["id"])
    assert got["password"] and got["password"] != first_password
    assert counts(cloud, tenant) == before and zone_used(sim) == used0
    # a new template through the `cs` client (it unwraps restorevmresponse)
    result = tenant.cs.restoreVirtualMachine(
        virtualmachineid=vm["id"], templateid=scalable["id"], fetch_result=True
    )
    assert result["virtualmachine"]["templateid"] == scalable["id"]
    assert counts(cloud, tenant) == before


def test_restore_refusals_change_nothing(sim: SimZone, tenant: Tenant, cloud: Cloud) -> None:
    vm = deployed(sim, tenant.keys, startvm=False)
    before = counts(cloud, tenant)
    status, body = restore_call(
        cloud,
        tenant.keys,
        virtualmachineid=vm["id"],
        templateid="7d6c0e3c-54c9-4f1f-8d89-000000000000",
    )
    assert status == 431 and body["errorcode"] == 431
    gone = deployed(sim, tenant.keys, startvm=False)
    assert run(cloud, cloud.admin, "destroyVirtualMachine", id=gone["id"])["jobstatus"] == 1
    status, _ = restore_call(cloud, cloud.admin, virtualmachineid=gone["id"])
    assert status == 431
    assert sim.vm(vm["id"])["templateid"] == sim.template["id"]
    # the destroyed VM gave its instance, CPU and memory back and keeps its volume
    assert counts(cloud, tenant) == {**before, "volume": before["volume"] + 1}


# --- passwords and SSH keys -----------------------------------------------------------------


def test_reset_password_needs_a_stopped_vm_and_shows_it_once(
    sim: SimZone, tenant: Tenant, plain: dict[str, Any]
) -> None:
    cloud = sim.cloud
    job = sim.deploy(tenant.keys)
    vm, first = job["jobresult"]["virtualmachine"], job["jobresult"]["virtualmachine"]["password"]
    assert refused(cloud, tenant.keys, "resetPasswordForVirtualMachine", id=vm["id"]) == 431
    stop(sim, tenant.keys, vm["id"])
    reset = run(cloud, tenant.keys, "resetPasswordForVirtualMachine", id=vm["id"])
    assert reset["jobstatus"] == 1, reset
    new = reset["jobresult"]["virtualmachine"]["password"]
    assert new and new != first
    assert "password" not in sim.vm(vm["id"], tenant.keys)
    chosen = tenant.cs.resetPasswordForVirtualMachine(
        id=vm["id"], password="Chosen-pw-1", fetch_result=True
    )
    assert chosen["virtualmachine"]["password"] == "Chosen-pw-1"
    no_pw = deployed(sim, tenant.keys, templateid=plain["id"], startvm=False)
    assert refused(cloud, tenant.keys, "resetPasswordForVirtualMachine", id=no_pw["id"]) == 431


def test_get_vm_password_is_encrypted_with_the_key_pair(
    sim: SimZone, tenant: Tenant, plain: dict[str, Any]
) -> None:
    cloud = sim.cloud
    pair = tenant.cs.createSSHKeyPair(name=uniq("kp"))["keypair"]
    job = sim.deploy(tenant.keys, keypair=pair["name"], startvm=False)
    vm = job["jobresult"]["virtualmachine"]
    assert vm["keypairs"] == pair["name"]
    sealed = tenant.cs.getVMPassword(id=vm["id"])["password"]["encryptedpassword"]
    key = serialization.load_pem_private_key(pair["privatekey"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    plain_text = key.decrypt(base64.b64decode(sealed), padding.PKCS1v15()).decode()
    assert plain_text == vm["password"]
    no_key = deployed(sim, tenant.keys, startvm=False)
    assert refused(cloud, tenant.keys, "getVMPassword", id=no_key["id"]) == 431
    other = make_tenant(cloud, make_domain(cloud)["id"])
    assert refused(cloud, other.keys, "getVMPassword", id=vm["id"]) == 531
    no_pw = deployed(sim, tenant.keys, templateid=plain["id"], keypair=pair["name"], startvm=False)
    assert refused(cloud, tenant.keys, "getVMPassword", id=no_pw["id"]) == 431


def test_reset_ssh_key(sim: SimZone, tenant: Tenant) -> None:
    cloud = sim.cloud
    first = tenant.cs.createSSHKeyPair(name=uniq("kp"))["keypair"]["name"]
    second = tenant.cs.createSSHKeyPair(name=uniq("kp"))["keypair"]["name"]
    vm = deployed(sim, tenant.keys, keypair=first)
    assert (
        refused(cloud, tenant.keys, "resetSSHKeyForVirtualMachine", id=vm["id"], keypair=second)
        == 431
    )
    stop(sim, tenant.keys, vm["id"])
    assert (
        refused(cloud, tenant.keys, "resetSSHKeyForVirtualMachine", id=vm["id"], keypair="nope")
        == 431
    )
    assert sim.vm(vm["id"], tenant.keys)["keypairs"] == first
    job = run(
        cloud,
        tenant.keys,
        "resetSSHKeyForVirtualMachine",
        id=vm["id"],
        keypairs=f"{first},{second}",
    )
    assert job["jobstatus"] == 1, job
    got = job["jobresult"]["virtualmachine"]
    assert got["keypairs"] == f"{first},{second}" and got["password"]  # a new password too
    assert sim.vm(vm["id"], tenant.keys)["keypairs"] == f"{first},{second}"


# --- affinity groups ------------------------------------------------------------------------


def test_update_vm_affinity_group_and_list_members(sim: SimZone, tenant: Tenant) -> None:
    cloud = sim.cloud
    made = run(
        cloud, tenant.keys, "createAffinityGroup", name=uniq("ag"), type="host anti-affinity"
    )
    group = made["jobresult"]["affinitygroup"]
    vm = deployed(sim, tenant.keys)
    assert (
        refused(
            cloud, tenant.keys, "updateVMAffinityGroup", id=vm["id"], affinitygroupids=group["id"]
        )
        == 431
    )
    stop(sim, tenant.keys, vm["id"])
    other = make_tenant(cloud, make_domain(cloud)["id"])
    foreign = run(cloud, other.keys, "createAffinityGroup", name=uniq("ag"), type="host affinity")
    foreign_id = foreign["jobresult"]["affinitygroup"]["id"]
    bad = refused(
        cloud, tenant.keys, "updateVMAffinityGroup", id=vm["id"], affinitygroupids=foreign_id
    )
    assert bad == 431 and sim.vm(vm["id"], tenant.keys)["affinitygroup"] == []
    job = run(
        cloud, tenant.keys, "updateVMAffinityGroup", id=vm["id"], affinitygroupnames=group["name"]
    )
    assert job["jobstatus"] == 1, job
    assert [g["id"] for g in job["jobresult"]["virtualmachine"]["affinitygroup"]] == [group["id"]]
    listed = tenant.cs.listAffinityGroups(id=group["id"])["affinitygroup"][0]
    assert listed["virtualmachineIds"] == [vm["id"]]
    by_vm = tenant.cs.listAffinityGroups(virtualmachineid=vm["id"])["affinitygroup"]
    assert [g["id"] for g in by_vm] == [group["id"]]
    # a group with VMs in it is not deleted
    assert refused(cloud, tenant.keys, "deleteAffinityGroup", id=group["id"]) == 536
    assert tenant.cs.listAffinityGroups(id=group["id"])["affinitygroup"]


def test_anti_affinity_spreads_and_refuses_a_fourth_vm(
    cloud: Cloud, files: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    trio = build(cloud, tmp_path_factory.mktemp("trio"), files, hosts=3)
    owner = make_tenant(cloud, make_domain(cloud)["id"])
    group = run(
        cloud, owner.keys, "createAffinityGroup", name=uniq("spread"), type="host anti-affinity"
    )
    gid = group["jobresult"]["affinitygroup"]["id"]
    spread = [deployed(trio, owner.keys, affinitygroupids=gid)["id"] for _ in range(3)]
    hosts = {trio.vm(vm_id)["hostid"] for vm_id in spread}
    assert len(hosts) == 3
    # migration honours the rule too: every other host already has a member
    other_host = trio.vm(spread[1])["hostid"]
    for params in ({}, {"hostid": other_host}):
        code = refused(
            cloud, cloud.admin, "migrateVirtualMachine", virtualmachineid=spread[0], **params
        )
        assert code == 533, params
    assert {trio.vm(vm_id)["hostid"] for vm_id in spread} == hosts
    before, used0 = counts(cloud, owner), zone_used(trio)
    fourth = trio.deploy(owner.keys, affinitygroupids=gid)
    assert fourth["jobstatus"] == 2 and fourth["jobresultcode"] == 533, fourth
    assert counts(cloud, owner) == before and zone_used(trio) == used0
    together = run(
        cloud, owner.keys, "createAffinityGroup", name=uniq("pack"), type="host affinity"
    )
    tid = together["jobresult"]["affinitygroup"]["id"]
    placed = {
        trio.vm(deployed(trio, owner.keys, affinitygroupids=tid)["id"])["hostid"] for _ in range(3)
    }
    assert len(placed) == 1


# --- tags -----------------------------------------------------------------------------------


def test_vms_are_taggable_and_filtered_by_tags(sim: SimZone, tenant: Tenant, cloud: Cloud) -> None:
    vm = deployed(sim, tenant.keys, startvm=False)
    key = uniq("tier")
    job = run(
        cloud,
        tenant.keys,
        "createTags",
        resourcetype="UserVm",
        resourceids=vm["id"],
        **{"tags[0].key": key, "tags[0].value": "gold"},
    )
    assert job["jobstatus"] == 1, job
    found = tenant.cs.listVirtualMachines(**{"tags[0].key": key, "tags[0].value": "gold"})
    assert [v["id"] for v in found["virtualmachine"]] == [vm["id"]]
    assert found["virtualmachine"][0]["tags"][0]["key"] == key
    tags = tenant.cs.listTags(resourcetype="UserVm", key=key)["tag"]
    assert [t["resourceid"] for t in tags] == [vm["id"]]
    other = make_tenant(cloud, make_domain(cloud)["id"])
    code = refused(
        cloud,
        other.keys,
        "createTags",
        resourcetype="UserVm",
        resourceids=vm["id"],
        **{"tags[0].key": "x", "tags[0].value": "y"},
    )
    assert code == 531
    assert len(tenant.cs.listTags(resourceid=vm["id"])["tag"]) == 1
    gone = run(
        cloud,
        tenant.keys,
        "deleteTags",
        resourcetype="UserVm",
        resourceids=vm["id"],
        **{"tags[0].key": key},
    )
    assert gone["jobstatus"] == 1
    assert not tenant.cs.listVirtualMachines(**{"tags[0].key": key}).get("virtualmachine")


def test_cs_client_raises_on_refusals(sim: SimZone, tenant: Tenant) -> None:
    vm = deployed(sim, tenant.keys)
    with pytest.raises(CloudStackApiException) as err:
        tenant.cs.resetSSHKeyForVirtualMachine(id=vm["id"], keypair="whatever")
    assert err.value.error["errorcode"] == 431
