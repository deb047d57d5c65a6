"""Where `payhooks up` keeps its data, found from any subdirectory the way git finds ``.git``.

``PAYHOOKS_DATA_DIR`` wins when set. Otherwise the nearest ``.payhooks``
directory in the working directory or one of its parents is used, so every
command run inside a project whose ``payhooks up`` is running finds its
database, its dev secrets and its receiver. With none found, ``./.payhooks``
is where a first ``payhooks up`` creates it.

While `up` runs it writes ``runtime.env`` there: the embedded database URL,
the receiver's URL and the ProcessOut simulator's URL. ``up`` deletes it on
the way out, so its presence means "an `up` is (or was, if it was killed)
running here".
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DIR_NAME = ".payhooks"
RUNTIME_FILE = "runtime.env"
SECRETS_FILE = "secrets.env"
UP_URL = "PAYHOOKS_UP_URL"
"""The receiver `up` runs (not a setting: read by `payhooks send` to find it)."""
SIMULATOR_URL = "PAYHOOKS_UP_PROCESSOUT_SIMULATOR_URL"
"""The ProcessOut API simulator `up` runs; `send processout` registers its events there."""


@dataclass(frozen=True)
class DataDir:
    path: Path
    explicit: bool
    """Named by PAYHOOKS_DATA_DIR (else found by searching, or the default ./.payhooks)."""
    found: bool
    """It exists (explicitly named, or found in the working directory or a parent)."""

    @property
    def project_root(self) -> Path:
        return self.path.parent

    def runtime(self) -> dict[str, str]:
        """``runtime.env`` as a dict: empty when no `up` is running here."""
        return read_env_file(self.path / RUNTIME_FILE)


def find_data_dir(*, start: Path | None = None, environ: dict[str, str] | None = None) -> DataDir:
    """PAYHOOKS_DATA_DIR, else the nearest ``.payhooks`` upwards from ``start`` (the cwd), else ./.payhooks."""
    env = os.environ if environ is None else environ
    here = (start or Path.cwd()).resolve()
    named = env.get("PAYHOOKS_DATA_DIR")
    if named:
        path = Path(named)
        path = path if path.is_absolute() else here / path
        return DataDir(path=path, explicit=True, found=path.is_dir())
    for directory in (here, *here.parents):
        candidate = directory / DIR_NAME
        if candidate.is_dir():
            return DataDir(path=candidate, explicit=False, found=True)
    return DataDir(path=here / DIR_NAME, explicit=False, found=False)


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines (comments and blanks skipped); empty when the file is missing."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def no_database_hint(data_dir: DataDir) -> str:
    """What to do when no database URL is configured: the message names the directory to use."""
    if data_dir.found and not data_dir.runtime():
        return (f"PAYHOOKS_DATABASE_URL is not set, and `payhooks up` is not running in {data_dir.project_root} "
                f"(its data directory {data_dir.path} has no {RUNTIME_FILE}). Start it there with "
                "`payhooks up`, or set PAYHOOKS_DATABASE_URL")
    if data_dir.explicit:
        return (f"PAYHOOKS_DATABASE_URL is not set and PAYHOOKS_DATA_DIR={data_dir.path} holds no running "
                "`payhooks up`. Point PAYHOOKS_DATA_DIR at the .payhooks directory of a running `payhooks up`, "
                "or set PAYHOOKS_DATABASE_URL")
    return (f"PAYHOOKS_DATABASE_URL is not set, and no `payhooks up` data directory ({DIR_NAME}) was found "
            f"in {data_dir.project_root} or any parent directory. Run this command in the directory where "
            "`payhooks up` runs (or a subdirectory of it), set PAYHOOKS_DATA_DIR to its .payhooks directory, "
            "or set PAYHOOKS_DATABASE_URL")
