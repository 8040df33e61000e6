"""networking: network offerings (with CloudStack's defaults), guest networks, guest and public
addresses, firewall/port-forwarding/load-balancing rules, security groups

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 04:30:00
"""

from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

VR_SERVICES = ("Dhcp", "Dns", "UserData")
ISOLATED_SERVICES = (
    *VR_SERVICES, "SourceNat", "StaticNat", "PortForwarding", "Firewall", "Lb", "Vpn", "Gateway",
)  # fmt: skip
VPC_SERVICES = (
    *VR_SERVICES, "SourceNat", "StaticNat", "PortForwarding", "Lb", "NetworkACL", "Vpn", "Gateway",
)  # fmt: skip
# CloudStack's default offerings (name, text, guest type, services by provider, flags).
DEFAULTS: tuple[tuple[str, str, str, dict[str, tuple[str, ...]], dict[str, object]], ...] = (
    (
        "DefaultIsolatedNetworkOfferingWithSourceNatService",
        "Offering for Isolated networks with Source Nat service enabled",
        "Isolated",
        {"VirtualRouter": ISOLATED_SERVICES},
        {"availability": "Required"},
    ),
    (
        "DefaultIsolatedNetworkOffering",
        "Offering for Isolated networks with no Source Nat service",
        "Isolated",
        {"VirtualRouter": VR_SERVICES},
        {"specify_vlan": True, "specify_ip_ranges": True},
    ),
    (
        "DefaultSharedNetworkOffering",
        "Offering for Shared networks",
        "Shared",
        {"VirtualRouter": VR_SERVICES},
        {"specify_vlan": True, "specify_ip_ranges": True},
    ),
    (
        "DefaultSharedNetworkOfferingWithSGService",
        "Offering for Shared Security group enabled networks",
        "Shared",
        {"VirtualRouter": VR_SERVICES, "SecurityGroupProvider": ("SecurityGroup",)},
        {"specify_vlan": True, "specify_ip_ranges": True},
    ),
    (
        "DefaultIsolatedNetworkOfferingForVpcNetworks",
        "Offering for Isolated VPC networks with Source Nat service enabled",
        "Isolated",
        {"VpcVirtualRouter": VPC_SERVICES},
        {"for_vpc": True},
    ),
    ("DefaultL2NetworkOffering", "Offering for L2 networks", "L2", {}, {}),
)


def _seed_rows() -> list[dict[str, object]]:
    now = datetime.now(UTC)
    rows = []
    for name, text, guest_type, by_provider, flags in DEFAULTS:
        services: dict[str, list[str]] = {}
        for provider, names in by_provider.items():
            for service in names:
                services.setdefault(service, []).append(provider)
        rows.append(
            {
                "uuid": str(uuid4()),
                "name": name,
                "display_text": text,
                "guest_ip_type": guest_type,
                "traffic_type": "Guest",
                "state": "Enabled",
                "is_default": True,
                "specify_vlan": bool(flags.get("specify_vlan", False)),
                "specify_ip_ranges": bool(flags.get("specify_ip_ranges", False)),
                "conserve_mode": True,
                "egress_default_allow": True,
                "for_vpc": bool(flags.get("for_vpc", False)),
                "availability": str(flags.get("availability", "Optional")),
                "services": services,
                "capabilities": (
                    {"SupportedSourceNatTypes": "peraccount"} if "SourceNat" in services else {}
                ),
                "created": now,
            }
        )
    return rows


def upgrade() -> None:
    op.create_table(
        "network_offerings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_text", sa.String(length=1024), nullable=False),
        sa.Column("guest_ip_type", sa.String(length=16), nullable=False),
        sa.Column("traffic_type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("specify_vlan", sa.Boolean(), nullable=False),
        sa.Column("specify_ip_ranges", sa.Boolean(), nullable=False),
        sa.Column("conserve_mode", sa.Boolean(), nullable=False),
        sa.Column("egress_default_allow", sa.Boolean(), nullable=False),
        sa.Column("for_vpc", sa.Boolean(), nullable=False),
        sa.Column("availability", sa.String(length=16), nullable=False),
        sa.Column("tags", sa.String(length=1024), nullable=True),
        sa.Column("network_rate", sa.Integer(), nullable=True),
        sa.Column("max_connections", sa.Integer(), nullable=True),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_offerings")),
        sa.UniqueConstraint("name", name=op.f("uq_network_offerings_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_network_offerings_uuid")),
    )
    op.create_table(
        "security_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=4096), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_security_groups_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_security_groups_domain_id_domains")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_groups")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_security_groups_account_id_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_security_groups_uuid")),
    )
    op.create_table(
        "networks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_text", sa.String(length=1024), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("physical_network_id", sa.Integer(), nullable=True),
        sa.Column("offering_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("acl_type", sa.String(length=16), nullable=False),
        sa.Column("guest_type", sa.String(length=16), nullable=False),
        sa.Column("traffic_type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=False),
        sa.Column("netmask", sa.String(length=64), nullable=False),
        sa.Column("start_ip", sa.String(length=64), nullable=True),
        sa.Column("end_ip", sa.String(length=64), nullable=True),
        sa.Column("segment_id", sa.Integer(), nullable=True),
        sa.Column("specified_vlan", sa.String(length=64), nullable=True),
        sa.Column("network_domain", sa.String(length=255), nullable=True),
        sa.Column("display", sa.Boolean(), nullable=False),
        sa.Column("restart_required", sa.Boolean(), nullable=False),
        sa.Column("router_generation", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_networks_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_networks_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["offering_id"],
            ["network_offerings.id"],
            name=op.f("fk_networks_offering_id_network_offerings"),
        ),
        sa.ForeignKeyConstraint(
            ["physical_network_id"],
            ["physical_networks.id"],
            name=op.f("fk_networks_physical_network_id_physical_networks"),
        ),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], name=op.f("fk_networks_zone_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_networks")),
        sa.UniqueConstraint(
            "physical_network_id",
            "segment_id",
            name=op.f("uq_networks_physical_network_id_segment_id"),
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_networks_uuid")),
    )
    op.create_index("ix_networks_account_state", "networks", ["account_id", "state"], unique=False)
    op.create_index(op.f("ix_networks_zone_id"), "networks", ["zone_id"], unique=False)
    op.create_table(
        "security_group_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("start_port", sa.Integer(), nullable=True),
        sa.Column("end_port", sa.Integer(), nullable=True),
        sa.Column("icmp_type", sa.Integer(), nullable=True),
        sa.Column("icmp_code", sa.Integer(), nullable=True),
        sa.Column("cidr", sa.String(length=64), nullable=True),
        sa.Column("ref_group_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["security_groups.id"],
            name=op.f("fk_security_group_rules_group_id_security_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["ref_group_id"],
            ["security_groups.id"],
            name=op.f("fk_security_group_rules_ref_group_id_security_groups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_group_rules")),
        sa.UniqueConstraint("uuid", name=op.f("uq_security_group_rules_uuid")),
    )
    op.create_index(
        op.f("ix_security_group_rules_group_id"), "security_group_rules", ["group_id"], unique=False
    )
    op.create_table(
        "public_ip_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("vlan_range_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("is_source_nat", sa.Boolean(), nullable=False),
        sa.Column("static_nat_vm_id", sa.Integer(), nullable=True),
        sa.Column("static_nat_ip", sa.String(length=64), nullable=True),
        sa.Column("for_display", sa.Boolean(), nullable=False),
        sa.Column("allocated", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_public_ip_addresses_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_public_ip_addresses_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_public_ip_addresses_network_id_networks")
        ),
        sa.ForeignKeyConstraint(
            ["static_nat_vm_id"],
            ["vm_instances.id"],
            name=op.f("fk_public_ip_addresses_static_nat_vm_id_vm_instances"),
        ),
        sa.ForeignKeyConstraint(
            ["vlan_range_id"],
            ["vlan_ip_ranges.id"],
            name=op.f("fk_public_ip_addresses_vlan_range_id_vlan_ip_ranges"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.id"], name=op.f("fk_public_ip_addresses_zone_id_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_ip_addresses")),
        sa.UniqueConstraint("uuid", name=op.f("uq_public_ip_addresses_uuid")),
        sa.UniqueConstraint(
            "zone_id", "address", name=op.f("uq_public_ip_addresses_zone_id_address")
        ),
    )
    op.create_index(
        op.f("ix_public_ip_addresses_account_id"),
        "public_ip_addresses",
        ["account_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_public_ip_addresses_network_id"),
        "public_ip_addresses",
        ["network_id"],
        unique=False,
    )
    op.create_table(
        "security_group_vm_map",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["security_groups.id"],
            name=op.f("fk_security_group_vm_map_group_id_security_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_security_group_vm_map_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_group_vm_map")),
        sa.UniqueConstraint(
            "group_id", "vm_id", name=op.f("uq_security_group_vm_map_group_id_vm_id")
        ),
    )
    op.create_index(
        op.f("ix_security_group_vm_map_vm_id"), "security_group_vm_map", ["vm_id"], unique=False
    )
    op.create_table(
        "network_ip_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("nic_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_network_ip_allocations_network_id_networks"),
        ),
        sa.ForeignKeyConstraint(
            ["nic_id"], ["nics.id"], name=op.f("fk_network_ip_allocations_nic_id_nics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_ip_allocations")),
        sa.UniqueConstraint(
            "network_id", "address", name=op.f("uq_network_ip_allocations_network_id_address")
        ),
    )
    op.create_index(
        op.f("ix_network_ip_allocations_nic_id"), "network_ip_allocations", ["nic_id"], unique=False
    )
    op.create_table(
        "network_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("public_ip_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("start_port", sa.Integer(), nullable=True),
        sa.Column("end_port", sa.Integer(), nullable=True),
        sa.Column("private_start_port", sa.Integer(), nullable=True),
        sa.Column("private_end_port", sa.Integer(), nullable=True),
        sa.Column("icmp_type", sa.Integer(), nullable=True),
        sa.Column("icmp_code", sa.Integer(), nullable=True),
        sa.Column("source_cidrs", sa.JSON(), nullable=False),
        sa.Column("dest_cidrs", sa.JSON(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=True),
        sa.Column("vm_ip", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=4096), nullable=True),
        sa.Column("algorithm", sa.String(length=32), nullable=True),
        sa.Column("display", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_network_rules_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_network_rules_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_network_rules_network_id_networks")
        ),
        sa.ForeignKeyConstraint(
            ["public_ip_id"],
            ["public_ip_addresses.id"],
            name=op.f("fk_network_rules_public_ip_id_public_ip_addresses"),
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_network_rules_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_rules")),
        sa.UniqueConstraint("uuid", name=op.f("uq_network_rules_uuid")),
    )
    op.create_index(
        op.f("ix_network_rules_account_id"), "network_rules", ["account_id"], unique=False
    )
    op.create_index(
        "ix_network_rules_network_purpose", "network_rules", ["network_id", "purpose"], unique=False
    )
    op.create_table(
        "lb_vm_map",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("vm_ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["network_rules.id"], name=op.f("fk_lb_vm_map_rule_id_network_rules")
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_lb_vm_map_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_vm_map")),
        sa.UniqueConstraint("rule_id", "vm_id", name=op.f("uq_lb_vm_map_rule_id_vm_id")),
    )
    op.create_index(op.f("ix_lb_vm_map_vm_id"), "lb_vm_map", ["vm_id"], unique=False)
    offerings = sa.table(
        "network_offerings",
        *(
            sa.column(c)
            for c in (
                "uuid",
                "name",
                "display_text",
                "guest_ip_type",
                "traffic_type",
                "state",
                "is_default",
                "specify_vlan",
                "specify_ip_ranges",
                "conserve_mode",
                "egress_default_allow",
                "for_vpc",
                "availability",
                "created",
            )
        ),
        sa.column("services", sa.JSON()),
        sa.column("capabilities", sa.JSON()),
    )
    op.bulk_insert(offerings, _seed_rows())


def downgrade() -> None:
    op.drop_table("lb_vm_map")
    op.drop_table("network_rules")
    op.drop_table("network_ip_allocations")
    op.drop_table("security_group_vm_map")
    op.drop_table("public_ip_addresses")
    op.drop_table("security_group_rules")
    op.drop_table("networks")
    op.drop_table("security_groups")
    op.drop_table("network_offerings")
