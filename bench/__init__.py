"""Benchmarks of payhooks, run as modules: ``python -m bench.e2e --help``.

common.py (ports, processes, signed requests, percentiles), workload.py (orders
and their events), sender.py (the load generator), cpu.py (who used the CPU),
fake_processout.py (a local ProcessOut API) and targets.py (a running payhooks:
separate services or `payhooks up`) are shared by every benchmark.
"""
