"""One management server process: the runtime, its job workers and its HTTP listeners."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from cumulo.api import console, dashboard, event_stream, image_links, upload_route
from cumulo.api.cloudstack import commands  # noqa: F401  (declares every command)
from cumulo.api.cloudstack.dispatch import Dispatcher
from cumulo.api.cloudstack.endpoint import ApiEndpoint
from cumulo.api.cloudstack.jobs import JobRunner
from cumulo.api.image_links import ImageLinks
from cumulo.api.middleware.request_id import RequestIdMiddleware
from cumulo.common.settings import Settings
from cumulo.services.compute import lifecycle
from cumulo.services.compute.stats import SimStatsSampler
from cumulo.services.config import EXPUNGE_INTERVAL
from cumulo.services.eventbus.dispatcher import EventDispatcher
from cumulo.services.infra.agents import AgentService
from cumulo.services.jobs.worker import JobWorkers
from cumulo.services.network import port_rules
from cumulo.services.network import routers as network_routers
from cumulo.services.runtime import Runtime, open_runtime
from cumulo.services.storage import (
    browser_uploads,
    snapshot_scheduler,
    volume_extract,
    volume_ops,
)
from cumulo.services.usage import scheduler as usage_scheduler

log = logging.getLogger(__name__)
API_PATHS = ("/client/api", "/client/api/")


async def livez(_: Request) -> Response:
    """Liveness with no work behind it: also the benchmark's bare endpoint."""
    return JSONResponse({"status": "ok"})


class ManagementServer:
    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self.rt = runtime or open_runtime(settings, require_schema=True)
        self.rt.register_server()
        self.workers = JobWorkers(self.rt.db, self.rt.server_id, settings.jobs, JobRunner(self.rt))
        self.dispatcher = Dispatcher(self.rt, on_job=self.workers.notify)
        self.agents = AgentService(self.rt)  # the agent WebSocket and the KVM transport
        self.console = console.ConsoleProxy(self.rt, self.agents)
        self.sim_stats = SimStatsSampler(self.rt)
        self.events = EventDispatcher(self.rt.db, self.rt.config, self.rt.server_id)
        self._stop = threading.Event()

    def app(self, integration: bool = False) -> Starlette:
        endpoint = ApiEndpoint(self.dispatcher, self.settings.api.max_body_bytes, integration)
        routes: list[BaseRoute] = [
            Route(p, endpoint.handle, methods=["GET", "POST"]) for p in API_PATHS
        ]
        routes.append(Route("/livez", livez))
        if not integration:
            routes.append(WebSocketRoute(self.agents.path, self.agents.endpoint))
            routes.append(WebSocketRoute(console.USER_PATH, self.console.user_endpoint))
            routes.append(WebSocketRoute(console.AGENT_PATH, self.console.agent_endpoint))
            routes.append(Route(image_links.PATH, ImageLinks(self.rt).handle, methods=["GET"]))
            uploads = upload_route.UploadRoute(self.rt)  # browser uploads (issue 11)
            routes.append(Route(upload_route.PATH, uploads.handle, methods=["POST", "OPTIONS"]))
            extracts = upload_route.ExtractLinks(self.rt)  # extractVolume's links
            routes.append(Route(upload_route.EXTRACT_PATH, extracts.handle, methods=["GET"]))
            stream = event_stream.EventStream(self.dispatcher)
            routes.append(Route(event_stream.PATH, stream.handle, methods=["GET"]))
            ui = dashboard.Dashboard(self.rt, s3_url=self.settings.s3_public_url)
            routes.append(Route("/", ui.root, methods=["GET"]))
            routes.append(Route("/client/session", ui.session, methods=["GET"]))
            routes.append(Route("/console/", ui.console_page, methods=["GET"]))
            routes.append(Route("/client/{path:path}", ui.asset, methods=["GET"]))
        return Starlette(routes=routes, middleware=[Middleware(RequestIdMiddleware)])

    def _scavenge(self) -> None:
        """Expunge destroyed VMs whose expunge.delay has passed, every expunge.interval."""
        last = 0.0
        while not self._stop.wait(2):
            try:
                with self.rt.db.read() as session:
                    interval = float(self.rt.config.get(session, EXPUNGE_INTERVAL))
                if time.monotonic() - last >= interval:
                    last = time.monotonic()
                    lifecycle.expunge_due(self.rt)
                    volume_ops.expunge_destroyed(self.rt)  # files of deleted volumes
                browser_uploads.sweep(self.rt)  # upload links that expired unused
                volume_extract.sweep(self.rt)  # extracted copies whose link expired
            except Exception:
                log.exception("expunge scavenger failed")

    def _snapshot_policies(self) -> None:
        """Take the snapshots that snapshot policies say are due (one server per slot)."""
        while not self._stop.wait(2):
            try:
                snapshot_scheduler.run_due(self.rt)
            except Exception:
                log.exception("snapshot scheduler failed")

    def _routers(self) -> None:
        """Guest network routers and segments on hosts kept in line with the rows (issue 7)."""
        rounds = 0
        while not self._stop.wait(network_routers.RECONCILE_INTERVAL_S):
            rounds += 1
            try:
                network_routers.reconcile(self.rt, simulated=rounds % 12 == 0)
            except Exception:
                log.exception("router reconciler failed")
            try:  # security-group rule changes reach running VMs' taps (issue 7)
                port_rules.push(self.rt, resend=rounds % 12 == 0)
            except Exception:
                log.exception("security group push failed")

    def _heartbeat(self) -> None:
        while not self._stop.wait(10):
            try:
                self.rt.heartbeat_server()
            except Exception:
                log.exception("server heartbeat failed")

    async def serve(self) -> None:
        api = self.settings.api
        configs = [
            uvicorn.Config(
                self.app(),
                host=api.host,
                port=api.port,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
            )
        ]
        if api.integration_port:
            # Unauthenticated admin access: loopback only, whatever api.host says.
            configs.append(
                uvicorn.Config(
                    self.app(integration=True),
                    host="127.0.0.1",
                    port=api.integration_port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    server_header=False,
                )
            )
        servers = [uvicorn.Server(c) for c in configs]
        self.workers.start()
        self.agents.start()
        self.sim_stats.start()
        self.events.start()
        threading.Thread(target=self._heartbeat, name="server-heartbeat", daemon=True).start()
        threading.Thread(target=self._scavenge, name="expunge-scavenger", daemon=True).start()
        threading.Thread(
            target=self._snapshot_policies, name="snapshot-scheduler", daemon=True
        ).start()
        threading.Thread(target=self._routers, name="router-reconciler", daemon=True).start()
        usage_args = (self.rt, self._stop, self.workers.notify)  # usage periods, as jobs
        threading.Thread(target=usage_scheduler.loop, args=usage_args, daemon=True).start()
        log.info(
            "management server listening",
            extra={
                "endpoint": f"http://{api.host}:{api.port}/client/api",
                "integration_port": api.integration_port or None,
                "server": self.rt.server_uuid,
            },
        )
        try:
            await asyncio.gather(*(s.serve() for s in servers))
        finally:
            self._stop.set()
            self.agents.stop()
            self.sim_stats.stop()
            self.events.stop()
            self.workers.stop()
            self.rt.deregister_server()
            self.rt.db.dispose()
