"""host pools: a storage pool may belong to one host (local storage a KVM agent registers)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("storage_pools") as batch:
        batch.add_column(sa.Column("host_id", sa.Integer(), nullable=True))
        batch.create_index("ix_storage_pools_host_id", ["host_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("storage_pools") as batch:
        batch.drop_index("ix_storage_pools_host_id")
        batch.drop_column("host_id")
