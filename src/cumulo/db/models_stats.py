"""What the console and the statistics keep: console tokens and each VM's latest sample.

``console_tokens`` holds only a SHA-256 of each console token (256 random bits, so a fast
hash is enough), the VM and host it opens, its expiry and when it was used: a token opens one
console once, within its lifetime.

``vm_stats`` holds one row per VM: the last raw counters its host reported (since the VM
started), the CPU use derived from the last two samples, and cumulative totals that survive
VM restarts (a counter that went down means the VM restarted, and counting starts again from
the new value). Metering turns the totals into usage (CloudStack's network and disk usage
types) without caring how often samples came.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col


class ConsoleToken(Base):
    __tablename__ = "console_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), index=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # A hash of the caller's optional extra token (createConsoleEndpoint ``token``): the
    # WebSocket must present it too.
    extra_hash: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[datetime] = _created_col()
    expires: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VmStat(Base):
    __tablename__ = "vm_stats"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), unique=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    sampled: Mapped[datetime] = _created_col()
    cpu_percent: Mapped[float] = mapped_column(Float, default=0.0)
    memory_kib: Mapped[int] = mapped_column(BigInteger, default=0)
    # The last sample's raw counters (since the VM started).
    cpu_time_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_read_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_write_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_read_ops: Mapped[int] = mapped_column(BigInteger, default=0)
    disk_write_ops: Mapped[int] = mapped_column(BigInteger, default=0)
    net_rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    net_tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Cumulative over the VM's life, across restarts: what metering reads.
    total_cpu_time_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    total_disk_read_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_disk_write_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_disk_read_ops: Mapped[int] = mapped_column(BigInteger, default=0)
    total_disk_write_ops: Mapped[int] = mapped_column(BigInteger, default=0)
    total_net_rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    total_net_tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Per NIC (by NIC uuid): [last rx, last tx, total rx, total tx] bytes, as the guest sees
    # them (rx: into the guest), for metering traffic per network.
    nic_totals: Mapped[dict[str, list[int]]] = mapped_column(JSON, default=dict)
