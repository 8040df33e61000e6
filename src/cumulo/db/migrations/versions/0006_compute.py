"""compute: virtual machines, volumes, nics, template caches on primary storage, simulator mocks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 04:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "simulator_mocks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("command", sa.String(length=64), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("pod_id", sa.Integer(), nullable=True),
        sa.Column("cluster_id", sa.Integer(), nullable=True),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("wait_ms", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("timeout", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("json_response", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["cluster_id"], ["clusters.id"], name=op.f("fk_simulator_mocks_cluster_id_clusters")
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_simulator_mocks_host_id_hosts")
        ),
        sa.ForeignKeyConstraint(
            ["pod_id"], ["pods.id"], name=op.f("fk_simulator_mocks_pod_id_pods")
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.id"], name=op.f("fk_simulator_mocks_zone_id_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulator_mocks")),
        sa.UniqueConstraint("uuid", name=op.f("uq_simulator_mocks_uuid")),
    )
    op.create_index(
        op.f("ix_simulator_mocks_command"), "simulator_mocks", ["command"], unique=False
    )
    op.create_table(
        "template_pool_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("install_path", sa.String(length=1024), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_template_pool_refs_host_id_hosts")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["storage_pools.id"],
            name=op.f("fk_template_pool_refs_pool_id_storage_pools"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_pool_refs_template_id_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_pool_refs")),
    )
    op.create_index(
        op.f("ix_template_pool_refs_pool_id"), "template_pool_refs", ["pool_id"], unique=False
    )
    op.create_index(
        op.f("ix_template_pool_refs_template_id"),
        "template_pool_refs",
        ["template_id"],
        unique=False,
    )
    op.create_table(
        "vm_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("instance_name", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_changed", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("pod_id", sa.Integer(), nullable=True),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("last_host_id", sa.Integer(), nullable=True),
        sa.Column("service_offering_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("iso_id", sa.Integer(), nullable=True),
        sa.Column("guest_os_id", sa.Integer(), nullable=True),
        sa.Column("hypervisor_type", sa.String(length=32), nullable=True),
        sa.Column("cpu_number", sa.Integer(), nullable=False),
        sa.Column("cpu_speed", sa.Integer(), nullable=False),
        sa.Column("memory", sa.Integer(), nullable=False),
        sa.Column("ha_enabled", sa.Boolean(), nullable=False),
        sa.Column("group_name", sa.String(length=255), nullable=True),
        sa.Column("display_vm", sa.Boolean(), nullable=False),
        sa.Column("dynamically_scalable", sa.Boolean(), nullable=False),
        sa.Column("user_data", sa.Text(), nullable=True),
        sa.Column("user_data_id", sa.Integer(), nullable=True),
        sa.Column("keypairs", sa.JSON(), nullable=False),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_vm_instances_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_vm_instances_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["guest_os_id"],
            ["guest_os_types.id"],
            name=op.f("fk_vm_instances_guest_os_id_guest_os_types"),
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_vm_instances_host_id_hosts")
        ),
        sa.ForeignKeyConstraint(
            ["iso_id"], ["templates.id"], name=op.f("fk_vm_instances_iso_id_templates")
        ),
        sa.ForeignKeyConstraint(
            ["last_host_id"], ["hosts.id"], name=op.f("fk_vm_instances_last_host_id_hosts")
        ),
        sa.ForeignKeyConstraint(["pod_id"], ["pods.id"], name=op.f("fk_vm_instances_pod_id_pods")),
        sa.ForeignKeyConstraint(
            ["service_offering_id"],
            ["service_offerings.id"],
            name=op.f("fk_vm_instances_service_offering_id_service_offerings"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_vm_instances_template_id_templates")
        ),
        sa.ForeignKeyConstraint(
            ["user_data_id"], ["user_data.id"], name=op.f("fk_vm_instances_user_data_id_user_data")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_vm_instances_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.id"], name=op.f("fk_vm_instances_zone_id_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vm_instances")),
        sa.UniqueConstraint("uuid", name=op.f("uq_vm_instances_uuid")),
    )
    op.create_index(
        op.f("ix_vm_instances_account_id"), "vm_instances", ["account_id"], unique=False
    )
    op.create_index(
        "ix_vm_instances_account_state", "vm_instances", ["account_id", "state"], unique=False
    )
    op.create_index(op.f("ix_vm_instances_domain_id"), "vm_instances", ["domain_id"], unique=False)
    op.create_index(
        "ix_vm_instances_host_state", "vm_instances", ["host_id", "state"], unique=False
    )
    op.create_index(
        "ix_vm_instances_state_changed", "vm_instances", ["state", "state_changed"], unique=False
    )
    op.create_index(
        op.f("ix_vm_instances_template_id"), "vm_instances", ["template_id"], unique=False
    )
    op.create_index(op.f("ix_vm_instances_zone_id"), "vm_instances", ["zone_id"], unique=False)
    op.create_table(
        "nics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=False),
        sa.Column("ip4", sa.String(length=15), nullable=True),
        sa.Column("netmask", sa.String(length=15), nullable=True),
        sa.Column("gateway", sa.String(length=15), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("traffic_type", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_nics_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nics")),
        sa.UniqueConstraint("uuid", name=op.f("uq_nics_uuid")),
    )
    op.create_index(op.f("ix_nics_network_id"), "nics", ["network_id"], unique=False)
    op.create_index(op.f("ix_nics_vm_id"), "nics", ["vm_id"], unique=False)
    op.create_table(
        "volumes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("volume_type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("disk_offering_id", sa.Integer(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("pool_id", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attached", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_volumes_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["disk_offering_id"],
            ["disk_offerings.id"],
            name=op.f("fk_volumes_disk_offering_id_disk_offerings"),
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_volumes_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"], ["storage_pools.id"], name=op.f("fk_volumes_pool_id_storage_pools")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name=op.f("fk_volumes_template_id_templates")
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_volumes_vm_id_vm_instances")
        ),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], name=op.f("fk_volumes_zone_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volumes")),
        sa.UniqueConstraint("uuid", name=op.f("uq_volumes_uuid")),
    )
    op.create_index(op.f("ix_volumes_account_id"), "volumes", ["account_id"], unique=False)
    op.create_index(op.f("ix_volumes_pool_id"), "volumes", ["pool_id"], unique=False)
    op.create_index("ix_volumes_vm", "volumes", ["vm_id", "device_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_volumes_vm", table_name="volumes")
    op.drop_index(op.f("ix_volumes_pool_id"), table_name="volumes")
    op.drop_index(op.f("ix_volumes_account_id"), table_name="volumes")
    op.drop_table("volumes")
    op.drop_index(op.f("ix_nics_vm_id"), table_name="nics")
    op.drop_index(op.f("ix_nics_network_id"), table_name="nics")
    op.drop_table("nics")
    op.drop_index(op.f("ix_vm_instances_zone_id"), table_name="vm_instances")
    op.drop_index(op.f("ix_vm_instances_template_id"), table_name="vm_instances")
    op.drop_index("ix_vm_instances_state_changed", table_name="vm_instances")
    op.drop_index("ix_vm_instances_host_state", table_name="vm_instances")
    op.drop_index(op.f("ix_vm_instances_domain_id"), table_name="vm_instances")
    op.drop_index("ix_vm_instances_account_state", table_name="vm_instances")
    op.drop_index(op.f("ix_vm_instances_account_id"), table_name="vm_instances")
    op.drop_table("vm_instances")
    op.drop_index(op.f("ix_template_pool_refs_template_id"), table_name="template_pool_refs")
    op.drop_index(op.f("ix_template_pool_refs_pool_id"), table_name="template_pool_refs")
    op.drop_table("template_pool_refs")
    op.drop_index(op.f("ix_simulator_mocks_command"), table_name="simulator_mocks")
    op.drop_table("simulator_mocks")
