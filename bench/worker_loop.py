"""The worker alone, in one process: CPU and wall time per event of ``process_events``.

    python -m bench.worker_loop [--events 3000] [--batch 20,100] [--providers smartpay,yoco,shadhinpay]
    python <this file> ...   run by another checkout's interpreter, from that checkout: its worker, same loop

A fresh database (``payhooks db upgrade``), N registered orders and their paid
events stored and dispatched (queued), then ``process_events`` over batches of
B ids, timed with ``time.process_time`` (this process only: Postgres is not in
it) and the wall clock. No broker, no receiver: the figure is the worker's own
cost, steadier than the end-to-end CPU shares on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, os.getcwd())  # run as a file from another checkout: that checkout's packages

from sqlalchemy import create_engine  # noqa: E402

from bench.targets import drop, fresh_database  # noqa: E402
from bench.workload import PAID_EVENT_TYPE, build_workload, insert_orders  # noqa: E402
from cli import devsecrets  # noqa: E402
from models import transitions  # noqa: E402
from models.db import normalise_url  # noqa: E402
from models.ingest import store_event  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--batch", default="20,100", help="comma-separated batch sizes, one loop each")
    parser.add_argument("--providers", default="smartpay,yoco,shadhinpay")
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for batch in (int(b) for b in args.batch.split(",")):
        print(json.dumps(_loop(args, batch)))
    return 0


def _loop(args: argparse.Namespace, batch: int) -> dict[str, object]:
    database, url = fresh_database(args.server_url)
    engine = None
    try:
        env = dict(os.environ, PAYHOOKS_DATABASE_URL=url, **devsecrets.generate())
        subprocess.run([str(Path(sys.executable).with_name("payhooks")), "db", "upgrade"], env=env, check=True,
                       capture_output=True)
        os.environ.update({k: v for k, v in env.items() if k.startswith("PAYHOOKS_")})
        from models.settings import load_settings
        from workers.processing import Runtime, process_events

        engine = create_engine(normalise_url(url))
        workload = build_workload(args.events, tuple(args.providers.split(",")), run_id="loop")
        insert_orders(engine, workload.orders)
        with engine.begin() as conn:
            for n, request in enumerate(workload.requests):
                store_event(conn.connection.driver_connection, provider=request.provider, event_key=f"loop-{n}",
                            event_type=PAID_EVENT_TYPE[request.provider], livemode=False, raw_body=request.body,
                            headers={}, payload=json.loads(request.body), secret_index=0, verify_method="bench")
        with engine.begin() as conn:
            ids = transitions.claim_due(conn, batch_size=args.events, lease_seconds=600)
        runtime = Runtime(settings=load_settings(), engine=engine)
        outcomes: dict[int, str] = {}
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(ids), batch):
            outcomes.update(process_events(runtime, ids[start:start + batch]))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"events": len(ids), "batch": batch, "outcomes": dict(Counter(outcomes.values())),
                "cpu_ms_per_event": round(1000 * cpu / len(ids), 3),
                "wall_ms_per_event": round(1000 * wall / len(ids), 3), "code": str(Path(sys.executable).parent)}
    finally:
        if engine is not None:
            engine.dispose()
        drop(args.server_url, database)


if __name__ == "__main__":
    sys.exit(main())
