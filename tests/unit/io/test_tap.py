"""Tests for vrouter.io.tap: fair turns between interfaces, and the kernel's drops shown.

A TAP's fd is stood in for by one end of a SOCK_SEQPACKET socket pair (one
read, one frame, EAGAIN when empty, as a TAP); a fake clock says how long
each frame took, so the turns are exact.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vrouter.io import tap
from vrouter.io.tap import RX_BUDGET, RxShare, TapDevice
from vrouter.link import offload
from vrouter.link.ifnet import Ifnet
from vrouter.stack import new_tree


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class StubLoop:
    def __init__(self) -> None:
        self.readers: dict[int, object] = {}
        self.soon: list[Callable[[], None]] = []

    def call_soon(self, callback: Callable[[], None]) -> None:
        self.soon.append(callback)

    def run_soon(self) -> None:
        """Run what was scheduled (a loop pass's callbacks), not what they schedule."""
        soon, self.soon = self.soon, []
        for callback in soon:
            callback()

    def add_reader(self, fd: int, callback: object) -> None:
        self.readers[fd] = callback

    def remove_reader(self, fd: int) -> None:
        self.readers.pop(fd, None)

    def time(self) -> float:
        return 5.0


class FakeTap(TapDevice):
    """A TapDevice reading one end of a socket pair instead of /dev/net/tun."""

    def __init__(self, ifnet: Ifnet, sock: socket.socket, counter: Path | None, cost: float,
                 clock: FakeClock) -> None:  # fmt: skip
        self.sock = sock
        self.counter = counter
        self.got: list[bytes] = []

        def receive(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
            self.got.append(bytes(frame))
            clock.t += cost

        super().__init__(ifnet, StubLoop(), receive, lambda ifp: None)  # type: ignore[arg-type]
        self.clock = clock

    def _open(self, ifnet: Ifnet) -> int:
        if self.counter is not None:
            self._dropped_fd = tap._open_counter(str(self.counter))
        return self.sock.fileno()

    def _close_device(self) -> None:
        self.sock.close()


@pytest.fixture
def vnet():
    return new_tree().create("v")


@pytest.fixture
def pairs() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


Q = 1.0
"""The quantum of the tests' shares: frame costs are exact fractions of it."""


def device(vnet, pairs, name: str, cost: float, clock: FakeClock,
           counter: Path | None = None) -> tuple[FakeTap, socket.socket]:  # fmt: skip
    """Return a device whose frames each take ``cost`` quanta, and the host end."""
    ours, host = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    host.setblocking(False)  # a test that queues too much fails instead of hanging
    pairs += [ours, host]
    ifp = Ifnet(vnet, name, "tap", b"\x02\0\0\0\0\1")
    vnet.link.add(ifp)
    dev = FakeTap(ifp, ours, counter, cost * Q, clock)
    dev.share = RxShare(quantum=Q)
    return dev, host


def send(host: socket.socket, count: int, tag: int = 0) -> None:
    for n in range(count):
        host.send(bytes(offload.HEADER_LEN) + bytes([tag, n % 256]) + bytes(58))


# --- the share alone --------------------------------------------------------------


def test_a_turn_gets_a_quantum_and_an_overrun_is_paid_back_by_skipped_turns() -> None:
    share = RxShare(quantum=1.0)
    assert share.grant() == 1.0
    share.spent(3.5, backlogged=True)  # one costly frame: 2.5 owed
    assert [share.grant() for _ in range(2)] == [0.0, 0.0]
    assert share.deficit == pytest.approx(-0.5)
    assert share.grant() == pytest.approx(0.5)
    assert (share.turns, share.skipped) == (2, 2)


def test_an_overrun_owes_at_most_the_debt_limit() -> None:
    share = RxShare(quantum=1.0, debt=4)
    share.grant()
    share.spent(5000.0, backlogged=True)  # preempted mid-turn on a busy machine
    assert share.deficit == -4.0
    assert [share.grant() for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert share.grant() == 1.0 and share.skipped == 4


def test_a_long_loop_pass_pays_back_the_time_it_took() -> None:
    share = RxShare(quantum=1.0, debt=4)
    share.grant(0.0)
    share.spent(5.0, backlogged=True, end=5.0)  # a TAP write done inline: 4 owed
    assert share.grant(5.5) == 0.0  # half a quantum later: still owed, turn skipped
    assert share.grant(45.5) == 1.0  # a pass of 40 quanta (a route sync's turn) paid it
    assert share.skipped == 1


def test_a_short_loop_pass_pays_back_a_quantum_as_a_skipped_turn_does() -> None:
    share = RxShare(quantum=1.0, debt=4)
    share.grant(0.0)
    share.spent(5.0, backlogged=True, end=5.0)
    assert [share.grant(5.0 + 0.1 * n) for n in range(1, 5)] == [0.0, 0.0, 0.0, 0.0]
    assert share.grant(5.5) == 1.0


def test_credit_is_kept_only_while_backlogged_and_at_most_one_quantum() -> None:
    share = RxShare(quantum=1.0)
    share.grant()
    share.spent(0.0, backlogged=True)  # stopped by the frame budget, time left
    assert share.grant() == 2.0
    share.spent(0.0, backlogged=True)
    assert share.deficit == 1.0  # not 2: credit is capped
    share.grant()
    share.spent(5.0, backlogged=False)  # the queue emptied: the debt is forgiven
    assert share.deficit == 0.0 and share.grant() == 1.0


# --- turns of real devices ---------------------------------------------------------


def test_a_turn_stops_when_its_time_is_spent_and_the_rest_waits_in_the_queue(vnet, pairs):
    clock = FakeClock()
    flooded, host = device(vnet, pairs, "tap0", 0.25, clock)
    send(host, 100)
    flooded._on_readable()
    assert len(flooded.got) == 4  # the fourth frame reached the quantum
    flooded._on_readable()
    assert len(flooded.got) == 8
    assert flooded.share.deficit <= 0.0


def test_a_turn_stops_at_the_frame_budget_however_cheap_the_frames(vnet, pairs):
    clock = FakeClock()
    cheap, host = device(vnet, pairs, "tap0", 0.0, clock)
    send(host, RX_BUDGET * 2 + 3)
    cheap._on_readable()
    assert len(cheap.got) == RX_BUDGET
    cheap._on_readable()
    cheap._on_readable()
    assert len(cheap.got) == RX_BUDGET * 2 + 3
    assert cheap.share.deficit == 0.0  # emptied: no credit carried


def test_a_flood_on_one_interface_delays_another_by_one_quantum_a_pass(vnet, pairs):
    clock = FakeClock()
    flooded, flood_host = device(vnet, pairs, "tap0", 0.125, clock)
    quiet, quiet_host = device(vnet, pairs, "tap1", 0.125, clock)
    send(flood_host, 150, tag=1)
    for pass_ in range(20):
        if pass_ == 7:
            send(quiet_host, 1, tag=2)
            arrived = clock.t
        # a loop pass: every readable fd has one turn, in the order epoll reports them
        flooded._on_readable()
        quiet._on_readable()
        if quiet.got:
            break
    assert quiet.got and quiet.got[0][0] == 2
    assert clock.t - arrived <= 1.25 * Q
    assert len(flooded.got) <= 8 * (pass_ + 1)  # never more than a quantum a pass


def test_a_frame_whose_processing_raises_is_counted_and_the_turn_goes_on(vnet, pairs, caplog):
    clock = FakeClock()
    dev, host = device(vnet, pairs, "tap0", 0.0, clock)
    taken = dev._receive

    def receive(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
        if frame[1] == 1:  # the second frame trips a bug
            raise ValueError("a bug")
        taken(ifp, frame, now)

    dev._receive = receive
    send(host, 3)
    dev._on_readable()
    assert [frame[1] for frame in dev.got] == [0, 2]
    assert dev.ifnet.counters.rx_drops == {"internal_error": 1}
    assert dev.ifnet.counters.rx_errors == 1
    assert "frame processing failed" in caplog.text


def test_an_expensive_frame_costs_the_next_turns(vnet, pairs):
    clock = FakeClock()
    slow, host = device(vnet, pairs, "tap0", 3.5, clock)
    send(host, 10)
    slow._on_readable()
    assert len(slow.got) == 1
    for _ in range(2):
        slow._on_readable()
    assert len(slow.got) == 1  # two turns skipped: 2.5 quanta owed, then 0.5 left
    slow._on_readable()
    assert len(slow.got) == 2
    assert slow.share.skipped == 2


def test_what_the_kernel_dropped_while_backlogged_is_shown_as_rx_overload(
    vnet, pairs, tmp_path, monkeypatch
):
    monkeypatch.setattr(tap, "OVERLOAD_REFRESH", 10 * Q)
    counter = tmp_path / "tx_dropped"
    counter.write_text("5\n")
    clock = FakeClock()
    flooded, host = device(vnet, pairs, "tap0", 0.5, clock, counter)
    send(host, 6)
    counter.write_text("12\n")  # the kernel dropped 7 while the queue was full
    flooded._on_readable()
    assert flooded.ifnet.counters.rx_drops["rx_overload"] == 7
    counter.write_text("20\n")
    flooded._on_readable()  # within OVERLOAD_REFRESH: not read again yet
    assert flooded.ifnet.counters.rx_drops["rx_overload"] == 7
    flooded._on_readable()
    assert len(flooded.got) == 6  # read, but the turn ended on time before seeing EAGAIN
    assert flooded.ifnet.counters.rx_drops["rx_overload"] == 7
    flooded._on_readable()  # the queue is found empty: the final count is read
    assert flooded.ifnet.counters.rx_drops["rx_overload"] == 15
    flooded.close()
    assert flooded._dropped_fd is None


def test_an_interface_that_never_fell_behind_shows_no_overload(vnet, pairs, tmp_path):
    counter = tmp_path / "tx_dropped"
    counter.write_text("3\n")
    quiet, host = device(vnet, pairs, "tap0", 0.0, FakeClock(), counter)
    send(host, 2)
    quiet._on_readable()
    assert len(quiet.got) == 2
    assert "rx_overload" not in quiet.ifnet.counters.rx_drops


def test_a_frame_that_waited_too_long_for_the_kernel_is_dropped(vnet, pairs, monkeypatch):
    dev, host = device(vnet, pairs, "t0", 0.0, FakeClock())
    writers: dict[int, object] = {}
    dev._loop.add_writer = writers.__setitem__  # type: ignore[attr-defined]
    dev._loop.remove_writer = writers.pop  # type: ignore[attr-defined]
    for _ in range(100_000):  # until the kernel refuses a write
        dev.write(bytes(60))
        if dev._txq:
            break
    assert dev._txq and writers, "the socket never filled"
    for _ in range(2):
        dev.write(bytes(60))
    queued = len(dev._txq)
    while True:  # the host reads everything: the kernel takes writes again
        try:
            host.recv(65536)
        except BlockingIOError:
            break
    monkeypatch.setattr(tap, "TX_QUEUE_TIME", -1.0)  # what is queued is too old now
    dev._on_writable()
    assert not dev._txq and not writers
    assert dev.ifnet.counters.tx_drops["queue_stale"] == queued
    with pytest.raises(BlockingIOError):
        host.recv(65536)  # none of them was sent late


# --- small frames first -----------------------------------------------------------


def tcp(sport: int, n: int, size: int) -> bytes:
    """A frame as read of TCP flow 192.0.2.2:``sport`` -> 198.51.100.2:5201, ``size``
    bytes long, numbered ``n`` (the byte after the ports)."""
    ip = b"\x45" + bytes(8) + b"\x06" + bytes(2) + bytes([192, 0, 2, 2, 198, 51, 100, 2])
    frame = bytes(12) + b"\x08\x00" + ip + sport.to_bytes(2, "big") + b"\x14\x51" + bytes([n])
    return bytes(offload.HEADER_LEN) + frame + bytes(size - len(frame))


BIG = tap.BULK_READ + 100


def numbers(dev: FakeTap) -> list[tuple[int, int]]:
    """(source port, number) of each frame the device delivered, in order."""
    return [(int.from_bytes(f[34:36], "big"), f[38]) for f in dev.got]


def test_a_small_frame_of_another_flow_goes_before_bulk_read_in_the_same_turn(vnet, pairs):
    clock = FakeClock()
    dev, host = device(vnet, pairs, "tap0", 0.5, clock)
    for n in range(3):
        host.send(tcp(1000, n, BIG))
    host.send(tcp(2000, 0, 100))
    dev._on_readable()
    assert numbers(dev) == [(2000, 0)]  # read last, delivered first; bulk waits a turn
    assert dev._loop.soon  # type: ignore[attr-defined]  # another turn is due
    for _ in range(4):
        dev._loop.run_soon()  # type: ignore[attr-defined]
    assert numbers(dev) == [(2000, 0), (1000, 0), (1000, 1), (1000, 2)]
    assert not dev._loop.soon  # type: ignore[attr-defined]  # nothing left: no turn due


def test_the_small_frames_of_a_flow_stay_behind_its_bulk(vnet, pairs):
    clock = FakeClock()
    dev, host = device(vnet, pairs, "tap0", 0.5, clock)
    host.send(tcp(1000, 0, BIG))
    host.send(tcp(1000, 1, 100))
    host.send(tcp(2000, 0, 100))
    host.send(tcp(1000, 2, BIG))
    for _ in range(4):
        dev._on_readable()
        dev._loop.run_soon()  # type: ignore[attr-defined]
    assert numbers(dev) == [(2000, 0), (1000, 0), (1000, 1), (1000, 2)]


def test_without_sparse_first_frames_go_in_the_order_read(vnet, pairs):
    clock = FakeClock()
    dev, host = device(vnet, pairs, "tap0", 0.25, clock)
    dev.sparse_first = False
    for n in range(3):
        host.send(tcp(1000, n, BIG))
    host.send(tcp(2000, 0, 100))
    dev._on_readable()
    assert numbers(dev) == [(1000, 0), (1000, 1), (1000, 2), (2000, 0)]
    assert not dev._loop.soon  # type: ignore[attr-defined]


def test_a_reader_behind_by_more_than_bulk_ahead_leaves_the_rest_in_the_kernel(
    vnet, pairs, monkeypatch
):
    monkeypatch.setattr(tap, "BULK_AHEAD", 2.5 * Q)
    clock = FakeClock()
    dev, host = device(vnet, pairs, "tap0", 1.0, clock)
    for n in range(10):
        host.send(tcp(1000, n, BIG))
    dev.share.frames = 4
    dev._on_readable()  # reads 4 ahead, forwards the first
    assert numbers(dev) == [(1000, 0)]
    clock.t += 5 * Q  # the oldest frame held has waited too long
    dev._loop.run_soon()  # type: ignore[attr-defined]
    assert numbers(dev) == [(1000, 0), (1000, 1)]
    assert len(dev._bulk) == 2  # forwarded one more, read none
    for _ in range(20):
        dev._loop.run_soon()  # type: ignore[attr-defined]
        dev._on_readable()
    assert numbers(dev) == [(1000, n) for n in range(10)]
