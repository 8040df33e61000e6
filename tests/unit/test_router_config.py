"""The router configuration rendered for one network: every rule and reservation the
dataplane needs, in a deterministic shape, from rows written through the network services."""

from __future__ import annotations

import base64
import threading
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cumulo.agentrpc.netconfig import DhcpEntry, StaticNat
from cumulo.common.secretbox import SecretBox
from cumulo.db.engine import Database
from cumulo.db.models import Account, User
from cumulo.db.models_catalog import ServiceOffering, SshKeyPair
from cumulo.db.models_compute import VirtualMachine
from cumulo.db.models_images import Template
from cumulo.db.models_infra import PhysicalNetwork, TrafficType, VlanIpRange, Zone
from cumulo.services.access import Caller, RoleType
from cumulo.services.errors import InsufficientCapacity
from cumulo.services.network import networks, nics, public_ips, router_config, rules
from cumulo.services.network.errors import RuleConflict

BOX = SecretBox(base64.urlsafe_b64encode(b"k" * 32))


def _admin(session: Session) -> tuple[Account, Caller]:
    admin = session.scalar(select(Account).where(Account.name == "admin"))
    user = session.scalar(select(User).where(User.account_id == admin.id)) if admin else None
    assert admin is not None and user is not None
    caller = Caller(
        user.id, user.uuid, user.username, admin.id, admin.uuid, admin.name, 1,
        admin.domain_id, "d", "ROOT", "/", 1, RoleType.ADMIN,
    )  # fmt: skip
    return admin, caller


def _zone(session: Session, vnis: str = "5000-5001") -> Zone:
    zone = Zone(name="z", dns1="9.9.9.9", allocation_state="Enabled", network_type="Advanced")
    session.add(zone)
    session.flush()
    physical = PhysicalNetwork(name="pn", zone_id=zone.id, vlan=vnis, state="Enabled")
    session.add(physical)
    session.flush()
    session.add(TrafficType(physical_network_id=physical.id, traffic_type="Guest"))
    session.add(
        VlanIpRange(
            zone_id=zone.id,
            physical_network_id=physical.id,
            gateway="203.0.113.1",
            netmask="255.255.255.0",
            start_ip="203.0.113.10",
            end_ip="203.0.113.12",
        )
    )
    session.flush()
    return zone


def _vm(session: Session, owner: Account, user_id: int, zone: Zone, name: str) -> VirtualMachine:
    offering = session.scalar(select(ServiceOffering).where(ServiceOffering.name == "small"))
    if offering is None:
        offering = ServiceOffering(name="small", cpu_number=1, cpu_speed=100, memory=64)
        session.add(offering)
    template = session.scalar(select(Template).where(Template.name == "t"))
    if template is None:
        template = Template(
            name="t", format="QCOW2", account_id=owner.id, domain_id=owner.domain_id, url="x"
        )
        session.add(template)
    session.flush()
    vm = VirtualMachine(
        name=name,
        display_name=name,
        account_id=owner.id,
        domain_id=owner.domain_id,
        user_id=user_id,
        zone_id=zone.id,
        service_offering_id=offering.id,
        template_id=template.id,
        cpu_number=1,
        cpu_speed=100,
        memory=64,
        keypairs=["k1"],
        user_data=base64.b64encode(b"#cloud-config\n").decode(),
        password=BOX.seal("pw-" + name),
    )
    session.add(vm)
    session.flush()
    return vm


@pytest.fixture
def world(session: Session) -> tuple[Session, Account, Caller, Zone]:
    owner, caller = _admin(session)
    session.add(
        SshKeyPair(
            name="k1",
            account_id=owner.id,
            domain_id=owner.domain_id,
            public_key="ssh-ed25519 AAAA key1 ",
            fingerprint="f",
        )
    )
    return session, owner, caller, _zone(session)


def _network(world: tuple[Session, Account, Caller, Zone]) -> networks.Network:
    session, owner, caller, zone = world
    from cumulo.services.network import offerings

    default = offerings.find_by_name(session, offerings.DEFAULT_ISOLATED)
    assert default is not None
    spec = networks.NetworkSpec(
        name="n", display_text=None, offering_uuid=default.uuid, zone_uuid=zone.uuid,
        gateway="10.9.0.1", netmask="255.255.255.0",
    )  # fmt: skip
    return networks.create(session, caller, owner, spec)


def test_render_holds_every_rule_and_reservation(
    world: tuple[Session, Account, Caller, Zone],
) -> None:
    session, owner, caller, zone = world
    network = _network(world)
    web = _vm(session, owner, caller.user_id, zone, "web")
    db = _vm(session, owner, caller.user_id, zone, "db")
    for vm in (web, db):
        nics.allocate(session, caller, owner, vm, [network.uuid])
        nics.prepare_start(session, vm)
    extra = public_ips.associate(session, caller, owner, zone_uuid=None, network_uuid=network.uuid)
    nat = public_ips.associate(session, caller, owner, zone_uuid=None, network_uuid=network.uuid)
    public_ips.enable_static_nat(session, nat, db, None)
    rules.create_port_forward(
        session,
        extra,
        rules.ForwardSpec("tcp", rules.Ports(2222, 2222), rules.Ports(22, 22), web),
    )
    rules.create_egress(
        session, network, rules.RuleSpec("udp", rules.Ports(53, 53), dest_cidrs=["9.9.9.9/32"])
    )
    lb = rules.create_load_balancer(
        session, extra, rules.BalancerSpec("site", "roundrobin", 80, 8080)
    )
    rules.assign(session, lb, [db, web])

    config = router_config.render(session, network.uuid, BOX)

    assert (config.vni, config.bridge) == (5000, "brvx5000")
    assert (config.cidr, config.router_ip, config.dns_servers) == (
        "10.9.0.0/24",
        "10.9.0.1",
        ("9.9.9.9",),
    )
    assert config.source_nat_ip == "203.0.113.10"
    assert config.public_ips == ("203.0.113.10", "203.0.113.11", "203.0.113.12")
    assert [(d.ip, d.hostname, d.default) for d in config.dhcp] == [
        ("10.9.0.2", "web", True),
        ("10.9.0.3", "db", True),
    ]
    assert all(d.mac.startswith("02:00:") for d in config.dhcp)
    web_data = config.vm_data[0]
    assert (web_data.ip, web_data.local_hostname, web_data.instance_id) == (
        "10.9.0.2",
        "web",
        web.uuid,
    )
    assert web_data.public_keys == ("ssh-ed25519 AAAA key1",)
    assert web_data.user_data == b"#cloud-config\n" and web_data.password == "pw-web"
    assert web_data.public_ipv4 == "203.0.113.10"  # source NAT
    assert config.vm_data[1].public_ipv4 == "203.0.113.12"  # its static NAT
    [forward] = config.port_forwards
    assert (forward.public_ip, forward.private_ip, forward.public_ports.start) == (
        "203.0.113.11",
        "10.9.0.2",
        2222,
    )
    assert config.static_nats == (StaticNat("203.0.113.12", "10.9.0.3"),)
    # openfirewall: one ingress rule for the forward, one for the balancer
    assert sorted((f.public_ip, f.ports.start) for f in config.firewall) == [
        ("203.0.113.11", 80),
        ("203.0.113.11", 2222),
    ]
    assert config.egress_default_allow is True
    assert [(e.protocol, e.dest_cidrs, e.source_cidrs) for e in config.egress] == [
        ("udp", ("9.9.9.9/32",), ("10.9.0.0/24",))
    ]
    [balancer] = config.load_balancers
    assert balancer.backends == ("10.9.0.2", "10.9.0.3") and balancer.algorithm == "roundrobin"
    assert router_config.render(session, network.uuid, BOX) == config  # deterministic
    assert "SourceNat" in config.services and "Lb" in config.services


def test_expunge_release_drops_the_vm_from_the_config(
    world: tuple[Session, Account, Caller, Zone],
) -> None:
    session, owner, caller, zone = world
    network = _network(world)
    vm = _vm(session, owner, caller.user_id, zone, "gone")
    nics.allocate(session, caller, owner, vm, [network.uuid])
    nics.prepare_start(session, vm)
    ip = public_ips.associate(session, caller, owner, zone_uuid=None, network_uuid=network.uuid)
    rules.create_port_forward(
        session, ip, rules.ForwardSpec("tcp", rules.Ports(80, 80), rules.Ports(80, 80), vm)
    )
    nics.release(session, vm)
    config = router_config.render(session, network.uuid, BOX)
    assert config.dhcp == () and config.vm_data == () and config.port_forwards == ()
    assert (network.state, config.vni) == ("Shutdown", None)  # its segment went back
    again = _vm(session, owner, caller.user_id, zone, "next")
    [nic] = nics.allocate(session, caller, owner, again, [network.uuid])
    assert nic.ip4 == "10.9.0.2"  # the released address is the lowest free again
    nics.prepare_start(session, again)
    assert (network.state, network.segment_id) == ("Implemented", 5000)


def test_conflicts_and_exhaustion(world: tuple[Session, Account, Caller, Zone]) -> None:
    session, owner, caller, zone = world
    first, second, third = (replace_name(_network(world), n) for n in ("a", "b", "c"))
    networks.implement(session, first)
    networks.implement(session, second)
    with pytest.raises(InsufficientCapacity):
        networks.implement(session, third)  # two VNIs in the range
    vm = _vm(session, owner, caller.user_id, zone, "v")
    nics.allocate(session, caller, owner, vm, [first.uuid])
    ip = public_ips.associate(session, caller, owner, zone_uuid=None, network_uuid=first.uuid)
    rules.create_port_forward(
        session, ip, rules.ForwardSpec("tcp", rules.Ports(10, 20), rules.Ports(10, 20), vm)
    )
    with pytest.raises(RuleConflict):
        rules.create_port_forward(
            session, ip, rules.ForwardSpec("tcp", rules.Ports(20, 20), rules.Ports(1, 1), vm)
        )
    with pytest.raises(RuleConflict):
        public_ips.enable_static_nat(session, ip, vm, None)


def replace_name(network: networks.Network, name: str) -> networks.Network:
    network.name = name
    return network


def test_frozen_config_is_comparable() -> None:
    entry = DhcpEntry("02:00:00:00:00:01", "10.0.0.2", "a", True)
    assert replace(entry, hostname="b") != entry


def test_port_rules_expand_group_references(
    world: tuple[Session, Account, Caller, Zone],
) -> None:
    from cumulo.services.network import port_rules, security_groups

    session, owner, caller, zone = world
    network = _network(world)
    app = _vm(session, owner, caller.user_id, zone, "app")
    db = _vm(session, owner, caller.user_id, zone, "db")
    for vm in (app, db):
        nics.allocate(session, caller, owner, vm, [network.uuid])
    front = security_groups.create(session, owner, "front", None)
    back = security_groups.create(session, owner, "back", None)
    session.add_all(
        [
            security_groups.SecurityGroupMember(group_id=front.id, vm_id=app.id),
            security_groups.SecurityGroupMember(group_id=back.id, vm_id=db.id),
        ]
    )
    session.flush()
    security_groups.authorize(
        session,
        back,
        security_groups.RuleRequest(
            "ingress", "tcp", 5432, 5432, groups=[{"account": owner.name, "group": "front"}]
        ),
    )
    security_groups.authorize(
        session, back, security_groups.RuleRequest("egress", "udp", 53, 53, cidrs=["9.9.9.9/32"])
    )
    [port] = port_rules.render(session, db.uuid)
    assert port.ip == "10.9.0.3" and port.bridge == nics.bridge_name(network)
    [rule] = port.ingress
    assert (rule.protocol, rule.start_port, rule.cidrs) == ("tcp", 5432, ("10.9.0.2/32",))
    assert port.egress[0].cidrs == ("9.9.9.9/32",) and port.egress_default_allow is False
    [app_port] = port_rules.render(session, app.uuid)
    assert app_port.ingress == () and app_port.egress_default_allow is True


def test_start_specs_carry_the_bridge_and_restart_bumps_the_generation(
    world: tuple[Session, Account, Caller, Zone],
) -> None:
    session, owner, caller, zone = world
    network = _network(world)
    vm = _vm(session, owner, caller.user_id, zone, "s")
    [nic] = nics.allocate(session, caller, owner, vm, [network.uuid])
    nics.prepare_start(session, vm)
    [spec] = nics.specs(session, vm)
    assert (spec.nic_id, spec.mac, spec.ip4, spec.bridge, spec.device_id) == (
        nic.uuid,
        nics.mac_for(nic.id),
        "10.9.0.2",
        "brvx5000",
        0,
    )
    before = router_config.render(session, network.uuid, BOX).generation
    networks.restart(session, network, cleanup=True)
    assert router_config.render(session, network.uuid, BOX).generation == before + 2
    assert nics.mac_for(0x01020304) == "02:00:01:02:03:04"


def test_concurrent_guest_allocations_never_share_an_address(db: Database) -> None:
    """Ten transactions allocate at once (on PostgreSQL they really overlap): the unique
    constraint makes each take a different address, lowest first."""
    from cumulo.services.network import ipam

    with db.write() as session:
        owner, caller = _admin(session)
        zone = _zone(session)
        network_id = _network((session, owner, caller, zone)).id
    got: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def take() -> None:
        try:
            barrier.wait()
            with db.write() as session:
                network = session.get_one(networks.Network, network_id)
                got.append(ipam.allocate_guest_ip(session, network, None))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=take) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got, key=lambda a: int(a.rsplit(".", 1)[1])) == [
        f"10.9.0.{i}" for i in range(2, 12)
    ]
