"""queryAsyncJobResult and listAsyncJobs (reference §3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import bindparam, select

from cumulo.api.cloudstack.registry import Kind, Param, UUIDStr, command
from cumulo.api.cloudstack.results import Ctx, Flat, Listing
from cumulo.common.time import to_wire
from cumulo.db.models import Account, AsyncJob, Domain, ManagementServer, User
from cumulo.services.errors import ParamError, PermissionDenied

JOB_FIELDS = (
    "accountid",
    "account",
    "domainid",
    "domainpath",
    "userid",
    "cmd",
    "jobstatus",
    "jobprocstatus",
    "jobresultcode",
    "jobresulttype",
    "jobresult",
    "jobinstancetype",
    "jobinstanceid",
    "managementserverid",
    "created",
    "completed",
    "jobid",
)


def _job_select() -> Any:
    return (
        select(AsyncJob, Account, Domain, User)
        .join(Account, AsyncJob.account_id == Account.id)
        .join(Domain, AsyncJob.domain_id == Domain.id)
        .join(User, AsyncJob.user_id == User.id)
    )


def job_response(
    ctx: Ctx, job: AsyncJob, account: Account, domain: Domain, user: User
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountid": account.uuid,
        "account": account.name,
        "domainid": domain.uuid,
        "domainpath": "ROOT" + domain.path.rstrip("/"),
        "userid": user.uuid,
        "cmd": f"org.apache.cloudstack.api.command.{job.cmd}",
        "jobstatus": job.status,
        "jobprocstatus": 0,
        "jobresultcode": job.result_code,
        "jobinstancetype": job.instance_type,
        "jobinstanceid": job.instance_id,
        "created": to_wire(job.created),
        "completed": to_wire(job.completed),
        "jobid": job.uuid,
    }
    if job.status != 0:
        body["jobresulttype"] = "object"
        body["jobresult"] = job.result or {}
    return body


# Built once: clients poll this in a loop, and building the joined statement cost more
# than running it.
_BY_UUID = _job_select().where(AsyncJob.uuid == bindparam("p_uuid"))


@command(
    "queryAsyncJobResult",
    description="Retrieves the current status of asynchronous job.",
    fields=JOB_FIELDS,
    since="1.0",
)
def query_async_job_result(
    ctx: Ctx,
    jobid: Annotated[
        UUIDStr, Param("the ID of the asynchronous job", required=True, entity="AsyncJob")
    ],
) -> Flat:
    row = ctx.session.execute(_BY_UUID, {"p_uuid": jobid}).first()
    if row is None:
        raise ParamError(f"Unable to find a job by id {jobid}")
    _job, account, domain, _user = row
    if account.id != ctx.caller.account_id and not ctx.caller.owns_domain(domain.path):
        raise PermissionDenied(
            f"Account {ctx.caller.account_name} does not have permission to access job {jobid}"
        )
    return Flat(job_response(ctx, *row._tuple()))


@command(
    "listAsyncJobs",
    kind=Kind.LIST,
    description="Lists all pending asynchronous jobs for the account.",
    response="asyncjobs",
    scoped=True,
    fields=JOB_FIELDS,
    since="1.0",
)
def list_async_jobs(
    ctx: Ctx,
    startdate: Annotated[
        datetime | None,
        Param("The start date of the async job (use format \"yyyy-MM-dd'T'HH:mm:ss'+'SSSS\")"),
    ] = None,
    managementserverid: Annotated[
        UUIDStr | None, Param("The id of the management server", entity="ManagementServer")
    ] = None,
) -> Listing:
    stmt = _job_select().where(ctx.scope.where(AsyncJob.account_id, Domain.path))
    if startdate is not None:
        stmt = stmt.where(AsyncJob.created >= startdate)
    if managementserverid is not None:
        stmt = stmt.join(ManagementServer, AsyncJob.owner_id == ManagementServer.id).where(
            ManagementServer.uuid == managementserverid
        )
    rows, total = ctx.page_rows(stmt.order_by(AsyncJob.id.desc()))
    return Listing([job_response(ctx, *r) for r in rows], total)
