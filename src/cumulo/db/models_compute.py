"""Virtual machines, their volumes and NICs, and the simulator's injected faults.

A VM keeps a copy of the size it was deployed with (``cpu_number``/``cpu_speed``/``memory``)
because custom offerings take the size from the request and an offering may change later;
capacity and limits are always released by what the VM holds, never re-read from the offering.
``host_id`` is where the VM runs or is starting (its capacity is reserved there);
``last_host_id`` is where it ran last, so a restart prefers that host as CloudStack does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class VirtualMachine(Base):
    __tablename__ = "vm_instances"
    __table_args__ = (
        Index("ix_vm_instances_account_state", "account_id", "state"),
        Index("ix_vm_instances_host_state", "host_id", "state"),
        Index("ix_vm_instances_state_changed", "state", "state_changed"),
        # listVirtualMachines pages (live VMs in id order) and counts from this index alone.
        Index("ix_vm_instances_removed_id_state", "removed", "id", "state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))  # the hostname; unique per account
    display_name: Mapped[str] = mapped_column(String(255))
    instance_name: Mapped[str] = mapped_column(String(255), default="")  # i-<acct>-<id>-VM
    state: Mapped[str] = mapped_column(String(16), default="Stopped")
    state_changed: Mapped[datetime] = _created_col()
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pods.id"))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    last_host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    service_offering_id: Mapped[int] = mapped_column(ForeignKey("service_offerings.id"))
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    iso_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"))
    guest_os_id: Mapped[int | None] = mapped_column(ForeignKey("guest_os_types.id"))
    hypervisor_type: Mapped[str | None] = mapped_column(String(32))
    cpu_number: Mapped[int] = mapped_column(Integer)
    cpu_speed: Mapped[int] = mapped_column(Integer)  # MHz
    memory: Mapped[int] = mapped_column(Integer)  # MiB
    ha_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    group_name: Mapped[str | None] = mapped_column(String(255))
    display_vm: Mapped[bool] = mapped_column(Boolean, default=True)
    dynamically_scalable: Mapped[bool] = mapped_column(Boolean, default=False)
    user_data: Mapped[str | None] = mapped_column(Text)  # base64, as submitted
    user_data_id: Mapped[int | None] = mapped_column(ForeignKey("user_data.id"))
    keypairs: Mapped[list[str]] = mapped_column(JSON, default=list)  # key pair names
    password: Mapped[str | None] = mapped_column(Text)  # sealed with the SecretBox
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)  # why it is in Error
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Volume(Base):
    __tablename__ = "volumes"
    __table_args__ = (Index("ix_volumes_vm", "vm_id", "device_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"))
    vm_id: Mapped[int | None] = mapped_column(ForeignKey("vm_instances.id"))
    device_id: Mapped[int | None] = mapped_column(Integer)
    volume_type: Mapped[str] = mapped_column(String(16))  # ROOT | DATADISK
    state: Mapped[str] = mapped_column(String(16), default="Allocated")
    size: Mapped[int] = mapped_column(BigInteger)  # bytes
    disk_offering_id: Mapped[int | None] = mapped_column(ForeignKey("disk_offerings.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("storage_pools.id"), index=True)
    path: Mapped[str | None] = mapped_column(String(1024))
    format: Mapped[str] = mapped_column(String(16), default="QCOW2")
    # Block storage (migration 0008): the snapshot a volume was made from, whether users see
    # it, why its last operation failed, and when its state last changed.
    source_snapshot_id: Mapped[int | None] = mapped_column(Integer)
    display_volume: Mapped[bool] = mapped_column(Boolean, default=True)
    error: Mapped[str | None] = mapped_column(Text)
    state_changed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # uploadVolume: the image store and path of the uploaded file, until it is first attached.
    upload_store_id: Mapped[int | None] = mapped_column(Integer)
    upload_path: Mapped[str | None] = mapped_column(String(1024))
    created: Mapped[datetime] = _created_col()
    attached: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Nic(Base):
    __tablename__ = "nics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), index=True)
    network_id: Mapped[int | None] = mapped_column(Integer, index=True)  # networks: issue 7
    device_id: Mapped[int] = mapped_column(Integer, default=0)
    mac: Mapped[str] = mapped_column(String(17))
    ip4: Mapped[str | None] = mapped_column(String(15))
    netmask: Mapped[str | None] = mapped_column(String(15))
    gateway: Mapped[str | None] = mapped_column(String(15))
    is_default: Mapped[bool] = mapped_column(Boolean, default=True)
    traffic_type: Mapped[str] = mapped_column(String(16), default="Guest")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TemplatePoolRef(Base):
    """A template cached on a primary storage pool (copied on first use)."""

    __tablename__ = "template_pool_refs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("storage_pools.id"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))  # local pools
    install_path: Mapped[str] = mapped_column(String(1024))
    created: Mapped[datetime] = _created_col()


class SimulatorMock(Base):
    """A configureSimulator rule: what a simulated command does in a scope, and how often."""

    __tablename__ = "simulator_mocks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    command: Mapped[str] = mapped_column(String(64), index=True)  # e.g. StartCommand
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"))
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pods.id"))
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("clusters.id"))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    wait_ms: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(String(16))  # fail | fault | None (success)
    timeout: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    count: Mapped[int | None] = mapped_column(Integer)  # times left; None = until removed
    json_response: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
