"""What command handlers return, and the context they run in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from cumulo.services.access import Caller, ListScope
from cumulo.services.errors import ParamError

if TYPE_CHECKING:
    from cumulo.services.runtime import Runtime

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass
class Listing:
    """A page of response objects and the total number of matches (CloudStack ``count``)."""

    items: list[dict[str, Any]]
    count: int


@dataclass
class Success:
    """CloudStack's SuccessResponse: ``{"success": true, "displaytext": …}``."""

    displaytext: str | None = None
    success: bool = True


@dataclass
class Flat:
    """A response body whose fields sit directly under ``<command>response`` (login)."""

    body: dict[str, Any]


@dataclass
class Submit:
    """An async command's accepted request: the job row is written from this."""

    params: dict[str, Any] = field(default_factory=dict)
    instance_type: str | None = None
    instance_id: str | None = None
    # Async-create commands allocate their entity first and reply with its id as well.
    created_id: str | None = None
    resource_name: str | None = None


@dataclass
class Paging:
    page: int | None
    pagesize: int | None  # None means unlimited (pagesize=-1)
    keyword: str | None


@dataclass
class Ctx:
    """Everything a handler may use; built per call by the dispatcher or a job worker."""

    session: Session
    caller: Caller
    runtime: Runtime
    request_id: str
    paging: Paging = field(default_factory=lambda: Paging(None, 500, None))
    scope: ListScope = field(default_factory=ListScope)
    # listall, domainid, account, isrecursive as sent, for lists that scope in their own way.
    list_args: dict[str, Any] = field(default_factory=dict)
    job_id: str | None = None
    # Set by handlers whose event names a resource that the response does not show.
    event_resource: tuple[str | None, str | None] | None = None
    # The HTTP request and reply (login and logout set cookies); None inside a job.
    request: Any = None
    reply: Any = None

    def page_records(self, stmt: Select[*Ts]) -> tuple[list[Row[*Ts]], int]:
        """One page of rows, with the total match count riding along as a window column.

        One query instead of a count plus a page, and the total is the same snapshot as the
        rows. Only a page past the end (no row to carry the total) costs a counting query.
        Rows keep their column names (plus a trailing ``page_total``).
        """
        p = self.paging
        counted = stmt.add_columns(func.count().over().label("page_total"))
        if p.pagesize is not None:
            counted = counted.limit(p.pagesize).offset(((p.page or 1) - 1) * p.pagesize)
        rows = list(self.session.execute(counted).all())
        if rows:
            return rows, int(rows[0][-1])
        if p.page in (None, 1):
            return [], 0
        total = self.session.scalar(
            select(func.count()).select_from(stmt.order_by(None).subquery())
        )
        return [], int(total or 0)

    def page(self, stmt: Select[T]) -> tuple[list[T], int]:
        """One page of a single-entity select, and the count of all its matches."""
        rows, total = self.page_records(stmt)
        return [r[0] for r in rows], total

    def page_rows(self, stmt: Select[*Ts]) -> tuple[list[tuple[*Ts]], int]:
        """One page of a multi-entity select (entity joined with its owners), and the count."""
        rows, total = self.page_records(stmt)
        return [r._tuple()[:-1] for r in rows], total  # type: ignore[misc]


def paging_from(values: dict[str, Any], max_page_size: int) -> Paging:
    page, size = values.get("page"), values.get("pagesize")
    if size == -1:
        if page is not None:
            raise ParamError("Can't specify page parameter when pagesize is -1 (Unlimited)")
        return Paging(None, None, values.get("keyword"))
    if size is not None and size < 1:
        raise ParamError("Page size must be a positive number or -1 for unlimited")
    if size is not None and max_page_size > 0 and size > max_page_size:
        raise ParamError(f"Page size can't exceed max allowed page size value: {max_page_size}")
    if page is not None and page < 1:
        raise ParamError("Page must be a positive number")
    effective = size if size is not None else (max_page_size if max_page_size > 0 else None)
    return Paging(page, effective, values.get("keyword"))
