"""Orchestration speed: the index listVirtualMachines pages and counts from (issue 4)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 06:50:00
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_vm_instances_removed_id_state", "vm_instances", ["removed", "id", "state"])


def downgrade() -> None:
    op.drop_index("ix_vm_instances_removed_id_state", table_name="vm_instances")
