"""supervision: risk scores, warning interviews, complaint text flags (issue #7)

Revision ID: 43220ab51978
Revises: 60111ae6a4dc
Create Date: 2026-12-07 18:00:00.000000

"""

from alembic import op
import sqlalchemy as sa

import mediation.dbtypes


# revision identifiers, used by Alembic.
revision = "43220ab51978"
down_revision = "60111ae6a4dc"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
