"""What a run wrote to Postgres: row updates (HOT or not) per table, index entries and WAL per event.

Postgres 15 counts no index insertions in its statistics, so the index
figure comes from the WAL itself when it can (``pg_walinspect``, superuser):
every B-tree leaf insertion of this database's indexes between the two WAL
positions (``INSERT_LEAF``, ``INSERT_POST`` and leaf page splits, which carry
their new item), counted per index, exactly; and the bytes of the WAL
records that touch this database. Without it, a ceiling from what the
statistics do count: an inserted row or a non-HOT update writes at most one
entry per index of the table (fewer when the new version misses a partial
index's predicate), a HOT update none; and the whole cluster's WAL.
"""
from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import Engine, text

from testkit.processes import log

TABLES = ("webhook_events", "orders", "order_transitions", "deliveries", "event_attempts", "refunds")
_COUNTS = text("""
    SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = ANY(:tables)""")
_INDEXES = text("""
    SELECT t.relname, count(*) AS indexes, count(*) FILTER (WHERE i.indpred IS NOT NULL) AS partial
      FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
     WHERE t.relname = ANY(:tables) GROUP BY t.relname""")


_WAL = text("""
    SELECT substring(block_ref FROM 'rel [0-9]+/[0-9]+/([0-9]+)')::oid AS filenode,
           count(*) FILTER (WHERE resource_manager = 'Btree' AND (record_type IN ('INSERT_LEAF', 'INSERT_POST')
                            OR (record_type IN ('SPLIT_L', 'SPLIT_R') AND description LIKE 'level 0,%'))) AS entries,
           count(*) FILTER (WHERE resource_manager = 'Heap' AND record_type LIKE 'HOT_UPDATE%') AS hot,
           count(*) FILTER (WHERE resource_manager = 'Heap' AND record_type LIKE 'UPDATE%') AS cold,
           sum(record_length) AS bytes
      FROM pg_get_wal_records_info(CAST(:a AS pg_lsn), CAST(:b AS pg_lsn))
     WHERE block_ref LIKE '%rel %/' || :db || '/%'
     GROUP BY 1""")
_FILENODES = text("""
    SELECT t.relname AS tbl, c.relname AS rel, c.relkind, pg_relation_filenode(c.oid) AS filenode
      FROM pg_class t JOIN pg_class c ON c.oid = t.oid OR c.oid IN (SELECT indexrelid FROM pg_index
                                                                    WHERE indrelid = t.oid)
     WHERE t.relname = ANY(:tables) AND t.relkind = 'r'""")


def wal_writes(engine: Engine, start: str, end: str, *, per: int) -> dict[str, Any] | None:
    """Exact index entries per table and index, and this database's WAL bytes, from the WAL (or None)."""
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL statement_timeout = 0"))  # reads the whole cluster's WAL of the run
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_walinspect"))
            db = conn.execute(text("SELECT oid FROM pg_database WHERE datname = current_database()")).scalar_one()
            rels = {r.filenode: r for r in conn.execute(_FILENODES, {"tables": list(TABLES)})}
            rows = conn.execute(_WAL, {"a": start, "b": end, "db": str(db)}).all()
    except Exception as exc:  # not a superuser, WAL already recycled, no extension: the ceiling stands
        log(f"index entries from the WAL unavailable ({type(exc).__name__}: {str(exc).splitlines()[0]}): "
            "ceilings only")
        return None
    tables: dict[str, dict[str, Any]] = {}
    total_bytes = 0
    for row in rows:
        total_bytes += int(row.bytes or 0)
        rel = rels.get(row.filenode)
        if rel is not None and rel.relkind == "r" and (row.hot or row.cold):
            slot = tables.setdefault(rel.tbl, {"index_entries": 0, "by_index": {}})
            slot["wal_updates"], slot["wal_hot_updates"] = int(row.hot + row.cold), int(row.hot)
        if rel is None or rel.relkind != "i" or not row.entries:
            continue
        slot = tables.setdefault(rel.tbl, {"index_entries": 0, "by_index": {}})
        slot["index_entries"] += int(row.entries)
        slot["by_index"][rel.rel] = round(int(row.entries) / per, 2)
    for slot in tables.values():
        slot["index_entries_per_event"] = round(slot["index_entries"] / per, 2)
    return {"tables": tables, "wal_bytes_per_event": round(total_bytes / per),
            "index_entries_per_event": round(sum(t["index_entries"] for t in tables.values()) / per, 2)}


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
        self._hold_wal()
        self.before, self.wal_before = self._settled()
        return self

    def _hold_wal(self) -> None:
        """Keep the run's WAL until it is read: a temporary replication slot, which Postgres drops
        with the session that made it (so a crashed bench leaves nothing behind). Without it a
        checkpoint on a busy server recycles the segments before :func:`wal_writes` reads them."""
        self._slot_conn = None
        try:
            conn = self.engine.raw_connection()
            cursor = conn.cursor()
            cursor.execute("SELECT pg_create_physical_replication_slot(%s, true, true)",
                           (f"bench_{os.getpid()}_{id(self)}",))
            conn.commit()
            self._slot_conn = conn
        except Exception as exc:  # not a superuser, or no slots free: the WAL may be gone by then
            log(f"could not hold the run's WAL ({type(exc).__name__}); index entries may be ceilings only")

    def _release_wal(self) -> None:
        if self._slot_conn is not None:
            self._slot_conn.invalidate()  # closes the session: the temporary slot goes with it
            self._slot_conn = None

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
        try:
            exact = wal_writes(self.engine, self.wal_before, wal_after, per=per)
        finally:
            self._release_wal()
        if exact is not None:
            for name, t in tables.items():
                found = exact["tables"].get(name, {})
                t["index_entries_per_event"] = found.get("index_entries_per_event", 0.0)
                t["index_entries_by_index"] = found.get("by_index", {})
                if "wal_updates" in found:  # the same counts, from the WAL: whatever the statistics flushed
                    t["wal_updates"], t["wal_hot_updates"] = found["wal_updates"], found["wal_hot_updates"]
        return {"tables": tables, "wal_bytes_per_event_ceiling": round(float(wal_bytes) / per),
                **({"wal_bytes_per_event": exact["wal_bytes_per_event"],
                    "index_entries_per_event": exact["index_entries_per_event"]} if exact else {})}
