"""What the agent protocol keeps in the database: relayed commands and reported VM states.

An agent is connected to one management server, but the job that needs it may run on any
server. ``agent_commands`` is the relay between them: the sender writes a row, the server
holding the agent's WebSocket claims it, delivers it and writes the answer back. The
``request_id`` is unique, so a resent command finds the first row (and its answer) instead of
running twice.

``host_vm_reports`` holds the last power state each host reported per VM name: observed state
that the VM orchestration reconciles the VM rows against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col


class AgentCommand(Base):
    __tablename__ = "agent_commands"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Pending (written) -> Sent (claimed by the holder) -> Done (answered) | Expired.
    state: Mapped[str] = mapped_column(String(16), default="Pending", index=True)
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    sender_server_id: Mapped[int | None] = mapped_column(Integer)
    holder_server_id: Mapped[int | None] = mapped_column(Integer)
    created: Mapped[datetime] = _created_col()
    updated: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HostVmReport(Base):
    __tablename__ = "host_vm_reports"
    __table_args__ = (UniqueConstraint("host_id", "vm_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    vm_name: Mapped[str] = mapped_column(String(255))
    power_state: Mapped[str] = mapped_column(String(16))  # agentrpc PowerState values
    detail: Mapped[str] = mapped_column(String(255), default="")
    # When the host last said anything about this VM, and when the state last changed.
    reported: Mapped[datetime] = _created_col()
    changed: Mapped[datetime] = _created_col()
