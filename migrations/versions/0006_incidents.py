"""incidents, alerts sent as deliveries, provider activity, watcher cursors

Revision ID: 0006_incidents
Revises: 0005_longevity
Create Date: 2026-11-27
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006_incidents'
down_revision = '0005_longevity'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('event_type', sa.String(length=255), nullable=False),
    sa.Column('cause', sa.Text(), nullable=False),
    sa.Column('example_error', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=255), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=255), nullable=True),
    sa.Column('reopened_count', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name=op.f('ck_incidents_status')),
    sa.CheckConstraint("source IN ('events', 'deliveries')", name=op.f('ck_incidents_source')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('fingerprint', name='uq_incidents_fingerprint')
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=True),
    sa.Column('document', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("type IN ('incident.opened', 'incident.acknowledged', 'incident.resolved', "
                       "'provider.silent', 'provider.recovered')", name=op.f('ck_alerts_type')),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_alerts_incident_id_incidents'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    op.create_index(op.f('ix_alerts_incident_id'), 'alerts', ['incident_id'], unique=False)
    op.create_table('incident_members',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('incident_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=True),
    sa.Column('delivery_id', sa.BigInteger(), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('died_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint('(event_id IS NULL) <> (delivery_id IS NULL)', name=op.f('ck_incident_members_one_item')),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'],
                            name=op.f('fk_incident_members_delivery_id_deliveries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'],
                            name=op.f('fk_incident_members_event_id_webhook_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                            name=op.f('fk_incident_members_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_members')),
    sa.UniqueConstraint('delivery_id', 'incident_id', name='uq_incident_members_delivery_id'),
    sa.UniqueConstraint('event_id', 'incident_id', name='uq_incident_members_event_id')
    )
    op.create_index(op.f('ix_incident_members_incident_id'), 'incident_members', ['incident_id'], unique=False)
    op.create_table('provider_activity',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('last_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('watching_since', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('silent_since', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('provider', name=op.f('pk_provider_activity'))
    )
    op.create_table('watch_cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('position', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_watch_cursors'))
    )
    # Deliveries carry alerts too: no event, no order, one row per (alert, kind).
    op.add_column('deliveries', sa.Column('alert_id', sa.BigInteger(), nullable=True))
    op.alter_column('deliveries', 'event_id', existing_type=sa.BigInteger(), nullable=True)
    op.alter_column('deliveries', 'order_id', existing_type=sa.BigInteger(), nullable=True)
    op.create_foreign_key(op.f('fk_deliveries_alert_id_alerts'), 'deliveries', 'alerts', ['alert_id'], ['id'],
                          ondelete='CASCADE')
    op.create_unique_constraint('uq_deliveries_alert_id_kind', 'deliveries', ['alert_id', 'kind'])
    op.create_check_constraint(op.f('ck_deliveries_source'), 'deliveries',
                               'event_id IS NOT NULL OR alert_id IS NOT NULL')
    # New deaths, read by the incident watcher from a tiny partial index on insert-only tables.
    op.create_index('ix_event_attempts_died', 'event_attempts', ['id'], unique=False,
                    postgresql_where=sa.text("outcome IN ('dead', 'lost')"))
    op.create_index('ix_delivery_attempts_died', 'delivery_attempts', ['id'], unique=False,
                    postgresql_where=sa.text("outcome IN ('dead', 'lost')"))


def downgrade() -> None:
    op.drop_index('ix_delivery_attempts_died', table_name='delivery_attempts',
                  postgresql_where=sa.text("outcome IN ('dead', 'lost')"))
    op.drop_index('ix_event_attempts_died', table_name='event_attempts',
                  postgresql_where=sa.text("outcome IN ('dead', 'lost')"))
    op.execute("DELETE FROM deliveries WHERE alert_id IS NOT NULL")
    op.drop_constraint(op.f('ck_deliveries_source'), 'deliveries', type_='check')
    op.drop_constraint('uq_deliveries_alert_id_kind', 'deliveries', type_='unique')
    op.drop_constraint(op.f('fk_deliveries_alert_id_alerts'), 'deliveries', type_='foreignkey')
    op.alter_column('deliveries', 'order_id', existing_type=sa.BigInteger(), nullable=False)
    op.alter_column('deliveries', 'event_id', existing_type=sa.BigInteger(), nullable=False)
    op.drop_column('deliveries', 'alert_id')
    op.drop_table('watch_cursors')
    op.drop_table('provider_activity')
    op.drop_index(op.f('ix_incident_members_incident_id'), table_name='incident_members')
    op.drop_table('incident_members')
    op.drop_index(op.f('ix_alerts_incident_id'), table_name='alerts')
    op.drop_table('alerts')
    op.drop_table('incidents')
