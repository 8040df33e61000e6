"""Event bus: outbox, webhooks, deliveries and alerts (issue 9)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-22 06:58:00
"""

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
