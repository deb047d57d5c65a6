"""What a run wrote to Postgres: row updates (HOT or not) per table, index entries and WAL per event.

Postgres 15 counts no index insertions, so the index figure is a ceiling
from what it does count: an inserted row or a non-HOT update writes at most
one entry per index of the table (fewer when the new version misses a partial
index's predicate), a HOT update none. WAL bytes are the whole cluster's
(other databases' writes count too), so they are a ceiling on this run's.
"""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, text

TABLES = ("webhook_events", "orders", "order_transitions", "deliveries", "event_attempts", "refunds")
_COUNTS = text("""
    SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = ANY(:tables)""")
_INDEXES = text("""
    SELECT t.relname, count(*) AS indexes, count(*) FILTER (WHERE i.indpred IS NOT NULL) AS partial
      FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
     WHERE t.relname = ANY(:tables) GROUP BY t.relname""")


class TableStats:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.before: dict[str, tuple[int, int, int]] = {}
        self.wal_before = ""

    def _read(self) -> tuple[dict[str, tuple[int, int, int]], str]:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            counts = {r.relname: (r.n_tup_ins, r.n_tup_upd, r.n_tup_hot_upd)
                      for r in conn.execute(_COUNTS, {"tables": list(TABLES)})}
            wal = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one()
        return counts, wal

    def _settled(self, *, events_inserted: int = 0) -> tuple[dict[str, tuple[int, int, int]], str]:
        """Counts once every backend has reported: a backend reports when idle, but at most once a
        second and, when that second is not up, up to 10 s later. So: at least ``events_inserted``
        new event rows, and two equal reads 1.5 s apart (at most 25 s)."""
        counts, wal = self._read()
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            time.sleep(1.5)
            again, wal = self._read()
            inserted = again.get("webhook_events", (0,))[0] - self.before.get("webhook_events", (0,))[0]
            if again == counts and inserted >= events_inserted:
                break
            counts = again
        return counts, wal

    def start(self) -> TableStats:
        self.before, self.wal_before = self._settled()
        return self

    def stop(self, *, events: int) -> dict[str, Any]:
        after, wal_after = self._settled(events_inserted=events)
        per = max(events, 1)
        with self.engine.connect() as conn:
            wal_bytes = conn.execute(text("SELECT pg_wal_lsn_diff(:a, :b)"),
                                     {"a": wal_after, "b": self.wal_before}).scalar_one()
            indexes = {r.relname: (r.indexes, r.partial) for r in conn.execute(_INDEXES, {"tables": list(TABLES)})}
        tables = {}
        for name in TABLES:
            ins, upd, hot = (a - b for a, b in zip(after.get(name, (0, 0, 0)), self.before.get(name, (0, 0, 0)),
                                                   strict=True))
            tables[name] = {"inserts": ins, "updates": upd, "hot_updates": hot,
                            "indexes": indexes.get(name, (0, 0))[0], "partial_indexes": indexes.get(name, (0, 0))[1],
                            "updates_per_event": round(upd / per, 2), "hot_per_event": round(hot / per, 2),
                            "index_entries_ceiling_per_event": round(
                                (ins + upd - hot) * indexes.get(name, (0, 0))[0] / per, 2)}
        return {"tables": tables, "wal_bytes_per_event_ceiling": round(float(wal_bytes) / per)}
