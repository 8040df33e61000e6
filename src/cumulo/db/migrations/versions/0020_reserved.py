"""Volume and template uploads, volume extraction (issues 6 and 11)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-22 10:05:00
"""

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
