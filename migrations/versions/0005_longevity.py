"""longevity: dedup keys of their own, folded status counts, archive ledger, retention indexes

Revision ID: 0005_longevity
Revises: 0004_refund_identity
Create Date: 2026-11-27

Indexes this revision adds, and why (every operator query stays index-bound
at tens of millions of rows; see BENCHMARKS.md for the plans):

* ``event_keys`` primary key (provider, event_key): the dedup check of every
  ingest; ``ix_event_keys_received_at``: pruning keys after DEDUP_DAYS.
* ``ix_webhook_events_final_processed`` (processed_at) INCLUDE (provider,
  status, received_at) WHERE status is final: retention's candidates, the
  count of final rows since the tally mark, and stats' receive-to-done
  latency, all index-only. A row enters it once, on its final transition
  (which already changes ``status``, an indexed column, so it was never a
  HOT update); queued/processing/retrying updates do not touch it.
* ``ix_webhook_events_dead_processed`` (processed_at) WHERE status = 'dead':
  "dead in the last 24 h" without reading other final rows.
* ``ix_webhook_events_received_at_id`` (received_at, id): `events list`
  without a status filter (newest first, LIMIT n) and keyset paging on
  (received_at, id) read the newest entries instead of sorting the table.
* the same two final/dead indexes on ``deliveries`` (INCLUDE kind, status),
  and ``ix_deliveries_lease`` (lease_expires_at) WHERE status IN ('queued',
  'sending'), the twin of ``ix_webhook_events_lease``: without it the
  sweeper's expired-lease query and the count of deliveries in work read the
  whole deliveries table (a parallel seq scan, 0.26 s at 2.2 M deliveries).

Refunds and order transitions lose their foreign key to ``webhook_events``:
they stay when retention removes their (archived) event, and keep its id.

Two triggers keep ``status_tallies`` exact without adding work to the
worker's transitions: a row trigger that fires only when a final row becomes
non-final again (a replay; ``WHEN`` filters every other update out before
any function runs), and a statement trigger on DELETE (retention) that
subtracts the removed final rows in one set-based UPDATE.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa

revision = '0005_longevity'
down_revision = '0004_refund_identity'
branch_labels = None
depends_on = None

_EVENT_FINAL = "('succeeded', 'dead', 'ignored')"
_DELIVERY_FINAL = "('succeeded', 'dead', 'skipped')"
_TALLIED = (("webhook_events", "provider", _EVENT_FINAL), ("deliveries", "kind", _DELIVERY_FINAL))


def _trigger_sql(table: str, group: str, final: str) -> list[str]:
    return [
        f"""
        CREATE FUNCTION payhooks_untally_{table}_row() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE mark timestamptz;
        BEGIN
            SELECT folded_to INTO mark FROM tally_marks WHERE table_name = '{table}' FOR SHARE;
            IF mark IS NOT NULL AND OLD.processed_at < mark THEN
                UPDATE status_tallies SET n = n - 1
                 WHERE table_name = '{table}' AND grp = OLD.{group} AND status = OLD.status;
            END IF;
            RETURN NULL;
        END $$""",
        f"""
        CREATE TRIGGER untally_{table}_reopened AFTER UPDATE OF status ON {table} FOR EACH ROW
          WHEN (OLD.status IN {final} AND NEW.status NOT IN {final})
          EXECUTE FUNCTION payhooks_untally_{table}_row()""",
        f"""
        CREATE FUNCTION payhooks_untally_{table}_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE mark timestamptz;
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM gone) THEN
                RETURN NULL;  -- the cascades of a parent's delete find nothing: leave at once
            END IF;
            SELECT folded_to INTO mark FROM tally_marks WHERE table_name = '{table}' FOR SHARE;
            IF mark IS NOT NULL THEN
                UPDATE status_tallies t SET n = t.n - g.n
                  FROM (SELECT {group} AS grp, status, count(*) AS n FROM gone
                         WHERE status IN {final} AND processed_at < mark GROUP BY 1, 2) g
                 WHERE t.table_name = '{table}' AND t.grp = g.grp AND t.status = g.status;
            END IF;
            RETURN NULL;
        END $$""",
        f"""
        CREATE TRIGGER untally_{table}_deleted AFTER DELETE ON {table}
          REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
          EXECUTE FUNCTION payhooks_untally_{table}_deleted()""",
    ]


def upgrade() -> None:
    op.create_table('event_keys',
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_key', sa.String(length=255), nullable=False),
    sa.Column('event_id', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('provider', 'event_key', name='pk_event_keys')
    )
    op.execute("INSERT INTO event_keys (provider, event_key, event_id, received_at) "
               "SELECT provider, event_key, id, received_at FROM webhook_events")
    op.create_index('ix_event_keys_received_at', 'event_keys', ['received_at'], unique=False)
    op.create_table('status_tallies',
    sa.Column('table_name', sa.String(length=32), nullable=False),
    sa.Column('grp', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('table_name', 'grp', 'status', name='pk_status_tallies')
    )
    op.create_table('tally_marks',
    sa.Column('table_name', sa.String(length=32), nullable=False),
    sa.Column('folded_to', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('table_name', name=op.f('pk_tally_marks'))
    )
    op.create_table('archive_files',
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_archive_files'))
    )
    op.create_index('ix_webhook_events_final_processed', 'webhook_events', ['processed_at'], unique=False,
                    postgresql_include=['provider', 'status', 'received_at'],
                    postgresql_where=sa.text(f"status IN {_EVENT_FINAL}"))
    op.create_index('ix_webhook_events_dead_processed', 'webhook_events', ['processed_at'], unique=False,
                    postgresql_where=sa.text("status = 'dead'"))
    op.create_index('ix_webhook_events_received_at_id', 'webhook_events', ['received_at', 'id'], unique=False)
    op.create_index('ix_deliveries_lease', 'deliveries', ['lease_expires_at'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'sending')"))
    op.create_index('ix_deliveries_final_processed', 'deliveries', ['processed_at'], unique=False,
                    postgresql_include=['kind', 'status'],
                    postgresql_where=sa.text(f"status IN {_DELIVERY_FINAL}"))
    op.create_index('ix_deliveries_dead_processed', 'deliveries', ['processed_at'], unique=False,
                    postgresql_where=sa.text("status = 'dead'"))
    op.drop_constraint('fk_refunds_event_id_webhook_events', 'refunds', type_='foreignkey')
    op.drop_constraint('fk_order_transitions_event_id_webhook_events', 'order_transitions', type_='foreignkey')
    for table, group, final in _TALLIED:
        for statement in _trigger_sql(table, group, final):
            op.execute(statement)


def downgrade() -> None:
    for table, _, _ in _TALLIED:
        op.execute(f"DROP TRIGGER IF EXISTS untally_{table}_deleted ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS untally_{table}_reopened ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS payhooks_untally_{table}_deleted()")
        op.execute(f"DROP FUNCTION IF EXISTS payhooks_untally_{table}_row()")
    op.create_foreign_key('fk_order_transitions_event_id_webhook_events', 'order_transitions', 'webhook_events',
                          ['event_id'], ['id'], ondelete='SET NULL')
    op.create_foreign_key('fk_refunds_event_id_webhook_events', 'refunds', 'webhook_events',
                          ['event_id'], ['id'], ondelete='CASCADE')
    op.drop_index('ix_deliveries_dead_processed', table_name='deliveries')
    op.drop_index('ix_deliveries_final_processed', table_name='deliveries')
    op.drop_index('ix_deliveries_lease', table_name='deliveries')
    op.drop_index('ix_webhook_events_received_at_id', table_name='webhook_events')
    op.drop_index('ix_webhook_events_dead_processed', table_name='webhook_events')
    op.drop_index('ix_webhook_events_final_processed', table_name='webhook_events')
    op.drop_table('archive_files')
    op.drop_table('tally_marks')
    op.drop_table('status_tallies')
    op.drop_index('ix_event_keys_received_at', table_name='event_keys')
    op.drop_table('event_keys')
