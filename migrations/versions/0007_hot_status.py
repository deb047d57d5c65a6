"""hot status: no index of webhook_events names status, so a claim is a HOT update

Revision ID: 0007_hot_status
Revises: 0006_incidents
Create Date: 2026-11-27

In Postgres 15 an update is HOT (no index entry written) only when it changes
no column any index names, as a key, an INCLUDE column or in a partial
index's predicate. Every index here used to name ``status``, so each of an
event's three updates (queued, processing, final) wrote an entry into every
index. Now:

* ``final_status`` is a stored generated column, ``status`` when it is final
  (succeeded, ignored, dead), else NULL. It changes only when an event
  becomes final or is replayed: updates that set ``processed_at`` and so
  were never HOT. The final-row indexes name it instead of ``status``:
  ``ix_webhook_events_final_received`` (final_status, received_at, id),
  replacing ``…_status_received``, serves `events list --status <final>` and the console's per-status pages,
  ``…_final_processed`` retention and the counts since the tally mark,
  ``…_dead_processed`` the deaths of the last day.
* ``ix_webhook_events_due`` and ``…_lease`` are keyed on the columns that
  mirror the status (``next_attempt_at`` is set exactly while pending or
  retrying, ``lease_expires_at`` exactly while queued or processing, see
  ``models.leasing``), with ``IS NOT NULL`` predicates: the dispatcher's
  claims and the counts of rows in work read only the backlog.
  Two CHECK constraints (``ck_webhook_events_due_mark``, ``…_lease_mark``)
  hold them to that, so counting rows in work through these indexes is
  exact by construction; rows that broke the rule (only ever written by
  hand) are put right first.
* ``ix_webhook_events_order_id`` leaves out events with no order (every
  event until its handler names one).
* fillfactor 85: room on each page for the HOT version of a claimed row.

So queued → processing is HOT, and the event's other updates write only the
entries they must. Adding the column rewrites the table (under an ACCESS
EXCLUSIVE lock): at tens of millions of rows, run it in a maintenance window
(``payhooks db upgrade`` has the migration role's timeouts).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0007_hot_status'
down_revision = '0006_incidents'
branch_labels = None
depends_on = None

_FINAL = "('succeeded', 'dead', 'ignored')"


_DUE = "status IN ('pending', 'retrying')"
_LEASED = "status IN ('queued', 'processing')"


def upgrade() -> None:
    # Rows written by hand that break the rule the CHECKs below enforce: due now; lease expired.
    op.execute(f"UPDATE webhook_events SET next_attempt_at = CASE WHEN {_DUE} THEN now() END "
               f"WHERE (next_attempt_at IS NOT NULL) <> ({_DUE})")
    op.execute(f"UPDATE webhook_events SET lease_expires_at = CASE WHEN {_LEASED} THEN now() END "
               f"WHERE (lease_expires_at IS NOT NULL) <> ({_LEASED})")
    op.create_check_constraint(op.f('ck_webhook_events_due_mark'), 'webhook_events',
                               f"(next_attempt_at IS NOT NULL) = ({_DUE})")
    op.create_check_constraint(op.f('ck_webhook_events_lease_mark'), 'webhook_events',
                               f"(lease_expires_at IS NOT NULL) = ({_LEASED})")
    op.add_column('webhook_events', sa.Column(
        'final_status', sa.String(length=16),
        sa.Computed(f"CASE WHEN status IN {_FINAL} THEN status END", persisted=True), nullable=True))
    op.execute("ALTER TABLE webhook_events SET (fillfactor = 85)")
    op.drop_index('ix_webhook_events_status_received', table_name='webhook_events')
    op.drop_index('ix_webhook_events_due', table_name='webhook_events')
    op.drop_index('ix_webhook_events_lease', table_name='webhook_events')
    op.drop_index('ix_webhook_events_final_processed', table_name='webhook_events')
    op.drop_index('ix_webhook_events_dead_processed', table_name='webhook_events')
    op.drop_index('ix_webhook_events_order_id', table_name='webhook_events')
    op.create_index('ix_webhook_events_due', 'webhook_events', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("next_attempt_at IS NOT NULL"))
    op.create_index('ix_webhook_events_lease', 'webhook_events', ['lease_expires_at'], unique=False,
                    postgresql_where=sa.text("lease_expires_at IS NOT NULL"))
    op.create_index('ix_webhook_events_final_received', 'webhook_events', ['final_status', 'received_at', 'id'],
                    unique=False, postgresql_where=sa.text("final_status IS NOT NULL"))
    op.create_index('ix_webhook_events_final_processed', 'webhook_events', ['processed_at'], unique=False,
                    postgresql_include=['provider', 'final_status', 'received_at'],
                    postgresql_where=sa.text("final_status IS NOT NULL"))
    op.create_index('ix_webhook_events_dead_processed', 'webhook_events', ['processed_at'], unique=False,
                    postgresql_where=sa.text("final_status = 'dead'"))
    op.create_index('ix_webhook_events_order_id', 'webhook_events', ['order_id'], unique=False,
                    postgresql_where=sa.text("order_id IS NOT NULL"))


def downgrade() -> None:
    for name in ('ix_webhook_events_order_id', 'ix_webhook_events_dead_processed',
                 'ix_webhook_events_final_processed', 'ix_webhook_events_final_received',
                 'ix_webhook_events_lease', 'ix_webhook_events_due'):
        op.drop_index(name, table_name='webhook_events')
    op.drop_column('webhook_events', 'final_status')
    op.drop_constraint(op.f('ck_webhook_events_lease_mark'), 'webhook_events', type_='check')
    op.drop_constraint(op.f('ck_webhook_events_due_mark'), 'webhook_events', type_='check')
    op.execute("ALTER TABLE webhook_events RESET (fillfactor)")
    op.create_index('ix_webhook_events_order_id', 'webhook_events', ['order_id'], unique=False)
    op.create_index('ix_webhook_events_due', 'webhook_events', ['next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status IN ('pending', 'retrying')"))
    op.create_index('ix_webhook_events_lease', 'webhook_events', ['lease_expires_at'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'processing')"))
    op.create_index('ix_webhook_events_status_received', 'webhook_events', ['status', 'received_at'],
                    unique=False)
    op.create_index('ix_webhook_events_final_processed', 'webhook_events', ['processed_at'], unique=False,
                    postgresql_include=['provider', 'status', 'received_at'],
                    postgresql_where=sa.text(f"status IN {_FINAL}"))
    op.create_index('ix_webhook_events_dead_processed', 'webhook_events', ['processed_at'], unique=False,
                    postgresql_where=sa.text("status = 'dead'"))
