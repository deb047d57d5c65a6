"""Provider adapters: verify, parse, map types to canonical kinds; money in the providers' units.

The bottom layer: the receiver, the workers and the models import it; it
imports no Flask and nothing of ours (tests/unit/test_layers.py checks).
"""
