"""The push stream: ``GET /client/events/stream``, Server-Sent Events of the caller's events.

Authenticated exactly as the API (a session cookie with its ``sessionkey``, or an API key and
signature over the query), and scoped in SQL to what the caller may see. Each event carries
its outbox id as the SSE ``id``, so a client that reconnects with ``Last-Event-ID`` (or
``?lasteventid=``) gets everything it missed that is still retained; without one the stream
starts at the newest event. A commit on this server wakes the stream at once; events
committed by other servers are found by polling every ``POLL_S``. A comment line is sent as a
heartbeat when nothing happened for ``HEARTBEAT_S``, so proxies keep the connection and the
client notices a dead server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from cumulo.api.cloudstack.dispatch import ApiRequest, Dispatcher
from cumulo.services.access import Caller, ListScope
from cumulo.services.errors import CloudError
from cumulo.services.eventbus import outbox, stream
from cumulo.services.events import permitted_scope

PATH = "/client/events/stream"
POLL_S = 1.0
HEARTBEAT_S = 15.0


class EventStream:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.db = dispatcher.rt.db

    async def handle(self, request: Request) -> Response:
        req = ApiRequest(
            params=dict(request.query_params),
            method=request.method,
            cookies=dict(request.cookies),
            request_id=request.scope.get("state", {}).get("request_id", ""),
        )
        try:
            caller = await run_in_threadpool(self._authenticate, req)
        except CloudError as err:
            return JSONResponse({"errorcode": err.errorcode, "errortext": err.text}, err.errorcode)
        start = request.headers.get("last-event-id") or req.get("lasteventid")
        scope = permitted_scope(caller)
        last = int(start) if start and start.isdigit() else None
        return StreamingResponse(
            self._events(request, scope, last),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def _authenticate(self, req: ApiRequest) -> Caller:
        with self.db.read() as session:
            caller, _touch = self.dispatcher._authenticate(session, req)
        return caller

    def _read(self, scope: ListScope, last: int) -> list[stream.Pushed]:
        with self.db.read() as session:
            return stream.after(session, scope, last)

    def _latest(self) -> int:
        with self.db.read() as session:
            return stream.latest_id(session)

    async def _events(
        self, request: Request, scope: ListScope, last: int | None
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        outbox.NOTIFIER.add(loop, wake)
        try:
            if last is None:
                last = await run_in_threadpool(self._latest)
            yield b"retry: 1000\n: connected\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                wake.clear()
                pushed = await run_in_threadpool(self._read, scope, last)
                for event in pushed:
                    last = event.id
                    yield _frame(event)
                if pushed:
                    quiet = 0.0
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), POLL_S)
                except TimeoutError:
                    quiet += POLL_S
                    if quiet >= HEARTBEAT_S:
                        quiet = 0.0
                        yield b": heartbeat\n\n"
        finally:
            outbox.NOTIFIER.remove(loop, wake)


def _frame(event: stream.Pushed) -> bytes:
    data = json.dumps(event.data, separators=(",", ":"))
    return f"id: {event.id}\nevent: {event.category}\ndata: {data}\n\n".encode()
