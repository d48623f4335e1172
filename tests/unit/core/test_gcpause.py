"""The garbage collector held off by overlapping jobs, and back on after the last."""

from __future__ import annotations

import asyncio
import gc

import pytest

from vrouter.core import gcpause


def test_overlapping_holds_turn_the_collector_back_on_after_the_last() -> None:
    assert gc.isenabled()
    first = gcpause.held()
    second = gcpause.held()
    first.__enter__()
    second.__enter__()
    assert not gc.isenabled()
    first.__exit__(None, None, None)  # ends before the second: the collector stays off
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gcpause.held():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_settle_freezes_what_is_alive_so_full_collections_skip_it() -> None:
    before = object.__new__(type("Before", (), {}))  # a tracked object, alive at settle
    threshold = gc.get_threshold()
    try:
        gcpause.settle()
        assert gc.get_freeze_count() > 0
        assert not any(o is before for o in gc.get_objects())
        after = object.__new__(type("After", (), {}))
        assert any(o is after for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_settle_collects_the_youngest_generation_less_often() -> None:
    old = gc.get_threshold()
    gc.set_threshold(700, *old[1:])  # Python's default
    try:
        gcpause.settle()
        assert gc.get_threshold() == (gcpause.YOUNG, *old[1:])
        assert gcpause.YOUNG > 700
    finally:
        gc.unfreeze()
        gc.set_threshold(*old)


def test_begin_and_end_hold_the_collector_as_held_does() -> None:
    gcpause.begin()
    with gcpause.held():
        assert not gc.isenabled()
    assert not gc.isenabled()  # begin's hold is still on
    gcpause.end()
    assert gc.isenabled()


def test_a_burst_holds_the_collector_until_requests_stop_coming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gcpause, "BURST_IDLE", 0.05)

    async def scenario() -> list[bool]:
        burst = gcpause.Burst()
        seen = []
        for _ in range(6):  # 0.12 s of requests 0.02 s apart: longer than BURST_IDLE
            burst.request()
            seen.append(gc.isenabled())
            await asyncio.sleep(0.02)
        seen.append(gc.isenabled())
        await asyncio.sleep(0.15)  # idle: the hold ends
        seen.append(gc.isenabled())
        return seen

    assert gc.isenabled()
    assert asyncio.run(scenario()) == [False] * 7 + [True]
    assert gc.isenabled()


def test_a_burst_lets_the_collector_run_past_its_allocation_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> list[bool]:
        burst = gcpause.Burst()
        burst.request()
        held = not gc.isenabled()
        monkeypatch.setattr(gcpause, "BURST_CAP", 0)  # any allocation is past it
        burst.request()
        after_cap = gc.isenabled()
        burst.request()  # the next request holds again
        again = not gc.isenabled()
        burst.end()
        return [held, after_cap, again, gc.isenabled()]

    assert asyncio.run(scenario()) == [True, True, True, True]


def test_a_burst_ends_after_its_longest_time_under_steady_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(gcpause, "BURST_LONGEST", 0.05)

    async def scenario() -> list[bool]:
        burst = gcpause.Burst()
        burst.request()
        held = not gc.isenabled()
        await asyncio.sleep(0.06)
        burst.request()
        ended = gc.isenabled()
        burst.end()
        return [held, ended]

    assert asyncio.run(scenario()) == [True, True]


@pytest.mark.parametrize(
    ("counts", "full"),
    [
        ([0, 1, 2, 3, 4, 2, 0], True),  # all destroyed again: the free lists are emptied
        ([10, 12, 11], False),  # one gone of 11 left: not worth a walk
        ([100, 40, 20], True),  # 80 gone, 20 left
        ([1, 2, 3, 4], False),  # only created
    ],
)
def test_a_burst_that_destroyed_vnets_ends_with_a_full_collection(
    monkeypatch: pytest.MonkeyPatch, counts: list[int], full: bool
) -> None:
    monkeypatch.setattr(gcpause, "BURST_IDLE", 0.02)
    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation) or 0)
    vnets = iter(counts)
    now = [0]

    def count() -> int:
        return now[0]

    async def scenario() -> None:
        burst = gcpause.Burst(count)
        for n in vnets:  # each request sees what the one before it left
            now[0] = n
            burst.request()
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # idle: the burst ends

    asyncio.run(scenario())
    assert gc.isenabled()
    assert collections == ([2] if full else [])
