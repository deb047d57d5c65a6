"""The fault-injection harness: the promise of payhooks checked under one fault per scenario.

Every 2xx-acknowledged event ends succeeded, ignored or dead, none is lost, and
no effect happens twice, whatever fails. ``python -m bench.faults`` runs every
scenario (``--quick`` for CI sizes); see README.md, "Reliability", for the table of the last
full run and how to read it.

Modules: cluster (the processes), outside (SMTP, merchant, ProcessOut: the
kit's fakes), plan and traffic (what is sent, and how: as providers do, with
resends), scenarios (the faults) and catalog (their sizes), settle and ledger
(recovery and the checks), leaks (the secrets search), runner, results and
report; slow_handler is loaded by the workers of the worker-kill scenario.
Processes, fakes and the restartable embedded Postgres come from testkit/.
"""

MARK = "faults"
"""Prefix of the ``application_name`` the slow test handler sets (here, so importing it registers nothing)."""
