"""`python -m cli`: the `payhooks` command, for a checkout without its console script (and `up`'s children)."""
from __future__ import annotations

from cli.main import main

main()
