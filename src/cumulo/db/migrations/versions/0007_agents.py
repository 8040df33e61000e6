"""agents: relayed agent commands, reported VM power states, the server holding a host's agent

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 04:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("hosts", sa.Column("mgmt_server_id", sa.Integer(), nullable=True))
    op.create_table(
        "agent_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("sender_server_id", sa.Integer(), nullable=True),
        sa.Column("holder_server_id", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_agent_commands_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_commands")),
        sa.UniqueConstraint("request_id", name=op.f("uq_agent_commands_request_id")),
    )
    op.create_index(op.f("ix_agent_commands_host_id"), "agent_commands", ["host_id"], unique=False)
    op.create_index(op.f("ix_agent_commands_state"), "agent_commands", ["state"], unique=False)
    op.create_table(
        "host_vm_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("vm_name", sa.String(length=255), nullable=False),
        sa.Column("power_state", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=False),
        sa.Column("reported", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_host_vm_reports_host_id_hosts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_vm_reports")),
        sa.UniqueConstraint("host_id", "vm_name", name=op.f("uq_host_vm_reports_host_id_vm_name")),
    )
    op.create_index(
        op.f("ix_host_vm_reports_host_id"), "host_vm_reports", ["host_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_host_vm_reports_host_id"), table_name="host_vm_reports")
    op.drop_table("host_vm_reports")
    op.drop_index(op.f("ix_agent_commands_state"), table_name="agent_commands")
    op.drop_index(op.f("ix_agent_commands_host_id"), table_name="agent_commands")
    op.drop_table("agent_commands")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("mgmt_server_id")
