"""Chargeback: quota tariffs, balances and credits (issue 9)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 06:50:00
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
