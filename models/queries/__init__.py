"""The one query layer the operator's tools read through: the CLI and the console.

One module per entity (events, deliveries, orders, operator actions, the
overview); each function takes a connection and leaves the transaction to its
caller. Every listing pages by keyset (never OFFSET), and every query is
written to be bound by an index at millions of events (see the EXPLAIN test).
"""
