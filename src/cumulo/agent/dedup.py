"""Request-id de-duplication: a command resent with the same request id gets the first answer.

The server resends after a timeout, a reconnect or a job takeover, and never assumes a
command ran; the host must then not run it twice. The first run's answer (or, while it still
runs, its future) is kept by request id, so a resend waits for and returns the same answer.
Drivers are idempotent too, which covers what this cache cannot: an agent restart.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from cumulo.agentrpc.messages import Answer

KEEP = 4096  # answers remembered; resends come within minutes, long before this many commands


class Deduper:
    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._seen: OrderedDict[str, asyncio.Future[Answer]] = OrderedDict()
        self.executed = 0  # how many commands actually ran (for tests and stats)

    async def run(self, request_id: str, work: Callable[[], Awaitable[Answer]]) -> Answer:
        found = self._seen.get(request_id)
        if found is None:
            found = asyncio.ensure_future(self._count(work))
            self._seen[request_id] = found
            while len(self._seen) > self._keep:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(request_id)
        # Shielded: a resend's waiter going away must not cancel the first run.
        return await asyncio.shield(found)

    async def _count(self, work: Callable[[], Awaitable[Answer]]) -> Answer:
        self.executed += 1
        return await work()
