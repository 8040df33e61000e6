"""Browser uploads and volume extraction (issues 6 and 11): the image_transfers table

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-22 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_uuid", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("image_store_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("checksum", sa.String(length=255), nullable=True),
        sa.Column("max_bytes", sa.BigInteger(), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_image_transfers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["image_store_id"],
            ["image_stores.id"],
            name=op.f("fk_image_transfers_image_store_id_image_stores"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_transfers")),
        sa.UniqueConstraint("uuid", name=op.f("uq_image_transfers_uuid")),
    )
    op.create_index(
        op.f("ix_image_transfers_account_id"), "image_transfers", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_image_transfers_expires"), "image_transfers", ["expires"], unique=False
    )
    op.create_index(
        op.f("ix_image_transfers_resource_uuid"),
        "image_transfers",
        ["resource_uuid"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_image_transfers_resource_uuid"), table_name="image_transfers")
    op.drop_index(op.f("ix_image_transfers_expires"), table_name="image_transfers")
    op.drop_index(op.f("ix_image_transfers_account_id"), table_name="image_transfers")
    op.drop_table("image_transfers")
