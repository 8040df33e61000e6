"""The management server's side of the agent protocol: the WebSocket endpoint and the
transport that carries ``KVM`` commands to agents (frame shapes in ``agentrpc.wire``).

This module knows no database. Everything the server learns from an agent (who a token
belongs to, registration, heartbeats, VM reports) and the farm relay go through an
``AgentBackend`` the server process wires in (``services.infra.agents``), so the layers stay
one-way: services use agentrpc, never the reverse.

A command reaches its agent in one of two ways. When the agent's WebSocket ends in this
process, the command is written to it directly and the caller waits on a future the reader
completes. Otherwise the agent is connected to another server: the command is written to the
relay (a database table), that server's relay loop claims it, delivers it, and writes the
answer back, which the caller polls for. Either way the caller gets the answer,
``HostUnreachable`` (no agent connected: nothing was sent) or ``CommandTimeout`` (sent, the
outcome unknown).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from cumulo.agentrpc.hub import CommandTimeout, HostRef, HostUnreachable
from cumulo.agentrpc.messages import (
    Answer,
    Command,
    HostInfo,
    VmStats,
    VmStatus,
    answer_from_wire,
    to_wire,
)
from cumulo.agentrpc.wire import (
    ProtocolError,
    decode,
    encode,
    host_info_from_wire,
    vm_stats_from_wire,
    vm_statuses_from_wire,
)

log = logging.getLogger(__name__)

REGISTER_TIMEOUT_S = 10.0
RELAY_POLL_S = 0.1
# 1008 policy violation (refused token); 1002 protocol error; 4000 replaced by a newer
# connection of the same host; 4001 the host was deleted.
CLOSE_REFUSED, CLOSE_PROTOCOL, CLOSE_REPLACED, CLOSE_REMOVED = 1008, 1002, 4000, 4001


@dataclass(frozen=True)
class Registration:
    """What the server tells a newly registered agent."""

    name: str
    ping_interval: float
    stats_interval: float = 0.0  # seconds between VM stats samples; 0: none wanted


@dataclass(frozen=True)
class Relayed:
    """A command another server wrote for one of our hosts, with the time its sender waits."""

    host_id: str
    command: Command
    timeout_s: float


class AgentBackend(Protocol):
    """The cloud behind the endpoint. Calls block (database work); the endpoint runs them in
    threads. ``host_id`` is the host's uuid throughout."""

    def authenticate(self, token: str) -> str | None:
        """The host a token belongs to, or None (unknown, removed, wrong hypervisor)."""

    def register(self, host_id: str, info: HostInfo, peer: str) -> Registration:
        """Record the host's size and that this server holds its agent; the host goes Up."""

    def heartbeat(self, host_id: str) -> bool:
        """Record that the host is alive; False when the host no longer exists (deleted)."""

    def report_vms(self, host_id: str, vms: list[VmStatus], full: bool) -> None: ...

    def report_stats(self, host_id: str, stats: list[VmStats]) -> None:
        """Record a sample of the host's running VMs' counters."""

    def disconnected(self, host_id: str) -> None:
        """The WebSocket ended: the host is no longer reachable through this server."""

    def reachable(self, host_id: str) -> bool:
        """Whether some server holds a live agent connection for the host (it is Up)."""

    def relay_post(self, host_id: str, command: Command, timeout_s: float) -> Answer | None:
        """Queue a command for the server holding the agent; the first answer if this
        request id was already answered (a resend)."""

    def relay_answer(self, request_id: str) -> Answer | None: ...

    def relay_expire(self, request_id: str) -> None:
        """The sender gave up: a holder that has not claimed the command must not run it."""

    def relay_claim(self, host_ids: list[str]) -> list[Relayed]:
        """Take the pending commands for hosts whose agents are connected here."""

    def relay_complete(self, request_id: str, answer: Answer) -> None: ...


class AgentConnection:
    """One agent's WebSocket, usable from any thread."""

    def __init__(
        self,
        host_id: str,
        websocket: WebSocket,
        loop: asyncio.AbstractEventLoop,
        ping_interval: float = 5.0,
    ):
        self.host_id = host_id
        # A connection silent for several heartbeats is half-open (the agent has probably
        # dialled another server): commands then take the relay instead of dying here.
        self.stale_after = max(3 * ping_interval, 5.0)
        self.last_seen = time.monotonic()
        self.websocket = websocket
        self.loop = loop
        self._send_lock = asyncio.Lock()
        self._waiters: dict[str, list[concurrent.futures.Future[Answer]]] = {}
        self._lock = threading.Lock()
        self.closed = False

    @property
    def fresh(self) -> bool:
        return not self.closed and time.monotonic() - self.last_seen < self.stale_after

    async def send_text(self, text: str) -> None:
        async with self._send_lock:  # frames from several threads must not interleave
            await self.websocket.send_text(text)

    def call(self, command: Command, timeout_s: float) -> Answer:
        """Send from a worker thread and wait for the answer with the same request id."""
        waiter: concurrent.futures.Future[Answer] = concurrent.futures.Future()
        with self._lock:
            if self.closed:
                raise HostUnreachable(f"the agent of host {self.host_id} just disconnected")
            self._waiters.setdefault(command.request_id, []).append(waiter)
        deadline = time.monotonic() + timeout_s
        try:
            self._write(command, deadline)
            return waiter.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise CommandTimeout(
                f"{command.kind} {command.request_id}: no answer from host {self.host_id} "
                f"in {timeout_s:g} s"
            ) from None
        finally:
            self._forget(command.request_id, waiter)

    def _write(self, command: Command, deadline: float) -> None:
        """Put the command on the socket; a socket that fails here took nothing, so the
        host is unreachable (not a timeout: the command certainly did not run)."""
        frame = encode("command", command=to_wire(command))
        sent = asyncio.run_coroutine_threadsafe(self.send_text(frame), self.loop)
        try:
            sent.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise
        except Exception as err:
            raise HostUnreachable(f"the agent of host {self.host_id} is gone: {err}") from None

    def _forget(self, request_id: str, waiter: concurrent.futures.Future[Answer]) -> None:
        with self._lock:
            left = [w for w in self._waiters.get(request_id, []) if w is not waiter]
            if left:
                self._waiters[request_id] = left
            else:
                self._waiters.pop(request_id, None)

    def resolve(self, answer: Answer) -> None:
        with self._lock:
            waiters = self._waiters.pop(answer.request_id, [])
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(answer)
        if not waiters:
            log.info("late or unsolicited answer", extra={"request_id": answer.request_id})

    def fail_all(self) -> None:
        """The connection ended: whoever waits learns at once that the outcome is unknown."""
        with self._lock:
            self.closed = True
            waiters = [w for ws in self._waiters.values() for w in ws]
            self._waiters.clear()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(
                    CommandTimeout(f"the agent of host {self.host_id} disconnected mid-command")
                )


def _bearer(header: str) -> str:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class AgentServer:
    """The endpoint, the KVM transport and the relay loop of one management server."""

    def __init__(self, backend: AgentBackend, *, relay_poll_s: float = RELAY_POLL_S) -> None:
        self.backend = backend
        self.relay_poll_s = relay_poll_s
        self._connections: dict[str, AgentConnection] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="agent-relay")
        self._thread: threading.Thread | None = None

    # --- the WebSocket endpoint ----------------------------------------------------------

    async def endpoint(self, websocket: WebSocket) -> None:
        peer = websocket.client.host if websocket.client else ""
        host_id = await self._authenticate(websocket)
        if host_id is None:
            log.warning("agent refused: unknown token", extra={"peer": peer})
            await websocket.close(code=CLOSE_REFUSED)  # before accept: HTTP 403
            return
        await websocket.accept()
        conn: AgentConnection | None = None
        try:
            conn = await self._register(websocket, host_id, peer)
            await self._read(conn)
        except ProtocolError as err:
            log.warning("agent protocol error", extra={"host": host_id, "error": str(err)})
            await _close_quietly(websocket, CLOSE_PROTOCOL)
        except (WebSocketDisconnect, TimeoutError, RuntimeError):
            pass  # the agent went away (or never registered): it will dial again
        finally:
            if conn is not None:
                await self._detach(conn)

    async def _authenticate(self, websocket: WebSocket) -> str | None:
        token = _bearer(websocket.headers.get("authorization", ""))
        if not token:
            return None
        return await asyncio.to_thread(self.backend.authenticate, token)

    async def _register(self, websocket: WebSocket, host_id: str, peer: str) -> AgentConnection:
        text = await asyncio.wait_for(websocket.receive_text(), REGISTER_TIMEOUT_S)
        frame = decode(text)
        if frame.type != "register":
            raise ProtocolError(f"expected register, got {frame.type}")
        info = host_info_from_wire(frame.body.get("host"))
        vms = vm_statuses_from_wire(frame.body.get("vms", []))
        reg = await asyncio.to_thread(self.backend.register, host_id, info, peer)
        await asyncio.to_thread(self.backend.report_vms, host_id, vms, True)
        conn = AgentConnection(host_id, websocket, asyncio.get_running_loop(), reg.ping_interval)
        await conn.send_text(
            encode(
                "registered",
                host_id=host_id,
                name=reg.name,
                ping_interval=reg.ping_interval,
                stats_interval=reg.stats_interval,
            )
        )
        await self._attach(conn)
        log.info("agent registered", extra={"host": host_id, "peer": peer, "cpus": info.cpus})
        return conn

    async def _attach(self, conn: AgentConnection) -> None:
        """A host has one live connection: a newer one replaces (and closes) the older."""
        with self._lock:
            old = self._connections.get(conn.host_id)
            self._connections[conn.host_id] = conn
        if old is not None:
            old.fail_all()
            await _close_quietly(old.websocket, CLOSE_REPLACED)

    async def _detach(self, conn: AgentConnection) -> None:
        conn.fail_all()
        with self._lock:
            current = self._connections.get(conn.host_id) is conn
            if current:
                del self._connections[conn.host_id]
        if current:
            await asyncio.to_thread(self.backend.disconnected, conn.host_id)
            log.info("agent disconnected", extra={"host": conn.host_id})

    async def _read(self, conn: AgentConnection) -> None:
        while True:
            frame = decode(await conn.websocket.receive_text())
            conn.last_seen = time.monotonic()
            if frame.type == "ping":
                if not await asyncio.to_thread(self.backend.heartbeat, conn.host_id):
                    log.info("host removed: closing its agent", extra={"host": conn.host_id})
                    await _close_quietly(conn.websocket, CLOSE_REMOVED)
                    return
            elif frame.type == "answer":
                conn.resolve(_answer(frame.body.get("answer")))
            elif frame.type == "vm_report":
                vms = vm_statuses_from_wire(frame.body.get("vms"))
                full = bool(frame.body.get("full", False))
                await asyncio.to_thread(self.backend.report_vms, conn.host_id, vms, full)
            elif frame.type == "vm_stats":
                stats = vm_stats_from_wire(frame.body.get("vms"))
                await asyncio.to_thread(self.backend.report_stats, conn.host_id, stats)
            else:
                raise ProtocolError(f"an agent does not send {frame.type}")

    # --- the transport ---------------------------------------------------------------------

    def connected(self, host_id: str) -> AgentConnection | None:
        """The host's live connection to this server, if it has one that still speaks."""
        with self._lock:
            conn = self._connections.get(host_id)
        return conn if conn is not None and conn.fresh else None

    def send(self, host: HostRef, command: Command, timeout_s: float) -> Answer:
        """Deliver ``command`` to the host's agent, here or through the relay."""
        conn = self.connected(host.uuid)
        if conn is not None:
            return conn.call(command, timeout_s)
        if not self.backend.reachable(host.uuid):
            raise HostUnreachable(f"host {host.name} has no connected agent (it is not Up)")
        return self._relay(host, command, timeout_s)

    def _relay(self, host: HostRef, command: Command, timeout_s: float) -> Answer:
        deadline = time.monotonic() + timeout_s
        first = self.backend.relay_post(host.uuid, command, timeout_s)
        if first is not None:
            return first
        while time.monotonic() < deadline:
            time.sleep(self.relay_poll_s)
            answer = self.backend.relay_answer(command.request_id)
            if answer is not None:
                return answer
        self.backend.relay_expire(command.request_id)
        raise CommandTimeout(
            f"{command.kind} {command.request_id}: no answer relayed from host {host.name} "
            f"in {timeout_s:g} s"
        )

    # --- the relay loop: commands other servers wrote for our agents --------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._relay_loop, name="agent-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _relay_loop(self) -> None:
        while not self._stop.wait(self.relay_poll_s):
            with self._lock:
                host_ids = [h for h, conn in self._connections.items() if conn.fresh]
            if not host_ids:
                continue
            try:
                for item in self.backend.relay_claim(host_ids):
                    self._pool.submit(self._deliver, item)
            except Exception:
                log.exception("agent relay poll failed")

    def _deliver(self, item: Relayed) -> None:
        conn = self.connected(item.host_id)
        try:
            if conn is None:
                raise HostUnreachable(f"the agent of host {item.host_id} disconnected")
            answer = conn.call(item.command, item.timeout_s)
        except (HostUnreachable, CommandTimeout) as err:
            log.info("relayed command not answered", extra={"error": str(err)})
            return  # the sender times out: the outcome is unknown, as for a local send
        self.backend.relay_complete(item.command.request_id, answer)


def _answer(data: Any) -> Answer:
    if not isinstance(data, dict) or "request_id" not in data or "ok" not in data:
        raise ProtocolError("answer without request_id and ok")
    return answer_from_wire(data)


async def _close_quietly(websocket: WebSocket, code: int) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # closed by the other side
        await websocket.close(code=code)
