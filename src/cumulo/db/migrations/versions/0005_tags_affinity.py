"""tags and affinity groups: resource_tags, affinity_groups, affinity_group_vm_map

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 03:25:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("resource_uuid", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("domain_id", sa.Integer(), nullable=True),
        sa.Column("customer", sa.String(length=255), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_resource_tags_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_resource_tags_domain_id_domains")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_tags")),
        sa.UniqueConstraint(
            "resource_type",
            "resource_id",
            "key",
            name=op.f("uq_resource_tags_resource_type_resource_id_key"),
        ),
        sa.UniqueConstraint("uuid", name=op.f("uq_resource_tags_uuid")),
    )
    with op.batch_alter_table("resource_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resource_tags_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_resource_tags_domain_id"), ["domain_id"])
        batch_op.create_index(batch_op.f("ix_resource_tags_resource_uuid"), ["resource_uuid"])

    op.create_table(
        "affinity_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=4096), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_affinity_groups_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_affinity_groups_domain_id_domains")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affinity_groups")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_affinity_groups_account_id_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_affinity_groups_uuid")),
    )
    with op.batch_alter_table("affinity_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_affinity_groups_account_id"), ["account_id"])
        batch_op.create_index(batch_op.f("ix_affinity_groups_domain_id"), ["domain_id"])

    # vm_id gets its foreign key when the VM table exists (a later migration).
    op.create_table(
        "affinity_group_vm_map",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["affinity_groups.id"],
            name=op.f("fk_affinity_group_vm_map_group_id_affinity_groups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affinity_group_vm_map")),
        sa.UniqueConstraint(
            "group_id", "vm_id", name=op.f("uq_affinity_group_vm_map_group_id_vm_id")
        ),
    )
    with op.batch_alter_table("affinity_group_vm_map", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_affinity_group_vm_map_group_id"), ["group_id"])
        batch_op.create_index(batch_op.f("ix_affinity_group_vm_map_vm_id"), ["vm_id"])


def downgrade() -> None:
    op.drop_table("affinity_group_vm_map")
    op.drop_table("affinity_groups")
    op.drop_table("resource_tags")
