"""What `payhooks up` and `payhooks send` use to imitate the outside world locally.

Sample bodies in each provider's envelope (:mod:`sandbox.samples`), the event
types `send` accepts (:mod:`sandbox.catalog`) and a local ProcessOut API
(:mod:`sandbox.processout_sim`). Fixtures, not production code: it may import
:mod:`providers` (to sign and to know the types), and only the command line,
the tests and the benches import it, never the receiver or the workers.
"""
