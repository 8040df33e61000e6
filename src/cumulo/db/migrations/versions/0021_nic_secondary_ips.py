"""NIC secondary IPs and load balancer policies (issue 7): addIpToNic / removeIpFromNic,
createLBStickinessPolicy, createLBHealthCheckPolicy

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-22 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nic_secondary_ips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("nic_id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_nic_secondary_ips_network_id_networks")
        ),
        sa.ForeignKeyConstraint(
            ["nic_id"], ["nics.id"], name=op.f("fk_nic_secondary_ips_nic_id_nics")
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_nic_secondary_ips_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nic_secondary_ips")),
        sa.UniqueConstraint(
            "network_id", "address", name=op.f("uq_nic_secondary_ips_network_id_address")
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_nic_secondary_ips_uuid")),
    )
    op.create_index(
        op.f("ix_nic_secondary_ips_nic_id"), "nic_secondary_ips", ["nic_id"], unique=False
    )
    op.create_index(
        op.f("ix_nic_secondary_ips_vm_id"), "nic_secondary_ips", ["vm_id"], unique=False
    )

    op.create_table(
        "lb_stickiness_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=4096), nullable=True),
        sa.Column("display", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["network_rules.id"],
            name=op.f("fk_lb_stickiness_policies_rule_id_network_rules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_stickiness_policies")),
        sa.UniqueConstraint("uuid", name=op.f("uq_lb_stickiness_policies_uuid")),
    )
    op.create_index(
        op.f("ix_lb_stickiness_policies_rule_id"),
        "lb_stickiness_policies",
        ["rule_id"],
        unique=False,
    )
    op.create_table(
        "lb_healthcheck_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("ping_path", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=4096), nullable=True),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("response_timeout_s", sa.Integer(), nullable=False),
        sa.Column("healthy_threshold", sa.Integer(), nullable=False),
        sa.Column("unhealthy_threshold", sa.Integer(), nullable=False),
        sa.Column("display", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["network_rules.id"],
            name=op.f("fk_lb_healthcheck_policies_rule_id_network_rules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_healthcheck_policies")),
        sa.UniqueConstraint("uuid", name=op.f("uq_lb_healthcheck_policies_uuid")),
    )
    op.create_index(
        op.f("ix_lb_healthcheck_policies_rule_id"),
        "lb_healthcheck_policies",
        ["rule_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_lb_healthcheck_policies_rule_id"), table_name="lb_healthcheck_policies")
    op.drop_table("lb_healthcheck_policies")
    op.drop_index(op.f("ix_lb_stickiness_policies_rule_id"), table_name="lb_stickiness_policies")
    op.drop_table("lb_stickiness_policies")
    op.drop_index(op.f("ix_nic_secondary_ips_vm_id"), table_name="nic_secondary_ips")
    op.drop_index(op.f("ix_nic_secondary_ips_nic_id"), table_name="nic_secondary_ips")
    op.drop_table("nic_secondary_ips")
