"""Multiprocess metrics need their directory before prometheus_client is imported (see models.metrics)."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def enable_multiprocess(role: str) -> Path:
    """Point this process and its children at a fresh multiprocess metrics directory for ``role``.

    Call from an entry point before anything imports :mod:`models.metrics`.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        return Path(configured)
    path = Path(tempfile.gettempdir()) / f"payhooks-metrics-{role}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    creator = os.getpid()

    def _remove() -> None:  # forked children inherit atexit handlers: only the creator removes it
        if os.getpid() == creator:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(_remove)
    return path
