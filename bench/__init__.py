"""Benchmarks of payhooks, run as modules: ``python -m bench.e2e --help``.

workload.py (orders and their events), targets.py (a running payhooks:
its services on a fresh database), cpu.py (who used the CPU) and summary.py
(run facts, the report's shapes, the common options, the exit status) are
shared by every benchmark; the processes, fakes, fresh databases and the load generator come
from testkit/, as they do for the tests.
"""
