"""Metrics move when work happens: receiver /metrics (also across receiver processes), worker and dispatcher ports."""
from __future__ import annotations

import json

import httpx

from testkit.processes import free_port, wait_for
from testkit.services import serve_process
from tests.conftest import TEST_SECRETS
from tests.integration.helpers import metric, signed_request
from tests.integration.stack import create_order, start_processes, wait_final


def test_receiver_metrics_count_answers_and_verification_failures(client, settings) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    body, headers = signed_request(settings, "yoco")
    assert client.post("/webhooks/yoco", data=body, headers=headers).status_code == 200
    assert client.post("/webhooks/yoco", data=body + b" ", headers=headers).status_code == 401
    after = client.get("/metrics").get_data(as_text=True)

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert moved("payhooks_webhook_requests_total", provider="yoco", status="200") == 1
    assert moved("payhooks_webhook_requests_total", provider="yoco", status="401") == 1
    assert moved("payhooks_verification_failures_total", provider="yoco", reason="signature does not match") == 1
    assert moved("payhooks_ingest_seconds_count", provider="yoco") == 2
    for secret in TEST_SECRETS["yoco"]:
        assert secret not in after


def test_metrics_add_up_across_receiver_processes(tmp_path, database_url, engine, settings) -> None:
    with serve_process(database_url=database_url, workdir=tmp_path, workers=3, threads=2,
                       env={"PAYHOOKS_YOCO_SECRETS": TEST_SECRETS["yoco"][0]}) as (base, _):
        for _ in range(30):  # new connections: spread over the three workers
            body, headers = signed_request(settings, "yoco")
            assert httpx.post(f"{base}/webhooks/yoco", content=body, headers=headers).status_code == 200
        scraped = httpx.get(f"{base}/metrics").text
    assert metric(scraped, "payhooks_webhook_requests_total", provider="yoco", status="200") == 30


def test_worker_and_dispatcher_expose_their_metrics(stack, sender, engine) -> None:
    worker_port, dispatcher_port = free_port(), free_port()
    stack.env.update({"PAYHOOKS_WORKER_METRICS_PORT": str(worker_port),
                      "PAYHOOKS_DISPATCHER_METRICS_PORT": str(dispatcher_port)})
    create_order(engine, reference="M-1", provider="yoco", payment_ref="ch_m1", amount=900)
    start_processes(stack)
    event_id = sender.send("yoco", "payment.succeeded", order_ref="ch_m1", amount=900)
    wait_final(engine, event_id, stack=stack)

    def scrape(port: int) -> str:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    worker = scrape(worker_port)
    assert metric(worker, "payhooks_event_attempts_total", provider="yoco", outcome="succeeded") == 1
    assert metric(worker, "payhooks_handler_seconds_count", provider="yoco") == 1
    assert metric(scrape(dispatcher_port), "payhooks_dispatched_total", lane="events") >= 1
    wait_for(lambda: metric(scrape(dispatcher_port), "payhooks_rows", table="webhook_events",
                            status="succeeded") == 1, timeout=15, message="the status gauge")
    # nothing is configured to send: both deliveries were written skipped
    wait_for(lambda: metric(scrape(dispatcher_port), "payhooks_rows", table="deliveries",
                            status="skipped") == 2, timeout=15, message="the deliveries gauge")


def test_worker_logs_are_json_lines_with_an_action(stack, sender, engine) -> None:
    create_order(engine, reference="L-1", provider="yoco", payment_ref="ch_l1", amount=900)
    start_processes(stack)
    event_id = sender.send("yoco", "payment.succeeded", order_ref="ch_l1", amount=900)
    wait_final(engine, event_id, stack=stack)
    # The line is written just after the commit that made the event final; stopping the
    # process group in between would kill the pool child before it writes it.
    wait_for(lambda: '"event.succeeded"' in (stack.workdir / "worker.log").read_text(), timeout=15,
             message="the worker's event.succeeded line")
    stack.stop()
    lines = [*(stack.workdir / "worker.log").read_text().splitlines(),
             *(stack.workdir / "dispatcher.log").read_text().splitlines()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    done = [r for r in records if r["action"] == "event.succeeded"]
    assert done and done[0]["event_id"] == event_id and done[0]["provider"] == "yoco"
    assert any(r["action"] == "dispatcher.started" for r in records)
    secrets = [v for k, v in stack.env.items() if k.endswith(("_SECRETS", "_SECRET", "_BASIC_AUTH"))]
    text = json.dumps(records)
    assert secrets and not any(s in text for s in secrets)
