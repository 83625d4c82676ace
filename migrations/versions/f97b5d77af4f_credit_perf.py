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
    # The standing's explanation, so the credit page need not read the ledger.
    with op.batch_alter_table("credit_standings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("explanation", sa.JSON(), nullable=True))
    # The ledger's unique key case first: it serves the lookups by case, and the
    # index on case_id alone goes (one index fewer per row written).
    with op.batch_alter_table("credit_events", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_credit_events_case_id"), ["case_id", "merchant_id", "kind"]
        )
        batch_op.drop_constraint(
            batch_op.f("uq_credit_events_merchant_id"), type_="unique"
        )
        batch_op.drop_index(batch_op.f("ix_credit_events_case_id"))


def downgrade():
    with op.batch_alter_table("credit_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credit_events_case_id"), ["case_id"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_credit_events_merchant_id"),
            ["merchant_id", "case_id", "kind"],
        )
        batch_op.drop_constraint(batch_op.f("uq_credit_events_case_id"), type_="unique")
    with op.batch_alter_table("credit_standings", schema=None) as batch_op:
        batch_op.drop_column("explanation")
