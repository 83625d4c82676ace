"""supervision: mass-complaint alerts and case groups (issue #7)

Revision ID: 60111ae6a4dc
Revises: 04f3d607f6ff
Create Date: 2026-12-07 18:00:00.000000

"""

from alembic import op
import sqlalchemy as sa

import mediation.dbtypes


# revision identifiers, used by Alembic.
revision = "60111ae6a4dc"
down_revision = "04f3d607f6ff"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
