"""block storage: snapshots, snapshot policies, and the volume columns they need

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 04:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("volumes", sa.Column("source_snapshot_id", sa.Integer(), nullable=True))
    op.add_column(
        "volumes",
        sa.Column("display_volume", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("volumes", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("volumes", sa.Column("state_changed", sa.DateTime(timezone=True), nullable=True))
    op.add_column("volumes", sa.Column("upload_store_id", sa.Integer(), nullable=True))
    op.add_column("volumes", sa.Column("upload_path", sa.String(length=1024), nullable=True))
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("volume_id", sa.Integer(), nullable=False),
        sa.Column("volume_type", sa.String(length=16), nullable=False),
        sa.Column("interval_type", sa.String(length=16), nullable=False),
        sa.Column("policy_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("physical_size", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=True),
        sa.Column("install_path", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_snapshots_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_snapshots_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["image_stores.id"], name=op.f("fk_snapshots_store_id_image_stores")
        ),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_snapshots_volume_id_volumes")
        ),
        sa.ForeignKeyConstraint(["zone_id"], ["zones.id"], name=op.f("fk_snapshots_zone_id_zones")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("uuid", name=op.f("uq_snapshots_uuid")),
    )
    op.create_index(op.f("ix_snapshots_account_id"), "snapshots", ["account_id"], unique=False)
    op.create_index(op.f("ix_snapshots_volume_id"), "snapshots", ["volume_id"], unique=False)
    op.create_table(
        "snapshot_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("volume_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("interval_type", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.String(length=64), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("max_snaps", sa.Integer(), nullable=False),
        sa.Column("display", sa.Boolean(), nullable=False),
        sa.Column("next_run", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_snapshot_policies_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["volume_id"], ["volumes.id"], name=op.f("fk_snapshot_policies_volume_id_volumes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot_policies")),
        sa.UniqueConstraint("uuid", name=op.f("uq_snapshot_policies_uuid")),
    )
    op.create_index(
        op.f("ix_snapshot_policies_account_id"), "snapshot_policies", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_snapshot_policies_next_run"), "snapshot_policies", ["next_run"], unique=False
    )
    op.create_index(
        op.f("ix_snapshot_policies_volume_id"), "snapshot_policies", ["volume_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("snapshot_policies")
    op.drop_table("snapshots")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("upload_path")
        batch.drop_column("upload_store_id")
        batch.drop_column("state_changed")
        batch.drop_column("error")
        batch.drop_column("display_volume")
        batch.drop_column("source_snapshot_id")
