"""The host agent: dials a management server, registers its host, and does what it is told.

The agent always dials in (the server never needs a route to a host) and keeps dialling with
a jittered, growing backoff while the server is away. Once connected it registers the
host's size from its driver, heartbeats at the interval the server asks for, carries out
commands in worker threads (driver calls block), and reports VM power changes it notices by
polling the driver, so a VM that dies on its own is known within seconds. Frames are
described in ``agentrpc.wire``.

A refused token is final (exit, so an operator sees it); every other failure is retried. A
command resent with the same request id, even across reconnects, gets the first answer
(``agent.dedup``). Nothing here stops a VM when the agent stops: VMs outlive the agent and
the driver re-adopts them when it starts again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import random
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from cumulo import __version__
from cumulo.agent.dedup import Deduper
from cumulo.agent.drivers.base import HypervisorDriver
from cumulo.agent.executor import console_socket, execute
from cumulo.agentrpc.messages import (
    Answer,
    Command,
    OpenConsole,
    PowerState,
    PrepareTemplate,
    VmStatus,
    command_from_wire,
    to_wire,
)
from cumulo.agentrpc.wire import (
    CONSOLE_PATH,
    MAX_FRAME,
    PATH,
    Frame,
    ProtocolError,
    answer_frame,
    decode,
    encode,
    vm_statuses_to_wire,
)

log = logging.getLogger(__name__)

REGISTER_TIMEOUT_S = 10.0


class AuthRefused(Exception):
    """The server does not know this host's token: retrying cannot help."""


@dataclass(frozen=True)
class AgentOptions:
    url: str  # ws(s)://server:port/agent/v1; http(s):// and a bare server URL are accepted
    token: str
    poll_s: float = 2.0
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    workers: int = 8


def agent_url(server: str) -> str:
    """The WebSocket URL for a server given as ``http://host:port`` (or already ws://)."""
    url = server.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        if url.startswith(plain):
            url = secure + url[len(plain) :]
    if not url.startswith(("ws://", "wss://")):
        url = "ws://" + url
    return url if url.endswith(PATH) else url + PATH


class Agent:
    def __init__(self, options: AgentOptions, driver: HypervisorDriver) -> None:
        self.options = options
        self.driver = driver
        self.dedup = Deduper()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            options.workers, thread_name_prefix="agent-cmd"
        )
        self._send_lock = asyncio.Lock()
        self._last: dict[str, PowerState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.registered = asyncio.Event()  # set while registered (tests wait on it)
        self._stats_interval = 0.0

    async def run(self) -> None:
        """Connect, serve, reconnect, until cancelled; AuthRefused ends it."""
        backoff = self.options.backoff_min_s
        url = agent_url(self.options.url)
        while True:
            try:
                await self._session(url)
            except AuthRefused:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as err:
                log.info("agent connection lost", extra={"url": url, "error": str(err)})
            except ProtocolError as err:
                log.warning("agent protocol error", extra={"url": url, "error": str(err)})
            if self.registered.is_set():
                backoff = self.options.backoff_min_s  # it worked: retry promptly
            self.registered.clear()
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.options.backoff_max_s)

    async def _session(self, url: str) -> None:
        headers = {"Authorization": f"Bearer {self.options.token}"}
        try:
            ws = await connect(url, additional_headers=headers, max_size=MAX_FRAME, open_timeout=10)
        except InvalidStatus as err:
            if err.response.status_code in (401, 403):
                raise AuthRefused(f"{url} refused this host's token") from None
            raise
        async with ws:
            interval = await self._register(ws)
            self.registered.set()
            tasks = [
                asyncio.create_task(self._heartbeat(ws, interval)),
                asyncio.create_task(self._poll(ws)),
                asyncio.create_task(self._read(ws)),
            ]
            if self._stats_interval > 0:
                tasks.append(asyncio.create_task(self._stats(ws, self._stats_interval)))
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()

    async def _register(self, ws: ClientConnection) -> float:
        info = await asyncio.to_thread(self.driver.host_info)
        vms = await asyncio.to_thread(self.driver.list_vms)
        await ws.send(
            encode(
                "register",
                host=to_wire(info),
                agent_version=__version__,
                vms=vm_statuses_to_wire(vms),
            )
        )
        frame = decode(await asyncio.wait_for(ws.recv(), REGISTER_TIMEOUT_S))
        if frame.type != "registered":
            raise ProtocolError(f"expected registered, got {frame.type}")
        self._last = {vm.name: vm.power for vm in vms}
        self._stats_interval = float(frame.body.get("stats_interval") or 0.0)
        log.info("agent registered", extra={"host": frame.body.get("host_id")})
        return float(frame.body.get("ping_interval", 5.0))

    async def _send(self, ws: ClientConnection, text: str) -> None:
        async with self._send_lock:
            await ws.send(text)

    async def _heartbeat(self, ws: ClientConnection, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._send(ws, encode("ping"))

    async def _poll(self, ws: ClientConnection) -> None:
        """Report power states that changed since the last look, VMs gone as Missing."""
        while True:
            await asyncio.sleep(self.options.poll_s)
            now = {vm.name: vm for vm in await asyncio.to_thread(self.driver.list_vms)}
            changed = power_changes(self._last, now)
            if changed:
                await self._send(
                    ws, encode("vm_report", full=False, vms=vm_statuses_to_wire(changed))
                )
            self._last = {name: vm.power for name, vm in now.items()}

    async def _stats(self, ws: ClientConnection, interval: float) -> None:
        """Push every running VM's counters; the server keeps the latest and the totals."""
        while True:
            await asyncio.sleep(interval)
            try:
                samples = await asyncio.to_thread(self.driver.stats)
            except Exception as err:  # a sample lost is harmless: the next one carries on
                log.warning("VM stats sampling failed", extra={"error": str(err)})
                continue
            if samples:
                vms = [dataclasses.asdict(s) for s in samples]
                await self._send(ws, encode("vm_stats", vms=vms))

    async def _read(self, ws: ClientConnection) -> None:
        async for text in ws:
            frame = decode(text)
            if frame.type != "command":
                raise ProtocolError(f"a server does not send {frame.type}")
            task = asyncio.create_task(self._answer(ws, frame))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, ws: ClientConnection, frame: Frame) -> None:
        answer = await self._run(frame.body.get("command"))
        # On a closed connection the server resends; the deduper keeps the answer for it.
        with contextlib.suppress(ConnectionClosed):
            await self._send(ws, answer_frame(answer))

    async def _run(self, data: Any) -> Answer:
        request_id = str(data.get("request_id", "")) if isinstance(data, dict) else ""
        try:
            command = command_from_wire(data)
        except (ValueError, TypeError, AttributeError) as err:
            return Answer(request_id=request_id, ok=False, error=f"bad command: {err}")
        command = resolve_links(command, self.options.url)
        loop = asyncio.get_running_loop()

        async def work() -> Answer:
            if isinstance(command, OpenConsole):
                return await self._console(command)
            return await loop.run_in_executor(self._pool, execute, self.driver, command)

        return await self.dedup.run(command.request_id, work)

    async def _console(self, command: OpenConsole) -> Answer:
        """Connect the VM's console to a WebSocket dialled back to the asking server, and
        answer once both ends are open; the bytes then flow until either side closes."""
        url = console_url(command.server_url or self.options.url, command.token)
        headers = {"Authorization": f"Bearer {self.options.token}"}
        try:
            sock = await asyncio.to_thread(console_socket, self.driver, command.name)
        except Exception as err:
            return Answer(request_id=command.request_id, ok=False, error=str(err))
        try:
            ws = await connect(url, additional_headers=headers, open_timeout=10, max_size=None)
            reader, writer = await asyncio.open_unix_connection(sock=sock)
        except (OSError, InvalidHandshake, TimeoutError) as err:
            sock.close()
            return Answer(request_id=command.request_id, ok=False, error=f"dial-back: {err}")
        task = asyncio.create_task(pipe_console(ws, reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return Answer(request_id=command.request_id, ok=True, result={"url": url.split("?")[0]})


def console_url(server: str, token: str) -> str:
    """The console dial-back WebSocket on ``server`` for one session."""
    base = agent_url(server)[: -len(PATH)]
    return f"{base}{CONSOLE_PATH}?token={token}"


async def pipe_console(
    ws: ClientConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """VNC bytes both ways between the socket and the WebSocket until one side ends."""

    async def up() -> None:
        while chunk := await reader.read(65536):
            await ws.send(chunk)

    async def down() -> None:
        async for message in ws:
            writer.write(message if isinstance(message, bytes) else message.encode())
            await writer.drain()

    tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await ws.close()


def resolve_links(command: Command, server: str) -> Command:
    """A template link the server sent relative (``/image-store/...``) is on that server."""
    if isinstance(command, PrepareTemplate) and command.source_url.startswith("/"):
        base = agent_url(server).split(PATH)[0].replace("ws://", "http://", 1)
        base = base.replace("wss://", "https://", 1)
        return dataclasses.replace(command, source_url=base + command.source_url)
    return command


def power_changes(before: dict[str, PowerState], now: dict[str, VmStatus]) -> list[VmStatus]:
    """VMs whose power differs from ``before``, and VMs no longer listed as Missing."""
    changed = [vm for name, vm in now.items() if before.get(name) != vm.power]
    gone = [
        VmStatus(name, PowerState.MISSING)
        for name, power in before.items()
        if name not in now and power != PowerState.MISSING
    ]
    return changed + gone
