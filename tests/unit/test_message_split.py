"""The dispatcher's messages follow the backlog: one id at a time when it trickles, big batches when it piles up."""
from __future__ import annotations

import pytest

from workers.celery_app import split


@pytest.mark.parametrize(("count", "batch_size", "spread", "sizes"), [
    (0, 100, 2, []),
    (1, 100, 2, [1]),                    # a trickle: out at once, alone
    (3, 100, 2, [2, 1]),                 # every worker process gets a share
    (50, 100, 2, [25, 25]),
    (200, 100, 2, [100, 100]),           # a backlog: as few messages as batch_size allows
    (250, 100, 2, [84, 84, 82]),
    (200, 20, 2, [20] * 10),
    (5, 100, 8, [1] * 5),
])
def test_messages_are_as_few_as_the_batch_size_allows_and_at_least_one_per_worker(
        count: int, batch_size: int, spread: int, sizes: list[int]) -> None:
    ids = list(range(count))
    chunks = split(ids, batch_size=batch_size, spread=spread)
    assert [len(c) for c in chunks] == sizes
    assert [i for c in chunks for i in c] == ids  # every id once, in order
