"""A local ProcessOut API for benchmarks: ``GET /events/{id}`` from a JSON file.

It is `payhooks up`'s simulator (:mod:`sandbox.processout_sim`), run as its own
process so it never competes with the load generator for the GIL.
``GET /healthz`` answers 200 once it listens. Unknown ids get 404, a wrong
Basic auth 401, as the real API would.
"""
from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ProcessSet, env_without_payhooks, free_port, wait_http_ok


@dataclass(frozen=True)
class FakeProcessOut:
    """Where the fake listens and the credentials it expects (PAYHOOKS_PROCESSOUT_* values)."""

    url: str
    project_id: str
    project_secret: str

    def env(self) -> dict[str, str]:
        return {
            "PAYHOOKS_PROCESSOUT_API_URL": self.url,
            "PAYHOOKS_PROCESSOUT_PROJECT_ID": self.project_id,
            "PAYHOOKS_PROCESSOUT_PROJECT_SECRET": self.project_secret,
        }


def start(processes: ProcessSet, events: dict[str, dict[str, Any]], *, workdir: Path) -> FakeProcessOut:
    """Write ``events`` (id → event object) to a file and start the fake on a free port."""
    events_file = workdir / "processout-events.json"
    events_file.write_text(json.dumps(events))
    fake = FakeProcessOut(url=f"http://127.0.0.1:{free_port()}", project_id="proj_bench",
                          project_secret=secrets.token_urlsafe(16))
    port = fake.url.rsplit(":", 1)[1]
    processes.start("fake-processout", [sys.executable, "-m", "sandbox.processout_sim", "--port", port,
                                        "--events", str(events_file),
                                        "--auth", f"{fake.project_id}:{fake.project_secret}"],
                    env=env_without_payhooks(PYTHONPATH=str(Path(__file__).resolve().parents[1])), cwd=workdir)
    wait_http_ok(f"{fake.url}/healthz", timeout=30, alive=lambda: [n for n in processes.exited()
                                                                    if n == "fake-processout"])
    return fake
