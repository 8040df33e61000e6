"""The S3 front door: parse, authenticate, route, run the handler, map errors once.

Every error leaves through ``_error_response`` as S3 XML with the request's resource and id;
handlers only raise. A client that hangs up mid-body surfaces as ``ClientDisconnected`` after
the handler's guards have removed whatever it had started writing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import partial
from urllib.parse import unquote

from anyio import to_thread

from cumulo.common.logging import request_id_var
from cumulo.common.time import utcnow
from cumulo.objectstore.admin import Admin, is_admin_path
from cumulo.objectstore.admin import handle as handle_admin
from cumulo.objectstore.auth import AuthError, RequestView, authenticate
from cumulo.objectstore.errors import S3Error, error_xml
from cumulo.objectstore.handlers import Handler, route
from cumulo.objectstore.handlers.base import Ctx, Service
from cumulo.objectstore.handlers.cors import response_headers as cors_headers
from cumulo.objectstore.http import (
    ClientDisconnected,
    Receive,
    Response,
    S3Request,
    Scope,
    Send,
    parse_request,
)
from cumulo.objectstore.identity import Identities
from cumulo.objectstore.usage import UsageMeter, operation_name

log = logging.getLogger(__name__)


class S3App:
    def __init__(
        self,
        svc: Service,
        identity: Identities,
        meter: UsageMeter | None = None,
        admin: Admin | None = None,
    ) -> None:
        self.svc = svc
        self.identity = identity
        self.meter = meter
        self.admin = admin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = uuid.uuid4().hex[:16].upper()
        token = request_id_var.set(request_id)
        try:
            response = await self._respond(scope, receive, request_id)
            if response is None:
                return
            response.headers += [("x-amz-request-id", request_id), ("x-amz-id-2", request_id)]
            if scope["method"] == "HEAD":
                response.head = True
            await response.send(send)
        finally:
            request_id_var.reset(token)

    async def _respond(self, scope: Scope, receive: Receive, request_id: str) -> Response | None:
        resource = unquote(scope.get("path", "/"))
        req: S3Request | None = None
        ctx: Ctx | None = None
        try:
            req = parse_request(scope, receive, self.svc.settings.domains)
            ctx = await self._context(req, request_id)
            if self.admin is not None and is_admin_path(req.raw_path, req.virtual_host):
                return await handle_admin(self.admin, ctx)
            handler = route(req)
            response = await handler(ctx)
            response.headers += cors_headers(ctx)
            self._meter(ctx, handler, response)
            return response
        except (S3Error, AuthError) as err:
            response = self._error(err, resource, request_id)
            if req is not None and req.body_withheld:
                response.headers.append(("Connection", "close"))
            if ctx is not None:
                response.headers += cors_headers(ctx)
            return response
        except ClientDisconnected:
            log.info("client disconnected mid-request", extra={"path": resource})
            return None
        except Exception:
            log.exception("S3 request failed", extra={"path": resource})
            return _error_response(S3Error("InternalError"), resource, request_id)

    def _meter(self, ctx: Ctx, handler: Handler, response: Response) -> None:
        """Count a served request against the bucket's owner (or the signer, bucketless)."""
        owner = ctx.loaded_bucket.owner_id if ctx.loaded_bucket else None
        if owner is None and ctx.principal is not None:
            owner = ctx.principal.owner_id
        if self.meter is None or owner is None:
            return
        name = getattr(getattr(handler, "func", handler), "__name__", "unknown")
        sent = 0 if ctx.req.method == "HEAD" else (response.length or len(response.body))
        self.meter.record(
            owner,
            ctx.req.bucket or "",
            operation_name(name, ctx.req.method),
            ctx.bytes_in,
            sent,
        )

    def _error(self, err: S3Error | AuthError, resource: str, request_id: str) -> Response:
        if isinstance(err, AuthError):
            err = _from_auth(err)
        return _error_response(err, resource, request_id)

    async def _context(self, req: S3Request, request_id: str) -> Ctx:
        view = RequestView(
            method=req.method,
            raw_path=req.raw_path,
            query=req.query,
            headers=req.headers,
            host=req.host,
        )
        if req.method == "OPTIONS":
            # A CORS preflight carries no credentials, whatever its URL's query says.
            headers = {k: v for k, v in req.headers.items() if k != "authorization"}
            view = RequestView(req.method, req.raw_path, [], headers, req.host)
        settings = self.svc.settings
        result = await to_thread.run_sync(
            partial(
                authenticate,
                view,
                self.identity.lookup,
                utcnow(),
                max_skew=timedelta(seconds=settings.max_skew_seconds),
                region=settings.region,
                virtual_host_bucket=req.bucket if req.virtual_host else None,
            )
        )
        creds = result.credentials
        return Ctx(
            svc=self.svc,
            req=req,
            principal=creds.principal if creds is not None else None,
            payload=result.payload,
            request_id=request_id,
        )


def _from_auth(err: AuthError) -> S3Error:
    mapped = S3Error(err.code, err.message, **err.extra)
    mapped.status = err.http_status
    return mapped


def _error_response(err: S3Error, resource: str, request_id: str) -> Response:
    if err.status == 304:
        return Response(304, list(err.headers))
    body = error_xml(err, resource, request_id)
    headers = [("Content-Type", "application/xml"), *err.headers]
    return Response(err.status, headers, body)
