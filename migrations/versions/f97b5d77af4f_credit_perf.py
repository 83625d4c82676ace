"""credit: indexes and columns for recompute and the credit page (issue #6)

Revision ID: f97b5d77af4f
Revises: 21cbd27e7bd2
Create Date: 2026-12-07 18:00:00.000000

"""

from alembic import op
import sqlalchemy as sa

import mediation.dbtypes


# revision identifiers, used by Alembic.
revision = "f97b5d77af4f"
down_revision = "21cbd27e7bd2"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
