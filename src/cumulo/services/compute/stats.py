"""VM statistics: samples from hosts, the latest per VM, and cumulative counters for metering.

Agents push every running VM's counters every ``vm.stats.interval`` milliseconds (CloudStack's
key; the server tells each agent when it registers). Counters count since the VM started, so
a counter lower than the last sample means the VM restarted: the new value is all new usage.
Totals therefore only ever grow, whatever the sampling rate, and issue 9's usage aggregator
can turn their differences into usage records. Simulated hosts live inside the server and
push nothing; ``SimStatsSampler`` asks them on the same schedule.

``listVirtualMachines`` shows what is known through ``for_vms`` in CloudStack's field names:
``cpuused`` as a percent string, network and disk traffic in KiB and disk operations as the
cumulative totals (CloudStack's stats collector also adds samples up), ``memorykbs``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.hub import HubError
from cumulo.agentrpc.messages import GetVmStats, NicStats, VmStats
from cumulo.agentrpc.wire import ProtocolError, vm_stats_from_wire
from cumulo.common.ids import new_uuid
from cumulo.common.time import aware, utcnow
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_infra import Host
from cumulo.db.models_stats import VmStat
from cumulo.services import config
from cumulo.services.config import ConfigKey, ConfigStore

log = logging.getLogger(__name__)

STATS_INTERVAL = config.define(
    ConfigKey(
        "vm.stats.interval",
        "Advanced",
        "Integer",
        "60000",
        "The interval (in milliseconds) when vm stats are retrieved from agents.",
        min=0,
        dynamic=False,  # agents learn it when they (re)connect, as CloudStack's need a restart
    )
)

# VmStats counter -> VmStat column pairs (raw, total) share the counter's name.
COUNTERS = (
    "cpu_time_ns",
    "disk_read_bytes",
    "disk_write_bytes",
    "disk_read_ops",
    "disk_write_ops",
    "net_rx_bytes",
    "net_tx_bytes",
)


def interval_s(session: Session, store: ConfigStore) -> float:
    """Seconds between samples; 0 turns sampling off."""
    return float(store.get(session, STATS_INTERVAL)) / 1000.0


# --- recording ---------------------------------------------------------------------------


def record(session: Session, host_id: int, samples: Sequence[VmStats]) -> int:
    """Store a host's sample; how many VMs it covered. Samples for VMs the database does not
    place on this host (destroyed, or moved away meanwhile) are ignored."""
    by_name = {s.name: s for s in samples}
    if not by_name:
        return 0
    vms = session.scalars(
        select(VirtualMachine).where(
            VirtualMachine.instance_name.in_(list(by_name)),
            VirtualMachine.host_id == host_id,
            VirtualMachine.removed.is_(None),
        )
    ).all()
    rows = {
        r.vm_id: r
        for r in session.scalars(select(VmStat).where(VmStat.vm_id.in_([vm.id for vm in vms])))
    }
    now = utcnow()
    for vm in vms:
        row = rows.get(vm.id)
        if row is None:
            row = VmStat(vm_id=vm.id, nic_totals={}, **{c: 0 for c in COUNTERS}, **_zero_totals())
            row.sampled = now
            session.add(row)
        apply_sample(row, by_name[vm.instance_name], vm.cpu_number, now)
        row.host_id = host_id
    return len(vms)


def _zero_totals() -> dict[str, int]:
    return {f"total_{c}": 0 for c in COUNTERS}


def apply_sample(row: VmStat, sample: VmStats, vcpus: int, now: datetime) -> None:
    """Fold one sample into the row: totals grow by each counter's increase (its whole value
    after a restart reset it), CPU use is the CPU time spent over the wall time between the
    two samples, across the VM's vCPUs."""
    elapsed = (now - aware(row.sampled)).total_seconds() if row.sampled else 0.0
    cpu_delta = _increase(row.cpu_time_ns, sample.cpu_time_ns)
    for name in COUNTERS:
        new = int(getattr(sample, name))
        total = f"total_{name}"
        setattr(row, total, int(getattr(row, total) or 0) + _increase(getattr(row, name), new))
        setattr(row, name, new)
    if elapsed > 0:  # a first sample has nothing to compare with
        share = cpu_delta / (elapsed * 1e9 * max(vcpus, 1)) * 100.0
        row.cpu_percent = round(min(max(share, 0.0), 100.0), 2)
    row.memory_kib = sample.memory_kib
    row.sampled = now
    if sample.nics:
        row.nic_totals = fold_nics(row.nic_totals or {}, sample.nics)


def fold_nics(before: dict[str, list[int]], nics: Sequence[NicStats]) -> dict[str, list[int]]:
    """Per-NIC [last rx, last tx, total rx, total tx], folded as the VM's own counters (a
    NIC no longer reported keeps its totals). A new dict: the JSON column sees the change."""
    out = {k: list(v) for k, v in before.items()}
    for nic in nics:
        last_rx, last_tx, total_rx, total_tx = out.get(nic.nic_id, [0, 0, 0, 0])
        total_rx += _increase(last_rx, nic.rx_bytes)
        total_tx += _increase(last_tx, nic.tx_bytes)
        out[nic.nic_id] = [nic.rx_bytes, nic.tx_bytes, total_rx, total_tx]
    return out


def _increase(before: int | None, now: int) -> int:
    before = before or 0
    return now - before if now >= before else now


# --- reading -----------------------------------------------------------------------------


def for_vms(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """CloudStack's VM statistics fields per VM id, for the VMs that have been sampled. The
    traffic totals stay visible after a VM stops (they are what it used); CPU and memory use
    are shown only while it runs."""
    if not ids:
        return {}
    rows = session.execute(
        select(VmStat, VirtualMachine.state)
        .join(VirtualMachine, VirtualMachine.id == VmStat.vm_id)
        .where(VmStat.vm_id.in_(list(ids)))
    ).tuples()
    return {row.vm_id: fields(row, running=state == "Running") for row, state in rows}


def fields(row: VmStat, *, running: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "networkkbsread": row.total_net_rx_bytes // 1024,
        "networkkbswrite": row.total_net_tx_bytes // 1024,
        "diskkbsread": row.total_disk_read_bytes // 1024,
        "diskkbswrite": row.total_disk_write_bytes // 1024,
        "diskioread": row.total_disk_read_ops,
        "diskiowrite": row.total_disk_write_ops,
    }
    if running:
        out["cpuused"] = f"{row.cpu_percent:.2f}%"
        out["memorykbs"] = row.memory_kib
    return out


# --- simulated hosts ---------------------------------------------------------------------


def sample_simulated(rt: Any) -> int:
    """Ask every simulated host with running VMs for their counters, and record them."""
    from cumulo.services.compute.lifecycle import host_ref  # lifecycle is heavy; lazy

    with rt.db.read() as session:
        hosts = session.scalars(
            select(Host)
            .where(
                Host.hypervisor_type == "Simulator",
                Host.removed.is_(None),
                Host.id.in_(
                    select(VirtualMachine.host_id).where(VirtualMachine.state == "Running")
                ),
            )
            .order_by(Host.id)
        ).all()
        refs = [(h.id, host_ref(session, h)) for h in hosts]
    gathered: list[tuple[int, list[VmStats]]] = []
    for host_id, ref in refs:
        try:
            answer = rt.hub.send(ref, GetVmStats(request_id=new_uuid()), 10.0)
        except HubError as err:
            log.info("simulated host not sampled", extra={"host": ref.uuid, "error": str(err)})
            continue
        try:
            gathered.append((host_id, vm_stats_from_wire(answer.result.get("stats", []))))
        except ProtocolError as err:
            log.warning("simulated host sent bad stats", extra={"error": str(err)})
    if not gathered:
        return 0
    with rt.db.write() as session:  # one write for the round: the SQLite lock is shared
        return sum(record(session, host_id, samples) for host_id, samples in gathered)


class SimStatsSampler:
    """A thread that samples simulated hosts every ``vm.stats.interval`` (agents push theirs)."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vm-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        """Wakes every second so a changed interval applies at once, samples when due."""
        last = 0.0
        while not self._stop.wait(1.0):
            try:
                with self.rt.db.read() as session:
                    every = interval_s(session, self.rt.config)
                if every > 0 and time.monotonic() - last >= every:
                    last = time.monotonic()
                    sample_simulated(self.rt)
            except Exception:
                log.exception("VM stats sampling failed")
