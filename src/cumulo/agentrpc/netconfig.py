"""The desired state of one guest network's virtual router, as plain typed data.

The contract between the cloud and the dataplane: ``services.network.router_config`` renders
a ``RouterConfig`` from the database, and a host's network layer (``agent``) turns it into a
bridge and VXLAN device, a router namespace, dnsmasq, nftables, haproxy and the metadata and
password services. It lives in ``agentrpc`` because both sides need it and neither may import
the other. Frozen dataclasses with tuples in a deterministic order: two renderings of
unchanged rows compare equal, so a reconciler can skip a router that already matches.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortRange:
    start: int | None  # None: every port (protocol all / icmp)
    end: int | None


@dataclass(frozen=True)
class DhcpEntry:
    """A fixed reservation: dnsmasq ``dhcp-host=<mac>,<ip>,<hostname>``."""

    mac: str
    ip: str
    hostname: str
    default: bool  # the VM's default NIC: this network gives it the default route and DNS


@dataclass(frozen=True)
class VmData:
    """What the metadata (port 80) and password (port 8080) services answer to ``ip``."""

    ip: str
    instance_id: str
    vm_id: str
    local_hostname: str
    availability_zone: str
    service_offering: str
    public_ipv4: str | None
    public_keys: tuple[str, ...]
    user_data: bytes | None  # decoded; None means 404 on latest/user-data
    password: str | None  # None: the password service answers "saved_password"


@dataclass(frozen=True)
class PortForward:
    public_ip: str
    protocol: str
    public_ports: PortRange
    private_ip: str
    private_ports: PortRange
    source_cidrs: tuple[str, ...]


@dataclass(frozen=True)
class StaticNat:
    public_ip: str
    private_ip: str


@dataclass(frozen=True)
class FirewallRule:
    """Ingress to ``public_ip`` (Firewall) or egress from the guest CIDR (Egress)."""

    public_ip: str | None
    protocol: str
    ports: PortRange
    source_cidrs: tuple[str, ...]
    dest_cidrs: tuple[str, ...] = ()
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    public_ip: str
    public_port: int
    private_port: int
    protocol: str
    algorithm: str  # roundrobin | leastconn | source
    source_cidrs: tuple[str, ...]
    backends: tuple[str, ...]  # guest IPs
    # createLBStickinessPolicy: LbCookie | AppCookie | SourceBased, with CloudStack's params
    stickiness: str | None = None
    stickiness_params: tuple[tuple[str, str], ...] = ()
    # createLBHealthCheckPolicy (None: haproxy's TCP connect check with the defaults)
    health_path: str | None = None  # HTTP GET of this path instead of a TCP connect
    health_interval_s: int | None = None
    health_timeout_s: int | None = None
    health_rise: int | None = None
    health_fall: int | None = None


@dataclass(frozen=True)
class RouterConfig:
    network_id: str
    generation: int  # bumped by restartNetwork: a changed value means rebuild
    vni: int | None
    bridge: str
    cidr: str
    netmask: str
    router_ip: str  # the gateway; also the DHCP server identifier and "data-server"
    domain: str
    dns_servers: tuple[str, ...]  # upstream resolvers for dnsmasq
    services: tuple[str, ...]
    source_nat_ip: str | None
    public_ips: tuple[str, ...]  # every public address the router holds
    dhcp: tuple[DhcpEntry, ...]
    vm_data: tuple[VmData, ...]
    port_forwards: tuple[PortForward, ...]
    static_nats: tuple[StaticNat, ...]
    firewall: tuple[FirewallRule, ...]
    egress_default_allow: bool
    egress: tuple[FirewallRule, ...]
    load_balancers: tuple[LoadBalancer, ...]
