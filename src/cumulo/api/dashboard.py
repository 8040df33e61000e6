"""Serving the web dashboard at ``/client/``, where CloudStack serves its UI.

The dashboard is a static single-page app (built from ``web/`` into ``dashboard/dist`` by
``make install``) that speaks only the public API. One small route helps it: the API wants
the ``sessionkey`` with every call, and the login's ``sessionkey`` cookie is HttpOnly, so
after a page reload the app asks ``GET /client/session`` — authenticated by the session
cookies, answered only to a same-origin script (no CORS headers), never cached — for the
key and who it belongs to. The key therefore lives in the page's memory only, never in
local storage.

``/console/`` is the noVNC page a ``createConsoleEndpoint`` URL opens; the token in its
query opens the console WebSocket once.

Every page carries a strict Content-Security-Policy (only this origin; no inline scripts)
and refuses to be framed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from cumulo.api.cloudstack.dispatch import KEY_COOKIE, SESSION_COOKIE
from cumulo.services import config
from cumulo.services.errors import Unauthorized
from cumulo.services.identity import auth
from cumulo.services.runtime import Runtime

DIST = Path(__file__).resolve().parent.parent / "dashboard" / "dist"
PREFIX = "/client/"
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self' {s3} ws: wss:; frame-ancestors 'none'; base-uri 'self'"
)
HEADERS = {
    "Content-Security-Policy": CSP.format(s3=""),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NOT_BUILT = "The dashboard is not built on this server: run `make install` (npm builds web/).\n"


class Dashboard:
    def __init__(self, rt: Runtime, dist: Path = DIST, s3_url: str = "") -> None:
        self.rt = rt
        self.dist = dist
        # The object browser talks to the S3 service directly: its origin may be fetched.
        s3 = urlsplit(s3_url)
        origin = f"{s3.scheme}://{s3.netloc}" if s3.scheme and s3.netloc else ""
        self.headers = {**HEADERS, "Content-Security-Policy": CSP.format(s3=origin)}

    async def root(self, _: Request) -> Response:
        return RedirectResponse(PREFIX, status_code=302)

    async def asset(self, request: Request) -> Response:
        """A built file, or the app's page for every other path under /client/."""
        rel = request.path_params.get("path", "")
        index = self.dist / "index.html"
        if not index.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=503, headers=self.headers)
        target = (self.dist / rel).resolve()
        if rel and target.is_file() and target.is_relative_to(self.dist.resolve()):
            cache = (
                "public, max-age=31536000, immutable" if rel.startswith("assets/") else "no-cache"
            )
            return FileResponse(target, headers={**self.headers, "Cache-Control": cache})
        return FileResponse(index, headers={**self.headers, "Cache-Control": "no-cache"})

    async def console_page(self, _: Request) -> Response:
        """The noVNC page createConsoleEndpoint's ``url`` opens (``/console/?token=…``)."""
        page = self.dist / "console.html"
        if not page.is_file():
            return PlainTextResponse(NOT_BUILT, status_code=503, headers=self.headers)
        return FileResponse(page, headers={**self.headers, "Cache-Control": "no-cache"})

    async def session(self, request: Request) -> Response:
        """The caller's session key and identity, for a same-origin page after a reload."""
        cookie = request.cookies.get(SESSION_COOKIE)
        key = request.cookies.get(KEY_COOKIE)
        try:
            found = await asyncio.to_thread(self._caller, cookie, key)
        except Unauthorized:
            return JSONResponse({"error": "no session"}, status_code=401, headers=_no_store())
        return JSONResponse(found, headers=_no_store())

    def _caller(self, cookie: str | None, key: str | None) -> dict[str, str]:
        with self.rt.db.read() as session:
            check = self.rt.config.raw(session, config.SESSION_CHECK)
            caller, _ = auth.session_caller(session, cookie, key, key, check)
        return {
            "sessionkey": key or "",
            "userid": caller.user_uuid,
            "username": caller.username,
            "account": caller.account_name,
            "domainid": caller.domain_uuid,
            "domain": caller.domain_path,
            "type": str(caller.account_type),
            "s3endpoint": self.rt.settings.s3_public_url,
            "s3region": self.rt.settings.s3.region,
        }


def _no_store() -> dict[str, str]:
    return {**HEADERS, "Cache-Control": "no-store"}
