"""The CloudStack front door's story: authenticate, authorise, throttle, parse, run, render.

It runs in a worker thread with plain blocking code: one request is one database
transaction (a read for lists, a write otherwise), so a failing command leaves nothing behind.
Every error, wherever it is raised, becomes its wire body in exactly one place (``handle``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from cumulo.api.cloudstack import envelope
from cumulo.api.cloudstack.params import parse
from cumulo.api.cloudstack.registry import CommandSpec, Kind, lookup
from cumulo.api.cloudstack.results import Ctx, Submit, paging_from
from cumulo.api.cloudstack.signing import expired, verify
from cumulo.api.middleware.throttle import Throttle
from cumulo.common.time import aware, utcnow
from cumulo.services import config, events
from cumulo.services.access import Caller, resolve_scope
from cumulo.services.errors import (
    BadRequest,
    CloudError,
    InternalError,
    Throttled,
    Unauthorized,
    UnsupportedAction,
)
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)
NOT_AVAILABLE = "The given command does not exist or it is not available for the user"
SESSION_COOKIE = "JSESSIONID"
KEY_COOKIE = "sessionkey"
SCOPE_ARGS = ("listall", "domainid", "account", "isrecursive")
SESSION_TOUCH_SECONDS = 60


@dataclass
class ApiRequest:
    params: dict[str, str]
    method: str
    cookies: dict[str, str]
    request_id: str
    # Calls on the integration port run as the root admin, unauthenticated (CloudStack's 8096).
    integration: bool = False
    # scheme://host:port as the client addressed this server (console URLs point back here).
    base_url: str = ""

    def get(self, name: str) -> str | None:
        """Parameter names are case-insensitive."""
        for key, value in self.params.items():
            if key.lower() == name:
                return value
        return None


@dataclass
class ApiReply:
    status: int
    body: bytes
    content_type: str
    cookies: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class Dispatcher:
    def __init__(self, runtime: Runtime, on_job: Any = None) -> None:
        self.rt = runtime
        self.throttle = Throttle()
        self.on_job = on_job or (lambda: None)

    def runs_inline(self, req: ApiRequest) -> bool:
        """Whether a call may run on the event loop instead of a worker thread.

        Only reads on SQLite: a WAL reader never waits for a lock and the file is local, so
        the call is pure CPU, which holds the GIL (and so stalls the loop) just the same in a
        thread. Skipping the thread hop roughly doubles list throughput under concurrency.
        Writes can wait up to the busy timeout for SQLite's single writer, and PostgreSQL
        means network round trips: those always go to a thread.
        """
        if not self.rt.db.is_sqlite:
            return False
        name = req.get("command")
        spec = lookup(name) if name else None
        return spec is not None and not spec.public and not (spec.writes or spec.kind.is_async)

    def handle(self, req: ApiRequest) -> ApiReply:
        fmt = "json" if (req.get("response") or "").lower() == "json" else "xml"
        name = req.get("command")
        spec = lookup(name) if name else None
        response_name = spec.response_name if spec else "errorresponse"
        reply = ApiReply(200, b"", envelope.JSON_TYPE)
        try:
            if not name:
                raise BadRequest("no command specified")
            body = self._serve(spec, req, reply)
        except CloudError as err:
            if err.errorcode >= 500 or err.errorcode == 401:
                log.info(
                    "api error",
                    extra={"command": name, "errorcode": err.errorcode, "errortext": err.text},
                )
            reply.status, body = err.errorcode, envelope.error_body(err)
        except Exception:
            log.exception("unexpected error", extra={"command": name})
            internal = InternalError(
                "Internal error executing command, please contact your system administrator"
            )
            reply.status, body = internal.errorcode, envelope.error_body(internal)
        reply.body, reply.content_type = envelope.render(response_name, body, fmt)
        return reply

    def _serve(self, spec: CommandSpec | None, req: ApiRequest, reply: ApiReply) -> dict[str, Any]:
        """Authenticate, authorise and run in ONE transaction: the hot path opens one session."""
        writes = spec is not None and (spec.writes or spec.kind.is_async)
        touch: int | None = None
        with self.rt.db.write() if writes else self.rt.db.read() as session:
            caller = None
            if spec is None or not spec.public:
                caller, touch = self._authenticate(session, req)
                if spec is None or not self._permitted(session, spec, caller):
                    raise UnsupportedAction(NOT_AVAILABLE)
                self._throttle(session, caller)
            body = self._run(session, spec, caller, req, reply)
        if touch is not None:
            self._extend_session(touch)
        if spec.kind.is_async:
            self.on_job()
        return body

    def _authenticate(self, session: Session, req: ApiRequest) -> tuple[Caller, int | None]:
        """The caller, and the id of a login session whose idle timeout should be pushed back."""
        if req.integration:
            return self.rt.key_cache.integration_caller(session), None
        api_key = req.get("apikey")
        if api_key is not None:
            return self._verify_signature(session, req, api_key), None
        check = self.rt.config.raw(session, config.SESSION_CHECK)
        caller, row = auth.session_caller(
            session,
            req.cookies.get(SESSION_COOKIE),
            req.get("sessionkey"),
            req.cookies.get(KEY_COOKIE),
            check,
        )
        timeout = self.rt.settings.api.session_timeout
        touch_after = min(SESSION_TOUCH_SECONDS, timeout // 10)
        stale = aware(row.expires) - utcnow() < timedelta(seconds=timeout - touch_after)
        return caller, row.id if stale else None

    def _extend_session(self, session_id: int) -> None:
        """Session timeouts count idle time, as CloudStack's; pushed back at most once a minute
        (a tenth of the timeout if shorter) so a busy dashboard does not make every read a write."""
        try:
            with self.rt.db.write() as session:
                auth.extend_session(session, session_id, self.rt.settings.api.session_timeout)
        except Exception:
            log.exception("could not extend a session")

    def _verify_signature(self, session: Session, req: ApiRequest, api_key: str) -> Caller:
        signature = req.get("signature")
        if not signature:
            raise Unauthorized(auth.BAD_CREDENTIALS)
        ident = self.rt.key_cache.resolve(session, api_key)
        if req.get("signatureversion") == "3" and expired(req.get("expires")):
            log.info("signed request expired or without a valid expires")
            raise Unauthorized(auth.BAD_CREDENTIALS)
        if not verify(ident.secret, req.params, signature):
            log.info("signature mismatch", extra={"user": ident.caller.user_uuid})
            raise Unauthorized(auth.BAD_CREDENTIALS)
        return ident.caller

    def _permitted(self, session: Session, spec: CommandSpec, caller: Caller) -> bool:
        if caller.role_type not in spec.roles:
            return False
        return self.rt.rules.permits(session, caller.role_id, spec.name)

    def _throttle(self, session: Session, caller: Caller) -> None:
        if not self.rt.config.get(session, config.THROTTLE_ENABLED):
            return
        interval = self.rt.config.get(session, config.THROTTLE_INTERVAL)
        limit = self.rt.config.get(session, config.THROTTLE_MAX)
        if not self.throttle.allow(caller.account_id, interval, limit):
            raise Throttled(
                "The given user has reached his/her account api limit, please retry after "
                f"{self.throttle.retry_after(caller.account_id, interval)} ms."
            )

    def _run(
        self,
        session: Session,
        spec: CommandSpec,
        caller: Caller | None,
        req: ApiRequest,
        reply: ApiReply,
    ) -> dict[str, Any]:
        values = parse(spec, req.params)
        # Public commands (login) run before there is a caller; they never read it.
        ctx = Ctx(
            session=session,
            caller=caller,  # type: ignore[arg-type]
            runtime=self.rt,
            request_id=req.request_id,
            request=req,
            reply=reply,
        )
        if spec.kind is Kind.LIST:
            ctx.paging = paging_from(values, self.rt.config.get(session, config.DEFAULT_PAGE_SIZE))
            if spec.scoped and caller is not None:
                ctx.list_args = {k: values[k] for k in SCOPE_ARGS}
                ctx.scope = resolve_scope(session, caller, **ctx.list_args)
        args = {k: v for k, v in values.items() if k in spec.handler_args}
        result = spec.handler(ctx, **args)
        if spec.kind.is_async:
            return self._submit(ctx, spec, result)
        self._event(ctx, spec, result)
        return envelope.body_for(result, spec.response)

    def _submit(self, ctx: Ctx, spec: CommandSpec, submit: Submit) -> dict[str, Any]:
        job = queue.submit(
            ctx.session,
            ctx.caller,
            spec.name,
            submit.params,
            instance_type=submit.instance_type or spec.entity,
            instance_id=submit.instance_id or submit.created_id,
        )
        if spec.event:
            events.record(
                ctx.session,
                ctx.caller,
                spec.event,
                f"{spec.description}",
                state="Scheduled",
                resource_id=submit.instance_id or submit.created_id,
                resource_type=submit.instance_type or spec.entity,
                resource_name=submit.resource_name,
                job_id=job.uuid,
            )
        log.info("job submitted", extra={"command": spec.name, "job": job.uuid})
        return envelope.submit_body(submit, job.uuid)

    def _event(self, ctx: Ctx, spec: CommandSpec, result: Any) -> None:
        if not spec.event or ctx.caller is None:
            return
        rid, rname = ctx.event_resource or (None, None)
        if ctx.event_resource is None and isinstance(result, dict):
            rid, rname = result.get("id"), result.get("name") or result.get("username")
        events.record(
            ctx.session,
            ctx.caller,
            spec.event,
            spec.description,
            resource_id=rid,
            resource_type=spec.entity,
            resource_name=rname,
        )
