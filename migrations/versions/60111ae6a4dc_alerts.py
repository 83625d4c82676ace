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
    op.create_table('mass_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('window_start', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('raised_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('raised_by', sa.String(length=20), nullable=False),
    sa.Column('last_filed_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('credit_event_id', sa.Integer(), nullable=True),
    sa.Column('resolved_at', mediation.dbtypes.UTCDateTime(), nullable=True),
    sa.Column('resolved_by_id', sa.Integer(), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('updated_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['credit_event_id'], ['credit_events.id'], name=op.f('fk_mass_alerts_credit_event_id_credit_events'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_mass_alerts_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['resolved_by_id'], ['users.id'], name=op.f('fk_mass_alerts_resolved_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_alerts'))
    )
    with op.batch_alter_table('mass_alerts', schema=None) as batch_op:
        # One active (open or grouped) alert per merchant and category.
        batch_op.create_index('ix_mass_alerts_active_key', ['merchant_id', 'category'], unique=True, postgresql_where=sa.text("status IN ('open', 'grouped')"), sqlite_where=sa.text("status IN ('open', 'grouped')"))
        batch_op.create_index(batch_op.f('ix_mass_alerts_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index('ix_mass_alerts_status_raised', ['status', 'raised_at'], unique=False)

    op.create_table('mass_alert_cases',
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('added_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['mass_alerts.id'], name=op.f('fk_mass_alert_cases_alert_id_mass_alerts')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_mass_alert_cases_case_id_cases')),
    sa.PrimaryKeyConstraint('alert_id', 'case_id', name=op.f('pk_mass_alert_cases'))
    )
    with op.batch_alter_table('mass_alert_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mass_alert_cases_case_id'), ['case_id'], unique=False)

    op.create_table('case_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('merchant_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('mediator_id', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=True),
    sa.Column('room_case_id', sa.Integer(), nullable=True),
    sa.Column('created_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', mediation.dbtypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['mass_alerts.id'], name=op.f('fk_case_groups_alert_id_mass_alerts')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_case_groups_created_by_id_users')),
    sa.ForeignKeyConstraint(['mediator_id'], ['users.id'], name=op.f('fk_case_groups_mediator_id_users')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_case_groups_merchant_id_merchants')),
    sa.ForeignKeyConstraint(['room_case_id'], ['cases.id'], name=op.f('fk_case_groups_room_case_id_cases'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_groups'))
    )
    with op.batch_alter_table('case_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_groups_alert_id'), ['alert_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_groups_mediator_id'), ['mediator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_groups_merchant_id'), ['merchant_id'], unique=False)

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('group_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_cases_group_id'), ['group_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_cases_group_id_case_groups'), 'case_groups', ['group_id'], ['id'])


def downgrade():
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_cases_group_id_case_groups'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_cases_group_id'))
        batch_op.drop_column('group_id')

    with op.batch_alter_table('case_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_groups_merchant_id'))
        batch_op.drop_index(batch_op.f('ix_case_groups_mediator_id'))
        batch_op.drop_index(batch_op.f('ix_case_groups_alert_id'))

    op.drop_table('case_groups')
    with op.batch_alter_table('mass_alert_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mass_alert_cases_case_id'))

    op.drop_table('mass_alert_cases')
    with op.batch_alter_table('mass_alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_mass_alerts_status_raised')
        batch_op.drop_index(batch_op.f('ix_mass_alerts_merchant_id'))
        batch_op.drop_index('ix_mass_alerts_active_key', sqlite_where=sa.text("status IN ('open', 'grouped')"), postgresql_where=sa.text("status IN ('open', 'grouped')"))

    op.drop_table('mass_alerts')
