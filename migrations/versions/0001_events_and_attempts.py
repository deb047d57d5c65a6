"""events and attempts

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_key', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('livemode', sa.Boolean(), nullable=True),
    sa.Column('raw_body', sa.LargeBinary(), nullable=False),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('fetched_payload', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('secret_index', sa.Integer(), nullable=True),
    sa.Column('verify_method', sa.String(length=32), nullable=True),
    sa.Column('replay_count', sa.Integer(), server_default='0', nullable=False),
    sa.CheckConstraint("status IN ('pending', 'queued', 'processing', 'succeeded', 'retrying', 'dead', 'ignored')", name=op.f('ck_webhook_events_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('provider', 'event_key', name='uq_webhook_events_provider_event_key')
    )
    op.create_index('ix_webhook_events_due', 'webhook_events', ['next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('pending', 'retrying')"))
    op.create_index('ix_webhook_events_lease', 'webhook_events', ['lease_expires_at'], unique=False, postgresql_where=sa.text("status IN ('queued', 'processing')"))
    op.create_index('ix_webhook_events_status_received', 'webhook_events', ['status', 'received_at'], unique=False)
    op.create_table('event_attempts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('worker', sa.String(length=255), nullable=True),
    sa.CheckConstraint("outcome IN ('succeeded', 'failed', 'dead', 'ignored', 'lost')", name=op.f('ck_event_attempts_outcome')),
    sa.ForeignKeyConstraint(['event_id'], ['webhook_events.id'], name=op.f('fk_event_attempts_event_id_webhook_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_attempts')),
    sa.UniqueConstraint('event_id', 'number', name='uq_event_attempts_event_id_number')
    )
    op.create_index(op.f('ix_event_attempts_event_id'), 'event_attempts', ['event_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_event_attempts_event_id'), table_name='event_attempts')
    op.drop_table('event_attempts')
    op.drop_index('ix_webhook_events_status_received', table_name='webhook_events')
    op.drop_index('ix_webhook_events_lease', table_name='webhook_events', postgresql_where=sa.text("status IN ('queued', 'processing')"))
    op.drop_index('ix_webhook_events_due', table_name='webhook_events', postgresql_where=sa.text("status IN ('pending', 'retrying')"))
    op.drop_table('webhook_events')
