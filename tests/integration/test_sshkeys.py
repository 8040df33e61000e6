"""SSH key pairs through the real server, with libcloud's key pair methods and raw calls."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from tests.integration.tenants import DOMAIN_ADMIN, Tenant, error, make_domain, make_tenant, uniq
from tests.support.cloud import Cloud


def _driver(tenant: Tenant) -> Any:
    cls = get_driver(Provider.CLOUDSTACK)
    cloud = tenant.cloud
    return cls(
        tenant.keys.api_key,
        tenant.keys.secret,
        host="127.0.0.1",
        port=cloud.port,
        path="/client/api",
        secure=False,
    )


def _md5_fingerprint(openssh_line: str) -> str:
    digest = hashlib.md5(base64.b64decode(openssh_line.split()[1])).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def _names(tenant: Tenant, **params: Any) -> set[str]:
    return {k["name"] for k in tenant.call("listSSHKeyPairs", **params).get("sshkeypair", [])}


def _ed25519_public() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def test_created_private_key_matches_listed_fingerprint(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    driver = _driver(tenant)
    name = uniq("kp")
    pair = driver.create_key_pair(name)
    private = serialization.load_pem_private_key(pair.private_key.encode(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    listed = {k.name: k for k in driver.list_key_pairs()}
    assert listed[name].fingerprint == _md5_fingerprint(public.decode()) == pair.fingerprint
    assert listed[name].private_key is None  # never stored, never shown again
    body = tenant.call("listSSHKeyPairs", name=name)["sshkeypair"][0]
    assert "privatekey" not in body
    assert body["account"] == tenant.name and body["domainid"] == tenant.domain_id


def test_import_and_delete_with_libcloud(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    driver = _driver(tenant)
    public = _ed25519_public()
    name = uniq("imp")
    pair = driver.import_key_pair_from_string(name, public + " me@laptop")
    assert pair.fingerprint == _md5_fingerprint(public)
    assert driver.get_key_pair(name).fingerprint == pair.fingerprint
    assert tenant.call("listSSHKeyPairs", fingerprint=pair.fingerprint)["count"] == 1
    events = tenant.call("listEvents", type="REGISTER.SSH.KEYPAIR").get("event", [])
    assert any(e.get("resourcename") == name for e in events)
    # libcloud returns ``success == "true"`` (a string); the envelope sends a JSON boolean, so
    # its return value is not asserted here: the key being gone is.
    driver.delete_key_pair(pair)
    assert name not in _names(tenant)


def test_invalid_public_key_is_refused_and_nothing_written(cloud: Cloud) -> None:
    tenant = make_tenant(cloud)
    good = _ed25519_public()
    corrupt = good.split()[0] + " " + base64.b64encode(b"not a key blob").decode()
    for bad in ("hello", "ssh-rsa !!!notbase64", corrupt, "ssh-foo " + good.split()[1]):
        name = uniq("bad")
        resp = tenant.raw("registerSSHKeyPair", name=name, publickey=bad)
        assert error(resp, "registerSSHKeyPair")[0] == 431
        assert name not in _names(tenant)


def test_names_and_keys_are_unique_per_account(cloud: Cloud) -> None:
    tenant, other = make_tenant(cloud), make_tenant(cloud)
    public, name = _ed25519_public(), uniq("dup")
    tenant.call("registerSSHKeyPair", name=name, publickey=public)
    resp = tenant.raw("registerSSHKeyPair", name=name, publickey=_ed25519_public())
    assert error(resp, "registerSSHKeyPair")[0] == 431
    resp = tenant.raw("registerSSHKeyPair", name=uniq("same"), publickey=public)
    assert error(resp, "registerSSHKeyPair")[0] == 431
    assert tenant.call("listSSHKeyPairs")["count"] == 1
    # Another account may use the same name and the same key.
    other.call("registerSSHKeyPair", name=name, publickey=public)


def test_tenants_do_not_see_or_delete_each_others_keys(cloud: Cloud) -> None:
    alice, bob = make_tenant(cloud), make_tenant(cloud)
    name = uniq("alice")
    alice.call("createSSHKeyPair", name=name)
    assert bob.call("listSSHKeyPairs", listall="true") == {}
    assert bob.call("listSSHKeyPairs", name=name) == {}
    resp = bob.raw("deleteSSHKeyPair", name=name)
    assert error(resp, "deleteSSHKeyPair")[0] == 431
    resp = bob.raw("deleteSSHKeyPair", name=name, account=alice.name, domainid=alice.domain_id)
    assert error(resp, "deleteSSHKeyPair")[0] == 531
    resp = bob.raw("listSSHKeyPairs", account=alice.name, domainid=alice.domain_id)
    assert resp.status_code == 531
    assert name in _names(alice)


def test_domain_admin_manages_keys_within_its_domain(cloud: Cloud) -> None:
    domain = make_domain(cloud)
    admin = make_tenant(cloud, domain["id"], DOMAIN_ADMIN)
    user = make_tenant(cloud, domain["id"])
    outsider = make_tenant(cloud)
    name = uniq("for-user")
    made = admin.call("createSSHKeyPair", name=name, account=user.name, domainid=user.domain_id)[
        "keypair"
    ]
    assert made["account"] == user.name and "privatekey" in made
    assert name in _names(user)
    assert name in _names(admin, listall="true")
    resp = admin.raw(
        "createSSHKeyPair", name=uniq("x"), account=outsider.name, domainid=outsider.domain_id
    )
    assert resp.status_code == 531
    admin.call("deleteSSHKeyPair", name=name, account=user.name, domainid=user.domain_id)
    assert name not in _names(user)
