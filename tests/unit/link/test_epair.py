"""Tests for vrouter.link.epair: queued delivery, limits, budget, containment."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import dpkt
import pytest

from vrouter.core import tables
from vrouter.link import epair as epair_module
from vrouter.link.epair import INLINE_QUIET, QUEUE_LIMIT, Epair
from vrouter.link.sparse import BULK_LEN
from vrouter.route import state as route_state

TEST_ETHERTYPE = 0x88B5


def frame_to(ifp, n: int) -> bytes:
    """A frame for ``ifp`` carrying ``n`` as its first payload bytes."""
    payload = n.to_bytes(4, "big") + b"\x00" * 42
    return bytes(
        dpkt.ethernet.Ethernet(
            dst=ifp.mac, src=b"\x02\x00\x00\x00\x00\x01", type=TEST_ETHERTYPE, data=payload
        )
    )


def break_on_one(epair: Epair, got: dict[str, list[int]]) -> None:
    """Make end b's handler raise for the frame carrying 1 (recording the others)."""
    b = epair.b.vnet

    def broken(ifp, frame, now):
        n = int.from_bytes(frame[14:18], "big")
        if n == 1:
            raise KeyError("bug")
        got["b"].append(n)

    b.link.ethertypes = tables.put(b.link.ethertypes, TEST_ETHERTYPE, broken)


@pytest.fixture
def pair(lab):
    """Vnets a and b joined by an epair; each records TEST_ETHERTYPE frames it receives."""
    a = lab.vnet("a")
    b = lab.vnet("b")
    ifa = lab.iface(a, "ep0", up=False)
    ifb = lab.iface(b, "ep0", up=False)
    epair = Epair(ifa, ifb)
    epair.queue_time = 3600.0  # building frames on a busy machine takes real time
    ifa.up = ifb.up = True
    got: dict[str, list[int]] = {"a": [], "b": []}
    for vnet in (a, b):

        def record(ifp, frame, now, name=vnet.name):
            got[name].append(int.from_bytes(frame[14:18], "big"))

        vnet.link.ethertypes = tables.put(vnet.link.ethertypes, TEST_ETHERTYPE, record)
    return epair, got


def test_delivery_waits_for_pump_and_keeps_order(pair, lab) -> None:
    epair, got = pair
    for n in range(5):
        epair.a.output(frame_to(epair.b, n))
    assert got == {"a": [], "b": []}
    assert epair.pending == 5
    assert epair.pump(lab.now) == 5
    assert got == {"a": [], "b": [0, 1, 2, 3, 4]}
    assert epair.pending == 0
    assert epair.pump(lab.now) == 0


def test_both_directions_share_the_queue_in_send_order(pair, lab) -> None:
    epair, got = pair
    epair.a.output(frame_to(epair.b, 1))
    epair.b.output(frame_to(epair.a, 2))
    epair.a.output(frame_to(epair.b, 3))
    epair.pump(lab.now)
    assert got == {"a": [2], "b": [1, 3]}
    a, b = epair.a.counters, epair.b.counters
    assert (a.tx_packets, a.rx_packets, b.tx_packets, b.rx_packets) == (2, 1, 1, 2)


def test_frames_are_copied_when_sent(pair, lab) -> None:
    epair, got = pair
    buf = bytearray(frame_to(epair.b, 7))
    epair.a.output(buf)
    buf[14:18] = (99).to_bytes(4, "big")  # the sender reuses its buffer
    epair.pump(lab.now)
    assert got["b"] == [7]


def test_queue_limit_counts_tx_errors(pair, lab) -> None:
    epair, got = pair
    for n in range(QUEUE_LIMIT + 3):
        epair.a.output(frame_to(epair.b, n))
    assert epair.pending == QUEUE_LIMIT
    assert epair.a.counters.tx_packets == QUEUE_LIMIT
    assert epair.a.counters.tx_errors == 3
    assert epair.pump(lab.now, budget=QUEUE_LIMIT * 2) == QUEUE_LIMIT
    assert got["b"] == list(range(QUEUE_LIMIT))
    # Room again.
    epair.a.output(frame_to(epair.b, 5000))
    assert epair.a.counters.tx_errors == 3
    assert epair.pending == 1


def test_pump_budget_bounds_one_call_and_asks_to_be_called_again(pair, lab) -> None:
    epair, got = pair
    wakeups: list[Epair] = []
    epair.wakeup = wakeups.append
    for n in range(25):
        epair.a.output(frame_to(epair.b, n))
    assert wakeups == [epair]  # once, on going from idle to busy
    assert epair.pump(lab.now, budget=10) == 10
    assert got["b"] == list(range(10))
    assert epair.pending == 15
    assert len(wakeups) == 2  # still busy: call me again
    assert epair.pump(lab.now, budget=10) == 10
    assert len(wakeups) == 3
    assert epair.pump(lab.now, budget=10) == 5
    assert len(wakeups) == 3  # drained: no wakeup
    assert got["b"] == list(range(25))
    epair.a.output(frame_to(epair.b, 99))
    assert len(wakeups) == 4  # idle -> busy again


def test_exception_in_a_handler_costs_one_frame_not_the_batch(pair, lab) -> None:
    epair, got = pair
    break_on_one(epair, got)
    for n in range(3):
        epair.a.output(frame_to(epair.b, n))
    assert epair.pump(lab.now) == 3
    assert got["b"] == [0, 2]
    assert epair.b.counters.rx_drops == {"internal_error": 1}
    assert epair.b.counters.rx_errors == 1


def test_frames_into_a_destroyed_vnet_are_dropped_as_link_down(pair, lab) -> None:
    epair, got = pair
    epair.a.output(frame_to(epair.b, 1))
    lab.tree.destroy("b")
    assert epair.pump(lab.now) == 1
    assert got["b"] == []
    assert epair.b.counters.rx_drops == {"link_down": 1}


def _routing_loop(lab, inline: bool):  # type: ignore[no-untyped-def]
    """Vnets a and b joined by an epair, each routing 203.0.113.0/24 to the other; h1 on a
    has sent one datagram there with TTL 64.  Return (a, b, h1, the epair)."""
    a = lab.vnet("a")
    b = lab.vnet("b")
    h1 = lab.host(a, "eth0", "192.0.2.1/24", "192.0.2.10")
    epair = lab.epair(a, "ep0", "198.51.100.1/24", b, "ep0", "198.51.100.2/24")
    if inline:
        epair.inline = lambda: lab.now
    loop = IPv4Network("203.0.113.0/24")
    route_state.add_static(a, loop, via=IPv4Address("198.51.100.2"))
    route_state.add_static(b, loop, via=IPv4Address("198.51.100.1"))
    route_state.add_static(b, IPv4Network("192.0.2.0/24"), via=IPv4Address("198.51.100.1"))
    h1.learn_router(lab.now)
    h1.take()
    h1.send(h1.udp("203.0.113.5", ttl=64), lab.now)
    return a, b, h1, epair


def test_routing_loop_between_vnets_costs_queue_entries_and_ends_by_ttl(lab) -> None:
    a, b, h1, epair = _routing_loop(lab, inline=False)
    rounds = []
    while epair.pending:
        rounds.append(epair.pump(lab.now, budget=8))
    assert max(rounds) <= 8
    assert len(rounds) > 1  # the budget split the work
    # TTL 64 runs out after 63 hops: a forwards TTL 64, 62 .. 2 (32) and the
    # error back to h1; b forwards TTL 63 .. 3 (31).
    assert (a.inet.stats.forward, b.inet.stats.forward) == (33, 31)
    # a saw the even TTLs 64..2, b the odd ones down to 1: b answers.
    assert (a.inet.stats.ttl_exceeded, b.inet.stats.ttl_exceeded) == (0, 1)
    [frame] = h1.take_ip()
    error = frame.data
    assert error.src == IPv4Address("198.51.100.2").packed
    assert error.data.type == dpkt.icmp.ICMP_TIMEXCEED
    assert error.data.data.data.dst == IPv4Address("203.0.113.5").packed


def test_a_frame_that_waited_too_long_is_dropped_at_its_turn(pair, lab) -> None:
    epair, got = pair
    for n in range(3):
        epair.a.output(frame_to(epair.b, n))
    epair.queue_time = -1.0  # every frame in the queue is now too old
    assert epair.pump(lab.now) == 3
    assert got["b"] == [] and epair.b.counters.rx_drops["queue_stale"] == 3
    epair.queue_time = 60.0
    epair.a.output(frame_to(epair.b, 7))
    epair.pump(lab.now)
    assert got["b"] == [7]


def test_a_pump_is_bounded_by_time_too(pair, lab) -> None:
    epair, got = pair
    for n in range(5):
        epair.a.output(frame_to(epair.b, n))
    assert epair.pump(lab.now, budget=64, quantum=1e-12) == 1  # one frame spends it
    assert epair.pending == 4
    assert epair.pump(lab.now, budget=64) == 4
    assert got["b"] == list(range(5))


def sized(ifp, n: int, size: int, src: bytes = b"\x02\x00\x00\x00\x00\x01") -> bytes:
    """A frame for ``ifp`` numbered ``n``, ``size`` bytes long, from MAC ``src`` (its flow)."""
    payload = n.to_bytes(4, "big") + b"\x00" * (size - 18)
    return bytes(dpkt.ethernet.Ethernet(dst=ifp.mac, src=src, type=TEST_ETHERTYPE, data=payload))


OTHER = b"\x02\x00\x00\x00\x00\x09"


def test_a_small_frame_of_another_flow_passes_bulk_in_flight(pair, lab) -> None:
    epair, got = pair
    for n in range(3):
        epair.a.output(sized(epair.b, n, BULK_LEN + 100))
    epair.a.output(sized(epair.b, 9, 100, OTHER))
    epair.b.output(sized(epair.a, 7, 100))  # the other direction passes too
    assert epair.pending == 5
    assert epair.pump(lab.now) == 5
    assert got == {"a": [7], "b": [9, 0, 1, 2]}
    assert epair.pending == 0


def test_the_small_frames_of_a_flow_stay_behind_its_bulk(pair, lab) -> None:
    epair, got = pair
    epair.a.output(sized(epair.b, 0, BULK_LEN + 100))
    epair.a.output(sized(epair.b, 1, 100))
    epair.a.output(sized(epair.b, 9, 100, OTHER))
    epair.a.output(sized(epair.b, 2, 100))
    assert epair.pump(lab.now, budget=1) == 1
    assert got["b"] == [9]
    epair.a.output(sized(epair.b, 3, 100))  # still behind its flow's bulk
    assert epair.pump(lab.now) == 4
    assert got["b"] == [9, 0, 1, 2, 3]


def test_without_sparse_first_bulk_keeps_its_place(pair, lab) -> None:
    epair, got = pair
    epair.sparse_first = False
    epair.a.output(sized(epair.b, 0, BULK_LEN + 100))
    epair.a.output(sized(epair.b, 9, 100, OTHER))
    assert epair.pump(lab.now) == 2
    assert got["b"] == [0, 9]


def test_bulk_counts_against_the_queue_limit(pair, lab) -> None:
    epair, _ = pair
    for n in range(QUEUE_LIMIT // 2):
        epair.a.output(sized(epair.b, n, BULK_LEN + 100))
    for n in range(QUEUE_LIMIT - QUEUE_LIMIT // 2):
        epair.a.output(sized(epair.b, n, 100, OTHER))
    with pytest.raises(OSError):
        epair.a.transmit(sized(epair.b, 0, 100, OTHER))
    epair.close()
    assert epair.pending == 0


def test_a_pump_asked_to_pause_stops_between_small_frames_and_bulk(pair, lab) -> None:
    epair, got = pair
    for n in range(2):
        epair.a.output(sized(epair.b, n, BULK_LEN + 100))
    epair.a.output(sized(epair.b, 9, 100, OTHER))
    epair.b.output(sized(epair.a, 7, 100))
    assert epair.pump(lab.now, pause=True) == 2 and epair.paused
    assert got == {"a": [7], "b": [9]} and epair.pending == 2
    assert epair.pump(lab.now, pause=True) == 2 and not epair.paused  # no small frame first
    assert got == {"a": [7], "b": [9, 0, 1]} and epair.pending == 0
    epair.a.output(sized(epair.b, 2, BULK_LEN + 100))
    epair.a.output(sized(epair.b, 8, 100, OTHER))
    assert epair.pump(lab.now) == 2 and not epair.paused  # not asked: one turn for both


@pytest.fixture
def clock(monkeypatch):
    """The epair's monotonic clock, moved by hand: ``clock[0]`` seconds."""
    now = [1000.0]
    monkeypatch.setattr(epair_module, "_monotonic", lambda: now[0])
    return now


def test_inline_a_small_frame_to_an_idle_epair_arrives_at_once(pair, lab, clock) -> None:
    epair, _ = pair
    seen: list[float] = []
    b = epair.b.vnet
    b.link.ethertypes = tables.put(
        b.link.ethertypes, TEST_ETHERTYPE, lambda ifp, frame, now: seen.append(now)
    )
    epair.inline = lambda: 42.0
    wakeups: list[Epair] = []
    epair.wakeup = wakeups.append
    buf = bytearray(frame_to(epair.b, 1))
    epair.a.output(buf)
    assert seen == [42.0] and epair.pending == 0 and wakeups == []
    assert (epair.a.counters.tx_packets, epair.b.counters.rx_packets) == (1, 1)


def test_inline_only_after_its_direction_was_quiet(pair, lab, clock) -> None:
    """A frame close behind another in its direction is queued (a busy link keeps its
    batches); the other direction and a frame after a quiet spell cross inline."""
    epair, got = pair
    epair.inline = lambda: lab.now
    epair.a.output(frame_to(epair.b, 1))
    clock[0] += INLINE_QUIET / 2
    epair.a.output(frame_to(epair.b, 2))
    assert got["b"] == [1] and epair.pending == 1
    epair.pump(lab.now)
    epair.b.output(frame_to(epair.a, 3))  # towards a: quiet so far
    assert got == {"a": [3], "b": [1, 2]} and epair.pending == 0
    clock[0] += INLINE_QUIET / 2  # the queued frame counts: quiet since frame 2 only
    epair.a.output(frame_to(epair.b, 4))
    assert got["b"] == [1, 2] and epair.pending == 1
    epair.pump(lab.now)
    clock[0] += 2 * INLINE_QUIET
    epair.a.output(frame_to(epair.b, 5))
    assert got["b"] == [1, 2, 4, 5] and epair.pending == 0


def test_inline_a_frame_waits_behind_frames_already_queued(pair, lab, clock) -> None:
    epair, got = pair
    epair.inline = lambda: lab.now
    epair.a.output(sized(epair.b, 0, BULK_LEN + 100))  # bulk is queued, idle or not
    assert got["b"] == [] and epair.pending == 1
    clock[0] += 2 * INLINE_QUIET
    epair.b.output(sized(epair.a, 1, 100))  # the other direction is not idle either
    clock[0] += 2 * INLINE_QUIET
    epair.a.output(sized(epair.b, 2, 100, OTHER))
    assert got == {"a": [], "b": []} and epair.pending == 3
    epair.pump(lab.now)
    assert got == {"a": [1], "b": [2, 0]} and epair.pending == 0
    clock[0] += 2 * INLINE_QUIET
    epair.a.output(sized(epair.b, 3, 100))  # idle again
    assert got["b"] == [2, 0, 3] and epair.pending == 0


def test_inline_what_the_peer_sends_meanwhile_is_queued(pair, lab, clock) -> None:
    """One level deep: an answer sent during an inline delivery waits for the pump, on
    this epair and on every other."""
    epair, got = pair
    epair.inline = lambda: lab.now
    b = epair.b.vnet

    def answer(ifp, frame, now):
        n = int.from_bytes(frame[14:18], "big")
        got["b"].append(n)
        epair.b.output(frame_to(epair.a, n + 100))

    b.link.ethertypes = tables.put(b.link.ethertypes, TEST_ETHERTYPE, answer)
    epair.a.output(frame_to(epair.b, 1))
    assert got == {"a": [], "b": [1]} and epair.pending == 1
    epair.pump(lab.now)
    assert got == {"a": [101], "b": [1]} and epair.pending == 0
    clock[0] += 2 * INLINE_QUIET
    epair.a.output(frame_to(epair.b, 2))  # the next delivery is inline again
    assert got["b"] == [1, 2] and epair.pending == 1


def test_inline_a_handler_that_raises_costs_that_frame(pair, lab, clock) -> None:
    epair, got = pair
    epair.inline = lambda: lab.now
    break_on_one(epair, got)
    epair.a.output(frame_to(epair.b, 1))
    clock[0] += 2 * INLINE_QUIET
    epair.a.output(frame_to(epair.b, 2))
    assert got["b"] == [2] and epair.pending == 0
    assert epair.b.counters.rx_drops == {"internal_error": 1}


def test_inline_routing_loop_between_vnets_still_ends_by_ttl(lab) -> None:
    a, b, h1, epair = _routing_loop(lab, inline=True)
    assert epair.pending == 1  # a's hop to b inline, b's back to a queued
    rounds = []
    while epair.pending:
        rounds.append(epair.pump(lab.now, budget=8))
    assert max(rounds) <= 8 and len(rounds) > 1  # every later hop a queue entry
    assert (a.inet.stats.forward, b.inet.stats.forward) == (33, 31)
    assert (a.inet.stats.ttl_exceeded, b.inet.stats.ttl_exceeded) == (0, 1)
    [frame] = h1.take_ip()
    assert frame.data.data.type == dpkt.icmp.ICMP_TIMEXCEED
