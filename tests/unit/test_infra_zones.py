"""The zone-building services on a real (SQLite) cloud database, without a server.

What the integration tests cannot reach cheaply: the IPv4 rules one by one, the zone
visibility clause for each kind of caller, deletion refused by a host row (the hosts
service's table), and the providers a new physical network gets.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from cumulo.db.models import Domain
from cumulo.db.models_infra import Host, NetworkServiceProvider, Zone
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import ParamError, ResourceInUse
from cumulo.services.infra import addresses, allocation_state
from cumulo.services.infra import ip_ranges as range_service
from cumulo.services.infra import physical_networks as net_service
from cumulo.services.infra import pods as pod_service
from cumulo.services.infra import zones as zone_service
from cumulo.services.infra.ip_ranges import Placement, RangeSpec
from cumulo.services.infra.pods import ClusterSpec, PodAddresses
from cumulo.services.infra.zones import ZoneChanges


def make_zone(session: Session, name: str = "z1", **extra: object) -> Zone:
    changes = ZoneChanges(name=name, internal_dns1="10.0.0.2", **extra)  # type: ignore[arg-type]
    return zone_service.create_zone(session, changes, "advanced")


def caller(role: RoleType, path: str = "/") -> Caller:
    return Caller(1, "u", "u", 1, "a", "a", 0, 1, "d", "d", path, 1, role)


def test_addresses() -> None:
    assert addresses.checked_range("10.0.0.1", "255.255.255.0", "10.0.0.9", "10.0.0.10") == (
        IPv4Address("10.0.0.9"),
        IPv4Address("10.0.0.10"),
    )
    with pytest.raises(ParamError, match="not in the subnet"):
        addresses.checked_range("10.0.0.1", "255.255.255.0", "10.0.0.9", "10.0.1.10")
    with pytest.raises(ParamError, match="greater than"):
        addresses.checked_range("10.0.0.1", "255.255.255.0", "10.0.0.10", "10.0.0.9")
    with pytest.raises(ParamError, match="netmask"):
        addresses.subnet("10.0.0.1", "255.0.255.0")
    with pytest.raises(ParamError, match="valid IP"):
        addresses.ipv4("startip", "::1")
    assert allocation_state("enabled", "Disabled") == "Enabled"
    with pytest.raises(ParamError):
        allocation_state("Maintenance", "Disabled")


def test_a_new_zone_is_disabled_and_names_are_unique(session: Session) -> None:
    zone = make_zone(session)
    assert (zone.allocation_state, zone.network_type) == ("Disabled", "Advanced")
    with pytest.raises(ParamError, match="already exists"):
        make_zone(session)
    enabled = make_zone(session, "z2", allocation_state="Enabled")
    assert enabled.allocation_state == "Enabled"
    zone_service.update_zone(session, enabled, ZoneChanges(description="d"))
    assert enabled.allocation_state == "Enabled"  # an update leaves what it does not name


def test_a_host_keeps_its_zone_pod_and_cluster(session: Session) -> None:
    zone = make_zone(session)
    pod = pod_service.create_pod(session, zone, "p", PodAddresses(), None)
    cluster = pod_service.add_cluster(session, zone, pod, ClusterSpec("c", "Simulator"))
    session.add(
        Host(
            name="h",
            zone_id=zone.id,
            pod_id=pod.id,
            cluster_id=cluster.id,
            hypervisor_type="Simulator",
        )
    )
    session.flush()
    for delete, target in (
        (pod_service.delete_cluster, cluster),
        (pod_service.delete_pod, pod),
        (zone_service.delete_zone, zone),
    ):
        with pytest.raises(ResourceInUse, match=r"hosts|clusters"):
            delete(session, target)  # type: ignore[operator]
    assert zone.removed is None and pod.removed is None and cluster.removed is None


def test_zone_visibility_per_caller(session: Session) -> None:
    sub = Domain(name="sub", path="/sub/", parent_id=1, level=1)
    other = Domain(name="other", path="/other/", parent_id=1, level=1)
    session.add_all([sub, other])
    session.flush()
    public = make_zone(session, "public", allocation_state="Enabled")
    make_zone(session, "disabled")
    for name, domain in (("ours", sub), ("theirs", other)):
        zone = make_zone(session, name, allocation_state="Enabled")
        zone.domain_id = domain.id
    session.flush()
    dedicated = aliased(Domain)
    stmt = select(Zone.name).outerjoin(dedicated, Zone.domain_id == dedicated.id)

    def seen(who: Caller) -> set[str]:
        where = zone_service.visible_where(who, dedicated.path)
        return set(session.scalars(stmt.where(where)))

    assert seen(caller(RoleType.USER, "/sub/deeper/")) == {"public", "ours"}
    assert seen(caller(RoleType.USER, "/")) == {"public"}
    assert seen(caller(RoleType.DOMAIN_ADMIN, "/")) == {"public", "ours", "theirs"}
    assert public.name == "public"


def test_pod_ranges_may_not_overlap_within_a_zone(session: Session) -> None:
    zone, other = make_zone(session), make_zone(session, "z2")
    ips = PodAddresses("10.1.0.1", "255.255.255.0", "10.1.0.10", "10.1.0.20")
    pod_service.create_pod(session, zone, "p1", ips, None)
    clash = PodAddresses("10.1.0.1", "255.255.255.0", "10.1.0.20", "10.1.0.30")
    with pytest.raises(ParamError, match="overlaps"):
        pod_service.create_pod(session, zone, "p2", clash, None)
    pod_service.create_pod(session, other, "p2", clash, None)
    with pytest.raises(ParamError, match="gateway and netmask"):
        pod_service.create_pod(session, zone, "p3", PodAddresses(start_ip="10.1.0.40"), None)


def test_cluster_rules(session: Session) -> None:
    zone, elsewhere = make_zone(session), make_zone(session, "z2")
    pod = pod_service.create_pod(session, zone, "p", PodAddresses(), None)
    with pytest.raises(ParamError, match="does not belong"):
        pod_service.add_cluster(session, elsewhere, pod, ClusterSpec("c", "KVM"))
    spec = ClusterSpec("c", "kvm", memory_overcommit="1.5")
    cluster = pod_service.add_cluster(session, zone, pod, spec)
    assert (cluster.hypervisor_type, cluster.memory_overcommit) == ("KVM", 1.5)
    with pytest.raises(ParamError, match="already exists"):
        pod_service.add_cluster(session, zone, pod, ClusterSpec("c", "KVM"))
    with pytest.raises(ParamError):
        pod_service.add_cluster(session, zone, pod, ClusterSpec("d", "KVM", cpu_overcommit="x"))


def test_a_physical_network_comes_with_disabled_default_providers(session: Session) -> None:
    zone = make_zone(session)
    net = net_service.create_physical_network(session, zone, "pn", methods=["vxlan", "VXLAN"])
    assert (net.state, net.isolation_methods) == ("Disabled", "VXLAN")
    providers = session.scalars(
        select(NetworkServiceProvider).where(NetworkServiceProvider.physical_network_id == net.id)
    ).all()
    assert {p.provider_name: p.state for p in providers} == {
        name: "Disabled" for name in net_service.DEFAULT_PROVIDERS
    }
    assert net_service.segment_ranges("5,10-20", "VLAN") == "5-5,10-20"
    with pytest.raises(ParamError):
        net_service.segment_ranges("4000-5000", "VLAN")
    net_service.add_traffic_type(session, net, "public")
    with pytest.raises(ParamError, match="already added"):
        net_service.add_traffic_type(session, net, "Public")


def test_ip_ranges_find_the_public_network_and_refuse_overlaps(session: Session) -> None:
    zone = make_zone(session)
    net = net_service.create_physical_network(session, zone, "pn")
    net_service.add_traffic_type(session, net, "Public")
    assert range_service.public_network(session, zone, "Public") is net
    spec = RangeSpec("10.2.0.1", "255.255.255.0", "10.2.0.10", "10.2.0.20", vlan="100")
    row = range_service.create_range(session, Placement(zone, physical_network=net), spec)
    assert (row.vlan_tag, row.description) == ("vlan://100", "10.2.0.10-10.2.0.20")
    inside = RangeSpec("10.2.0.1", "255.255.255.0", "10.2.0.15", None)
    with pytest.raises(ParamError, match="overlaps"):
        range_service.create_range(session, Placement(zone), inside)
    with pytest.raises(ResourceInUse):
        net_service.delete_physical_network(session, net)
    range_service.delete_range(row)
    session.flush()
    range_service.create_range(session, Placement(zone), inside)
