"""block storage: placeholder, filled by the block storage work

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 04:30:00
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
