"""Tests for vrouter.core.timers and vrouter.core.clock."""

from __future__ import annotations

import pytest

from vrouter.core.clock import FakeClock
from vrouter.core.timers import Timers


def recorder(log: list[tuple[str, float]], name: str):
    return lambda now: log.append((name, now))


def test_callbacks_run_in_deadline_order_not_schedule_order() -> None:
    timers = Timers()
    log: list[tuple[str, float]] = []
    timers.schedule(30.0, recorder(log, "c"))
    timers.schedule(10.0, recorder(log, "a"))
    timers.schedule(20.0, recorder(log, "b"))
    assert timers.run(100.0) == 3
    assert log == [("a", 100.0), ("b", 100.0), ("c", 100.0)]
    assert len(timers) == 0


def test_equal_deadlines_run_in_schedule_order() -> None:
    timers = Timers()
    log: list[tuple[str, float]] = []
    for name in "abcde":
        timers.schedule(5.0, recorder(log, name))
    timers.run(5.0)
    assert [n for n, _ in log] == list("abcde")


def test_run_only_runs_what_is_due_and_only_once() -> None:
    timers = Timers()
    log: list[tuple[str, float]] = []
    timers.schedule(10.0, recorder(log, "a"))
    timers.schedule(20.0, recorder(log, "b"))
    assert timers.run(9.999) == 0
    assert timers.run(10.0) == 1  # due exactly at the deadline
    assert timers.run(10.0) == 0
    assert timers.run(19.0) == 0
    assert timers.run(25.0) == 1
    assert log == [("a", 10.0), ("b", 25.0)]


def test_cancel_stops_the_callback() -> None:
    timers = Timers()
    log: list[tuple[str, float]] = []
    a = timers.schedule(10.0, recorder(log, "a"))
    timers.schedule(20.0, recorder(log, "b"))
    a.cancel()
    assert len(timers) == 1
    assert timers.run(30.0) == 1
    assert log == [("b", 30.0)]


def test_a_callback_may_schedule_and_cancel_others() -> None:
    timers = Timers()
    log: list[tuple[str, float]] = []
    later = timers.schedule(15.0, recorder(log, "later"))

    def first(now: float) -> None:
        log.append(("first", now))
        later.cancel()
        timers.schedule(now + 5.0, recorder(log, "rescheduled"))

    timers.schedule(10.0, first)
    timers.run(12.0)
    assert log == [("first", 12.0)]
    assert timers.next_deadline() == 17.0
    timers.run(17.0)
    assert log == [("first", 12.0), ("rescheduled", 17.0)]


def test_next_deadline_skips_cancelled_timers() -> None:
    timers = Timers()
    assert timers.next_deadline() is None
    a = timers.schedule(10.0, lambda now: None)
    b = timers.schedule(20.0, lambda now: None)
    timers.schedule(30.0, lambda now: None)
    assert timers.next_deadline() == 10.0
    a.cancel()
    b.cancel()
    assert timers.next_deadline() == 30.0
    assert len(timers) == 1


def test_next_deadline_is_none_when_everything_is_cancelled() -> None:
    timers = Timers()
    for t in (1.0, 2.0):
        timers.schedule(t, lambda now: None).cancel()
    assert timers.next_deadline() is None
    assert len(timers) == 0


def test_wakeup_only_for_a_deadline_earlier_than_any_pending() -> None:
    timers = Timers()
    calls: list[float] = []
    timers.wakeup = lambda owner, deadline: calls.append(deadline)
    timers.schedule(20.0, lambda now: None)
    timers.schedule(30.0, lambda now: None)  # later: no wakeup
    timers.schedule(20.0, lambda now: None)  # equal: no wakeup
    timers.schedule(10.0, lambda now: None)  # earlier: wakeup
    assert calls == [20.0, 10.0]


def test_wakeup_compares_against_live_timers_only() -> None:
    timers = Timers()
    calls: list[float] = []
    early = timers.schedule(10.0, lambda now: None)
    timers.schedule(30.0, lambda now: None)
    timers.wakeup = lambda owner, deadline: calls.append(deadline)
    early.cancel()
    timers.schedule(20.0, lambda now: None)
    assert calls == [20.0]


def test_wakeup_after_run_empties_the_heap() -> None:
    timers = Timers()
    calls: list[float] = []
    timers.wakeup = lambda owner, deadline: calls.append(deadline)
    timers.schedule(10.0, lambda now: None)
    timers.run(10.0)
    timers.schedule(50.0, lambda now: None)
    assert calls == [10.0, 50.0]


def test_clear_cancels_everything() -> None:
    timers = Timers()
    log: list[tuple[str, float]] = []
    handle = timers.schedule(1.0, recorder(log, "a"))
    timers.schedule(2.0, recorder(log, "b"))
    timers.clear()
    assert handle.cancelled
    assert len(timers) == 0
    assert timers.next_deadline() is None
    assert timers.run(10.0) == 0
    assert log == []


def test_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(start=5.0)
    assert clock.now() == 5.0
    assert clock.advance(2.5) == 7.5
    assert clock.now() == 7.5
    assert clock.advance(0) == 7.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert clock.now() == 7.5


def test_fake_clock_drives_timers() -> None:
    clock = FakeClock()
    timers = Timers()
    log: list[tuple[str, float]] = []
    timers.schedule(clock.now() + 1.0, recorder(log, "a"))
    clock.advance(0.5)
    timers.run(clock.now())
    assert log == []
    clock.advance(0.5)
    timers.run(clock.now())
    assert log == [("a", 1001.0)]
