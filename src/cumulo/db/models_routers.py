"""Virtual routers (issue 7): which host runs a guest network's router namespace, and what
was last applied there.

A router row is bookkeeping, never the source of truth: its configuration is rendered from
the network's rows every time (``services/network/router_config``), and ``config_hash`` only
lets the server skip a push that would change nothing. ``segment_hosts`` lists the hosts the
network's VXLAN segment was programmed on, so a host that no longer needs it is told.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class Router(Base):
    __tablename__ = "routers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))  # r-<network id>-VM, as CloudStack names
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"), unique=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    # Running | Stopped | Starting | Stopping (stopRouter keeps it Stopped until startRouter)
    state: Mapped[str] = mapped_column(String(16), default="Starting")
    vni: Mapped[int | None] = mapped_column(Integer)  # the segment as last programmed
    config_hash: Mapped[str | None] = mapped_column(String(64))
    applied_generation: Mapped[int] = mapped_column(Integer, default=0)
    segment_hosts: Mapped[list[int]] = mapped_column(JSON, default=list)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created: Mapped[datetime] = _created_col()
    updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
