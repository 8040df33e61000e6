"""The integration port (CloudStack's integration.api.port, marvin's 8096), reference §1.2.

It is an unauthenticated root-admin API, so it is off unless configured, and when on it
listens on loopback only, whatever api.host says.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cs import CloudStack

from cumulo.common.settings import ApiSettings
from tests.support.cloud import Cloud, Keys, free_port, make_cloud


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, read from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A is LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            found.add((_address(addr_hex), int(port_hex, 16)))
    return found


def _address(hex_addr: str) -> str:
    if len(hex_addr) == 8:  # IPv4, little-endian
        return socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1])
    return hex_addr


def non_loopback_ipv4() -> str | None:
    try:
        out = subprocess.run(
            ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for addr in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out):
        if not addr.startswith("127."):
            return addr
    return None


@pytest.fixture(scope="module")
def integration_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    port = free_port()
    c = make_cloud(tmp_path_factory.mktemp("integration"), CUMULO_API__INTEGRATION_PORT=str(port))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _unsigned(port: int, **params: str) -> httpx.Response:
    url = f"http://127.0.0.1:{port}/client/api"
    return httpx.get(url, params={"response": "json", **params}, timeout=30)


def test_off_by_default_in_settings() -> None:
    assert ApiSettings().integration_port == 0


def assert_no_port_answers_unsigned(c: Cloud) -> None:
    """Whatever else the server may come to listen on, no port runs an unsigned admin call."""
    assert c.proc is not None
    ports = listening(c.proc.pid)
    assert ("127.0.0.1", c.port) in ports
    for addr, port in ports:
        host = "127.0.0.1" if addr in ("0.0.0.0", "127.0.0.1") else addr
        url = f"http://{host}:{port}/client/api"
        resp = httpx.get(url, params={"command": "listUsers", "response": "json"}, timeout=10)
        assert resp.status_code != 200, (addr, port, resp.text)


def test_the_shared_server_has_no_integration_port(cloud: Cloud) -> None:
    assert cloud.integration_port == 0
    assert_no_port_answers_unsigned(cloud)


def test_a_default_cloud_opens_no_integration_port(tmp_path: Path) -> None:
    c = make_cloud(tmp_path / "default")
    assert c.integration_port == 0
    assert "CUMULO_API__INTEGRATION_PORT" not in c.env
    c.start()
    try:
        assert_no_port_answers_unsigned(c)
        # The API port itself wants credentials.
        assert _unsigned(c.port, command="listUsers").status_code == 401
    finally:
        c.stop()


def test_enabled_port_listens_on_loopback_only(integration_cloud: Cloud) -> None:
    c = integration_cloud
    assert c.proc is not None
    ports = listening(c.proc.pid)
    assert ("127.0.0.1", c.integration_port) in ports
    # Bound to loopback, not to every address.
    assert [a for a, p in ports if p == c.integration_port] == ["127.0.0.1"]


def test_enabled_port_is_not_reachable_from_another_address(integration_cloud: Cloud) -> None:
    addr = non_loopback_ipv4()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address to try the port from")
    with (
        pytest.raises(OSError),
        socket.create_connection((addr, integration_cloud.integration_port), 3),
    ):
        pass


def test_unsigned_admin_calls_work_on_the_integration_port(integration_cloud: Cloud) -> None:
    c = integration_cloud
    resp = _unsigned(c.integration_port, command="listUsers", username="admin")
    assert resp.status_code == 200, resp.text
    body = resp.json()["listusersresponse"]
    assert body["count"] == 1 and body["user"][0]["roletype"] == "Admin"
    # The same unsigned call on the public port is refused.
    assert _unsigned(c.port, command="listUsers").status_code == 401


def test_marvin_bootstrap_through_the_integration_port(integration_cloud: Cloud) -> None:
    """marvin: listUsers, getUserKeys, registerUserKeys unsigned on 8096, then sign on 8080."""
    c = integration_cloud
    unsigned = CloudStack(endpoint=f"http://127.0.0.1:{c.integration_port}/client/api")
    name = f"marvin-{uuid.uuid4().hex[:8]}"
    account = unsigned.createAccount(
        username=name,
        password="pw-123456",
        firstname="Mar",
        lastname="Vin",
        email="m@example.com",
        accounttype=1,
    )["account"]
    user = unsigned.listUsers(username=name, listall=True)["user"][0]
    assert user["accountid"] == account["id"]
    keys = unsigned.registerUserKeys(id=user["id"])["userkeys"]
    assert unsigned.getUserKeys(id=user["id"])["userkeys"]["apikey"] == keys["apikey"]
    signed = CloudStack(endpoint=c.endpoint, key=keys["apikey"], secret=keys["secretkey"])
    assert signed.listUsers(username=name, listall=True)["count"] == 1
    assert c.call("listUsers", Keys(keys["apikey"], keys["secretkey"]), id=user["id"])["count"] == 1


def test_unknown_command_on_the_integration_port_is_432(integration_cloud: Cloud) -> None:
    resp = _unsigned(integration_cloud.integration_port, command="listNothing")
    assert resp.status_code == 432
    assert resp.json()["errorresponse"]["errorcode"] == 432
