"""VM snapshots (issue 6)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-22 10:05:00
"""

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
