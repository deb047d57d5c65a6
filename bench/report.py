"""The figures of a run as a few readable lines (``--json`` prints the dict itself)."""
from __future__ import annotations

from typing import Any


def render(figures: dict[str, Any]) -> str:
    if "send" not in figures:
        return _verdict(figures)
    lines = [
        _heading(figures), _send(figures["send"], figures.get("offered_rate")), _end_to_end(figures),
        _statuses(figures), _latency(figures["receive_to_done_s"]), _orders(figures["orders"], figures["events"]),
        *_cpu(figures.get("cpu") or {}), _writes(figures.get("writes") or {}), _verdict(figures),
    ]
    return "\n".join(line for line in lines if line)


def _heading(f: dict[str, Any]) -> str:
    mix = ", ".join(f"{p} {n}" for p, n in f["providers"].items())
    return (f"payhooks e2e — mode {f['mode']}, {f['events']} events ({mix}), concurrency {f['concurrency']}, "
            f"rate {f['offered_rate'] or 'max'}, worker {f['worker_args']}, serve {f['serve_args']}, "
            f"code {f.get('code', '(this checkout)')}")


def _send(s: dict[str, Any], offered: float | None) -> str:
    ms = s["client_latency_ms"]
    line = (f"send:        {s['sent']} sent, {s['accepted']} accepted in {s['duration_s']:.2f} s = "
            f"{s['rate_per_s']} events/s (answer p50 {ms['p50']} ms, p99 {ms['p99']} ms, max {ms['max']} ms; "
            f"generator CPU {s['generator_cpu_pct_of_one_core']} % of one core)")
    if offered:
        line += f"; offered {offered:g}/s, worst lateness {s['max_lateness_s'] or 0} s"
    return line


def _end_to_end(f: dict[str, Any]) -> str:
    e = f["end_to_end"]
    if not e["all_final"]:
        return (f"end to end:  NOT all final within the timeout: {e['final_events']} of {f['events']} final, "
                f"the last {e['first_post_to_last_processed_s']} s after the first POST")
    return (f"end to end:  {e['final_events']} final {e['first_post_to_all_final_s']} s after the first POST "
            f"= {e['events_per_s']} events/s (events received over {f['receive_span_s']} s)")


def _statuses(f: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(f["statuses"].items()))
    line = f"statuses:    {counts}; events retried: {f['retried_events']}"
    for sample in f["not_succeeded_samples"]:
        line += f"\n  {sample['n']} × {sample['status']} {sample['provider']}: {sample['error']!r}"
    return line


def _latency(r: dict[str, Any]) -> str:
    return (f"receive→done (processed_at - received_at): p50 {r['p50']} s, p90 {r['p90']} s, "
            f"p99 {r['p99']} s, max {r['max']} s, mean {r['mean']} s")


def _orders(o: dict[str, Any], events: int) -> str:
    return (f"orders:      {o['orders']} of {events}; paid {o['paid']}; exactly one fulfilment "
            f"{o['fulfilment_once']} (missing {o['fulfilment_missing']}, duplicated {o['fulfilment_duplicated']}); "
            f"one confirmation email {o['confirmation_email_once']}; one event {o['one_event']}; "
            f"unexpected deliveries {o['other_deliveries']}; delivery statuses {o['delivery_statuses']}")


def _cpu(c: dict[str, Any]) -> list[str]:
    if not c:
        return []
    groups = ", ".join(f"{name} {g['avg_pct']} (peak {g['peak_pct']})"
                       for name, g in sorted(c["groups"].items(), key=lambda item: -item[1]["avg_pct"]))
    top = ", ".join(f"{name} {pct}" for name, pct in c["top_processes"].items())
    return [
        f"cpu:         % of one core, average over the {c['seconds']} s run (peak 1-s sample): {groups}; "
        f"other (not ours) {c['other_pct']}; machine {c['machine_pct']} of {c['machine_capacity_pct']}",
        f"busiest:     {top}",
    ]


def _writes(w: dict[str, Any]) -> str:
    if not w:
        return ""

    def entries(t: dict[str, Any]) -> str:
        exact = f"{t['index_entries_per_event']} index entries/event (from the WAL), " \
            if "index_entries_per_event" in t else ""
        return (f"{exact}≤ {t['index_entries_ceiling_per_event']} ({t['indexes']} indexes, "
                f"{t['partial_indexes']} partial)")

    def updates(t: dict[str, Any]) -> str:  # the WAL's count when there is one: the statistics may lag
        if "wal_updates" in t:
            return f"{t['wal_updates']} upd of which {t['wal_hot_updates']} HOT (from the WAL)"
        return f"{t['updates']} upd of which {t['hot_updates']} HOT"

    tables = "; ".join(
        f"{name} {t['inserts']} ins, {updates(t)}, {entries(t)}"
        for name, t in w["tables"].items() if t["inserts"] or t["updates"])
    line = f"writes:      {tables}; WAL ≤ {w['wal_bytes_per_event_ceiling']} bytes/event (whole cluster)"
    if "wal_bytes_per_event" in w:
        line += (f"; this database: {w['index_entries_per_event']} index entries/event, "
                 f"WAL records {w['wal_bytes_per_event']} bytes/event")
    busiest = sorted(((n, name) for t in w["tables"].values()
                      for name, n in (t.get("index_entries_by_index") or {}).items()), reverse=True)
    if busiest:
        line += "\nindexes:     " + ", ".join(f"{name} {n}" for n, name in busiest)
    return line


def _verdict(f: dict[str, Any]) -> str:
    if f.get("ok"):
        return "result:      OK"
    problems = "\n  ".join(f.get("problems") or ["unknown"])
    logs = f"\nlogs:        {f['log_dir']}" if f.get("log_dir") else ""
    return f"result:      FAILED\n  {problems}{logs}"
