"""Guest network dataplane: virtual routers and host network state (issue 7)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 06:50:00
"""

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
