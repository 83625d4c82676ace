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
    op.create_table(
        "risk_refreshes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("computed_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_refreshes")),
    )
    with op.batch_alter_table("risk_refreshes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_risk_refreshes_computed_at"), ["computed_at"], unique=False
        )

    op.create_table(
        "risk_score_categories",
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("complaints", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_risk_score_categories_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint(
            "merchant_id", "category", name=op.f("pk_risk_score_categories")
        ),
    )
    with op.batch_alter_table("risk_score_categories", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_score_categories_category", ["category"], unique=False
        )

    op.create_table(
        "risk_scores",
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("score_tenths", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("trend", sa.String(length=8), nullable=False),
        sa.Column("complaints_recent", sa.Integer(), nullable=False),
        sa.Column("complaints_previous", sa.Integer(), nullable=False),
        sa.Column("complaints_long", sa.Integer(), nullable=False),
        sa.Column("sla_breaches", sa.Integer(), nullable=False),
        sa.Column("noncompliance", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("computed_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_risk_scores_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_risk_scores")),
    )
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_scores_score_merchant",
            ["score_tenths", "merchant_id"],
            unique=False,
        )

    op.create_table(
        "warning_interviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("planned_for", sa.Date(), nullable=False),
        sa.Column("planned_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("risk_score_tenths", sa.Integer(), nullable=True),
        sa.Column("risk_factors", sa.JSON(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("commitments", sa.Text(), nullable=True),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", mediation.dbtypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["closed_by_id"],
            ["users.id"],
            name=op.f("fk_warning_interviews_closed_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_warning_interviews_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["planned_by_id"],
            ["users.id"],
            name=op.f("fk_warning_interviews_planned_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_interviews")),
    )
    with op.batch_alter_table("warning_interviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_warning_interviews_merchant_status",
            ["merchant_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ix_warning_interviews_status_planned",
            ["status", "planned_for"],
            unique=False,
        )

    op.create_table(
        "text_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("chosen_category", sa.String(length=30), nullable=False),
        sa.Column("suggested_category", sa.String(length=30), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("matches", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("case_version", sa.Integer(), nullable=False),
        sa.Column("rules_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", mediation.dbtypes.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_text_flags_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_text_flags_decided_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_flags")),
    )
    with op.batch_alter_table("text_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_text_flags_case_category",
            ["case_id", "suggested_category"],
            unique=False,
        )
        batch_op.create_index(
            "ix_text_flags_status_created", ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_text_flags_suggested_category"),
            ["suggested_category"],
            unique=False,
        )

    op.create_table(
        "case_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("flag_id", sa.Integer(), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", mediation.dbtypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_tags_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["confirmed_by_id"],
            ["users.id"],
            name=op.f("fk_case_tags_confirmed_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["text_flags.id"], name=op.f("fk_case_tags_flag_id_text_flags")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_tags")),
        sa.UniqueConstraint("case_id", "category", name=op.f("uq_case_tags_case_id")),
    )
    with op.batch_alter_table("case_tags", schema=None) as batch_op:
        batch_op.create_index("ix_case_tags_category", ["category"], unique=False)


def downgrade():
    with op.batch_alter_table("case_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_case_tags_category")
    op.drop_table("case_tags")
    with op.batch_alter_table("text_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_text_flags_suggested_category"))
        batch_op.drop_index("ix_text_flags_status_created")
        batch_op.drop_index("ix_text_flags_case_category")
    op.drop_table("text_flags")
    with op.batch_alter_table("warning_interviews", schema=None) as batch_op:
        batch_op.drop_index("ix_warning_interviews_status_planned")
        batch_op.drop_index("ix_warning_interviews_merchant_status")
    op.drop_table("warning_interviews")
    with op.batch_alter_table("risk_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_scores_score_merchant")
    op.drop_table("risk_scores")
    with op.batch_alter_table("risk_score_categories", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_score_categories_category")
    op.drop_table("risk_score_categories")
    with op.batch_alter_table("risk_refreshes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_refreshes_computed_at"))
    op.drop_table("risk_refreshes")
