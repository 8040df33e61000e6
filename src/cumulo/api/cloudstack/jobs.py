"""Running an async command's job body in a worker, and recording how it ended.

The body runs in its own write transaction; success or failure is recorded afterwards in a
second one that first checks we still own the job. If this server dies in between, the
job is claimed again and the body runs again, so every body must be idempotent.
"""

from __future__ import annotations

import logging
from typing import Any

from cumulo.api.cloudstack import envelope
from cumulo.api.cloudstack.registry import lookup
from cumulo.api.cloudstack.results import Ctx
from cumulo.services import events
from cumulo.services.errors import CloudError, InternalError
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.jobs.queue import Claimed
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def __call__(self, job: Claimed) -> None:
        spec = lookup(job.cmd)
        try:
            if spec is None or spec.runner is None:
                raise InternalError(f"no job body is registered for {job.cmd}")
            result = self._body(job, spec.runner)
            body = envelope.body_for(result, spec.response)
            self._record(job, queue.SUCCEEDED, 0, body, spec.event, spec.description)
        except CloudError as err:
            self._record(
                job,
                queue.FAILED,
                err.errorcode,
                {"errorcode": err.errorcode, "errortext": err.text},
                spec.event if spec else None,
                err.text,
            )
        except Exception:
            log.exception("job failed unexpectedly", extra={"cmd": job.cmd})
            self._record(
                job,
                queue.FAILED,
                530,
                {
                    "errorcode": 530,
                    "errortext": "Internal error executing the job, see the management server log",
                },
                spec.event if spec else None,
                "internal error",
            )

    def _body(self, job: Claimed, runner: Any) -> Any:
        with self.rt.db.write() as session:
            caller = auth.caller_by_user_id(session, job.user_id, allow_disabled=True)
            if caller is None:
                raise InternalError("the user that submitted the job no longer exists")
            ctx = Ctx(
                session=session,
                caller=caller,
                runtime=self.rt,
                request_id=job.uuid,
                job_id=job.uuid,
            )
            return runner(ctx, **job.params)

    def _record(
        self,
        job: Claimed,
        status: int,
        code: int,
        body: dict[str, Any],
        event: str | None,
        description: str,
    ) -> None:
        with self.rt.db.write() as session:
            row = queue.finish(session, job.id, self.rt.server_id, status, code, body)
            if row is None:
                log.warning("job was taken over before it finished here")
                return
            if event:
                caller = auth.caller_by_user_id(session, job.user_id, allow_disabled=True)
                if caller is not None:
                    events.record(
                        session,
                        caller,
                        event,
                        description,
                        level="INFO" if status == queue.SUCCEEDED else "ERROR",
                        resource_id=row.instance_id,
                        resource_type=row.instance_type,
                        job_id=job.uuid,
                        account_id=row.account_id,
                        domain_id=row.domain_id,
                    )
        log.info("job finished", extra={"cmd": job.cmd, "jobstatus": status, "jobresultcode": code})
