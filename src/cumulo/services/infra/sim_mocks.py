"""configureSimulator rules: injected latency and failures for simulated hosts.

CloudStack's ``configureSimulator`` names an agent command (``StartCommand``,
``StopCommand``, ``MigrateCommand``, ``CopyCommand`` …), a scope (zone, pod, cluster, host)
and a value ``enabled:true;timeout:…;wait:<ms>;result:fail|fault``, optionally for ``count``
commands only. Rules live in ``simulator_mocks`` so every server applies the same ones; each
server caches them for a second (``MockBook``), and a rule with a count is consumed with a
conditional UPDATE, so two servers never use up the same last count twice.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from cumulo.common.time import utcnow
from cumulo.db.engine import Database
from cumulo.db.models_compute import SimulatorMock
from cumulo.db.models_infra import Cluster, Host, Pod, Zone
from cumulo.services.errors import NotFound, ParamError

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class MockRule:
    """A configureSimulator rule as the transport needs it (scope as uuids)."""

    id: int
    command: str
    zone: str | None
    pod: str | None
    cluster: str | None
    host: str | None
    wait_ms: int
    result: str | None
    timeout: bool
    counted: bool

    @property
    def specificity(self) -> int:
        return sum(x is not None for x in (self.zone, self.pod, self.cluster, self.host))

    def matches(self, kind: str, zone: str, pod: str, cluster: str, host: str) -> bool:
        return (
            self.command.lower() == kind.lower()
            and self.zone in (None, zone)
            and self.pod in (None, pod)
            and self.cluster in (None, cluster)
            and self.host in (None, host)
        )


def parse_mock_value(value: str) -> tuple[int, str | None, bool, bool]:
    """``enabled:true;timeout:…;wait:<ms>;result:fail|fault`` → wait, result, timeout, enabled."""
    wait, result, timeout, enabled = 0, None, False, True
    for part in value.split(";"):
        if not part.strip():
            continue
        key, _, raw = part.partition(":")
        key, raw = key.strip().lower(), raw.strip()
        if key == "wait":
            if not raw.isdigit():
                raise ParamError(f"configureSimulator wait must be milliseconds: {raw!r}")
            wait = int(raw)
        elif key == "result":
            if raw.lower() not in ("fail", "fault", "success", ""):
                raise ParamError(f"configureSimulator result must be fail or fault: {raw!r}")
            result = raw.lower() if raw.lower() in ("fail", "fault") else None
        elif key == "timeout":
            timeout = raw.lower() not in ("false", "0", "")
        elif key == "enabled":
            enabled = raw.lower() not in ("false", "0")
        else:
            raise ParamError(f"configureSimulator does not know {key!r} in value {value!r}")
    return wait, result, timeout, enabled


@dataclass(frozen=True)
class Scope:
    zone: Zone
    pod: Pod | None = None
    cluster: Cluster | None = None
    host: Host | None = None


def create(
    session: Session, scope: Scope, command: str, value: str, count: int | None, json: str | None
) -> SimulatorMock:
    if not command.strip():
        raise ParamError("configureSimulator needs the name of an agent command")
    if count is not None and count < 1:
        raise ParamError("configureSimulator count must be at least 1")
    wait, result, timeout, enabled = parse_mock_value(value)
    mock = SimulatorMock(
        command=command.strip(),
        zone_id=scope.zone.id,
        pod_id=scope.pod.id if scope.pod else None,
        cluster_id=scope.cluster.id if scope.cluster else None,
        host_id=scope.host.id if scope.host else None,
        wait_ms=wait,
        result=result,
        timeout=timeout,
        enabled=enabled,
        count=count,
        json_response=json,
    )
    session.add(mock)
    session.flush()
    return mock


def find(session: Session, uuid: str) -> SimulatorMock:
    mock = session.scalar(
        select(SimulatorMock).where(SimulatorMock.uuid == uuid, SimulatorMock.removed.is_(None))
    )
    if mock is None:
        raise NotFound(f"Unable to find simulator mock with id {uuid}")
    return mock


def cleanup(mock: SimulatorMock) -> None:
    mock.removed = utcnow()
    mock.enabled = False


def _load(session: Session) -> list[MockRule]:
    z, p, c, h = aliased(Zone), aliased(Pod), aliased(Cluster), aliased(Host)
    rows = session.execute(
        select(SimulatorMock, z.uuid, p.uuid, c.uuid, h.uuid)
        .outerjoin(z, z.id == SimulatorMock.zone_id)
        .outerjoin(p, p.id == SimulatorMock.pod_id)
        .outerjoin(c, c.id == SimulatorMock.cluster_id)
        .outerjoin(h, h.id == SimulatorMock.host_id)
        .where(
            SimulatorMock.removed.is_(None),
            SimulatorMock.enabled.is_(True),
            (SimulatorMock.count.is_(None)) | (SimulatorMock.count > 0),
        )
    ).all()
    return [
        MockRule(
            id=m.id,
            command=m.command,
            zone=zu,
            pod=pu,
            cluster=cu,
            host=hu,
            wait_ms=m.wait_ms,
            result=m.result,
            timeout=m.timeout,
            counted=m.count is not None,
        )
        for m, zu, pu, cu, hu in rows
    ]


class MockBook:
    """Every server's view of the rules: cached briefly, reloaded at once after a change here."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._rules: list[MockRule] = []
        self._loaded = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._loaded = 0.0

    def _current(self) -> list[MockRule]:
        with self._lock:
            if time.monotonic() - self._loaded < CACHE_SECONDS:
                return self._rules
        with self._db.read() as session:
            rules = _load(session)
        with self._lock:
            self._rules, self._loaded = rules, time.monotonic()
        return rules

    def rule_for(
        self, kind: str, *, zone: str, pod: str, cluster: str, host: str
    ) -> MockRule | None:
        """The most specific matching rule, its count consumed; None when none applies."""
        matching = [r for r in self._current() if r.matches(kind, zone, pod, cluster, host)]
        for rule in sorted(matching, key=lambda r: -r.specificity):
            if not rule.counted or self._consume(rule.id):
                return rule
        return None

    def _consume(self, rule_id: int) -> bool:
        with self._db.write() as session:
            done = session.execute(
                update(SimulatorMock)
                .where(SimulatorMock.id == rule_id, SimulatorMock.count > 0)
                .values(count=SimulatorMock.count - 1)
            ).rowcount  # type: ignore[attr-defined]
        if not done:
            self.invalidate()
        return bool(done)
