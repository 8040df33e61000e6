"""VM consoles: createConsoleEndpoint → a WebSocket on the server → the host's agent → VNC.

The server is this module's own (the token lifetime is changed through updateConfiguration).
Hosts: a ``cumulo agent --driver sim`` process (its fake VNC server speaks the start of RFB
3.8), simulated in-process hosts, two servers sharing one database (the agent connected to
one, the user to the other), and a real QEMU VM in a host namespace (marked vm/net/slow).
"""

from __future__ import annotations

import os
import sqlite3
import struct
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.integration.tenants import client, make_domain, make_tenant
from tests.integration.test_agent import AgentProc, KvmZone, kvm_zone, wait_for
from tests.integration.test_kvm_vms import (  # noqa: F401  (fixtures)
    host_netns,
    job,
    kvm,
    tiny,
)
from tests.support.cloud import Cloud, free_port, make_cloud
from tests.support.simzone import IMAGE, build, http_files


@pytest.fixture(scope="module")
def ccloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    c = make_cloud(tmp_path_factory.mktemp("console-cloud"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def kz(ccloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KvmZone]:
    """A KVM zone whose host is a real agent process with the simulator driver."""
    agents: list[AgentProc] = []
    try:
        yield kvm_zone(ccloud, agents, tmp_path_factory.mktemp("console-kz"), "10.78.0.11")
    finally:
        for agent in agents:
            agent.stop()


def running_vm(cloud: Cloud, zone: KvmZone) -> dict[str, Any]:
    result = zone.deploy(cloud)
    assert result["jobstatus"] == 1, result
    vm: dict[str, Any] = result["jobresult"]["virtualmachine"]
    assert vm["state"] == "Running"
    return vm


def endpoint(cloud: Cloud, vm_id: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = cloud.call("createConsoleEndpoint", virtualmachineid=vm_id, **params)[
        "consoleendpoint"
    ]
    return body


def ws_url(ep: dict[str, Any], address: str = "127.0.0.1") -> str:
    ws = ep["websocket"]
    return f"ws://{address}:{ws['port']}/{ws['path']}?token={ws['token']}"


class Reader:
    """Exact-size reads over WebSocket messages (RFB does not care how bytes are framed)."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn, self.buf = conn, b""

    def read(self, size: int) -> bytes:
        while len(self.buf) < size:
            message = self.conn.recv(timeout=20)
            self.buf += message if isinstance(message, bytes) else message.encode()
        out, self.buf = self.buf[:size], self.buf[size:]
        return out


def rfb_handshake(conn: ClientConnection) -> tuple[int, int, bytes]:
    """The RFB 3.8 handshake up to ServerInit with security None: (width, height, name)."""
    rd = Reader(conn)
    assert rd.read(12) == b"RFB 003.008\n"
    conn.send(b"RFB 003.008\n")
    count = rd.read(1)[0]
    assert 1 in rd.read(count), "security type None offered"
    conn.send(b"\x01")
    assert rd.read(4) == b"\x00\x00\x00\x00"
    conn.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", rd.read(4))
    rd.read(16)  # pixel format
    (length,) = struct.unpack(">I", rd.read(4))
    return width, height, rd.read(length)


def refused(url: str, **kwargs: Any) -> int:
    """The HTTP status with which the server refuses the WebSocket upgrade."""
    with pytest.raises(InvalidStatus) as err:
        connect(url, open_timeout=20, **kwargs).close()
    return int(err.value.response.status_code)


def token_rows(cloud: Cloud, vm_id: str) -> list[tuple[str, str | None]]:
    """(expires, used) of the VM's console tokens, straight from the server's database."""
    with sqlite3.connect(f"file:{cloud.data_dir / 'cumulo.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT t.expires, t.used FROM console_tokens t "
            "JOIN vm_instances v ON v.id = t.vm_id WHERE v.uuid = ? ORDER BY t.id",
            (vm_id,),
        ).fetchall()
    return [(str(e), u) for e, u in rows]


def test_a_console_token_opens_the_vnc_of_a_vm_on_an_agent_host_once(
    ccloud: Cloud, kz: KvmZone
) -> None:
    vm = running_vm(ccloud, kz)
    ep = endpoint(ccloud, vm["id"])
    assert ep["success"] is True
    ws = ep["websocket"]
    assert ws["host"] == "127.0.0.1" and ws["port"] == str(ccloud.port)
    assert ws["path"] == "console/v1" and len(ws["token"]) >= 40
    assert ep["url"].startswith(f"http://127.0.0.1:{ccloud.port}/console/")
    assert ws["token"] in ep["url"]

    with connect(ws_url(ep), subprotocols=["binary"], open_timeout=30) as conn:
        assert conn.subprotocol == "binary"
        width, height, name = rfb_handshake(conn)
    assert (width, height) == (640, 480) and name.decode() == vm["instancename"]

    assert refused(ws_url(ep), subprotocols=["binary"]) == 403  # used once already
    rows = token_rows(ccloud, vm["id"])
    assert len(rows) == 1 and rows[0][1] is not None


def test_expired_and_unknown_tokens_are_refused_and_consume_nothing(
    ccloud: Cloud, kz: KvmZone
) -> None:
    vm = running_vm(ccloud, kz)
    ccloud.call("updateConfiguration", name="console.token.lifetime", value="1")
    try:
        ep = endpoint(ccloud, vm["id"])
    finally:
        ccloud.call("updateConfiguration", name="console.token.lifetime", value="60")
    time.sleep(1.5)
    assert refused(ws_url(ep)) == 403
    assert token_rows(ccloud, vm["id"])[0][1] is None, "an expired token is never used"
    bogus = replace_token(ep, "x" * 43)
    assert refused(ws_url(bogus)) == 403

    fresh = endpoint(ccloud, vm["id"])  # the VM's console still opens with a new token
    with connect(ws_url(fresh), open_timeout=30) as conn:
        assert Reader(conn).read(12) == b"RFB 003.008\n"


def replace_token(ep: dict[str, Any], token: str) -> dict[str, Any]:
    return {**ep, "websocket": {**ep["websocket"], "token": token}}


def test_an_extra_token_must_come_with_the_websocket(ccloud: Cloud, kz: KvmZone) -> None:
    vm = running_vm(ccloud, kz)
    cs = client(ccloud, ccloud.admin)  # the real `cs` client parses the response
    ep = cs.createConsoleEndpoint(virtualmachineid=vm["id"], token="s3cr3t-extra")
    ep = ep["consoleendpoint"]
    assert ep["success"] is True and ep["websocket"]["extra"] == "s3cr3t-extra"
    assert refused(ws_url(ep) + "&extra=wrong") == 403
    ep2 = endpoint(ccloud, vm["id"], token="s3cr3t-extra")
    with connect(ws_url(ep2) + "&extra=s3cr3t-extra", open_timeout=30) as conn:
        assert Reader(conn).read(12) == b"RFB 003.008\n"


def test_no_console_for_a_stranger_or_a_stopped_vm(ccloud: Cloud, kz: KvmZone) -> None:
    vm = running_vm(ccloud, kz)
    stranger = make_tenant(ccloud, make_domain(ccloud)["id"])
    resp = stranger.raw("createConsoleEndpoint", virtualmachineid=vm["id"])
    assert resp.status_code == 531, resp.text
    assert resp.json()["createconsoleendpointresponse"]["errorcode"] == 531
    assert token_rows(ccloud, vm["id"]) == []

    stopped = ccloud.wait_job(ccloud.call("stopVirtualMachine", id=vm["id"])["jobid"], timeout=60)
    assert stopped["jobstatus"] == 1, stopped
    ep = endpoint(ccloud, vm["id"])
    assert ep["success"] is False and "not running" in ep["details"]
    assert "websocket" not in ep and "url" not in ep
    assert token_rows(ccloud, vm["id"]) == []


def test_the_dial_back_endpoint_refuses_strangers(ccloud: Cloud, kz: KvmZone) -> None:
    url = f"ws://127.0.0.1:{ccloud.port}/agent/v1/console?token=whatever"
    assert refused(url) == 403
    assert refused(url, additional_headers={"Authorization": "Bearer nope.nope"}) == 403


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_closed_consoles_leave_nothing_open_in_the_agent(ccloud: Cloud, tmp_path: Path) -> None:
    agents: list[AgentProc] = []
    try:
        zone = kvm_zone(ccloud, agents, tmp_path, "10.78.0.14")
        vm = running_vm(ccloud, zone)
        proc = agents[0].proc
        assert proc is not None
        with connect(ws_url(endpoint(ccloud, vm["id"])), open_timeout=30) as conn:
            rfb_handshake(conn)  # warm up: imports, thread pools
        time.sleep(1)
        baseline = open_fds(proc.pid)
        for _ in range(5):
            with connect(ws_url(endpoint(ccloud, vm["id"])), open_timeout=30) as conn:
                rfb_handshake(conn)
        wait_for(lambda: open_fds(proc.pid) <= baseline, 10, "agent sockets released")
    finally:
        for agent in agents:
            agent.stop()


def test_a_dying_agent_ends_its_consoles_and_opens_no_more(ccloud: Cloud, tmp_path: Path) -> None:
    agents: list[AgentProc] = []
    try:
        zone = kvm_zone(ccloud, agents, tmp_path, "10.78.0.13")
        vm = running_vm(ccloud, zone)
        ep, spare = endpoint(ccloud, vm["id"]), endpoint(ccloud, vm["id"])
        with connect(ws_url(ep), open_timeout=30) as conn:
            rfb_handshake(conn)
            agents[0].kill9()
            started = time.monotonic()
            with pytest.raises(ConnectionClosed):
                conn.recv(timeout=15)
            assert time.monotonic() - started < 15, "the user's WebSocket is closed promptly"
        started = time.monotonic()
        assert refused(ws_url(spare)) == 403  # the host has no agent: nothing to open
        assert time.monotonic() - started < 10
    finally:
        for agent in agents:
            agent.stop()


def test_a_console_on_a_simulated_host(ccloud: Cloud, tmp_path: Path) -> None:
    with http_files({"sim.qcow2": IMAGE}, tmp_path) as url:
        zone = build(ccloud, tmp_path, url, hosts=1)
    done = zone.deploy()
    assert done["jobstatus"] == 1, done
    vm = done["jobresult"]["virtualmachine"]
    ep = endpoint(ccloud, vm["id"])
    with connect(ws_url(ep), subprotocols=["binary"], open_timeout=30) as conn:
        _, _, name = rfb_handshake(conn)
    assert name.decode() == vm["instancename"]
    assert refused(ws_url(ep)) == 403


def test_farm_the_agent_dials_back_to_the_server_the_user_reached(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two servers on one database: the agent is connected to A; the user's console
    WebSocket is on B, whose OpenConsole reaches the agent through A's relay; the agent
    dials back to B, where the user is."""
    a = make_cloud(tmp_path_factory.mktemp("console-farm"))
    b = replace(a, port=free_port(), proc=None)
    b.env = {**a.env, "CUMULO_API__PORT": str(b.port)}
    agents: list[AgentProc] = []
    a.start()
    try:
        b.start()
        zone = kvm_zone(a, agents, tmp_path, "10.78.0.12")
        vm = running_vm(a, zone)
        ep = endpoint(b, vm["id"])
        assert ep["websocket"]["port"] == str(b.port)
        with connect(ws_url(ep), open_timeout=30) as conn:
            _, _, name = rfb_handshake(conn)
        assert name.decode() == vm["instancename"]
    finally:
        for agent in agents:
            agent.stop()
        b.stop()
        a.stop()


@pytest.mark.vm
@pytest.mark.net
@pytest.mark.slow
def test_the_console_of_a_real_qemu_vm(
    kvm: tuple[Cloud, dict[str, Any], AgentProc, Path, Path],  # noqa: F811
) -> None:
    cloud, ctx, _, _, _ = kvm
    vm = job(
        cloud,
        "deployVirtualMachine",
        zoneid=ctx["zone"]["id"],
        templateid=ctx["template"]["id"],
        serviceofferingid=ctx["offering"]["id"],
    )["jobresult"]["virtualmachine"]
    address = cloud.address  # type: ignore[attr-defined]
    ep = endpoint(cloud, vm["id"])
    assert ep["websocket"]["host"] == address
    with connect(ws_url(ep, address), subprotocols=["binary"], open_timeout=30) as conn:
        width, height, name = rfb_handshake(conn)
    assert width > 0 and height > 0 and name, "QEMU's VNC server answered"
    assert refused(ws_url(ep, address)) == 403
    cloud.call("updateConfiguration", name="console.token.lifetime", value="1")
    stale = endpoint(cloud, vm["id"])
    time.sleep(1.5)
    assert refused(ws_url(stale, address)) == 403
