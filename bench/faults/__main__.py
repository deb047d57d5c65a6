"""``python -m bench.faults [--scenario NAME|all] [--events N] [--quick] [--keep] [--json PATH]``.

Runs each scenario against a fresh database on the harness's own embedded
Postgres and the machine's RabbitMQ (a queue of its own; without RabbitMQ,
kombu's SQLAlchemy transport, and the RabbitMQ scenario is skipped), prints
the table and exits 1 when any scenario broke the promise.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from bench.faults.scenarios import SCENARIOS
from bench.faults.results import print_report, write_json
from bench.faults.runner import run_scenario
from testkit.postgres import EmbeddedServer
from testkit.processes import log
from testkit.services import rabbitmq_url


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="all", help=f"all, or a comma-separated list of {', '.join(SCENARIOS)}")
    parser.add_argument("--events", type=int, default=None, help="events per scenario (default: per scenario)")
    parser.add_argument("--quick", action="store_true", help="CI sizes: fewer events, shorter outages")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs) even when all pass")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(unknown)}")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as ^C: finally blocks stop processes, start RabbitMQ
    rabbitmq = rabbitmq_url()
    run_root = Path(tempfile.mkdtemp(prefix="payhooks-faults-"))
    server = EmbeddedServer(run_root / "postgres")
    results = []
    try:
        server.start()
        for name in names:
            scenario = SCENARIOS[name]
            if scenario.needs_rabbitmq and not rabbitmq:
                log(f"{name}: skipped, RabbitMQ does not answer")
                continue
            result = run_scenario(scenario, server=server, run_root=run_root, broker_url=rabbitmq,
                                  quick=args.quick, events=args.events)
            log(f"{name}: {'pass' if result.passed else 'FAIL'} in {result.seconds:.0f} s")
            results.append(result)
    finally:
        server.stop()
        print_report(results)
        if args.json:
            write_json(results, args.json)
        if args.keep or not all(r.passed for r in results):
            log(f"logs kept in {run_root}")
        else:
            shutil.rmtree(run_root, ignore_errors=True)
    return 0 if results and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
