"""The console in a real browser (Playwright driving Debian's Chromium, JavaScript off), against the
real `payhooks console` process, a real worker and dispatcher, real Postgres and the broker.

An operator signs in with the keyboard, filters dead events, opens one, replays it once its cause is
fixed and watches it succeed; then replays several by filter with a preview and a progress page. The
screenshots the README shows are taken here (docs/screenshots/).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from sqlalchemy import Engine

from testkit.processes import REPO_ROOT, free_port, wait_for, wait_http_ok
from testkit.services import Services
from tests.conftest import tool_or_skip
from tests.integration.console_support import CONSOLE_TOKEN
from tests.integration.ops_data import operator_actions
from tests.integration.stack import create_order, status_of, wait_final

CHROMIUM = os.environ.get("PAYHOOKS_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
OPERATOR = "Grace on call"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--disable-extensions"]


@pytest.fixture
def console_url(stack: Services, tmp_path: Path) -> Iterator[str]:
    """The real `payhooks console` (gunicorn) on a free port, with the stack's settings."""
    url = f"http://127.0.0.1:{free_port()}"
    stack.start("console", "console", "--bind", url.removeprefix("http://"),
                env={"PAYHOOKS_CONSOLE_TOKEN": CONSOLE_TOKEN})
    wait_http_ok(f"{url}/signin", timeout=30, alive=stack.exited)
    yield url


@pytest.fixture
def browser():
    tool_or_skip(CHROMIUM, "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser, console_url: str):
    """A page with JavaScript off (the console must work without it) that records every request."""
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900},
                                  base_url=console_url)
    context.set_default_timeout(15_000)
    opened = context.new_page()
    opened.requested = []  # type: ignore[attr-defined]
    opened.on("request", lambda request: opened.requested.append(request.url))  # type: ignore[attr-defined]
    yield opened
    context.close()


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def _sign_in_with_the_keyboard(page) -> None:
    page.goto("/events")
    assert "/signin" in page.url
    page.get_by_label("Name").focus()
    page.keyboard.type(OPERATOR)
    page.keyboard.press("Tab")
    page.keyboard.type(CONSOLE_TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url("**/events")


def _nav(page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def _reload_until(page, text: str, *, timeout: float = 45.0) -> None:
    def shown() -> bool:
        try:
            page.reload()
        except PlaywrightError:  # "Not attached to an active page": the reload raced a navigation; next round
            return False
        return text in page.content()

    wait_for(shown, timeout=timeout, interval=0.5, message=f"{text!r} on {page.url}")


def test_an_operator_replays_a_dead_event_and_then_a_filter(running: Services, sender, engine: Engine, page,
                                                           console_url: str) -> None:
    from playwright.sync_api import expect

    # Given an event for an order not registered yet: retried on the 1 s schedule, then dead
    dead_id = sender.send("shadhinpay", "payment.completed", order_ref="SP_console_late", amount=2500)
    noise_id = sender.send("yoco", "payment.succeeded", order_ref="ch_not_ours")  # ignored: not our checkout
    assert wait_final(engine, dead_id, noise_id, stack=running) == ["dead", "ignored"]

    # The operator signs in (keyboard only) and looks at the overview
    _sign_in_with_the_keyboard(page)
    _nav(page, "Overview")
    expect(page.get_by_role("heading", name="Last 24 hours, per hour of receipt")).to_be_visible()
    _shot(page, "overview")

    # Events: filter the dead ones, open ours
    _nav(page, "Events")
    page.get_by_role("group", name="Status").get_by_label("dead").check()
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.rows tbody tr")
    expect(rows).to_have_count(1)
    assert "dead" in rows.first.inner_text()
    _shot(page, "events-dead")
    page.get_by_role("link", name=str(dead_id), exact=True).click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    assert "order not found" in page.content() and "Traceback" in page.content()
    _shot(page, "event-dead")

    # The cause is fixed (the order is registered); Replay, then Confirm
    create_order(engine, reference="CONSOLE-1", provider="shadhinpay", payment_ref="SP_console_late", amount=2500)
    page.get_by_role("link", name="Replay", exact=True).click()
    expect(page.get_by_role("heading", name=f"Replay event {dead_id}?")).to_be_visible()
    assert status_of(engine, dead_id) == "dead"  # nothing changed before Confirm
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").first).to_contain_text("Replayed: back to pending")
    # ... and watches it succeed
    _reload_until(page, 'class="status s-succeeded">succeeded</span></h1>')
    assert "CONSOLE-1</a>" in page.content() and "pending</span> → <span class=\"status s-paid\">paid" in page.content()
    _shot(page, "event-replayed")

    # Bulk: three more dead events, their orders registered afterwards, replayed by filter
    refs = [f"SP_bulk_{n}" for n in range(3)]
    bulk_ids = [sender.send("shadhinpay", "payment.completed", order_ref=ref, amount=1500) for ref in refs]
    assert set(wait_final(engine, *bulk_ids, stack=running)) == {"dead"}
    for n, ref in enumerate(refs):
        create_order(engine, reference=f"BULK-{n}", provider="shadhinpay", payment_ref=ref, amount=1500)
    _nav(page, "Replay by filter")
    page.get_by_role("group", name="Provider").get_by_label("shadhinpay").check()
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="3 events would be replayed")).to_be_visible()
    assert {status_of(engine, i) for i in bulk_ids} == {"dead"}  # the preview changed nothing
    _shot(page, "replay-preview")
    page.get_by_role("button", name="Confirm").click()
    _reload_until(page, "Finished: 3 of 3 replayed")
    _shot(page, "replay-progress")
    wait_for(lambda: {status_of(engine, i) for i in bulk_ids} == {"succeeded"}, timeout=45,
             message="the bulk replay to succeed")

    # The audit trail names the operator for both replays
    _nav(page, "Audit")
    expect(page.get_by_role("cell", name=OPERATOR)).to_have_count(2)
    _shot(page, "audit")
    assert [(a.actor, a.count) for a in operator_actions(engine)] == [(OPERATOR, 1), (OPERATOR, 3)]

    # Every request the page made went to the console itself (no CDN, nothing leaves the page)
    assert page.requested and all(url.startswith(console_url) for url in page.requested), page.requested
