"""VM console tokens and VM statistics (latest sample and cumulative counters per VM)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COUNTERS = (
    "cpu_time_ns",
    "disk_read_bytes",
    "disk_write_bytes",
    "disk_read_ops",
    "disk_write_ops",
    "net_rx_bytes",
    "net_tx_bytes",
)


def upgrade() -> None:
    op.create_table(
        "console_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("extra_hash", sa.String(length=64), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_console_tokens_host_id_hosts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_tokens_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_console_tokens_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_tokens_token_hash")),
    )
    op.create_index(op.f("ix_console_tokens_vm_id"), "console_tokens", ["vm_id"], unique=False)
    op.create_index(op.f("ix_console_tokens_expires"), "console_tokens", ["expires"], unique=False)
    op.create_table(
        "vm_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=True),
        sa.Column("sampled", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_percent", sa.Float(), nullable=False),
        sa.Column("memory_kib", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS),
        *(sa.Column(f"total_{name}", sa.BigInteger(), nullable=False) for name in COUNTERS),
        sa.Column("nic_totals", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["host_id"], ["hosts.id"], name=op.f("fk_vm_stats_host_id_hosts")),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vm_instances.id"], name=op.f("fk_vm_stats_vm_id_vm_instances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vm_stats")),
        sa.UniqueConstraint("vm_id", name=op.f("uq_vm_stats_vm_id")),
    )


def downgrade() -> None:
    op.drop_table("vm_stats")
    op.drop_index(op.f("ix_console_tokens_expires"), table_name="console_tokens")
    op.drop_index(op.f("ix_console_tokens_vm_id"), table_name="console_tokens")
    op.drop_table("console_tokens")
