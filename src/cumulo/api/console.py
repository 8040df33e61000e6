"""The console proxy: a user's WebSocket to a VM's VNC server, through the host's agent.

A browser (noVNC) connects to ``/console/v1?token=<token>`` on any management server, with
the ``binary`` subprotocol as websockify clients do. The token (from createConsoleEndpoint)
is consumed at once; an unknown, used or expired one is refused before the upgrade (HTTP
403) and nothing is opened. The server cannot reach hosts, so it asks the host's agent
(``OpenConsole``, through the hub: directly or relayed by the server holding the agent) to
dial back to *this* server at ``/agent/v1/console?token=<session secret>`` with its host
token; the agent pipes that WebSocket to the VM's VNC Unix socket, and this server pipes the
two WebSockets together. The session secret is random, in memory only, matched to the host,
and used once. Simulated hosts live in this process: their fake console is piped directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from cumulo.services.compute import console
from cumulo.services.infra.agents import AgentService

log = logging.getLogger(__name__)

USER_PATH = "/console/v1"
AGENT_PATH = console.AGENT_PATH
OPEN_TIMEOUT_S = 20.0
CLOSE_REFUSED, CLOSE_FAILED = 1008, 1011
CHUNK = 65536


@dataclass
class _Pending:
    """A console session waiting for its agent to dial back."""

    host_uuid: str
    arrived: asyncio.Future[WebSocket]
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ConsoleProxy:
    def __init__(self, rt: Any, agents: AgentService) -> None:
        self.rt = rt
        self.agents = agents
        self._pending: dict[str, _Pending] = {}

    # --- the user's side -----------------------------------------------------------------

    async def user_endpoint(self, websocket: WebSocket) -> None:
        token = websocket.query_params.get("token", "")
        extra = websocket.query_params.get("extra")
        target = await asyncio.to_thread(self._consume, token, extra)
        if target is None:
            log.info("console refused: bad, used or expired token")
            await websocket.close(code=CLOSE_REFUSED)  # before accept: HTTP 403
            return
        try:
            if target.host.hypervisor.lower() == "simulator":
                await self._serve_local(websocket, target)
            else:
                await self._serve_through_agent(websocket, target)
        except Exception as err:  # the host refused, is unreachable, or never dialled back
            log.warning("console not opened", extra={"vm": target.vm_uuid, "error": str(err)})
            await _close_quietly(websocket, CLOSE_FAILED)

    def _consume(self, token: str, extra: str | None) -> console.Target | None:
        with self.rt.db.write() as session:
            return console.consume(session, token, extra)

    async def _serve_local(self, websocket: WebSocket, target: console.Target) -> None:
        """A simulated host's console: its driver lives in this process."""
        sock = await asyncio.to_thread(console.open_simulated, self.rt, target)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        await websocket.accept(subprotocol=_subprotocol(websocket))
        try:
            await _first_done(_ws_to_stream(websocket, writer), _stream_to_ws(reader, websocket))
        finally:
            writer.close()
            await _close_quietly(websocket, 1000)

    async def _serve_through_agent(self, websocket: WebSocket, target: console.Target) -> None:
        secret = secrets.token_urlsafe(32)
        pending = _Pending(target.host.uuid, asyncio.get_running_loop().create_future())
        self._pending[secret] = pending
        try:
            back = self._dialback(websocket, target.host.uuid)
            await asyncio.to_thread(
                console.ask_agent, self.rt, target, secret, back, OPEN_TIMEOUT_S
            )
            agent_ws = await asyncio.wait_for(pending.arrived, OPEN_TIMEOUT_S)
            await websocket.accept(subprotocol=_subprotocol(websocket))
            log.info("console open", extra={"vm": target.vm_uuid, "host": target.host.uuid})
            await _first_done(_ws_to_ws(websocket, agent_ws), _ws_to_ws(agent_ws, websocket))
            await _close_quietly(websocket, 1000)
        finally:
            self._pending.pop(secret, None)
            pending.done.set()  # the agent's handler returns and its WebSocket closes

    def _dialback(self, websocket: WebSocket, host_uuid: str) -> str:
        """Where the agent reaches this server: the local address of its own connection when
        it is connected here (proven reachable), else the address the user reached us at."""
        conn = self.agents.server.connected(host_uuid)
        server = (conn.websocket if conn is not None else websocket).scope.get("server")
        if not server:
            return ""  # the agent dials the server it is connected to
        host, port = server[0], server[1]
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    # --- the agent's dial-back ------------------------------------------------------------

    async def agent_endpoint(self, websocket: WebSocket) -> None:
        secret = websocket.query_params.get("token", "")
        scheme, _, bearer = websocket.headers.get("authorization", "").partition(" ")
        host_id = None
        if scheme.lower() == "bearer" and bearer.strip():
            host_id = await asyncio.to_thread(self.agents.backend.authenticate, bearer.strip())
        pending = self._pending.get(secret) if host_id else None
        if pending is None or pending.host_uuid != host_id or pending.arrived.done():
            log.warning("console dial-back refused", extra={"host": host_id})
            await websocket.close(code=CLOSE_REFUSED)  # before accept: HTTP 403
            return
        self._pending.pop(secret, None)  # the secret works once
        await websocket.accept()
        pending.arrived.set_result(websocket)
        await pending.done.wait()


def _subprotocol(websocket: WebSocket) -> str | None:
    """websockify's ``binary`` when the client offers it (noVNC does); else none."""
    offered = websocket.scope.get("subprotocols") or []
    return "binary" if "binary" in offered else None


async def _first_done(*coros: Any) -> None:
    """Run both directions of a pipe; when one ends (a side closed), stop the other."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _messages(websocket: WebSocket) -> Any:
    """Binary payloads from a WebSocket until it closes (text is taken as its bytes)."""
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None and message.get("text") is not None:
            data = message["text"].encode()
        if data:
            yield data


async def _ws_to_ws(source: WebSocket, sink: WebSocket) -> None:
    async for data in _messages(source):
        await sink.send_bytes(data)
    await _close_quietly(sink, 1000)


async def _ws_to_stream(source: WebSocket, writer: asyncio.StreamWriter) -> None:
    async for data in _messages(source):
        writer.write(data)
        await writer.drain()


async def _stream_to_ws(reader: asyncio.StreamReader, sink: WebSocket) -> None:
    while chunk := await reader.read(CHUNK):
        await sink.send_bytes(chunk)


async def _close_quietly(websocket: WebSocket, code: int) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await websocket.close(code=code)
