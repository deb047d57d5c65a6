"""one dedup key: event_keys alone holds (provider, event_key)

Revision ID: 0008_one_dedup_key
Revises: 0007_hot_status
Create Date: 2026-11-27

Since issue 13 every stored event first claims its key in ``event_keys``
(the receiver's one INSERT statement, ``models/ingest.py``), and only a newly
claimed key gets a ``webhook_events`` row, so the unique key on
``webhook_events (provider, event_key)`` could never refuse a row. It cost
each event a second random-key btree insert, into an index as large as the
history: at 5 M rows, far larger than the server's buffers, ingest ran at
0.83 of an empty database's rate. Lookups by key (`events list --key`,
ProcessOut reconciliation) go through ``event_keys``, which keeps every key
for ``PAYHOOKS_DEDUP_DAYS``, longer than the events themselves.
"""
from __future__ import annotations

from alembic import op

revision = '0008_one_dedup_key'
down_revision = '0007_hot_status'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("uq_webhook_events_provider_event_key", "webhook_events", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("uq_webhook_events_provider_event_key", "webhook_events",
                                ["provider", "event_key"])
