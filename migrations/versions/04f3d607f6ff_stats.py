"""supervision: stage spans and statistics summaries (issue #7, dashboard)

Revision ID: 04f3d607f6ff
Revises: b9e917eef0a5
Create Date: 2026-12-07 18:00:00.000000

"""

from alembic import op
import sqlalchemy as sa

import mediation.dbtypes


# revision identifiers, used by Alembic.
revision = "04f3d607f6ff"
down_revision = "b9e917eef0a5"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
