"""refunds unique per provider refund identity

A refund is booked once per (order, refund key): the provider's own refund id
when the event carries one (two events about one refund book it once), else
``event:<event id>`` (the rule so far, one refund per event).

Revision ID: 0004_refund_identity
Revises: 0003
Create Date: 2026-11-27
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0004_refund_identity'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('refunds', sa.Column('refund_key', sa.String(length=255), nullable=True))
    op.execute("UPDATE refunds SET refund_key = 'event:' || event_id")
    op.alter_column('refunds', 'refund_key', nullable=False)
    op.create_unique_constraint('uq_refunds_order_id_refund_key', 'refunds', ['order_id', 'refund_key'])


def downgrade() -> None:
    op.drop_constraint('uq_refunds_order_id_refund_key', 'refunds', type_='unique')
    op.drop_column('refunds', 'refund_key')
