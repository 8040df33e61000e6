"""The HTTP side of /client/api: read the request, hand it to the dispatcher in a thread."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cumulo.api.cloudstack import envelope
from cumulo.api.cloudstack.dispatch import ApiReply, ApiRequest, Dispatcher
from cumulo.services.errors import BadRequest, CloudError, MethodNotAllowed

FORM = "application/x-www-form-urlencoded"
LOGIN_POST_ONLY = "Please use HTTP POST to authenticate using this API"


class PayloadTooLarge(CloudError):
    errorcode = 413
    cserrorcode = 9999


async def _form_body(request: Request, limit: int) -> str:
    """Read a POST form body without ever holding more than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode()
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8") from None


async def _params(request: Request, limit: int) -> dict[str, str]:
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and ctype == FORM:
        pairs += parse_qsl(await _form_body(request, limit), keep_blank_values=True)
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key, value)  # the first occurrence wins, as the servlet's getParameter
    return params


def _to_response(reply: ApiReply) -> Response:
    response = Response(reply.body, status_code=reply.status, media_type=reply.content_type)
    for name, value, attrs in reply.cookies:
        response.set_cookie(name, value, **attrs)
    return response


def _error(err: CloudError, response_name: str, fmt: str) -> Response:
    body, ctype = envelope.render(response_name, envelope.error_body(err), fmt)
    return Response(body, status_code=err.errorcode, media_type=ctype)


class ApiEndpoint:
    def __init__(self, dispatcher: Dispatcher, max_body: int, integration: bool) -> None:
        self.dispatcher, self.max_body, self.integration = dispatcher, max_body, integration

    async def handle(self, request: Request) -> Response:
        try:
            params = await _params(request, self.max_body)
        except ClientDisconnect:
            return Response(status_code=400)
        except CloudError as err:
            fmt = "json" if "response=json" in request.url.query.lower() else "xml"
            return _error(err, "errorresponse", fmt)
        req = ApiRequest(
            params=params,
            method=request.method,
            cookies=dict(request.cookies),
            request_id=request.scope.get("state", {}).get("request_id", ""),
            integration=self.integration,
            base_url=str(request.base_url).rstrip("/"),
        )
        if req.method != "POST" and (req.get("command") or "").lower() == "login":
            # ApiServlet refuses a login that is not a POST before it reads any parameter
            # (reference §1.2), so a GET answers 405 even with its parameters missing.
            fmt = "json" if (req.get("response") or "").lower() == "json" else "xml"
            return _error(MethodNotAllowed(LOGIN_POST_ONLY), "loginresponse", fmt)
        if self.dispatcher.runs_inline(req):
            reply = self.dispatcher.handle(req)
        else:
            reply = await run_in_threadpool(self.dispatcher.handle, req)
        return _to_response(reply)
