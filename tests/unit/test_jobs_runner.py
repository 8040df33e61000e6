"""The job runner commits a body's writes together with the job's success, or not at all.

A server that lost its lease (it stalled, the job was claimed again elsewhere) must leave no
trace of its attempt: otherwise the body's effects would happen twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from cumulo.api.cloudstack import jobs as runner_module
from cumulo.api.cloudstack.jobs import JobRunner
from cumulo.api.cloudstack.results import Ctx, Success
from cumulo.common.settings import load_settings
from cumulo.db.models import AsyncJob, Configuration, ManagementServer, User
from cumulo.services.errors import ParamError
from cumulo.services.identity import auth
from cumulo.services.jobs import queue
from cumulo.services.runtime import Runtime, open_runtime


@pytest.fixture
def rt(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(load_settings(data_dir=tmp_path, database={"url": db_url}))
    yield runtime
    runtime.db.dispose()


def _write_setting(ctx: Ctx, name: str, fail: bool = False) -> Success:
    """A job body with one database write (a second run would break a unique constraint)."""
    ctx.session.add(Configuration(name=name, value="set by a job"))
    ctx.session.flush()
    if fail:
        raise ParamError("the body failed after writing")
    return Success()


@pytest.fixture(autouse=True)
def fake_command(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SimpleNamespace(runner=_write_setting, response="success", event=None, description="x")
    monkeypatch.setattr(runner_module, "lookup", lambda cmd: spec if cmd == "testJob" else None)


def _server(rt: Runtime) -> int:
    with rt.db.write() as session:
        row = ManagementServer(name=f"test-{uuid.uuid4().hex[:6]}", pid=1, version="test")
        session.add(row)
        session.flush()
        return row.id


def _submit(rt: Runtime, **params: Any) -> int:
    with rt.db.write() as session:
        user_id = session.scalar(select(User.id).where(User.is_default.is_(True)))
        assert user_id is not None
        caller = auth.caller_by_user_id(session, user_id)
        assert caller is not None
        return queue.submit(session, caller, "testJob", params, instance_id="thing").id


def _run_as(rt: Runtime, server_id: int, claimed: queue.Claimed) -> None:
    rt.server_id = server_id
    JobRunner(rt)(claimed)


def _state(rt: Runtime, job_id: int, name: str) -> tuple[int, int, dict[str, Any] | None, int]:
    with rt.db.read() as session:
        job = session.get(AsyncJob, job_id)
        assert job is not None
        rows = session.scalars(select(Configuration).where(Configuration.name == name)).all()
        return job.status, job.owner_id or 0, job.result, len(rows)


def test_a_successful_body_commits_with_its_job(rt: Runtime) -> None:
    name = f"test.{uuid.uuid4().hex}"
    job_id = _submit(rt, name=name)
    server = _server(rt)
    claimed = queue.claim(rt.db, server, 60, 3)
    assert claimed is not None
    _run_as(rt, server, claimed)
    status, owner, _result, written = _state(rt, job_id, name)
    assert (status, owner, written) == (queue.SUCCEEDED, server, 1)


def test_a_failed_body_leaves_no_writes_and_a_failed_job(rt: Runtime) -> None:
    name = f"test.{uuid.uuid4().hex}"
    job_id = _submit(rt, name=name, fail=True)
    server = _server(rt)
    claimed = queue.claim(rt.db, server, 60, 3)
    assert claimed is not None
    _run_as(rt, server, claimed)
    status, _owner, result, written = _state(rt, job_id, name)
    assert (status, written) == (queue.FAILED, 0)
    assert result == {"errorcode": 431, "errortext": "the body failed after writing"}


def test_a_server_that_lost_its_lease_leaves_no_trace(rt: Runtime) -> None:
    name = f"test.{uuid.uuid4().hex}"
    job_id = _submit(rt, name=name)
    stalled, other = _server(rt), _server(rt)
    first = queue.claim(rt.db, stalled, lease_seconds=0.2, max_attempts=3)
    assert first is not None
    time.sleep(0.3)
    second = queue.claim(rt.db, other, 60, 3)
    assert second is not None and second.attempts == 2

    _run_as(rt, stalled, first)  # wakes up late and runs the body anyway
    status, owner, _result, written = _state(rt, job_id, name)
    assert (status, owner, written) == (queue.IN_PROGRESS, other, 0)

    _run_as(rt, other, second)
    status, owner, _result, written = _state(rt, job_id, name)
    assert (status, owner, written) == (queue.SUCCEEDED, other, 1)


def test_an_abandoned_job_fails_with_its_clean_up_and_never_runs_its_body(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    cleaned: list[dict[str, Any]] = []
    spec = SimpleNamespace(
        runner=_write_setting,
        response="success",
        event=None,
        description="x",
        on_abandon=lambda _rt, **params: cleaned.append(params),
    )
    monkeypatch.setattr(runner_module, "lookup", lambda cmd: spec)
    name = f"test.{uuid.uuid4().hex}"
    job_id = _submit(rt, name=name)
    server = _server(rt)
    for _ in range(2):
        claimed = queue.claim(rt.db, server, lease_seconds=0.05, max_attempts=2)
        assert claimed is not None and not claimed.abandoned
        time.sleep(0.1)  # the server "dies" each time: the lease lapses
    last = queue.claim(rt.db, server, 60, 2)
    assert last is not None and last.abandoned
    _run_as(rt, server, last)
    status, _owner, result, written = _state(rt, job_id, name)
    assert (status, written) == (queue.FAILED, 0)
    assert result is not None and result["errorcode"] == 530
    assert "abandoned after 2 attempts" in result["errortext"]
    assert cleaned == [{"name": name}]
