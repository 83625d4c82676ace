"""supervision: consumer warnings, exports and the audit log (issue #7)

Revision ID: 21cbd27e7bd2
Revises: 43220ab51978
Create Date: 2026-12-07 18:00:00.000000

"""

from alembic import op
import sqlalchemy as sa

import mediation.dbtypes


# revision identifiers, used by Alembic.
revision = "21cbd27e7bd2"
down_revision = "43220ab51978"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_audit_entries_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_entries_action"), ["action"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_audit_entries_actor_id"), ["actor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)
        batch_op.create_index(
            "ix_audit_entries_object", ["object_type", "object_id"], unique=False
        )

    op.create_table(
        "consumer_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("created_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("published_at", mediation.dbtypes.UTCDateTime(), nullable=True),
        sa.Column("published_by_id", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", mediation.dbtypes.UTCDateTime(), nullable=True),
        sa.Column("withdrawn_by_id", sa.Integer(), nullable=True),
        sa.Column("withdrawal_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_consumer_warnings_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["published_by_id"],
            ["users.id"],
            name=op.f("fk_consumer_warnings_published_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["withdrawn_by_id"],
            ["users.id"],
            name=op.f("fk_consumer_warnings_withdrawn_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consumer_warnings")),
    )
    with op.batch_alter_table("consumer_warnings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consumer_warnings_category"), ["category"], unique=False
        )
        batch_op.create_index(
            "ix_consumer_warnings_status_published",
            ["status", "published_at"],
            unique=False,
        )

    op.create_table(
        "consumer_warning_merchants",
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_consumer_warning_merchants_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["consumer_warnings.id"],
            name=op.f("fk_consumer_warning_merchants_warning_id_consumer_warnings"),
        ),
        sa.PrimaryKeyConstraint(
            "warning_id", "merchant_id", name=op.f("pk_consumer_warning_merchants")
        ),
    )
    with op.batch_alter_table("consumer_warning_merchants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consumer_warning_merchants_merchant_id"),
            ["merchant_id"],
            unique=False,
        )

    # The credit feed carries consumer warnings; one that names no merchant has
    # a row without a merchant.
    with op.batch_alter_table("credit_changes", schema=None) as batch_op:
        batch_op.alter_column("merchant_id", existing_type=sa.Integer(), nullable=True)


def downgrade():
    # The feed's warning rows go with the warnings.
    op.execute(
        "DELETE FROM credit_changes WHERE kind IN ('warning', 'warning_withdrawn')"
    )
    with op.batch_alter_table("credit_changes", schema=None) as batch_op:
        batch_op.alter_column("merchant_id", existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table("consumer_warning_merchants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consumer_warning_merchants_merchant_id"))

    op.drop_table("consumer_warning_merchants")
    with op.batch_alter_table("consumer_warnings", schema=None) as batch_op:
        batch_op.drop_index("ix_consumer_warnings_status_published")
        batch_op.drop_index(batch_op.f("ix_consumer_warnings_category"))

    op.drop_table("consumer_warnings")

    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_object")
        batch_op.drop_index(batch_op.f("ix_audit_entries_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_actor_id"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_action"))

    op.drop_table("audit_entries")
