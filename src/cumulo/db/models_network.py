"""Guest networking: network offerings, guest networks, addresses, rules and security groups.

On the simulator these rows are the whole of networking ("rules recorded, not applied"); the
Linux dataplane (bridges, VXLAN, router namespaces, dnsmasq, nftables) renders its desired
state from them (``services/network/router_config.py``), so they are the source of truth and
whatever runs on a host is derived.

Address allocation relies on unique constraints rather than on reading first: a guest address
is a row in ``network_ip_allocations`` (unique per network and address) and a public address
a row in ``public_ip_addresses`` (unique per zone and address), both deleted when released. Two
allocators racing for one address cannot both commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cumulo.db.models import Base, _created_col, _uuid_col


class NetworkOffering(Base):
    """What a guest network offers (CloudStack ``network_offerings``).

    ``services`` maps each service (Dhcp, SourceNat, Firewall…) to its providers.
    """

    __tablename__ = "network_offerings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    display_text: Mapped[str] = mapped_column(String(1024), default="")
    guest_ip_type: Mapped[str] = mapped_column(String(16))  # Isolated | Shared | L2
    traffic_type: Mapped[str] = mapped_column(String(16), default="Guest")
    state: Mapped[str] = mapped_column(String(16), default="Disabled")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    specify_vlan: Mapped[bool] = mapped_column(Boolean, default=False)
    specify_ip_ranges: Mapped[bool] = mapped_column(Boolean, default=False)
    conserve_mode: Mapped[bool] = mapped_column(Boolean, default=True)
    egress_default_allow: Mapped[bool] = mapped_column(Boolean, default=True)
    for_vpc: Mapped[bool] = mapped_column(Boolean, default=False)
    availability: Mapped[str] = mapped_column(String(16), default="Optional")
    tags: Mapped[str | None] = mapped_column(String(1024))
    network_rate: Mapped[int | None] = mapped_column(Integer)  # Mbps
    max_connections: Mapped[int | None] = mapped_column(Integer)
    services: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Network(Base):
    """A guest network. ``segment_id`` (the VXLAN VNI) is held while Implemented only."""

    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("physical_network_id", "segment_id"),
        Index("ix_networks_account_state", "account_id", "state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    display_text: Mapped[str] = mapped_column(String(1024), default="")
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"), index=True)
    physical_network_id: Mapped[int | None] = mapped_column(ForeignKey("physical_networks.id"))
    offering_id: Mapped[int] = mapped_column(ForeignKey("network_offerings.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    acl_type: Mapped[str] = mapped_column(String(16), default="Account")  # Account | Domain
    guest_type: Mapped[str] = mapped_column(String(16))  # Isolated | Shared
    traffic_type: Mapped[str] = mapped_column(String(16), default="Guest")
    state: Mapped[str] = mapped_column(String(16), default="Allocated")
    cidr: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str] = mapped_column(String(64))
    netmask: Mapped[str] = mapped_column(String(64))
    start_ip: Mapped[str | None] = mapped_column(String(64))  # shared networks: the range
    end_ip: Mapped[str | None] = mapped_column(String(64))
    segment_id: Mapped[int | None] = mapped_column(Integer)
    specified_vlan: Mapped[str | None] = mapped_column(String(64))  # an admin's vlan=
    network_domain: Mapped[str | None] = mapped_column(String(255))
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    restart_required: Mapped[bool] = mapped_column(Boolean, default=False)
    router_generation: Mapped[int] = mapped_column(Integer, default=0)  # bumped by restart
    created: Mapped[datetime] = _created_col()
    removed: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NetworkIpAllocation(Base):
    """A guest address in use on a network (a NIC's, or the router's)."""

    __tablename__ = "network_ip_allocations"
    __table_args__ = (UniqueConstraint("network_id", "address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"))
    address: Mapped[str] = mapped_column(String(64))
    nic_id: Mapped[int | None] = mapped_column(ForeignKey("nics.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16), default="Guest")  # Guest | Router
    created: Mapped[datetime] = _created_col()


class NicSecondaryIp(Base):
    """An extra guest address of a NIC (``addIpToNic``); its network_ip_allocations row is what
    reserves it in IPAM, this row names it for the API and the rules that target it."""

    __tablename__ = "nic_secondary_ips"
    __table_args__ = (UniqueConstraint("network_id", "address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    nic_id: Mapped[int] = mapped_column(ForeignKey("nics.id"), index=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), index=True)
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"))
    address: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = _created_col()


class PublicIpAddress(Base):
    """A public address taken from a zone's public VLAN IP range (CloudStack ``user_ip_address``).

    The row exists while the address is allocated; released addresses go back to the range.
    """

    __tablename__ = "public_ip_addresses"
    __table_args__ = (UniqueConstraint("zone_id", "address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    zone_id: Mapped[int] = mapped_column(ForeignKey("zones.id"))
    vlan_range_id: Mapped[int] = mapped_column(ForeignKey("vlan_ip_ranges.id"))
    address: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    network_id: Mapped[int | None] = mapped_column(ForeignKey("networks.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="Allocated")
    is_source_nat: Mapped[bool] = mapped_column(Boolean, default=False)
    static_nat_vm_id: Mapped[int | None] = mapped_column(ForeignKey("vm_instances.id"))
    static_nat_ip: Mapped[str | None] = mapped_column(String(64))
    for_display: Mapped[bool] = mapped_column(Boolean, default=True)
    allocated: Mapped[datetime] = _created_col()


class NetworkRule(Base):
    """A firewall, egress, port-forwarding or load-balancing rule (CloudStack ``firewall_rules``).

    ``purpose``: Firewall (ingress on ``public_ip_id``), Egress (on ``network_id``),
    PortForwarding (``vm_id``/``vm_ip`` and the private ports), LoadBalancing (``name``,
    ``algorithm``, members in ``lb_vm_map``).
    """

    __tablename__ = "network_rules"
    __table_args__ = (Index("ix_network_rules_network_purpose", "network_id", "purpose"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    purpose: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="Active")
    network_id: Mapped[int] = mapped_column(ForeignKey("networks.id"))
    public_ip_id: Mapped[int | None] = mapped_column(ForeignKey("public_ip_addresses.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    protocol: Mapped[str] = mapped_column(String(16), default="tcp")
    start_port: Mapped[int | None] = mapped_column(Integer)
    end_port: Mapped[int | None] = mapped_column(Integer)
    private_start_port: Mapped[int | None] = mapped_column(Integer)
    private_end_port: Mapped[int | None] = mapped_column(Integer)
    icmp_type: Mapped[int | None] = mapped_column(Integer)
    icmp_code: Mapped[int | None] = mapped_column(Integer)
    source_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    dest_cidrs: Mapped[list[str]] = mapped_column(JSON, default=list)
    vm_id: Mapped[int | None] = mapped_column(ForeignKey("vm_instances.id"))
    vm_ip: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    algorithm: Mapped[str | None] = mapped_column(String(32))
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = _created_col()


class LoadBalancerMember(Base):
    __tablename__ = "lb_vm_map"
    __table_args__ = (UniqueConstraint("rule_id", "vm_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("network_rules.id"))
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), index=True)
    vm_ip: Mapped[str] = mapped_column(String(64))


class LbStickinessPolicy(Base):
    """createLBStickinessPolicy: how a load balancer rule keeps a client on one backend
    (``method`` LbCookie, AppCookie or SourceBased; ``params`` as CloudStack names them)."""

    __tablename__ = "lb_stickiness_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    rule_id: Mapped[int] = mapped_column(ForeignKey("network_rules.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str | None] = mapped_column(String(4096))
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = _created_col()


class LbHealthCheckPolicy(Base):
    """createLBHealthCheckPolicy: how the router's haproxy checks each backend of a rule."""

    __tablename__ = "lb_healthcheck_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    rule_id: Mapped[int] = mapped_column(ForeignKey("network_rules.id"), index=True)
    ping_path: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    interval_s: Mapped[int] = mapped_column(Integer, default=5)
    response_timeout_s: Mapped[int] = mapped_column(Integer, default=2)
    healthy_threshold: Mapped[int] = mapped_column(Integer, default=2)
    unhealthy_threshold: Mapped[int] = mapped_column(Integer, default=10)
    display: Mapped[bool] = mapped_column(Boolean, default=True)
    created: Mapped[datetime] = _created_col()


class SecurityGroup(Base):
    __tablename__ = "security_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(4096))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id"))
    created: Mapped[datetime] = _created_col()


class SecurityGroupRule(Base):
    """One ingress or egress rule: a CIDR or another group (``ref_group_id``)."""

    __tablename__ = "security_group_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = _uuid_col()
    group_id: Mapped[int] = mapped_column(ForeignKey("security_groups.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # ingress | egress
    protocol: Mapped[str] = mapped_column(String(16))
    start_port: Mapped[int | None] = mapped_column(Integer)
    end_port: Mapped[int | None] = mapped_column(Integer)
    icmp_type: Mapped[int | None] = mapped_column(Integer)
    icmp_code: Mapped[int | None] = mapped_column(Integer)
    cidr: Mapped[str | None] = mapped_column(String(64))
    ref_group_id: Mapped[int | None] = mapped_column(ForeignKey("security_groups.id"))
    created: Mapped[datetime] = _created_col()


class SecurityGroupMember(Base):
    __tablename__ = "security_group_vm_map"
    __table_args__ = (UniqueConstraint("group_id", "vm_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("security_groups.id"))
    vm_id: Mapped[int] = mapped_column(ForeignKey("vm_instances.id"), index=True)
