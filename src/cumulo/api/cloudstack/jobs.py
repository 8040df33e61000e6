"""Running an async command's job body in a worker, and recording how it ended.

A successful body and the record of its success commit in one transaction, and that record
is only written while we still own the job: if this server dies, or loses its lease to
another server, before the commit, none of the body's database writes survive and the job
runs again from the start elsewhere. A body that fails is rolled back and its failure
recorded in a second transaction. Bodies must still be idempotent: whatever they do outside
the database (on an agent, say) may have happened before the crash.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from cumulo.api.cloudstack import envelope
from cumulo.api.cloudstack.registry import CommandSpec, lookup
from cumulo.api.cloudstack.results import Ctx
from cumulo.services import events
from cumulo.services.access import Caller
from cumulo.services.errors import CloudError, InternalError
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.jobs.queue import Claimed
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)
INTERNAL_ERROR_TEXT = "Internal error executing the job, see the management server log"


class TakenOver(Exception):
    """Another server owns the job now: our attempt is rolled back and theirs counts."""


class JobRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def __call__(self, job: Claimed) -> None:
        spec = lookup(job.cmd)
        event = spec.event if spec else None
        try:
            if spec is None or spec.runner is None:
                raise InternalError(f"no job body is registered for {job.cmd}")
            if job.abandoned:
                self._abandon(job, spec)
                return
            self._run(job, spec)
        except TakenOver:
            log.warning("job was taken over before it finished here", extra={"cmd": job.cmd})
        except CloudError as err:
            failure = {"errorcode": err.errorcode, "errortext": err.text}
            self._fail(job, err.errorcode, failure, event, err.text)
        except Exception:
            log.exception("job failed unexpectedly", extra={"cmd": job.cmd})
            failure = {"errorcode": 530, "errortext": INTERNAL_ERROR_TEXT}
            self._fail(job, 530, failure, event, "internal error")

    def _abandon(self, job: Claimed, spec: CommandSpec) -> None:
        """Fail a job whose servers kept dying, after the command's own clean-up."""
        text = f"job abandoned after {job.attempts} attempts: the servers running it stopped"
        clean_up = getattr(spec, "on_abandon", None)  # test doubles of a spec may lack it
        if clean_up is not None:
            clean_up(self.rt, **job.params)
        self._fail(job, 530, {"errorcode": 530, "errortext": text}, spec.event, text)

    def _run(self, job: Claimed, spec: CommandSpec) -> None:
        """The body and the record of its success, in one transaction."""
        assert spec.runner is not None
        prepare = getattr(spec, "prepare", None)  # test doubles of a spec may lack it
        if prepare is not None:
            prepare(self.rt, **job.params)
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
            result = spec.runner(ctx, **job.params)
            body = envelope.body_for(result, spec.response)
            if not self._record(
                session, job, queue.SUCCEEDED, 0, body, spec.event, spec.description, caller
            ):
                raise TakenOver(job.uuid)
        log.info("job finished", extra={"cmd": job.cmd, "jobstatus": queue.SUCCEEDED})

    def _fail(
        self, job: Claimed, code: int, body: dict[str, Any], event: str | None, text: str
    ) -> None:
        with self.rt.db.write() as session:
            if not self._record(session, job, queue.FAILED, code, body, event, text):
                log.warning("job was taken over before it failed here", extra={"cmd": job.cmd})
                return
        log.info(
            "job finished", extra={"cmd": job.cmd, "jobstatus": queue.FAILED, "jobresultcode": code}
        )

    def _record(
        self,
        session: Session,
        job: Claimed,
        status: int,
        code: int,
        body: dict[str, Any],
        event: str | None,
        description: str,
        caller: Caller | None = None,
    ) -> bool:
        """Finish the job row and write its completion event; False if we no longer own it.
        ``caller`` is the submitter already read in this transaction (a success), else read."""
        row = queue.finish(session, job.id, self.rt.server_id, status, code, body)
        if row is None:
            return False
        if event:
            if caller is None:
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
        return True
