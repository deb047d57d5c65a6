"""webhook_events: indexes that let a status change be a HOT update

Revision ID: 0004_hot_updates
Revises: 0003
Create Date: 2026-11-27

No index of ``webhook_events`` names ``status`` any more, not even in a
partial index's predicate (Postgres 15 refuses a HOT update when any column an
index uses changes). What the queries need is expressed through columns the
transitions keep in step (models/leasing.py):

* due rows: ``next_attempt_at IS NOT NULL`` (set only while pending or retrying);
* leased rows: ``lease_expires_at IS NOT NULL`` (set only while queued or working);
* unfinished rows: ``processed_at IS NULL``;
* ``order_id`` only where a handler set it.

``fillfactor=70`` leaves room on each page for the claimed version of a row,
which a HOT update needs; ``orders`` gets 80 for the same reason (a handler's
move changes no indexed column of it).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0004_hot_updates'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The invariants the new predicates rely on, for rows written by older versions.
    op.execute("UPDATE webhook_events SET next_attempt_at = NULL "
               "WHERE status NOT IN ('pending', 'retrying') AND next_attempt_at IS NOT NULL")
    op.execute("UPDATE webhook_events SET lease_expires_at = NULL "
               "WHERE status NOT IN ('queued', 'processing') AND lease_expires_at IS NOT NULL")
    op.drop_index('ix_webhook_events_due', table_name='webhook_events')
    op.drop_index('ix_webhook_events_lease', table_name='webhook_events')
    op.drop_index('ix_webhook_events_status_received', table_name='webhook_events')
    op.drop_index('ix_webhook_events_order_id', table_name='webhook_events')
    op.create_index('ix_webhook_events_due', 'webhook_events', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text('next_attempt_at IS NOT NULL'))
    op.create_index('ix_webhook_events_lease', 'webhook_events', ['lease_expires_at'], unique=False,
                    postgresql_where=sa.text('lease_expires_at IS NOT NULL'))
    op.create_index('ix_webhook_events_received_at', 'webhook_events', ['received_at'], unique=False)
    op.create_index('ix_webhook_events_unfinished', 'webhook_events', ['received_at'], unique=False,
                    postgresql_where=sa.text('processed_at IS NULL'))
    op.create_index('ix_webhook_events_order_id', 'webhook_events', ['order_id'], unique=False,
                    postgresql_where=sa.text('order_id IS NOT NULL'))
    op.execute("ALTER TABLE webhook_events SET (fillfactor = 70)")
    op.execute("ALTER TABLE orders SET (fillfactor = 80)")


def downgrade() -> None:
    op.execute("ALTER TABLE orders RESET (fillfactor)")
    op.execute("ALTER TABLE webhook_events RESET (fillfactor)")
    op.drop_index('ix_webhook_events_order_id', table_name='webhook_events')
    op.drop_index('ix_webhook_events_unfinished', table_name='webhook_events')
    op.drop_index('ix_webhook_events_received_at', table_name='webhook_events')
    op.drop_index('ix_webhook_events_lease', table_name='webhook_events')
    op.drop_index('ix_webhook_events_due', table_name='webhook_events')
    op.create_index('ix_webhook_events_order_id', 'webhook_events', ['order_id'], unique=False)
    op.create_index('ix_webhook_events_status_received', 'webhook_events', ['status', 'received_at'], unique=False)
    op.create_index('ix_webhook_events_lease', 'webhook_events', ['lease_expires_at'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'processing')"))
    op.create_index('ix_webhook_events_due', 'webhook_events', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status IN ('pending', 'retrying')"))
