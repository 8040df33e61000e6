"""createConsoleEndpoint: a URL and WebSocket details that open a VM's console once.

The response is CloudStack 4.18+'s ``consoleendpoint`` object: ``success``, ``url`` (the
console page, with the token), ``websocket`` {token, host, port, path, extra} for a client
that drives noVNC itself, and ``details`` when no console could be made. The WebSocket is
served by this management server (``api/console.py``); the token is single-use and expires
after ``console.token.lifetime`` seconds.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from cumulo.api.cloudstack.registry import Kind, Param, ResponseField, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx
from cumulo.services.compute import console

WEBSOCKET_PATH = "console/v1"  # noVNC's ``path`` option: relative, no leading slash
PAGE_PATH = "/console/"


def _base(ctx: Ctx) -> tuple[str, str, int]:
    """(scheme, host, port) of this server as the caller reached it; the configured API
    address for calls that arrived without one (the integration port serves no consoles)."""
    req = ctx.request
    base = getattr(req, "base_url", "") if not getattr(req, "integration", False) else ""
    if base:
        parts = urlsplit(base)
        if parts.hostname:
            default = 443 if parts.scheme == "https" else 80
            return parts.scheme, parts.hostname, parts.port or default
    api = ctx.runtime.settings.api
    return "http", api.host, api.port


def _endpoint(ctx: Ctx, issued: console.Issued, extra: str | None) -> dict[str, Any]:
    scheme, host, port = _base(ctx)
    shown = f"[{host}]" if ":" in host else host
    query = {"token": issued.token, "path": f"{WEBSOCKET_PATH}?token={issued.token}"}
    if extra:
        query["extra"] = extra
    websocket: dict[str, Any] = {
        "token": issued.token,
        "host": host,
        "port": str(port),
        "path": WEBSOCKET_PATH,
    }
    if extra:
        websocket["extra"] = extra
    return {
        "success": True,
        "url": f"{scheme}://{shown}:{port}{PAGE_PATH}?{urlencode(query)}",
        "websocket": websocket,
    }


@command(
    "createConsoleEndpoint",
    kind=Kind.SYNC,
    description="Create a console endpoint to connect to a VM console",
    response="consoleendpoint",
    since="4.18.0",
    fields=(
        ResponseField("success", "true if the console endpoint is generated properly", "boolean"),
        ResponseField("details", "details in case of an error"),
        ResponseField("url", "the console url"),
        ResponseField("websocket", "the console websocket options", "consoleendpointwebsocket"),
    ),
)
def create_console_endpoint(
    ctx: Ctx,
    virtualmachineid: Annotated[UUIDStr, Param("ID of the VM", required=True, entity="UserVm")],
    token: Annotated[
        str | None,
        Param(
            "(optional) extra security token, valid when the extra validation is enabled",
        ),
    ] = None,
) -> dict[str, Any]:
    try:
        issued = console.issue(ctx.session, ctx.runtime.config, ctx.caller, virtualmachineid, token)
    except console.NotRunning as err:
        return {"success": False, "details": str(err)}
    return _endpoint(ctx, issued, token)
