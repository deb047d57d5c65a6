"""The support kit of the tests, the benches and the fault harness, written once: processes, services,
postgres, fakes and load. tests/ and bench/ import it; it imports neither of them.
"""
