"""NIC secondary IPs (issue 7)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-22 10:05:00
"""

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
