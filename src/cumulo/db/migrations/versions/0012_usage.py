"""The usage ledger: usage events, usage records and the aggregated periods

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 05:00:00
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_uuid", sa.String(length=36), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_jobs")),
        sa.UniqueConstraint(
            "start_date", "end_date", name=op.f("uq_usage_jobs_start_date_end_date")
        ),
    )
    op.create_index(op.f("ix_usage_jobs_end_date"), "usage_jobs", ["end_date"], unique=False)
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("resource_id", sa.Integer(), nullable=False),
        sa.Column("resource_uuid", sa.String(length=36), nullable=False),
        sa.Column("resource_name", sa.String(length=255), nullable=True),
        sa.Column("offering_id", sa.Integer(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("virtual_size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_events_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    )
    op.create_index(op.f("ix_usage_events_created"), "usage_events", ["created"], unique=False)
    op.create_index(
        "ix_usage_events_resource",
        "usage_events",
        ["resource_type", "resource_id", "created"],
        unique=False,
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("zone_id", sa.Integer(), nullable=True),
        sa.Column("usage_type", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("seconds", sa.BigInteger(), nullable=False),
        sa.Column("raw_usage", sa.Float(), nullable=False),
        sa.Column("usage_uuid", sa.String(length=36), nullable=True),
        sa.Column("vm_uuid", sa.String(length=36), nullable=True),
        sa.Column("vm_name", sa.String(length=255), nullable=True),
        sa.Column("offering_uuid", sa.String(length=36), nullable=True),
        sa.Column("template_uuid", sa.String(length=36), nullable=True),
        sa.Column("resource_type", sa.String(length=32), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("virtual_size", sa.BigInteger(), nullable=True),
        sa.Column("cpu_number", sa.Integer(), nullable=True),
        sa.Column("cpu_speed", sa.Integer(), nullable=True),
        sa.Column("memory", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_usage_records_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"], ["domains.id"], name=op.f("fk_usage_records_domain_id_domains")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint("uuid", name=op.f("uq_usage_records_uuid")),
    )
    op.create_index(
        "ix_usage_records_account_type",
        "usage_records",
        ["account_id", "usage_type"],
        unique=False,
    )
    op.create_index(
        "ix_usage_records_period", "usage_records", ["start_date", "end_date"], unique=False
    )
    _backfill(datetime.now(UTC))


EVENT_COLUMNS = (
    "type",
    "created",
    "account_id",
    "domain_id",
    "zone_id",
    "resource_type",
    "resource_id",
    "resource_uuid",
    "resource_name",
    "offering_id",
    "template_id",
    "size",
)
GONE_VM_STATES = ("Destroyed", "Expunging", "Expunged", "Error")
RUNNING_VM_STATES = ("Running", "Stopping", "Migrating")


def _backfill(now: datetime) -> None:
    """Metering starts with the upgrade: what exists then is billed from then on, as if it
    had been created (and started) at that moment; nothing before the upgrade is guessed."""
    events = sa.table(
        "usage_events",
        *(sa.column(c) for c in EVENT_COLUMNS if c != "created"),
        sa.column("created", sa.DateTime(timezone=True)),
    )
    at = sa.literal(now, sa.DateTime(timezone=True))
    vms = sa.table(
        "vm_instances",
        *(sa.column(c) for c in ("id", "uuid", "name", "state", "account_id", "domain_id")),
        *(sa.column(c) for c in ("zone_id", "service_offering_id", "template_id", "removed")),
    )
    alive = sa.and_(vms.c.removed.is_(None), vms.c.state.notin_(GONE_VM_STATES))

    def vm_rows(type_: str, where: sa.ColumnElement[bool]) -> sa.Select[tuple[object, ...]]:
        return sa.select(
            sa.literal(type_), at, vms.c.account_id, vms.c.domain_id, vms.c.zone_id,
            sa.literal("VirtualMachine"), vms.c.id, vms.c.uuid, vms.c.name,
            vms.c.service_offering_id, vms.c.template_id, sa.null(),
        ).where(where)  # fmt: skip

    op.execute(events.insert().from_select(EVENT_COLUMNS, vm_rows("VM.CREATE", alive)))
    running = sa.and_(vms.c.removed.is_(None), vms.c.state.in_(RUNNING_VM_STATES))
    op.execute(events.insert().from_select(EVENT_COLUMNS, vm_rows("VM.START", running)))
    vols = sa.table(
        "volumes",
        *(sa.column(c) for c in ("id", "uuid", "name", "state", "account_id", "domain_id")),
        *(sa.column(c) for c in ("zone_id", "disk_offering_id", "template_id", "size", "removed")),
    )
    op.execute(
        events.insert().from_select(
            EVENT_COLUMNS,
            sa.select(
                sa.literal("VOLUME.CREATE"),
                at,
                vols.c.account_id,
                vols.c.domain_id,
                vols.c.zone_id,
                sa.literal("Volume"),
                vols.c.id,
                vols.c.uuid,
                vols.c.name,
                vols.c.disk_offering_id,
                vols.c.template_id,
                vols.c.size,
            ).where(vols.c.removed.is_(None), vols.c.state != "Expunged"),
        )
    )
    ips = sa.table(
        "public_ip_addresses",
        *(sa.column(c) for c in ("id", "uuid", "address", "account_id", "domain_id", "zone_id")),
    )
    op.execute(
        events.insert().from_select(
            EVENT_COLUMNS,
            sa.select(
                sa.literal("NET.IPASSIGN"),
                at,
                ips.c.account_id,
                ips.c.domain_id,
                ips.c.zone_id,
                sa.literal("PublicIpAddress"),
                ips.c.id,
                ips.c.uuid,
                ips.c.address,
                sa.null(),
                sa.null(),
                sa.null(),
            ),
        )
    )


def downgrade() -> None:
    op.drop_index("ix_usage_records_period", table_name="usage_records")
    op.drop_index("ix_usage_records_account_type", table_name="usage_records")
    op.drop_table("usage_records")
    op.drop_index("ix_usage_events_resource", table_name="usage_events")
    op.drop_index(op.f("ix_usage_events_created"), table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_index(op.f("ix_usage_jobs_end_date"), table_name="usage_jobs")
    op.drop_table("usage_jobs")
