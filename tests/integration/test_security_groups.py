"""Security groups through `cs` and libcloud: create, list, authorize and revoke ingress and
egress rules (CIDRs and other groups), the per-account default group, deletes and their
refusals; bad input is refused with its code and leaves the group as it was."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.tenants import Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud
from tests.support.netzone import libcloud_driver


@pytest.fixture(scope="module")
def tenant(cloud: Cloud) -> Tenant:
    return make_tenant(cloud, make_domain(cloud)["id"])


def groups(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tenant.call("listSecurityGroups", **params).get(
        "securitygroup", []
    )
    return found


def job(tenant: Tenant, command: str, **params: Any) -> dict[str, Any]:
    return tenant.cloud.wait_job(tenant.call(command, **params)["jobid"], tenant.keys)


def test_create_makes_the_default_group_too(tenant: Tenant) -> None:
    name = uniq("sg")
    made = tenant.call("createSecurityGroup", name=name, description="web tier")["securitygroup"]
    assert (made["name"], made["description"]) == (name, "web tier")
    assert made["ingressrule"] == [] and made["egressrule"] == []
    assert made["account"] == tenant.name and made["virtualmachinecount"] == 0
    names = {g["name"] for g in groups(tenant)}
    assert {"default", name} <= names
    assert [g["id"] for g in groups(tenant, securitygroupname=name)] == [made["id"]]
    other = make_tenant(tenant.cloud, tenant.domain_id)
    assert name not in {g["name"] for g in groups(other)}


def test_create_bad_input_changes_nothing(tenant: Tenant) -> None:
    taken = uniq("sg")
    tenant.call("createSecurityGroup", name=taken)
    before = {g["id"] for g in groups(tenant)}
    for name in (taken, "default", "  "):
        code, _ = error(tenant.raw("createSecurityGroup", name=name), "createSecurityGroup")
        assert code == 431, name
    assert {g["id"] for g in groups(tenant)} == before


def test_authorize_and_revoke_ingress_and_egress(tenant: Tenant) -> None:
    group = tenant.call("createSecurityGroup", name=uniq("sg"))["securitygroup"]
    done = job(
        tenant,
        "authorizeSecurityGroupIngress",
        securitygroupid=group["id"],
        protocol="TCP",
        startport=22,
        endport=22,
        cidrlist="198.51.100.0/24,192.0.2.7/32",
    )
    assert done["jobstatus"] == 1, done
    ingress = done["jobresult"]["securitygroup"]["ingressrule"]
    assert sorted(r["cidr"] for r in ingress) == ["192.0.2.7/32", "198.51.100.0/24"]
    assert {(r["protocol"], r["startport"], r["endport"]) for r in ingress} == {("tcp", 22, 22)}
    again = job(
        tenant,
        "authorizeSecurityGroupIngress",
        securitygroupid=group["id"],
        protocol="tcp",
        startport=22,
        endport=22,
        cidrlist="198.51.100.0/24",
    )
    assert len(again["jobresult"]["securitygroup"]["ingressrule"]) == 2  # duplicate skipped
    icmp = job(
        tenant,
        "authorizeSecurityGroupEgress",
        securitygroupid=group["id"],
        protocol="icmp",
        icmptype=-1,
        icmpcode=-1,
        cidrlist="0.0.0.0/0",
    )
    assert icmp["jobresult"]["securitygroup"]["egressrule"][0]["icmptype"] == -1
    rule_id = ingress[0]["ruleid"]
    assert job(tenant, "revokeSecurityGroupIngress", id=rule_id)["jobstatus"] == 1
    left = groups(tenant, id=group["id"])[0]
    assert rule_id not in {r["ruleid"] for r in left["ingressrule"]}
    assert len(left["ingressrule"]) == 1 and len(left["egressrule"]) == 1
    code, _ = error(
        tenant.raw("revokeSecurityGroupEgress", id=rule_id), "revokeSecurityGroupEgress"
    )
    assert code == 431  # an ingress rule id is no egress rule


def test_authorize_bad_input_changes_nothing(tenant: Tenant) -> None:
    group = tenant.call("createSecurityGroup", name=uniq("sg"))["securitygroup"]
    base = {"securitygroupid": group["id"], "cidrlist": "0.0.0.0/0"}
    for bad in (
        {"protocol": "tcp"},  # ports missing
        {"protocol": "tcp", "startport": 30, "endport": 20},
        {"protocol": "tcp", "startport": 1, "endport": 70000},
        {"protocol": "bogus", "startport": 1, "endport": 2},
        {"protocol": "icmp"},  # type and code missing
        {"protocol": "icmp", "icmptype": 999, "icmpcode": 0},
        {"protocol": "tcp", "startport": 1, "endport": 2, "cidrlist": "300.1.1.0/24"},
        {"protocol": "tcp", "startport": 1, "endport": 2, "cidrlist": ""},
    ):
        code, body = error(
            tenant.raw("authorizeSecurityGroupIngress", **{**base, **bad}),
            "authorizeSecurityGroupIngress",
        )
        assert code == 431, (bad, body)
    assert groups(tenant, id=group["id"])[0]["ingressrule"] == []


def test_group_references_and_deletes(tenant: Tenant) -> None:
    web = tenant.call("createSecurityGroup", name=uniq("web"))["securitygroup"]
    db = tenant.call("createSecurityGroup", name=uniq("db"))["securitygroup"]
    done = job(
        tenant,
        "authorizeSecurityGroupIngress",
        securitygroupid=db["id"],
        protocol="tcp",
        startport=5432,
        endport=5432,
        **{
            "usersecuritygrouplist[0].account": tenant.name,
            "usersecuritygrouplist[0].group": web["name"],
        },
    )
    assert done["jobstatus"] == 1, done
    [rule] = done["jobresult"]["securitygroup"]["ingressrule"]
    assert (rule["securitygroupname"], rule["account"]) == (web["name"], tenant.name)
    code, _ = error(tenant.raw("deleteSecurityGroup", id=web["id"]), "deleteSecurityGroup")
    assert code == 536  # db's rule names it
    assert groups(tenant, id=web["id"])
    default = groups(tenant, securitygroupname="default")[0]
    code, _ = error(tenant.raw("deleteSecurityGroup", id=default["id"]), "deleteSecurityGroup")
    assert code == 431 and groups(tenant, id=default["id"])
    other = make_tenant(tenant.cloud, tenant.domain_id)
    code, _ = error(other.raw("deleteSecurityGroup", id=db["id"]), "deleteSecurityGroup")
    assert code == 531
    assert tenant.call("deleteSecurityGroup", id=db["id"])["success"] is True
    assert tenant.call("deleteSecurityGroup", name=web["name"])["success"] is True
    assert groups(tenant, id=web["id"]) == [] and groups(tenant, id=db["id"]) == []


def test_libcloud_security_group_calls(tenant: Tenant) -> None:
    driver = libcloud_driver(tenant.cloud, tenant.keys)
    name = uniq("lcsg")
    made = driver.ex_create_security_group(name, description="from libcloud")
    assert made["name"] == name
    group = driver.ex_authorize_security_group_ingress(name, "tcp", "10.0.0.0/8", 80, 81)
    assert [(r["startport"], r["endport"]) for r in group["ingressrule"]] == [(80, 81)]
    listed = {g["name"]: g for g in driver.ex_list_security_groups()}
    assert listed[name]["ingressrule"][0]["cidr"] == "10.0.0.0/8"
    assert driver.ex_revoke_security_group_ingress(group["ingressrule"][0]["ruleid"])
    assert driver.ex_delete_security_group(name) is True
    assert name not in {g["name"] for g in driver.ex_list_security_groups()}
