"""VM snapshots (issue 6): the vm_snapshots table

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vm_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_vm_snapshots_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_vm_snapshots_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_vm_snapshots_vm_id_vm_instances")
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.id"], name=op.f("fk_vm_snapshots_zone_id_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vm_snapshots")),
        sa.UniqueConstraint("uuid", name=op.f("uq_vm_snapshots_uuid")),
    )
    op.create_index(
        op.f("ix_vm_snapshots_account_id"), "vm_snapshots", ["account_id"], unique=False
    )
    op.create_index(op.f("ix_vm_snapshots_vm_id"), "vm_snapshots", ["vm_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_vm_snapshots_vm_id"), table_name="vm_snapshots")
    op.drop_index(op.f("ix_vm_snapshots_account_id"), table_name="vm_snapshots")
    op.drop_table("vm_snapshots")
