"""The support kit of the tests, the benches and the fault harness, written once.

processes (child processes in their own groups, waiting until ready, free
ports), services (serve, dispatcher and worker as real processes; the
broker's queues), postgres (fresh databases; the embedded server), fakes (one
per outside service: ProcessOut, the merchant, SMTP) and load (signed
requests, the load generator, and the stream that resends as providers
do). tests/ and bench/ import it; it imports neither of them.
"""
