"""The fault-injection harness: the promise of payhooks checked under one fault per scenario.

Every 2xx-acknowledged event ends succeeded, ignored or dead, none is lost, and
no effect happens twice, whatever fails. ``python -m bench.faults`` runs every
scenario (``--quick`` for CI sizes); see README.md, "Reliability", for the table of the last
full run and how to read it.

Modules: cluster (the processes and the kit's fakes: SMTP, merchant,
ProcessOut), plan (what is sent; testkit.load's Stream sends it as providers
do, with resends), scenarios (the faults and their sizes), settle and ledger
(recovery and the checks), leaks (the secrets search), runner and results
(the table and the JSON; tests/faults/test_ledger.py tries the checks on
made-up data); slow_handler is loaded by the workers of the worker-kill scenario.
Processes, fakes, the load generator and the restartable embedded Postgres
come from testkit/.
"""

MARK = "faults"
"""Prefix of the ``application_name`` the slow test handler sets (here, so importing it registers nothing)."""
