"""`payhooks serve` on granian, the real server process: what the receiver promised under gunicorn still holds.

Body limit, chunked bodies, idle keep-alive connections, JSON logs and a
graceful stop on SIGTERM. (Metrics summed over processes: test_metrics.py;
malformed HTTP: test_hostile_input.py.)
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from testkit.services import serve_process
from tests.conftest import TEST_SECRETS
from tests.integration.helpers import count_events, inserts_held, read_answer, signed_request
from tests.integration.stack import scalar

ENV = {"PAYHOOKS_YOCO_SECRETS": TEST_SECRETS["yoco"][0], "PAYHOOKS_MAX_BODY_BYTES": "2048",
       "HTTP_PROXY": "http://proxy-user:proxy-pass@proxy.internal:3128"}


@pytest.fixture(scope="module")
def served(tmp_path_factory, database_url, migrated_engine):
    workdir = tmp_path_factory.mktemp("serve")
    with serve_process(database_url=database_url, workdir=workdir, workers=2, threads=4, env=ENV,
                       log_path=workdir / "serve.log") as (base, _):
        yield base, workdir / "serve.log"


def _port(base: str) -> int:
    return int(base.rpartition(":")[2])


def test_a_chunked_body_arrives_whole(served, settings, engine) -> None:
    base, _ = served
    body, headers = signed_request(settings, "yoco", event_id="evt_chunked")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    chunks = [body[i:i + 100] for i in range(0, len(body), 100)]
    with socket.create_connection(("127.0.0.1", _port(base)), timeout=10) as sock:
        sock.sendall(f"POST /webhooks/yoco HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode())
        for chunk in chunks:  # separate writes: the server sees the body arrive in pieces
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.01)
        sock.sendall(b"0\r\n\r\n")
        status, answer = read_answer(sock)
    assert len(chunks) > 1
    assert status == 200 and json.loads(answer)["status"] == "accepted"
    stored = scalar(engine, "SELECT raw_body FROM webhook_events WHERE event_key = 'evt_chunked'")
    assert bytes(stored) == body


def test_the_servers_environment_never_reads_as_request_headers(served, settings, engine) -> None:
    # granian puts the server's environment into each WSGI environ: HTTP_PROXY would look like a header
    base, _ = served
    body, headers = signed_request(settings, "yoco", event_id="evt_env")
    assert httpx.post(f"{base}/webhooks/yoco", content=body, headers=headers).status_code == 200
    stored = scalar(engine, "SELECT headers FROM webhook_events WHERE event_key = 'evt_env'")
    assert "proxy" not in stored and "proxy-pass" not in json.dumps(stored)
    assert stored["content-type"] == "application/json"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_is_413(served, settings, engine, framing) -> None:
    base, _ = served
    body, headers = signed_request(settings, "yoco", body=b'{"id":"evt_big","pad":"' + b"x" * 4096 + b'"}')
    content = body if framing == "content-length" else iter([body[:2000], body[2000:]])
    response = httpx.post(f"{base}/webhooks/yoco", content=content, headers=headers, timeout=10)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert count_events(engine) == 0


def test_idle_keepalive_connections_never_stall_requests(served, settings) -> None:
    base, _ = served
    with ExitStack() as stack:
        # 64 connections that never send a byte, and 16 kept alive after one request each
        for _ in range(64):
            stack.enter_context(socket.create_connection(("127.0.0.1", _port(base)), timeout=10))
        for _ in range(16):
            client = stack.enter_context(httpx.Client(base_url=base, timeout=5))
            assert client.get("/healthz").status_code == 200
        # every new request is answered promptly (gunicorn gthread held a thread per idle connection
        # for up to 5 s; 40 of them stalled requests for 10-20 s)
        for i in range(10):
            body, headers = signed_request(settings, "yoco", event_id=f"evt_idle_{i}")
            answer = httpx.post(f"{base}/webhooks/yoco", content=body, headers=headers, timeout=2.0)
            assert answer.status_code == 200 and answer.json()["status"] == "accepted"


def test_logs_are_json_lines_with_an_action_and_no_secret(served, settings) -> None:
    base, log_path = served
    body, headers = signed_request(settings, "yoco", event_id="evt_log")
    assert httpx.post(f"{base}/webhooks/yoco", content=body + b" ", headers=headers).status_code == 401
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, granian's own included, is JSON
    assert any(r["action"] == "webhook.unverified" and r["provider"] == "yoco" for r in records)
    assert any(r["logger"].startswith("_granian") for r in records)
    assert TEST_SECRETS["yoco"][0] not in log_path.read_text()


def test_sigterm_finishes_requests_in_flight_and_stores_their_events(tmp_path, database_url, settings,
                                                                    engine) -> None:
    posts = [signed_request(settings, "yoco", event_id=f"evt_stop_{i}") for i in range(8)]
    with serve_process(database_url=database_url, workdir=tmp_path, workers=2, threads=4, env=ENV,
                       log_path=tmp_path / "serve.log") as (base, server), \
            ThreadPoolExecutor(max_workers=8) as pool:
        with inserts_held(database_url) as wait_blocked:
            # Given eight webhooks in flight, held before their commit
            answers = [pool.submit(httpx.post, f"{base}/webhooks/yoco", content=body, headers=headers, timeout=30)
                       for body, headers in posts]
            wait_blocked()
            time.sleep(0.5)  # let every request reach the server
            # When the server is told to stop (SIGTERM to its main process, as `docker stop` does)
            os.kill(server.pid, signal.SIGTERM)
            time.sleep(0.5)
            assert server.poll() is None and not any(a.done() for a in answers)
        # Then, once the database lets them commit, each gets its 200, and the server exits cleanly
        results = [a.result(timeout=30) for a in answers]
        assert server.wait(timeout=30) == 0
    assert [r.status_code for r in results] == [200] * 8
    assert all(r.json()["status"] == "accepted" for r in results)
    assert count_events(engine) == 8
    stopped = [json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines()
               if '"receiver.stopped"' in line]
    assert len(stopped) == 2  # each worker process closed its writer


def test_workers_is_the_number_of_worker_processes(tmp_path, database_url, migrated_engine) -> None:
    import psutil

    with serve_process(database_url=database_url, workdir=tmp_path, workers=3, threads=2, env=ENV) as (_, server):
        # every worker builds its app after the fork; readyz answered from one of them
        children = psutil.Process(server.pid).children()
    assert len(children) == 3
