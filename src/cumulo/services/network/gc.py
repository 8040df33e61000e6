"""The network garbage collector: isolated networks without a running VM are shut down.

CloudStack's ``network.gc.interval`` / ``network.gc.wait``: every interval the collector
looks for Implemented isolated networks with no VM placed on a host (Starting, Running,
Stopping, Migrating); one found idle on a round and still idle ``network.gc.wait`` seconds
later is shut down (``networks.shutdown``: the VXLAN id goes back, the source NAT address
stays) and synced, which destroys its router and releases its segment on every host. The
next VM start implements it again (``nics.prepare_start``) and the router comes back.

Idle times are kept in this process: after a server restart a network waits the full time
again, which only delays a shutdown. The router itself goes as soon as no VM is placed
(``routers.plan_sync``); what the wait holds is the network's segment id and state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.db.models_network import Network
from cumulo.services.config import ConfigKey, define
from cumulo.services.network import networks
from cumulo.services.runtime import Runtime

log = logging.getLogger(__name__)

# ``routers`` runs the collector from its reconciler and hands over its own placement query
# and sync (this module cannot import ``routers``: that would be an import circle).
Placed = Callable[[Session, Network], list[int]]
Sync = Callable[[Runtime, str], None]

GC_INTERVAL = define(
    ConfigKey(
        "network.gc.interval",
        "Advanced",
        "Integer",
        "600",
        "Seconds to wait before checking for networks to shutdown",
        group="Network",
        subgroup="Network",
        min=1,
    )
)
GC_WAIT = define(
    ConfigKey(
        "network.gc.wait",
        "Advanced",
        "Integer",
        "600",
        "Time (in seconds) to wait before shutting down a network that's not in used",
        group="Network",
        subgroup="Network",
        min=0,
    )
)


@dataclass
class Collector:
    """When the collector last ran and since when each network has been seen idle."""

    last_run: float | None = None
    idle_since: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


COLLECTOR = Collector()


def collect(
    rt: Runtime,
    placed: Placed,
    sync: Sync,
    collector: Collector = COLLECTOR,
    now: float | None = None,
) -> list[str]:
    """One round when ``network.gc.interval`` has passed since the last; the uuids of the
    networks shut down. ``placed``: the hosts with a VM of a network placed on them."""
    now = time.monotonic() if now is None else now
    with collector.lock:
        with rt.db.read() as session:
            interval = float(rt.config.get(session, GC_INTERVAL))
            wait = float(rt.config.get(session, GC_WAIT))
        if collector.last_run is not None and now - collector.last_run < interval:
            return []
        collector.last_run = now
        due = _idle_networks(rt, placed, collector, now, wait)
    done = []
    for uuid in due:
        try:
            if _shutdown(rt, placed, uuid):
                sync(rt, uuid)  # router destroyed, segment released on every host
                done.append(uuid)
        except Exception:
            log.exception("network GC failed", extra={"network": uuid})
    return done


def _idle_networks(
    rt: Runtime, placed: Placed, collector: Collector, now: float, wait: float
) -> list[str]:
    """Record when each idle network was first seen idle; those idle for ``wait``."""
    with rt.db.read() as session:
        implemented = session.scalars(
            select(Network).where(
                Network.state == "Implemented",
                Network.removed.is_(None),
                Network.guest_type == "Isolated",
            )
        )
        idle = {n.uuid for n in implemented if not placed(session, n)}
    for uuid in set(collector.idle_since) - idle:
        del collector.idle_since[uuid]  # in use again (or gone)
    for uuid in idle:
        collector.idle_since.setdefault(uuid, now)
    return sorted(u for u in idle if now - collector.idle_since[u] >= wait)


def _shutdown(rt: Runtime, placed: Placed, uuid: str) -> bool:
    """Shut the network down if it is still idle (a VM may have started since the read)."""
    with rt.db.write() as session:
        network = session.scalar(select(Network).where(Network.uuid == uuid))
        if network is None or network.state != "Implemented" or placed(session, network):
            return False
        networks.shutdown(session, network)
        return True
