"""The loss and delay schedule of the test relay (tests/netem.py), on a fake clock."""

from __future__ import annotations

import random

from netem import Netem


def test_frames_leave_after_the_delay_in_order() -> None:
    line = Netem(loss=0.0, delay=0.010)
    line.offer(b"a", 1.000)
    line.offer(b"b", 1.004)
    assert line.next_due() == 1.010
    assert line.due(1.009) == []
    assert line.due(1.010) == [b"a"]
    assert line.next_due() == 1.014
    assert line.due(2.0) == [b"b"]
    assert line.next_due() is None
    assert (line.offered, line.dropped, line.delivered) == (2, 0, 2)


def test_loss_is_random_at_the_given_rate_and_counted() -> None:
    line = Netem(loss=0.02, delay=0.010, limit=1 << 20, rng=random.Random(3))
    for i in range(100_000):
        line.offer(i.to_bytes(4, "big"), 0.0)
    kept = line.due(1.0)
    assert 1700 < line.dropped < 2300
    assert line.dropped + len(kept) == line.offered == 100_000
    assert kept == sorted(kept)  # the survivors keep their order


def test_a_full_queue_drops_and_counts_the_overflow() -> None:
    line = Netem(loss=0.0, delay=0.010, limit=2)
    for frame in (b"a", b"b", b"c"):
        line.offer(frame, 0.0)
    assert line.overflowed == 1 and line.dropped == 0
    assert line.due(0.010) == [b"a", b"b"]
