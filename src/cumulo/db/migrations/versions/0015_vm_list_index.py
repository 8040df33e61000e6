"""Orchestration speed: indexes and columns for the deploy path (issue 4)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-22 06:50:00
"""

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
