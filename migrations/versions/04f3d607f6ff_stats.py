"""supervision: stage spans, statistics summaries and their monthly sums (issue #7, dashboard)

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
    op.create_table('stats_cases',
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('filed_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('filed_on', sa.Date(), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=True),
    sa.Column('platform_id', sa.Integer(), nullable=True),
    sa.Column('region_code', sa.String(length=6), nullable=True),
    sa.Column('city_code', sa.String(length=6), nullable=True),
    sa.Column('province_code', sa.String(length=6), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=True),
    sa.Column('closed_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('recovered', sa.BigInteger(), nullable=False),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('rated_on', sa.Date(), nullable=True),
    sa.Column('stage', sa.String(length=30), nullable=True),
    sa.Column('stage_started_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('stage_due_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('stage_paused_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('stage_paused_remaining', sa.Integer(), nullable=True),
    sa.Column('stage_paused_seconds', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_stats_cases_case_id_cases')),
    sa.PrimaryKeyConstraint('case_id', name=op.f('pk_stats_cases'))
    )
    with op.batch_alter_table('stats_cases', schema=None) as batch_op:
        batch_op.create_index('ix_stats_cases_filed_on_category', ['filed_on', 'category'], unique=False)
        batch_op.create_index('ix_stats_cases_category_filed_on', ['category', 'filed_on'], unique=False, postgresql_include=['merchant_id'])
        batch_op.create_index('ix_stats_cases_province_filed_on', ['province_code', 'filed_on'], unique=False, postgresql_include=['merchant_id'])
        batch_op.create_index('ix_stats_cases_city_filed_on', ['city_code', 'filed_on'], unique=False, postgresql_include=['merchant_id'])
        batch_op.create_index('ix_stats_cases_platform_filed_on', ['platform_id', 'filed_on'], unique=False, postgresql_include=['merchant_id'])
        batch_op.create_index('ix_stats_cases_merchant_filed_on', ['merchant_id', 'filed_on'], unique=False)
        batch_op.create_index('ix_stats_cases_closed_on', ['closed_on'], unique=False)
        batch_op.create_index('ix_stats_cases_rated_on', ['rated_on'], unique=False)

    op.create_table('stats_stage_spans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=30), nullable=False),
    sa.Column('started_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('due_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('ended_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=False),
    sa.Column('active_seconds', sa.Integer(), nullable=False),
    sa.Column('time_bucket', sa.SmallInteger(), nullable=False),
    sa.Column('on_time', sa.Boolean(), nullable=True),
    sa.Column('ended_by', sa.String(length=40), nullable=False),
    sa.Column('ended_role', sa.String(length=20), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=True),
    sa.Column('platform_id', sa.Integer(), nullable=True),
    sa.Column('region_code', sa.String(length=6), nullable=True),
    sa.Column('city_code', sa.String(length=6), nullable=True),
    sa.Column('province_code', sa.String(length=6), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_stats_stage_spans_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stats_stage_spans'))
    )
    with op.batch_alter_table('stats_stage_spans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stats_stage_spans_case_id'), ['case_id'], unique=False)
        # The SLA query's columns ride in the indexes (index-only scans).
        for name, columns in (
            ('ix_stats_stage_spans_ended_on_stage', ['ended_on', 'stage']),
            ('ix_stats_stage_spans_category_ended_on', ['category', 'ended_on']),
            ('ix_stats_stage_spans_province_ended_on', ['province_code', 'ended_on']),
            ('ix_stats_stage_spans_city_ended_on', ['city_code', 'ended_on']),
            ('ix_stats_stage_spans_platform_ended_on', ['platform_id', 'ended_on']),
            ('ix_stats_stage_spans_merchant_ended_on', ['merchant_id', 'ended_on']),
        ):
            batch_op.create_index(
                name,
                columns,
                unique=False,
                postgresql_include=[
                    c for c in ('stage', 'on_time', 'time_bucket') if c not in columns
                ],
            )

    op.create_table('stats_months',
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('built_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('is_stale', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('month', name=op.f('pk_stats_months'))
    )
    op.create_table('stats_span_months',
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('scope_key', sa.String(length=30), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('stage', sa.String(length=30), nullable=False),
    sa.Column('spans', sa.Integer(), nullable=False),
    sa.Column('with_deadline', sa.Integer(), nullable=False),
    sa.Column('on_time', sa.Integer(), nullable=False),
    sa.Column('times', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'scope_key', 'month', 'stage', name=op.f('pk_stats_span_months'))
    )
    with op.batch_alter_table('stats_span_months', schema=None) as batch_op:
        batch_op.create_index('ix_stats_span_months_month', ['month'], unique=False)

    op.create_table('stats_case_months',
    sa.Column('scope', sa.String(length=10), nullable=False),
    sa.Column('scope_key', sa.String(length=30), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('measure', sa.String(length=10), nullable=False),
    sa.Column('item', sa.String(length=40), nullable=False),
    sa.Column('cases', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'scope_key', 'month', 'measure', 'item', name=op.f('pk_stats_case_months'))
    )
    with op.batch_alter_table('stats_case_months', schema=None) as batch_op:
        batch_op.create_index('ix_stats_case_months_month', ['month'], unique=False)


def downgrade():
    with op.batch_alter_table('stats_case_months', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_case_months_month')
    op.drop_table('stats_case_months')
    with op.batch_alter_table('stats_span_months', schema=None) as batch_op:
        batch_op.drop_index('ix_stats_span_months_month')
    op.drop_table('stats_span_months')
    op.drop_table('stats_months')
    with op.batch_alter_table('stats_stage_spans', schema=None) as batch_op:
        for name in (
            'ix_stats_stage_spans_merchant_ended_on',
            'ix_stats_stage_spans_platform_ended_on',
            'ix_stats_stage_spans_city_ended_on',
            'ix_stats_stage_spans_province_ended_on',
            'ix_stats_stage_spans_category_ended_on',
            'ix_stats_stage_spans_ended_on_stage',
        ):
            batch_op.drop_index(name)
        batch_op.drop_index(batch_op.f('ix_stats_stage_spans_case_id'))
    op.drop_table('stats_stage_spans')
    with op.batch_alter_table('stats_cases', schema=None) as batch_op:
        for name in (
            'ix_stats_cases_rated_on',
            'ix_stats_cases_closed_on',
            'ix_stats_cases_merchant_filed_on',
            'ix_stats_cases_platform_filed_on',
            'ix_stats_cases_city_filed_on',
            'ix_stats_cases_province_filed_on',
            'ix_stats_cases_category_filed_on',
            'ix_stats_cases_filed_on_category',
        ):
            batch_op.drop_index(name)
    op.drop_table('stats_cases')
