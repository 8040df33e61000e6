"""The KVM transport end to end in one process: a real WebSocket server (uvicorn) with an
in-memory backend, and the real Agent with a simulator driver, each on its own event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from cumulo.agent.agent import Agent, AgentOptions, AuthRefused
from cumulo.agent.drivers.sim import SimDriver
from cumulo.agentrpc.hub import CommandTimeout, HostRef, HostUnreachable, Hub
from cumulo.agentrpc.messages import (
    Answer,
    Command,
    GetVmStatus,
    HostInfo,
    StartVm,
    VmSpec,
    VmStatus,
)
from cumulo.agentrpc.server import AgentConnection, AgentServer, Registration, Relayed
from cumulo.agentrpc.wire import PATH

TOKEN = "host-1.secret"


@dataclass
class FakeBackend:
    """The cloud side in memory: one host, and a relay list shared between servers."""

    registered: list[HostInfo] = field(default_factory=list)
    pings: int = 0
    reports: list[tuple[list[VmStatus], bool]] = field(default_factory=list)
    up: bool = False
    removed: bool = False
    relay: dict[str, dict[str, object]] = field(default_factory=dict)

    def authenticate(self, token: str) -> str | None:
        return "host-1" if token == TOKEN and not self.removed else None

    def register(self, host_id: str, info: HostInfo, peer: str) -> Registration:
        self.registered.append(info)
        self.up = True
        return Registration(name="h1", ping_interval=0.2)

    def heartbeat(self, host_id: str) -> bool:
        self.pings += 1
        return not self.removed

    def report_vms(self, host_id: str, vms: list[VmStatus], full: bool) -> None:
        self.reports.append((vms, full))

    def disconnected(self, host_id: str) -> None:
        self.up = False

    def reachable(self, host_id: str) -> bool:
        return self.up

    def relay_post(self, host_id: str, command: Command, timeout_s: float) -> Answer | None:
        row = self.relay.get(command.request_id)
        if row is not None and isinstance(row.get("answer"), Answer):
            return row["answer"]  # type: ignore[return-value]
        self.relay[command.request_id] = {"host": host_id, "command": command, "state": "Pending"}
        return None

    def relay_answer(self, request_id: str) -> Answer | None:
        found = self.relay.get(request_id, {}).get("answer")
        return found if isinstance(found, Answer) else None

    def relay_expire(self, request_id: str) -> None:
        self.relay.get(request_id, {})["state"] = "Expired"

    def relay_claim(self, host_ids: list[str]) -> list[Relayed]:
        out = []
        for row in self.relay.values():
            if row["state"] == "Pending" and row["host"] in host_ids:
                row["state"] = "Sent"
                out.append(Relayed(str(row["host"]), row["command"], 5.0))  # type: ignore[arg-type]
        return out

    def relay_complete(self, request_id: str, answer: Answer) -> None:
        self.relay[request_id]["answer"] = answer


class CountingDriver(SimDriver):
    """Counts starts; ``hold`` makes a start block (a hung hypervisor)."""

    def __init__(self) -> None:
        super().__init__("h1", cpus=2, cpu_mhz=1000, memory_bytes=2 << 30)
        self.starts = 0
        self.hold = threading.Event()
        self.hold.set()

    def start(self, spec: VmSpec) -> VmStatus:
        self.starts += 1
        self.hold.wait(10)
        return super().start(spec)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    def __init__(self, server: AgentServer) -> None:
        self.port = _free_port()
        app = Starlette(routes=[WebSocketRoute(PATH, server.endpoint)])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None)
        self.uvicorn = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.uvicorn.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_for(lambda: self.uvicorn.started, 10)
        return self

    def __exit__(self, *_: object) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(10)


class AgentThread:
    """The real Agent on its own loop; ``error`` holds what ended it."""

    def __init__(self, port: int, driver: SimDriver, token: str = TOKEN) -> None:
        options = AgentOptions(url=f"http://127.0.0.1:{port}", token=token, poll_s=0.1)
        self.agent = Agent(options, driver)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.task = self.loop.create_task(self.agent.run())
        try:
            self.loop.run_until_complete(self.task)
        except BaseException as err:  # cancelled at exit, or AuthRefused
            self.error = err

    def __enter__(self) -> AgentThread:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)


def wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


Rig = tuple[FakeBackend, AgentServer, CountingDriver, Hub]
HOST = HostRef(uuid="host-1", name="h1", hypervisor="KVM")


def spec(name: str = "i-2-10-VM") -> VmSpec:
    return VmSpec(name=name, uuid=str(uuid.uuid4()), vcpus=1, cpu_mhz=500, memory_mib=64)


@pytest.fixture
def rig() -> Iterator[Rig]:
    backend = FakeBackend()
    server = AgentServer(backend, relay_poll_s=0.02)
    server.start()  # the relay loop: commands other servers queued for our agent
    driver = CountingDriver()
    hub = Hub()
    hub.register("KVM", server)
    with ServerThread(server) as srv, AgentThread(srv.port, driver):
        wait_for(lambda: server.connected("host-1") is not None, 10)
        yield backend, server, driver, hub
    server.stop()


def test_register_carries_the_drivers_host_info(rig: Rig) -> None:
    backend = rig[0]
    assert [(i.cpus, i.cpu_mhz, i.memory_bytes) for i in backend.registered] == [(2, 1000, 2 << 30)]
    assert backend.reports[0] == ([], True)  # the full report of a host with no VMs
    wait_for(lambda: backend.pings >= 2, 5)  # ping_interval 0.2 s from the registration


def test_a_command_reaches_the_agent_and_is_answered(rig: Rig) -> None:
    _, _, driver, hub = rig
    answer = hub.send(HOST, StartVm("req-1", spec()), timeout_s=5)
    assert answer.ok and answer.result["power"] == "Running"
    status = hub.send(HOST, GetVmStatus("req-2", "i-2-10-VM"), timeout_s=5)
    assert status.result["power"] == "Running"
    assert driver.starts == 1


def test_a_resent_request_id_is_answered_once(rig: Rig) -> None:
    _, _, driver, hub = rig
    command = StartVm("req-dup", spec("i-2-11-VM"))
    first = hub.send(HOST, command, timeout_s=5)
    driver.stop("i-2-11-VM")  # whatever happens since, the resend gets the first answer
    again = hub.send(HOST, command, timeout_s=5)
    assert again == first and driver.starts == 1


def test_resends_while_the_first_still_runs_wait_for_it(rig: Rig) -> None:
    _, _, driver, hub = rig
    driver.hold.clear()
    command = StartVm("req-slow", spec("i-2-12-VM"))
    with pytest.raises(CommandTimeout):
        hub.send(HOST, command, timeout_s=0.3)  # the hypervisor hangs: outcome unknown
    driver.hold.set()
    answer = hub.send(HOST, command, timeout_s=5)
    assert answer.ok and driver.starts == 1


def test_power_changes_behind_the_servers_back_are_reported(rig: Rig) -> None:
    backend, _, driver, hub = rig
    hub.send(HOST, StartVm("req-3", spec("i-2-13-VM")), timeout_s=5)
    driver.stop("i-2-13-VM")  # e.g. the guest powered itself off

    def reported_stopped() -> bool:
        return any(
            not full and any(v.name == "i-2-13-VM" and v.power == "Stopped" for v in vms)
            for vms, full in backend.reports
        )

    wait_for(reported_stopped, 5)


def test_unknown_host_is_unreachable_and_nothing_is_relayed(rig: Rig) -> None:
    backend, _, _, hub = rig
    other = HostRef(uuid="host-2", name="h2", hypervisor="KVM")
    backend.up = False  # the fake says every host not connected here is down
    with pytest.raises(HostUnreachable):
        hub.send(other, GetVmStatus("req-4", "x"), timeout_s=1)
    assert "req-4" not in backend.relay


def test_a_command_for_an_agent_on_another_server_goes_through_the_relay(
    rig: Rig,
) -> None:
    backend, _, driver, _ = rig
    elsewhere = AgentServer(backend, relay_poll_s=0.02)  # no agent connected to this one
    answer = elsewhere.send(HOST, StartVm("req-relay", spec("i-2-14-VM")), timeout_s=5)
    assert answer.ok and answer.result["power"] == "Running"
    assert backend.relay["req-relay"]["state"] == "Sent"
    again = elsewhere.send(HOST, StartVm("req-relay", spec("i-2-14-VM")), timeout_s=5)
    assert again == answer and driver.starts == 1


def test_a_disconnect_fails_waiting_commands_at_once(rig: Rig) -> None:
    _, server, driver, hub = rig
    driver.hold.clear()
    conn = server.connected("host-1")
    assert conn is not None
    result: list[BaseException] = []

    def send() -> None:
        try:
            hub.send(HOST, StartVm("req-5", spec("i-2-15-VM")), timeout_s=30)
        except BaseException as err:
            result.append(err)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.2)
    started = time.monotonic()
    conn.fail_all()
    sender.join(5)
    driver.hold.set()
    assert isinstance(result[0], CommandTimeout) and time.monotonic() - started < 2


def test_a_silent_connection_is_not_used_until_the_agent_speaks_again(rig: Rig) -> None:
    _, server, _, _ = rig
    conn = server.connected("host-1")
    assert conn is not None
    conn.last_seen -= 100  # as if half-open: no frame for many heartbeats
    assert server.connected("host-1") is None
    wait_for(lambda: server.connected("host-1") is conn, 2)  # the next ping (0.2 s)


def test_the_agent_of_a_deleted_host_is_sent_away_and_stops() -> None:
    backend = FakeBackend()
    server = AgentServer(backend)
    with ServerThread(server) as srv, AgentThread(srv.port, SimDriver("h")) as agent:
        wait_for(lambda: server.connected("host-1") is not None, 10)
        backend.removed = True
        agent.thread.join(10)
        assert isinstance(agent.error, AuthRefused)
        wait_for(lambda: not backend.up, 5)


def test_a_bad_token_is_refused_and_the_agent_gives_up() -> None:
    backend = FakeBackend()
    server = AgentServer(backend)
    with ServerThread(server) as srv, AgentThread(srv.port, SimDriver("h"), "wrong") as agent:
        agent.thread.join(10)
    assert isinstance(agent.error, AuthRefused)
    assert backend.registered == [] and backend.reports == []


def test_a_socket_that_fails_on_write_is_unreachable_not_a_timeout() -> None:
    """Nothing reached the host, so the caller may safely act as if it never ran."""

    class Broken:
        async def send_text(self, text: str) -> None:
            raise RuntimeError("socket closed")

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        conn = AgentConnection("host-9", Broken(), loop)  # type: ignore[arg-type]
        with pytest.raises(HostUnreachable, match="gone"):
            conn.call(GetVmStatus("req-9", "x"), 2)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
