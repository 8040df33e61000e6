"""Serving templates to hosts: ``GET /image-store/v1/templates/<uuid>?expires=&signature=``.

Agents fetch a template they must cache through this route with a link the orchestration
signed (services.storage.links). The file is streamed from the Directory image store with
Range support (a host can resume); a bad, expired or tampered link gets 403 and reveals
nothing about the template.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from cumulo.services.runtime import Runtime
from cumulo.services.storage import links

PATH = links.PREFIX + "{uuid}"


class ImageLinks:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        if not links.link_is_valid(self.rt.box, uuid, expires, signature):
            return PlainTextResponse("link invalid or expired\n", status_code=403)
        path = await asyncio.to_thread(self._find, uuid)
        if path is None:
            return PlainTextResponse("no such template here\n", status_code=404)
        return FileResponse(path, media_type="application/octet-stream")

    def _find(self, uuid: str) -> Path | None:
        with self.rt.db.read() as session:
            return links.local_file(session, uuid)
