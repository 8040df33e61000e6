"""Guest network dataplane: virtual routers and the hosts a network's segment is on (issue 7)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 06:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("vni", sa.Integer(), nullable=True),
        sa.Column("config_hash", sa.String(length=64), nullable=True),
        sa.Column("applied_generation", sa.Integer(), nullable=False),
        sa.Column("segment_hosts", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.String(length=1024), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"]),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index("ix_routers_host_id", "routers", ["host_id"])


def downgrade() -> None:
    op.drop_index("ix_routers_host_id", table_name="routers")
    op.drop_table("routers")
