"""VM consoles: short-lived, single-use tokens that open one VM's VNC console once.

``createConsoleEndpoint`` checks that the caller may act on the VM and that it runs, then
issues a token: 256 random bits, of which only a SHA-256 is stored with the VM, its host and
an expiry (``console.token.lifetime`` seconds). The console WebSocket (``api/console.py``)
consumes the token with one conditional UPDATE (unused and unexpired), so two connections
racing with the same token cannot both win, and a replayed or stale token opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import HostRef
from cumulo.agentrpc.messages import OpenConsole
from cumulo.agentrpc.wire import CONSOLE_PATH
from cumulo.common.ids import new_uuid
from cumulo.common.time import aware, utcnow
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import Host
from cumulo.db.models_stats import ConsoleToken
from cumulo.services import config
from cumulo.services.access import Caller
from cumulo.services.compute import vms
from cumulo.services.config import ConfigKey, ConfigStore

KEEP_EXPIRED = timedelta(hours=1)
AGENT_PATH = CONSOLE_PATH  # where agents dial back with a console session
TOKEN_LIFETIME = config.define(
    ConfigKey(
        "console.token.lifetime",
        "Advanced",
        "Integer",
        "60",
        "Seconds a console token from createConsoleEndpoint stays valid (it opens one "
        "console session, once)",
        min=1,
        max=3600,
    )
)


class NotRunning(Exception):
    """CloudStack answers this with ``success`` false and the reason in ``details``."""


@dataclass(frozen=True)
class Issued:
    token: str
    vm_uuid: str
    expires_in: int


@dataclass(frozen=True)
class Target:
    """What a consumed token opens: the VM's console on its host."""

    vm_uuid: str
    vm_name: str  # the instance name the host knows the VM by
    host: HostRef


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def issue(
    session: Session, store: ConfigStore, caller: Caller, vm_uuid: str, extra: str | None
) -> Issued:
    """A console token for a running VM the caller may act on (531 otherwise, as for every
    VM command); NotRunning when there is no console to open."""
    vm = vms.find_for(session, caller, vm_uuid)
    if vm.state != "Running" or vm.host_id is None:
        raise NotRunning(f"VM {vm.uuid} is not running, so its console cannot be opened")
    lifetime = int(store.get(session, TOKEN_LIFETIME))
    forget_expired(session)
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleToken(
            token_hash=_hash(token),
            vm_id=vm.id,
            host_id=vm.host_id,
            user_id=caller.user_id,
            extra_hash=_hash(extra) if extra else None,
            expires=utcnow() + timedelta(seconds=lifetime),
        )
    )
    return Issued(token, vm.uuid, lifetime)


def forget_expired(session: Session) -> None:
    """Tokens past their expiry open nothing; an hour later they are not worth keeping."""
    session.execute(
        delete(ConsoleToken)
        .where(ConsoleToken.expires < utcnow() - KEEP_EXPIRED)
        .execution_options(synchronize_session=False)
    )


def consume(session: Session, token: str, extra: str | None) -> Target | None:
    """The console the token opens, marking it used; None when it is unknown, used, expired,
    lacks its extra token, or its VM is no longer running on that host."""
    if not token or len(token) > 128:
        return None
    now = utcnow()
    row = session.scalar(select(ConsoleToken).where(ConsoleToken.token_hash == _hash(token)))
    if row is None or row.used is not None or aware(row.expires) <= now:
        return None
    if row.extra_hash and not hmac.compare_digest(row.extra_hash, _hash(extra or "")):
        return None
    won = session.execute(
        update(ConsoleToken)
        .where(ConsoleToken.id == row.id, ConsoleToken.used.is_(None))
        .values(used=now)
        .execution_options(synchronize_session=False)
    )
    if not won.rowcount:  # type: ignore[attr-defined]
        return None  # another connection used it a moment ago
    return _target(session, row)


def _target(session: Session, row: ConsoleToken) -> Target | None:
    from cumulo.services.compute.lifecycle import host_ref  # lifecycle is heavy; lazy

    vm = session.get(VirtualMachine, row.vm_id)
    host = session.get(Host, row.host_id)
    if vm is None or host is None or vm.state != "Running" or vm.host_id != host.id:
        return None
    return Target(vm.uuid, vm.instance_name, host_ref(session, host))


# --- opening the console on the host ----------------------------------------------------------


def ask_agent(rt: Any, target: Target, secret: str, server_url: str, timeout_s: float) -> None:
    """Have the host's agent connect the VM's console to a WebSocket it dials back to
    ``server_url`` with ``secret``; returns once the dial-back is connected (HubError
    otherwise: CommandFailed with the host's reason, HostUnreachable, CommandTimeout)."""
    command = OpenConsole(
        request_id=new_uuid(), name=target.vm_name, token=secret, server_url=server_url
    )
    rt.hub.send(target.host, command, timeout_s)


def open_simulated(rt: Any, target: Target) -> socket.socket:
    """A simulated host's console, straight from its driver in this process."""
    transport = rt.hub.transport(target.host.hypervisor)
    driver = transport.driver(target.host)
    sock: socket.socket = driver.open_console(target.vm_name)
    return sock
