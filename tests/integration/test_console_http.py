"""The console over HTTP (Flask's test client, real Postgres): sign-in, redirects, CSRF, the rate
limit, every page, replays recorded under the signed-in name, and no secret on any page."""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import Engine, text

from testkit.processes import wait_for
from tests.conftest import API_TOKEN, PROCESSOUT_BASIC_AUTH, TEST_SECRETS, make_settings
from tests.integration.console_support import CONSOLE_TOKEN, OPERATOR, csrf_from, page_csrf, sign_in
from tests.integration.helpers import secret_forms
from tests.integration.ops_data import (
    insert_attempt,
    insert_delivery,
    insert_event,
    insert_try,
    operator_actions,
)
from tests.integration.stack import create_order, execute, rows, scalar, status_of


PAGES = ["/", "/events", "/events?status=dead", "/replay", "/deliveries", "/orders", "/audit"]


@pytest.mark.parametrize("path", PAGES + ["/events/1", "/replay/1", "/orders/X", "/deliveries/1"])
def test_signed_out_html_requests_go_to_sign_in(console_app, path) -> None:
    response = console_app.test_client().get(path, headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/signin?next=")


def test_signed_out_non_html_requests_get_401(console_app) -> None:
    client = console_app.test_client()
    assert client.get("/events", headers={"Accept": "application/json"}).status_code == 401
    assert client.post("/replay", data={"status": "dead"}).status_code == 401


def test_sign_in_form_has_labelled_fields_and_a_button(console_app) -> None:
    page = console_app.test_client().get("/signin").get_data(as_text=True)
    assert re.search(r'<label for="name">Name</label>\s*<input id="name"', page)
    assert re.search(r'<label for="token">Token</label>\s*<input id="token" name="token" type="password"', page)
    assert '<button type="submit">Sign in</button>' in page


def test_sign_in_sets_a_strict_http_only_session_and_returns_to_next(console_app) -> None:
    client = console_app.test_client()
    client.get("/events?status=dead", headers={"Accept": "text/html"})
    response = sign_in(client, next="/events?status=dead")
    assert response.status_code == 302 and response.headers["Location"] == "/events?status=dead"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/events").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_the_console(console_app, target) -> None:
    assert sign_in(console_app.test_client(), next=target).headers["Location"] == "/"


def test_wrong_token_or_bad_name_is_refused(console_app) -> None:
    client = console_app.test_client()
    wrong = sign_in(client, token="not-the-token")
    assert wrong.status_code == 401 and "not the console&#39;s token" in wrong.get_data(as_text=True)
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 302
    assert sign_in(client, name="").status_code == 401
    assert sign_in(client, name="<script>").status_code == 401


def test_post_without_csrf_token_is_refused(signed_in, engine: Engine) -> None:
    event_id = insert_event(engine, status="dead")
    for data in ({}, {"csrf_token": "forged"}):
        response = signed_in.post(f"/events/{event_id}/replay", data=data)
        assert response.status_code == 400
        response = signed_in.post("/replay", data={"status": "dead", **data})
        assert response.status_code == 400
        assert signed_in.post("/signout", data=data).status_code == 400
    assert status_of(engine, event_id) == "dead"
    assert operator_actions(engine) == []


def test_sign_in_without_csrf_token_is_refused(console_app) -> None:
    response = console_app.test_client().post("/signin", data={"name": OPERATOR, "token": CONSOLE_TOKEN})
    assert response.status_code == 400


def test_sign_in_attempts_are_rate_limited(console_settings, engine: Engine) -> None:
    from console.app import create_app

    app = create_app(console_settings.model_copy(update={"console_signin_attempts": 3,
                                                         "console_signin_window_seconds": 1.5}), engine=engine)
    client = app.test_client()
    for _ in range(3):
        assert sign_in(client, token="guess").status_code == 401
    limited = sign_in(client)  # even the right token, while limited
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 302
    time.sleep(1.6)  # the window slides past the failures
    assert sign_in(client).status_code == 302


def test_sign_out_ends_the_session(signed_in) -> None:
    token = page_csrf(signed_in, "/")
    assert signed_in.post("/signout", data={"csrf_token": token}).status_code == 302
    assert signed_in.get("/", headers={"Accept": "text/html"}).status_code == 302


def test_pages_carry_security_headers(signed_in) -> None:
    response = signed_in.get("/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    css = signed_in.get("/static/console.css")
    assert css.status_code == 200 and b"--accent" in css.data


def test_the_console_refuses_to_start_without_a_token(database_url) -> None:
    from console.app import ConsoleNotConfigured, create_app

    with pytest.raises(ConsoleNotConfigured):
        create_app(make_settings(database_url=database_url))
    with pytest.raises(ConsoleNotConfigured):
        create_app(make_settings(database_url=database_url, console_token="  "))


@pytest.fixture
def story(engine: Engine) -> dict[str, int]:
    """One order with a dead event (attempts, traceback), a succeeded one, a delivery with tries."""
    order_id = create_order(engine, reference="ORD-STORY", status="paid")
    secret = TEST_SECRETS["smartpay"][0]
    dead = insert_event(engine, key="evt_dead_1", provider="smartpay", event_type="AUTHORISATION", status="dead",
                        attempts=2, received_ago_s=600, last_error=f"boom with {secret}",
                        headers={"content-type": "application/json", "x-leak": API_TOKEN},
                        body=b'{"id":"evt_dead_1","amount":1000}', payload={"id": "evt_dead_1", "n": 1},
                        secret_index=1)
    insert_attempt(engine, event_id=dead, number=1, outcome="failed", error="order not found: P1",
                   traceback="Traceback (most recent call last):\n  File \"x.py\"\nOrderNotFound: P1")
    insert_attempt(engine, event_id=dead, number=2, outcome="dead", error=f"auth {PROCESSOUT_BASIC_AUTH}")
    done = insert_event(engine, key="evt_ok_1", provider="yoco", status="succeeded", received_ago_s=300,
                        done_after_s=1, order_id=order_id, fetched={"fetched": True})
    execute(engine, """INSERT INTO order_transitions (order_id, event_id, from_status, to_status, note)
                       VALUES (:o, :e, 'pending', 'paid', 'payment captured')""", o=order_id, e=done)
    delivery = insert_delivery(engine, event_id=done, order_id=order_id, kind="order_confirmation",
                               handler="fulfilment", status="dead", attempts=1, last_error="550 mailbox")
    insert_try(engine, delivery_id=delivery, number=1, outcome="dead", code=550, response="550 no such user")
    return {"order": order_id, "dead": dead, "done": done, "delivery": delivery}


@pytest.mark.parametrize("path", PAGES + ["/orders/ORD-STORY", "/events?provider=smartpay&since=1d",
                                          "/events?key=evt_dead_1", "/events?order=ORD-STORY",
                                          "/replay?preview=1&status=dead", "/deliveries?status=dead"])
def test_every_page_answers_and_shows_no_secret(signed_in, story, path) -> None:
    response = signed_in.get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page[:3000]
    for secret in (*secret_forms(), CONSOLE_TOKEN):
        assert secret not in page, (path, secret)


def test_event_page_tells_the_whole_story(signed_in, story) -> None:
    page = signed_in.get(f"/events/{story['dead']}").get_data(as_text=True)
    for expected in ("evt_dead_1", "secret #1", "attempt 1: failed", "order not found: P1", "Traceback",
                     "OrderNotFound: P1", "attempt 2: dead", "&#34;amount&#34;: 1000", "x-leak", "[redacted]",
                     ">Replay</a>"):
        assert expected in page, expected
    assert TEST_SECRETS["smartpay"][0] not in page and API_TOKEN not in page
    page = signed_in.get(f"/events/{story['done']}").get_data(as_text=True)
    for expected in ("ORD-STORY", "pending</span> → <span class=\"status s-paid\">paid", "payment captured",
                     f"Delivery {story['delivery']}", "550 no such user", "&#34;fetched&#34;: true",
                     f"delivery {story['delivery']} (order_confirmation) try 1: dead</a></strong>: "
                     "<span class=\"wrap\">550 · 550 no such user"):
        assert expected in page, expected


def test_event_filters_and_keyset_pages(signed_in, engine: Engine) -> None:
    ids = [insert_event(engine, key=f"k{i}", status="dead" if i % 2 else "succeeded", received_ago_s=1000 - i)
           for i in range(120)]
    seen: list[int] = []
    path = "/events?status=dead"
    while path:
        page = signed_in.get(path).get_data(as_text=True)
        seen += [int(i) for i in re.findall(r'<a href="/events/(\d+)">', page)]
        found = re.search(r'<a href="([^"]+)" rel="next">', page)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert seen == sorted((i for n, i in enumerate(ids) if n % 2), reverse=True)
    page = signed_in.get("/events?key=k7").get_data(as_text=True)
    assert re.findall(r'<a href="/events/(\d+)">', page) == [str(ids[7])]
    bad = signed_in.get("/events?status=exploded&since=yesterday-ish")
    assert bad.status_code == 400 and "unknown exploded" in bad.get_data(as_text=True)


def test_replay_one_event_confirms_then_records_the_operator(signed_in, story, engine: Engine) -> None:
    confirm = signed_in.get(f"/events/{story['dead']}/replay").get_data(as_text=True)
    assert "<button type=\"submit\">Confirm</button>" in confirm
    assert status_of(engine, story["dead"]) == "dead"  # nothing changed yet
    response = signed_in.post(f"/events/{story['dead']}/replay", data={"csrf_token": csrf_from(confirm)})
    assert response.status_code == 302
    [row] = rows(engine, "SELECT status, replay_count FROM webhook_events WHERE id = :i", i=story["dead"])
    assert (row.status, row.replay_count) == ("pending", 1)
    [action] = operator_actions(engine)
    assert (action.actor, action.target, action.count, action.filter["ids"]) == (OPERATOR, "events", 1,
                                                                                 [story["dead"]])
    audit = signed_in.get("/audit").get_data(as_text=True)
    assert OPERATOR in audit and "replayed 1 of 1 selected" in audit


def test_a_succeeded_event_needs_force(signed_in, story, engine: Engine) -> None:
    page = signed_in.get(f"/events/{story['done']}/replay").get_data(as_text=True)
    assert "needs force" in page and "Confirm" not in page
    forced = signed_in.get(f"/events/{story['done']}/replay?force=1").get_data(as_text=True)
    signed_in.post(f"/events/{story['done']}/replay", data={"csrf_token": csrf_from(forced), "force": "1"})
    assert status_of(engine, story["done"]) == "pending"


def test_replay_by_filter_previews_then_replays_with_progress(signed_in, engine: Engine) -> None:
    dead = [insert_event(engine, provider="yoco", status="dead") for _ in range(7)]
    other = insert_event(engine, provider="smartpay", status="dead")
    done = insert_event(engine, provider="yoco", status="succeeded")
    preview = signed_in.get("/replay?preview=1&status=dead&status=succeeded&provider=yoco")
    page = preview.get_data(as_text=True)
    assert "7 events would be replayed" in page and "left alone (needs force)" in page
    assert all(f'href="/events/{i}"' in page for i in dead)
    assert {r.status for r in rows(engine, "SELECT status FROM webhook_events")} == {"dead", "succeeded"}
    response = signed_in.post("/replay", data={"csrf_token": csrf_from(page), "status": ["dead", "succeeded"],
                                               "provider": "yoco"})
    assert response.status_code == 302
    progress_url = response.headers["Location"]

    def finished() -> str | None:
        body = signed_in.get(progress_url).get_data(as_text=True)
        return body if "Finished: 7 of 7 replayed" in body else None

    wait_for(finished, timeout=20, message="the replay to finish")
    statuses = {r.id: r.status for r in rows(engine, "SELECT id, status FROM webhook_events")}
    assert all(statuses[i] == "pending" for i in dead)
    assert statuses[other] == "dead" and statuses[done] == "succeeded"
    [action] = operator_actions(engine)
    assert action.actor == OPERATOR and action.count == 7
    assert action.filter["statuses"] == ["dead", "succeeded"] and action.filter["providers"] == ["yoco"]


def test_delivery_pages_and_replay(signed_in, story, engine: Engine) -> None:
    page = signed_in.get(f"/deliveries/{story['delivery']}").get_data(as_text=True)
    assert "550 no such user" in page and f"{story['done']}:fulfilment:order_confirmation" in page
    confirm = signed_in.get(f"/deliveries/{story['delivery']}/replay").get_data(as_text=True)
    signed_in.post(f"/deliveries/{story['delivery']}/replay", data={"csrf_token": csrf_from(confirm)})
    assert [r.status for r in rows(engine, "SELECT status FROM deliveries")] == ["pending"]
    assert operator_actions(engine)[0].target == "deliveries"


def test_order_page_and_missing_things(signed_in, story) -> None:
    page = signed_in.get("/orders?reference=ORD-STORY", follow_redirects=True).get_data(as_text=True)
    assert "Order ORD-STORY" in page and "evt_ok_1" not in page and f'href="/events/{story["done"]}"' in page
    assert signed_in.get("/orders/NOPE").status_code == 404
    assert signed_in.get("/events/999999").status_code == 404
    assert signed_in.get("/deliveries/999999").status_code == 404


def test_payhooks_console_refuses_to_start_without_a_token(run) -> None:
    result = run("console", "--bind", "127.0.0.1:1")
    assert result.exit_code == 1
    assert "PAYHOOKS_CONSOLE_TOKEN is not set" in result.output


def test_a_database_past_its_timeout_is_a_503_page_not_a_trace(console_settings, engine: Engine) -> None:
    from console.app import create_app

    app = create_app(console_settings.model_copy(update={"db_timeout_seconds": 1.0}))  # its own engine
    client = app.test_client()
    sign_in(client)
    try:
        with engine.connect() as conn:  # a lock the overview's reads wait on, past the 1 s statement timeout
            conn.execute(text("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE"))
            response = client.get("/")
            conn.rollback()
    finally:
        app.extensions["payhooks_console"].engine.dispose()
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and "Database unavailable" in page and "Traceback" not in page


def test_a_list_too_slow_to_find_says_how_to_narrow_it(signed_in, engine: Engine, monkeypatch) -> None:
    from console import events

    monkeypatch.setattr(events, "LIST_TIMEOUT_MS", 300)
    insert_event(engine, status="dead")
    with engine.connect() as conn:  # the list waits on this lock past its own short timeout
        conn.execute(text("LOCK TABLE webhook_events IN ACCESS EXCLUSIVE MODE"))
        response = signed_in.get("/events?type=misspelt.type")
        conn.rollback()
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and "matches too few events to find quickly" in page
    assert signed_in.get("/events?type=misspelt.type").status_code == 200  # unlocked: it answers


def test_a_replay_the_console_did_not_finish_says_so(signed_in, engine: Engine) -> None:
    # Given an audit row of a replay that never wrote its final line (a console stopped mid-way)
    execute(engine, """INSERT INTO operator_actions (actor, action, target, filter, count, detail)
                       VALUES ('someone', 'replay', 'events', '{}', 500,
                               'started: 1200 events to replay (dead 1200)')""")
    action_id = scalar(engine, "SELECT id FROM operator_actions")
    page = signed_in.get(f"/replay/{action_id}").get_data(as_text=True)
    assert "Not running here: 500 replayed so far" in page and "Finished" not in page
