"""console: each provider's newest events by index

The console's overview shows when each provider last sent, and its event list
filters by provider; both walk ``(provider, received_at)`` from the newest end.
``received_at`` is never updated, so the index does not stop HOT updates.

Revision ID: 0007_console
Revises: 0006_incidents
Create Date: 2026-11-27
"""
from __future__ import annotations

from alembic import op

revision = '0007_console'
down_revision = '0006_incidents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_webhook_events_provider_received', 'webhook_events', ['provider', 'received_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_events_provider_received', table_name='webhook_events')
