"""The physical cloud: zones, pods, clusters, hosts, storage, physical networks, IP ranges.

CloudStack's hierarchy (zone > pod > cluster > host) with its allocation states; capacity
lives in its own rows per host and type so placement can reserve it with one conditional
UPDATE (no read-modify-write race between two deploys).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class Zone(Base):
    __tablename__ = "zones"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(1024), default="")
    network_type: Mapped[str] = mapped_column(String(16), default="Advanced")  # Basic|Advanced
    dns1: Mapped[str | None] = mapped_column(String(64))
    dns2: Mapped[str | None] = mapped_column(String(64))
    ip6dns1: Mapped[str | None] = mapped_column(String(64))
    ip6dns2: Mapped[str | None] = mapped_column(String(64))
    internal_dns1: Mapped[str | None] = mapped_column(String(64))
    internal_dns2: Mapped[str | None] = mapped_column(String(64))
    guest_cidr: Mapped[str | None] = mapped_column(String(64))
    network_domain: Mapped[str | None] = mapped_column(String(255))
    # A zone dedicated to one domain is visible to that domain only.
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"))
    allocation_state: Mapped[str] = mapped_column(String(16), default="Disabled")
    local_storage_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    security_groups_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Pod(Base):
    __tablename__ = "pods"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    gateway: Mapped[str | None] = mapped_column(String(64))
    netmask: Mapped[str | None] = mapped_column(String(64))
    start_ip: Mapped[str | None] = mapped_column(String(64))
    end_ip: Mapped[str | None] = mapped_column(String(64))
    allocation_state: Mapped[str] = mapped_column(String(16), default="Enabled")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    pod_id: Mapped[int] = mapped_column(ForeignKey("pods.id"), index=True)
    hypervisor_type: Mapped[str] = mapped_column(String(32))  # Simulator | KVM
    cluster_type: Mapped[str] = mapped_column(String(32), default="CloudManaged")
    allocation_state: Mapped[str] = mapped_column(String(16), default="Enabled")
    # Over-provisioning factors (CloudStack's cpu/mem.overprovisioning.factor per cluster).
    cpu_overcommit: Mapped[float] = mapped_column(Float, default=1.0)
    memory_overcommit: Mapped[float] = mapped_column(Float, default=1.0)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32), default="Routing")
    # Connection status (Up, Down, Disconnected, Alert, Connecting) and the operator's
    # resource state (Enabled, Disabled, PrepareForMaintenance, Maintenance, ErrorInMaintenance).
    status: Mapped[str] = mapped_column(String(16), default="Up")
    resource_state: Mapped[str] = mapped_column(String(32), default="Enabled")
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    pod_id: Mapped[int] = mapped_column(ForeignKey("pods.id"), index=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    hypervisor_type: Mapped[str] = mapped_column(String(32))
    hypervisor_version: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(1024), default="")
    private_ip: Mapped[str | None] = mapped_column(String(64))
    cpu_sockets: Mapped[int] = mapped_column(Integer, default=1)
    cpu_number: Mapped[int] = mapped_column(Integer, default=0)
    cpu_speed: Mapped[int] = mapped_column(Integer, default=0)  # MHz per core
    memory: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes
    host_tags: Mapped[str] = mapped_column(String(1024), default="")  # comma-separated
    # Filled by the agent (issue 5): a hash of its per-host token, never the token itself.
    agent_token_hash: Mapped[str | None] = mapped_column(String(64))
    # The management server holding the agent's WebSocket (migration 0007); None when no
    # agent is connected. Commands for the host are relayed to that server.
    mgmt_server_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_ping: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class HostCapacity(Base):
    """Capacity per host and type (CloudStack op_host_capacity): 0 memory, 1 cpu (MHz).

    ``total`` is the raw amount; the cluster's overcommit factor applies at placement.
    ``used`` counts running VMs, ``reserved`` stopped VMs that keep their host for a while.
    """

    __tablename__ = "host_capacity"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    type: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    used: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (UniqueConstraint("host_id", "type"),)


class StoragePool(Base):
    __tablename__ = "storage_pools"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pods.id"))
    cluster_id: Mapped[int | None] = mapped_column(ForeignKey("clusters.id"))
    scope: Mapped[str] = mapped_column(String(16), default="CLUSTER")  # CLUSTER | ZONE | HOST
    # HOST scope: local storage of one host (its agent registers it); a plain key, no FK.
    host_id: Mapped[int | None] = mapped_column(Integer, index=True)
    pool_type: Mapped[str] = mapped_column(String(32), default="Filesystem")
    hypervisor_type: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(1024), default="")
    path: Mapped[str] = mapped_column(String(1024), default="")
    provider: Mapped[str] = mapped_column(String(64), default="DefaultPrimary")
    capacity_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    allocated_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    overcommit: Mapped[float] = mapped_column(Float, default=2.0)
    tags: Mapped[str] = mapped_column(String(1024), default="")
    status: Mapped[str] = mapped_column(String(32), default="Up")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImageStore(Base):
    __tablename__ = "image_stores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id"))
    provider: Mapped[str] = mapped_column(String(32))  # NFS | S3 | Swift | Directory
    protocol: Mapped[str | None] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(1024), default="")
    # Provider settings (bucket, endpoint…); secrets in here are sealed with the master key.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    role: Mapped[str] = mapped_column(String(16), default="Image")
    readonly: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PhysicalNetwork(Base):
    __tablename__ = "physical_networks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"))
    # Guest segment ids, e.g. "1000-1999,3000-3100" (VXLAN VNIs on these machines).
    vlan: Mapped[str | None] = mapped_column(String(1024))
    isolation_methods: Mapped[str] = mapped_column(String(255), default="VXLAN")
    broadcast_domain_range: Mapped[str] = mapped_column(String(16), default="ZONE")
    speed: Mapped[str | None] = mapped_column(String(32))
    tags: Mapped[str] = mapped_column(String(1024), default="")
    state: Mapped[str] = mapped_column(String(16), default="Disabled")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrafficType(Base):
    __tablename__ = "physical_network_traffic_types"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    physical_network_id: Mapped[int] = mapped_column(ForeignKey("physical_networks.id"), index=True)
    traffic_type: Mapped[str] = mapped_column(String(32))  # Guest|Public|Management|Storage
    kvm_label: Mapped[str | None] = mapped_column(String(255))
    simulator_label: Mapped[str | None] = mapped_column(String(255))
    vlan: Mapped[str | None] = mapped_column(String(255))
    isolation_method: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("physical_network_id", "traffic_type"),)


class NetworkServiceProvider(Base):
    __tablename__ = "physical_network_service_providers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    physical_network_id: Mapped[int] = mapped_column(ForeignKey("physical_networks.id"), index=True)
    provider_name: Mapped[str] = mapped_column(String(64))  # VirtualRouter, SecurityGroupProvider…
    state: Mapped[str] = mapped_column(String(16), default="Disabled")
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    destination_physical_network_id: Mapped[int | None] = mapped_column(Integer)
    # The provider's element (CloudStack's virtual router / internal LB element row), which
    # deployment scripts enable (configureVirtualRouterElement) before the provider itself.
    element_uuid: Mapped[str | None] = mapped_column(String(36), unique=True)
    element_enabled: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("physical_network_id", "provider_name"),)


class VlanIpRange(Base):
    """A public (or shared-network) IP range: CloudStack's ``vlan`` table."""

    __tablename__ = "vlan_ip_ranges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    pod_id: Mapped[int | None] = mapped_column(ForeignKey("pods.id"))
    physical_network_id: Mapped[int | None] = mapped_column(ForeignKey("physical_networks.id"))
    network_id: Mapped[int | None] = mapped_column(Integer)  # guest network for shared ranges
    vlan_tag: Mapped[str] = mapped_column(String(64), default="untagged")
    gateway: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    start_ip: Mapped[str] = mapped_column(String(64))
    end_ip: Mapped[str] = mapped_column(String(64))
    ip6_gateway: Mapped[str | None] = mapped_column(String(64))
    ip6_cidr: Mapped[str | None] = mapped_column(String(64))
    ip6_range: Mapped[str | None] = mapped_column(String(255))
    for_virtual_network: Mapped[bool] = mapped_column(Boolean, default=True)
    purpose: Mapped[str] = mapped_column(String(32), default="Public")  # Public|DirectAttached
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domains.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
