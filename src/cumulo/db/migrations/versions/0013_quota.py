"""Chargeback: quota tariffs, credits, per-account quota state, quota usage and periods

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 06:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _dt(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "quota_tariffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("usage_type", sa.Integer(), nullable=False),
        sa.Column("value_e8", sa.BigInteger(), nullable=False),
        sa.Column("activation_rule", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        _dt("effective_on"),
        _dt("end_date", True),
        _dt("created"),
        _dt("updated_on"),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        _dt("removed", True),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_quota_tariffs_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_tariffs")),
        sa.UniqueConstraint("uuid", name=op.f("uq_quota_tariffs_uuid")),
    )
    op.create_index(op.f("ix_quota_tariffs_name"), "quota_tariffs", ["name"], unique=False)
    op.create_index(
        "ix_quota_tariffs_type_effective",
        "quota_tariffs",
        ["usage_type", "effective_on"],
        unique=False,
    )
    op.create_table(
        "quota_credits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("amount_e8", sa.BigInteger(), nullable=False),
        _dt("created"),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_quota_credits_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_quota_credits_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_quota_credits_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_credits")),
        sa.UniqueConstraint("uuid", name=op.f("uq_quota_credits_uuid")),
    )
    op.create_index(
        op.f("ix_quota_credits_account_id"), "quota_credits", ["account_id"], unique=False
    )
    op.create_table(
        "quota_accounts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("min_balance_e8", sa.BigInteger(), nullable=False),
        sa.Column("enforce", sa.Boolean(), nullable=False),
        sa.Column("balance_e8", sa.BigInteger(), nullable=False),
        _dt("balance_date", True),
        sa.Column("locked", sa.Boolean(), nullable=False),
        sa.Column("alert", sa.String(length=16), nullable=True),
        _dt("alert_date", True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_quota_accounts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_quota_accounts")),
    )
    op.create_table(
        "quota_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("usage_type", sa.Integer(), nullable=False),
        sa.Column("usage_uuid", sa.String(length=36), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("tariff_e8", sa.BigInteger(), nullable=False),
        sa.Column("amount_e8", sa.BigInteger(), nullable=False),
        _dt("start_date"),
        _dt("end_date"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_quota_usage_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_quota_usage_domain_id_domains")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_usage")),
    )
    op.create_index(
        "ix_quota_usage_period", "quota_usage", ["start_date", "end_date"], unique=False
    )
    op.create_index(
        "ix_quota_usage_account", "quota_usage", ["account_id", "start_date"], unique=False
    )
    op.create_table(
        "quota_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        _dt("start_date"),
        _dt("end_date"),
        _dt("computed"),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_periods")),
        sa.UniqueConstraint(
            "start_date", "end_date", name=op.f("uq_quota_periods_start_date_end_date")
        ),
    )


def downgrade() -> None:
    op.drop_table("quota_periods")
    op.drop_index("ix_quota_usage_account", table_name="quota_usage")
    op.drop_index("ix_quota_usage_period", table_name="quota_usage")
    op.drop_table("quota_usage")
    op.drop_table("quota_accounts")
    op.drop_index(op.f("ix_quota_credits_account_id"), table_name="quota_credits")
    op.drop_table("quota_credits")
    op.drop_index("ix_quota_tariffs_type_effective", table_name="quota_tariffs")
    op.drop_index(op.f("ix_quota_tariffs_name"), table_name="quota_tariffs")
    op.drop_table("quota_tariffs")
