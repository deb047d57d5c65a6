"""The ledger: what was acknowledged against what the database and the outside world ended with.

* every 2xx-acknowledged event is a ``webhook_events`` row in a final status,
  the status its story expects (``lost`` counts the missing and the unfinished);
* per order, the effects are replayed from its succeeded events in commit order
  (``processed_at``, taken under the order's row lock) through the forward-only
  state machine; the order's status, its refunds and its delivery rows must be
  exactly that: one fulfilment per paid order, one email per effect;
* every succeeded delivery arrived at the SMTP sink or the merchant, under its
  key; a second arrival with the same key (Message-ID, Idempotency-Key) is a
  resend, counted apart; an arrival with a key no delivery row has, or one
  effect under two keys, is a duplicate effect.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from sqlalchemy import Engine, text

from bench.faults.cluster import Outside
from bench.faults.plan import Event, Order, Plan
from testkit.load import Answer

FINAL = ("succeeded", "ignored", "dead")
DELIVERY_FINAL = ("succeeded", "dead", "skipped")
PAID = ("paid", "refunded", "partially_refunded", "charged_back")
DETAIL_LIMIT = 12


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    missing_effects: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    resends: int = 0
    final: Counter[str] = field(default_factory=Counter)

    def details(self) -> dict[str, list[str]]:
        """The first few findings of each kind, for the report."""
        return {name: values[:DETAIL_LIMIT] for name, values in (
            ("lost", self.lost), ("duplicates", self.duplicates), ("missing_effects", self.missing_effects),
            ("unexpected", self.unexpected)) if values}


def unsettled(engine: Engine) -> tuple[int, int]:
    """(events not final, deliveries not final) right now."""
    with engine.connect() as conn:
        events, deliveries = conn.execute(text(
            "SELECT (SELECT count(*) FROM webhook_events WHERE status <> ALL(:f)),"
            " (SELECT count(*) FROM deliveries WHERE status <> ALL(:d))"),
            {"f": list(FINAL), "d": list(DELIVERY_FINAL)}).one()
    return events, deliveries


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def check(engine: Engine, plan: Plan, acknowledged: dict[int, int], outside: Outside) -> Findings:
    findings = Findings()
    events = {(r.provider, r.event_key): r for r in _rows(
        engine, "SELECT id, provider, event_key, status, processed_at, attempts, last_error FROM webhook_events")}
    _check_events(plan, acknowledged, events, _histories(engine), findings)
    _check_orders(engine, plan, _succeeded_by_order(plan, events), findings)
    _check_arrivals(engine, outside, findings)
    return findings


def _histories(engine: Engine) -> dict[int, str]:
    """Event id → its attempts, e.g. ``lost (worker lost); succeeded``: what went on, for the report."""
    found: dict[int, list[str]] = defaultdict(list)
    for row in _rows(engine, "SELECT event_id, outcome, error FROM event_attempts ORDER BY event_id, number"):
        found[row.event_id].append(row.outcome + (f" ({row.error[:60]})" if row.error else ""))
    return {event_id: "; ".join(f"{text} ×{len(run)}" if len(run := list(group)) > 1 else text
                                for text, group in groupby(outcomes))
            for event_id, outcomes in found.items()}


def _check_events(plan: Plan, acknowledged: dict[int, int], events: dict[tuple[str, str], Any],
                  histories: dict[int, str], findings: Findings) -> None:
    for index, answered_id in sorted(acknowledged.items()):
        event = plan.events[index]
        row = events.get((event.provider, event.key))
        if row is None:
            findings.lost.append(f"{event.provider} {event.key}: acknowledged, not stored")
            continue
        findings.final[row.status if row.status in FINAL else "not final"] += 1
        if row.status not in FINAL:
            findings.lost.append(f"event {row.id} ({event.provider} {event.role}): still {row.status}, "
                                 f"attempts: {histories.get(row.id, 'none')}")
        elif row.status != event.expected_status:
            findings.unexpected.append(f"event {row.id} ({event.provider} {event.role}, story {event.order.story}):"
                                       f" {row.status}, expected {event.expected_status}; attempts: "
                                       f"{histories.get(row.id, 'none')}")
        if answered_id not in (-1, row.id):
            findings.duplicates.append(f"{event.provider} {event.key}: answered id {answered_id}, stored {row.id}")


def _replay(order: Order, succeeded: list[Event]) -> tuple[str, int, Counter[str], list[str]]:
    """The order's state, refunded amount and expected delivery kinds after these events, in order."""
    status, refunded, kinds, problems = "pending", 0, Counter(), []
    for event in succeeded:
        if event.role in ("success", "failure") and status in PAID:
            continue  # forward-only: recorded and ignored
        if event.role == "success":
            status = "paid"
            kinds.update(["fulfilment"] + (["email.order_confirmation"] if order.email else []))
        elif event.role == "failure":
            status = "payment_failed"
            kinds["email.payment_failed" if order.email else "sms.payment_failed"] += 1
        elif status not in ("paid", "partially_refunded"):
            problems.append(f"refund event succeeded while the order was {status}")
        else:
            refunded += event.amount
            status = "refunded" if refunded >= order.amount else "partially_refunded"
            kinds.update(["email.refund"] if order.email else [])
    return status, refunded, kinds, problems


def _succeeded_by_order(plan: Plan, events: dict[tuple[str, str], Any]) -> dict[str, list[Event]]:
    """Order reference → its succeeded events in commit order (processed_at, then id)."""
    found: dict[str, list[tuple[Any, int, Event]]] = defaultdict(list)
    for event in plan.events:
        row = events.get((event.provider, event.key))
        if row is not None and row.status == "succeeded":
            found[event.order.reference].append((row.processed_at, row.id, event))
    return {ref: [e for _, _, e in sorted(items, key=lambda t: (t[0], t[1]))] for ref, items in found.items()}


def _check_orders(engine: Engine, plan: Plan, succeeded_by_order: dict[str, list[Event]],
                  findings: Findings) -> None:
    orders = {r.reference: r for r in _rows(engine, "SELECT id, reference, status, refunded_amount FROM orders")}
    deliveries: dict[int, Counter[str]] = defaultdict(Counter)
    for row in _rows(engine, "SELECT d.order_id, d.event_id, d.kind, e.status FROM deliveries d "
                             "JOIN webhook_events e ON e.id = d.event_id"):
        deliveries[row.order_id][row.kind] += 1
        if row.status != "succeeded":
            findings.duplicates.append(f"delivery {row.kind} of event {row.event_id}, which is {row.status}")
    refunds: dict[int, list[Any]] = defaultdict(list)
    for row in _rows(engine, "SELECT order_id, event_id, amount FROM refunds"):
        refunds[row.order_id].append(row)
    paid_moves = Counter(r.order_id for r in _rows(
        engine, "SELECT order_id FROM order_transitions WHERE to_status = 'paid' "
                "AND from_status NOT IN ('paid', 'refunded', 'partially_refunded', 'charged_back')"))
    for order in plan.registered_orders():
        row = orders.get(order.reference)
        if row is None:
            findings.missing_effects.append(f"order {order.reference} was never registered")
            continue
        status, refunded, kinds, problems = _replay(order, succeeded_by_order.get(order.reference, []))
        where = f"order {order.reference} ({order.provider}, {order.story})"
        findings.unexpected.extend(f"{where}: {p}" for p in problems)
        if row.status != status:
            findings.unexpected.append(f"{where}: status {row.status}, its events say {status}")
        elif status != order.expected_status:
            findings.unexpected.append(f"{where}: ended {status}, the story expects {order.expected_status}")
        booked = refunds.get(row.id, [])
        if sum(r.amount for r in booked) != row.refunded_amount or row.refunded_amount != refunded:
            findings.duplicates.append(f"{where}: refunds {[r.amount for r in booked]}, "
                                       f"refunded_amount {row.refunded_amount}, events say {refunded}")
        if paid_moves[row.id] > 1:
            findings.duplicates.append(f"{where}: moved to paid {paid_moves[row.id]} times")
        actual = deliveries.get(row.id, Counter())
        for kind in sorted(set(actual) | set(kinds)):
            extra, short = actual[kind] - kinds[kind], kinds[kind] - actual[kind]
            findings.duplicates.extend([f"{where}: {actual[kind]} × {kind}, expected {kinds[kind]}"] * max(0, extra))
            findings.missing_effects.extend([f"{where}: {actual[kind]} × {kind}, expected {kinds[kind]}"]
                                            * max(0, short))


def _check_arrivals(engine: Engine, outside: Outside, findings: Findings) -> None:
    rows = _rows(engine, "SELECT id, event_id, handler, kind, status, last_error FROM deliveries")
    arrived = outside.mail.delivery_keys() + outside.merchant.idempotency_keys()
    message_ids = outside.mail.message_ids()
    keys = set()
    for row in rows:
        key = f"{row.event_id}:{row.handler}:{row.kind}"
        keys.add(key)
        if row.status != "succeeded":
            findings.missing_effects.append(f"delivery {row.id} ({row.kind}) ended {row.status}: {row.last_error}")
        elif arrived[key] == 0:
            findings.missing_effects.append(f"delivery {row.id} ({row.kind}) succeeded, never arrived")
        findings.resends += max(0, arrived[key] - 1)
        if len(message_ids.get(key, ())) > 1:
            findings.duplicates.append(f"delivery {key}: {len(message_ids[key])} different Message-IDs")
    for key, count in arrived.items():
        if key not in keys:
            findings.duplicates.append(f"{count} arrival(s) under key {key!r}, which no delivery row has")


def check_answers(answers: list[Answer], plan: Plan, findings: Findings) -> None:
    """Every 2xx for one event names the same row, and at most one of them says ``accepted``."""
    ids: dict[int, set[int]] = defaultdict(set)
    accepted: Counter[int] = Counter()
    for answer in answers:
        if answer.ok and answer.event_row_id is not None:
            ids[answer.index].add(answer.event_row_id)
            accepted[answer.index] += answer.outcome == "200 accepted"
    for index, named in ids.items():
        event = plan.events[index]
        if len(named) > 1:
            findings.duplicates.append(f"{event.provider} {event.key}: 2xx answers named rows {sorted(named)}")
        if accepted[index] > 1:
            findings.duplicates.append(f"{event.provider} {event.key}: {accepted[index]} answers said accepted")
