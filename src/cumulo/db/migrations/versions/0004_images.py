"""images: templates, ISOs, their copies in image stores, launch permissions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 03:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("display_text", sa.String(length=4096), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("is_iso", sa.Boolean(), nullable=False),
        sa.Column("template_type", sa.String(length=16), nullable=False),
        sa.Column("hypervisor", sa.String(length=32), nullable=True),
        sa.Column("os_type_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("is_featured", sa.Boolean(), nullable=False),
        sa.Column("is_extractable", sa.Boolean(), nullable=False),
        sa.Column("password_enabled", sa.Boolean(), nullable=False),
        sa.Column("ssh_key_enabled", sa.Boolean(), nullable=False),
        sa.Column("is_dynamically_scalable", sa.Boolean(), nullable=False),
        sa.Column("requires_hvm", sa.Boolean(), nullable=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("cross_zones", sa.Boolean(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("checksum", sa.String(length=255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_templates_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_templates_domain_id_domains")
        ),
        sa.ForeignKeyConstraint(
            ["os_type_id"],
            ["guest_os_types.id"],
            name=op.f("fk_templates_os_type_id_guest_os_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("uuid", name=op.f("uq_templates_uuid")),
    )
    op.create_index(op.f("ix_templates_account_id"), "templates", ["account_id"])
    op.create_index(op.f("ix_templates_domain_id"), "templates", ["domain_id"])
    op.create_index(op.f("ix_templates_is_iso"), "templates", ["is_iso"])
    op.create_table(
        "template_store_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("image_store_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("download_pct", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("install_path", sa.String(length=1024), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("physical_size", sa.BigInteger(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_store_id"],
            ["image_stores.id"],
            name=op.f("fk_template_store_refs_image_store_id_image_stores"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_store_refs_template_id_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["zones.id"], name=op.f("fk_template_store_refs_zone_id_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_store_refs")),
        sa.UniqueConstraint(
            "template_id",
            "image_store_id",
            name=op.f("uq_template_store_refs_template_id_image_store_id"),
        ),
    )
    op.create_index(
        op.f("ix_template_store_refs_image_store_id"), "template_store_refs", ["image_store_id"]
    )
    op.create_index(
        op.f("ix_template_store_refs_template_id"), "template_store_refs", ["template_id"]
    )
    op.create_index(op.f("ix_template_store_refs_zone_id"), "template_store_refs", ["zone_id"])
    op.create_table(
        "template_permissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_template_permissions_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_permissions_template_id_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_permissions")),
        sa.UniqueConstraint(
            "template_id",
            "account_id",
            name=op.f("uq_template_permissions_template_id_account_id"),
        ),
    )
    op.create_index(
        op.f("ix_template_permissions_account_id"), "template_permissions", ["account_id"]
    )
    op.create_index(
        op.f("ix_template_permissions_template_id"), "template_permissions", ["template_id"]
    )


def downgrade() -> None:
    op.drop_table("template_permissions")
    op.drop_table("template_store_refs")
    op.drop_table("templates")
