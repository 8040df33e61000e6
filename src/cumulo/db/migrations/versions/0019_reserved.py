"""Traffic and disk I/O usage samples (issue 9)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-22 10:05:00
"""

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
