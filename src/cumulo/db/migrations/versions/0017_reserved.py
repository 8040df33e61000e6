"""S3 image stores and secondary-storage data migration (issue 12)

Reserved placeholder: its owner fills it in (and renames the file) when the models change.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-22 10:05:00
"""

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
