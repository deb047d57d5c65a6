"""Rows for the operator-command tests, inserted directly, and what a CLI run printed."""
from __future__ import annotations

import json
import secrets
from typing import Any

from click.testing import Result
from sqlalchemy import Engine, text

from tests.integration.stack import rows


def ok(result: Result) -> Result:
    """``result``, once it is known to have exited 0 (else its output is the failure's message)."""
    assert result.exit_code == 0, result.output
    return result


def json_out(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def insert_event(engine: Engine, *, provider: str = "yoco", key: str | None = None,
                 event_type: str = "payment.succeeded", status: str = "pending", received_ago_s: float = 0.0,
                 done_after_s: float | None = None, next_in_s: float | None = 0.0, order_id: int | None = None,
                 attempts: int = 0, last_error: str | None = None, headers: dict[str, str] | None = None,
                 body: bytes = b'{"id": "x"}', payload: Any = None, fetched: Any = None,
                 secret_index: int | None = 0, verify_method: str | None = "hmac") -> int:
    """An event received ``received_ago_s`` before the database's now(), done ``done_after_s`` later."""
    with engine.begin() as conn:
        return conn.execute(
            text("""
                WITH e AS (
                INSERT INTO webhook_events (provider, event_key, event_type, status, attempts, received_at,
                        processed_at, next_attempt_at, lease_expires_at, last_error, livemode, raw_body, headers,
                        payload, fetched_payload, secret_index, verify_method, order_id)
                SELECT :provider, :key, :type, CAST(:status AS text), :attempts, r.at,
                       r.at + make_interval(secs => CAST(:done AS double precision)),
                       CASE WHEN CAST(:status AS text) IN ('pending', 'retrying')
                            THEN now() + make_interval(secs => COALESCE(CAST(:next AS double precision), 0)) END,
                       CASE WHEN CAST(:status AS text) IN ('queued', 'processing') THEN now() + interval '5 minutes' END,
                       :error, false, :body, CAST(:headers AS jsonb), CAST(:payload AS jsonb),
                       CAST(:fetched AS jsonb), :secret_index, :verify_method, :order_id
                  FROM (SELECT now() - make_interval(secs => :ago) AS at) AS r
                RETURNING id, provider, event_key, received_at),
                k AS (  -- as the receiver does: every stored event's key is in event_keys
                INSERT INTO event_keys (provider, event_key, event_id, received_at)
                SELECT provider, event_key, id, received_at FROM e)
                SELECT id FROM e"""),
            {"provider": provider, "key": key or f"evt_{secrets.token_hex(6)}", "type": event_type,
             "status": status, "attempts": attempts, "ago": received_ago_s, "done": done_after_s,
             "next": next_in_s, "error": last_error, "body": body,
             "headers": json.dumps(headers or {"content-type": "application/json"}),
             "payload": json.dumps(payload if payload is not None else {"id": "x"}),
             "fetched": None if fetched is None else json.dumps(fetched),
             "secret_index": secret_index, "verify_method": verify_method, "order_id": order_id},
        ).scalar_one()


def insert_attempt(engine: Engine, *, event_id: int, number: int, outcome: str, error: str | None = None,
                   traceback: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO event_attempts (event_id, number, started_at, finished_at, outcome, error,
                                                traceback, worker)
                    VALUES (:e, :n, now() - make_interval(secs => 60 - :n), now() - make_interval(secs => 59 - :n),
                            :o, :err, :tb, 'host:42')"""),
            {"e": event_id, "n": number, "o": outcome, "err": error, "tb": traceback},
        )


def insert_delivery(engine: Engine, *, event_id: int, order_id: int, kind: str, status: str = "pending",
                    handler: str = "fulfilment", attempts: int = 0, processed_ago_s: float | None = None,
                    next_in_s: float | None = 0.0, last_error: str | None = None) -> int:
    with engine.begin() as conn:
        return conn.execute(
            text("""INSERT INTO deliveries (event_id, order_id, handler, kind, status, payload, attempts,
                                            next_attempt_at, processed_at, last_error)
                    VALUES (:e, :o, :h, :k, :s, '{}', :a,
                            now() + make_interval(secs => CAST(:next AS double precision)),
                            now() - make_interval(secs => CAST(:done AS double precision)), :err)
                    RETURNING id"""),
            {"e": event_id, "o": order_id, "h": handler, "k": kind, "s": status, "a": attempts,
             "next": next_in_s, "done": processed_ago_s, "err": last_error},
        ).scalar_one()


def insert_try(engine: Engine, *, delivery_id: int, number: int, outcome: str, code: int | None = None,
               response: str | None = None, error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO delivery_attempts (delivery_id, number, started_at, outcome, response_code,
                                                   response, error, duration_ms, worker)
                    VALUES (:d, :n, now(), :o, :c, :r, :err, 12, 'host:43')"""),
            {"d": delivery_id, "n": number, "o": outcome, "c": code, "r": response, "err": error},
        )


def events_by_id(engine: Engine) -> dict[int, Any]:
    return {row.id: row for row in rows(engine, "SELECT * FROM webhook_events ORDER BY id")}


def operator_actions(engine: Engine) -> list[Any]:
    return rows(engine, "SELECT * FROM operator_actions ORDER BY id")
