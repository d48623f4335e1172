"""The driver runs vnet deadlines and epair pumps a bounded time per loop pass."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
import weakref
from typing import Any

import dpkt
import pytest

from vrouter.core import tables
from vrouter.io.driver import PASS_QUANTUM, Driver
from vrouter.link.sparse import BULK_LEN
from vrouter.stack import new_tree

VNETS = 400
WORK = 0.0001
"""Seconds each vnet's deadline takes: all of them together are many quanta."""


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_a_socket_is_served_while_thousands_of_deadlines_fall_due_together() -> None:
    loop = asyncio.new_event_loop()
    tree = new_tree()
    driver = Driver(loop)
    ran: list[str] = []
    served: list[int] = []
    reader, writer = socket.socketpair()
    try:
        due = loop.time() + 0.05
        for i in range(VNETS):
            vnet = tree.create(f"v{i}")
            vnet.timers.schedule(due, lambda now, name=vnet.name: (busy(WORK), ran.append(name)))
            driver.attach_vnet(vnet)
        loop.add_reader(reader.fileno(), lambda: (reader.recv(16), served.append(len(ran))))
        loop.call_at(due - 0.01, writer.send, b"x")  # readable before the deadlines run
        loop.run_until_complete(asyncio.sleep(0.05 + VNETS * WORK * 3 + 1))
    finally:
        loop.remove_reader(reader.fileno())
        driver.close()
        loop.close()
        reader.close()
        writer.close()
    assert sorted(ran) == sorted(f"v{i}" for i in range(VNETS))  # every deadline ran once
    assert served, "the socket was never read"
    # At most two quanta (due timers, then the put-off ones) before the socket's turn:
    # 2 ms of 0.1 ms deadlines is a tenth of them; run in one go, all would come first.
    assert PASS_QUANTUM / WORK * 2 < VNETS / 4
    assert served[0] < VNETS / 4, f"read only after {served[0]} of {VNETS} deadlines"


def test_a_later_deadline_does_not_replace_one_put_off() -> None:
    loop = asyncio.new_event_loop()
    tree = new_tree()
    driver = Driver(loop)
    ran: list[tuple[str, str]] = []
    try:
        due = loop.time() + 0.02
        vnets = [tree.create(f"v{i}") for i in range(VNETS)]
        for vnet in vnets:
            vnet.timers.schedule(due, lambda now, n=vnet.name: (busy(WORK), ran.append((n, "a"))))
            driver.attach_vnet(vnet)
        # Once the first quantum is spent, the last vnet (put off) gets a later deadline too.
        last = vnets[-1]
        loop.call_at(due + 0.001, lambda: last.timers.schedule(
            loop.time() + 0.01, lambda now: ran.append((last.name, "b"))))
        loop.run_until_complete(asyncio.sleep(0.02 + VNETS * WORK * 3 + 1))
    finally:
        driver.close()
        loop.close()
    assert (last.name, "a") in ran and (last.name, "b") in ran
    assert ran.index((last.name, "a")) < ran.index((last.name, "b"))


def test_deadlines_run_once_each_at_their_time_and_a_detached_vnets_never() -> None:
    loop = asyncio.new_event_loop()
    tree = new_tree()
    driver = Driver(loop)
    ran: list[tuple[str, float]] = []
    try:
        start = loop.time()
        vnets = [tree.create(f"v{i}") for i in range(4)]
        for vnet in vnets:
            driver.attach_vnet(vnet)
        for i, vnet in enumerate(vnets):
            vnet.timers.schedule(start + 0.2, lambda now, n=vnet.name: ran.append((n, now)))
            if i == 1:  # an earlier deadline for v1 after its later one was armed
                vnet.timers.schedule(start + 0.05, lambda now: ran.append(("v1 early", now)))
        driver.detach_vnet(vnets[2])
        # One loop timer for all of them (the earliest), not one per vnet.
        armed = [h.when() for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert armed == [start + 0.05]
        loop.run_until_complete(asyncio.sleep(0.4))
    finally:
        driver.close()
        loop.close()
    names = [name for name, _ in ran]
    assert names[0] == "v1 early" and sorted(names[1:]) == ["v0", "v1", "v3"]
    assert 0.04 <= ran[0][1] - start < 0.15
    assert all(0.19 <= at - start < 0.35 for _, at in ran[1:])


def test_a_destroyed_vnet_with_deadlines_pending_is_freed_at_once() -> None:
    loop = asyncio.new_event_loop()
    tree = new_tree()
    driver = Driver(loop)
    try:
        gone = []
        for i in range(50):
            vnet = tree.create(f"v{i}")
            driver.attach_vnet(vnet)
            vnet.timers.schedule(loop.time() + 60, lambda now: None)
            gone.append(weakref.ref(vnet))
        del vnet
        for i in range(50):
            victim = tree.get(f"v{i}")
            driver.detach_vnet(victim)
            tree.destroy(victim.name)
        del victim
        assert [ref for ref in gone if ref() is not None] == []
        assert len(driver._deadlines) < 50  # the heap let go of them too
    finally:
        driver.close()
        loop.close()


class PolledTap:
    """Stands in for a TAP the driver busy-polls: the readable end of a socket pair."""

    def __init__(self, driver: Driver) -> None:
        self.ours, self.host = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.fd = self.ours.fileno()
        self.got: list[bytes] = []
        driver._poller = select.epoll()
        driver._poller.register(self.fd, select.EPOLLIN)
        driver._polled[self.fd] = self  # type: ignore[assignment]

    def poll(self) -> None:
        self.got.append(self.ours.recv(64))

    def close(self) -> None:
        self.ours.close()
        self.host.close()


def test_busy_polling_reads_a_frame_that_comes_while_it_spins() -> None:
    loop = asyncio.new_event_loop()
    driver = Driver(loop)
    driver.busy_poll = 5.0  # bounded by the frame, not by the time
    tap = PolledTap(driver)
    epoll = driver._poller
    assert epoll is not None
    sender = threading.Thread(target=tap.host.send, args=(b"x",))

    class SendAfterFirstPoll:
        """The TAPs' poller, sending the frame once the first poll found nothing: it
        comes while the loop spins, however late this thread is scheduled."""

        def poll(self, timeout: float) -> list[tuple[int, int]]:
            ready = epoll.poll(timeout)
            if not sender.is_alive() and sender.ident is None:
                assert not ready
                sender.start()
            return ready

        def close(self) -> None:
            epoll.close()

    driver._poller = SendAfterFirstPoll()  # type: ignore[assignment]
    try:
        loop.call_soon(driver._after_batch, None)  # type: ignore[arg-type]
        started = time.perf_counter()
        loop.run_until_complete(asyncio.sleep(0.05))
        sender.join(5)
        assert tap.got == [b"x"]
        assert (driver.spins, driver.spin_hits) == (1, 1)
        assert time.perf_counter() - started < 1.0
    finally:
        tap.close()
        driver.close()
        loop.close()


def test_busy_polling_that_finds_nothing_stops_in_time_and_backs_off() -> None:
    loop = asyncio.new_event_loop()
    driver = Driver(loop)
    driver.busy_poll = 0.002
    tap = PolledTap(driver)
    try:
        started = time.perf_counter()
        driver._after_batch(None)  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0))
        assert driver.spins == 1 and driver.spin_hits == 0
        assert time.perf_counter() - started < 0.5
        spun = []
        for _ in range(40):  # each miss doubles the batches let pass: 1, 3, 7, 15, ...
            driver._after_batch(None)  # type: ignore[arg-type]
            loop.run_until_complete(asyncio.sleep(0))
            spun.append(driver.spins)
        assert [spun.index(n) for n in (2, 3, 4, 5)] == [1, 5, 13, 29]
        assert spun[-1] == 5
    finally:
        tap.close()
        driver.close()
        loop.close()


def test_without_busy_poll_a_batch_schedules_nothing() -> None:
    loop = asyncio.new_event_loop()
    driver = Driver(loop)
    try:
        driver._after_batch(None)  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0))
        assert driver.spins == 0
    finally:
        driver.close()
        loop.close()


def test_a_frame_waiting_already_is_read_without_counting_a_busy_poll() -> None:
    loop = asyncio.new_event_loop()
    driver = Driver(loop)
    driver.busy_poll = 0.002
    tap = PolledTap(driver)
    try:
        tap.host.send(b"y")
        driver._after_batch(None)  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0))
        assert tap.got == [b"y"]
        assert (driver.spins, driver.spin_hits, driver._skip) == (0, 0, 0)
    finally:
        tap.close()
        driver.close()
        loop.close()


TEST_ETHERTYPE = 0x88B5


def numbered(ifp, n: int, size: int, src: bytes) -> bytes:
    """A frame for ``ifp`` numbered ``n``, ``size`` bytes long, from MAC ``src`` (its flow)."""
    payload = n.to_bytes(4, "big") + b"\x00" * (size - 18)
    return bytes(dpkt.ethernet.Ethernet(dst=ifp.mac, src=src, type=TEST_ETHERTYPE, data=payload))


class AnsweringTap:
    """Stands in for a quiet TAP whose host answers at once (its stack runs inside the
    write): a turn reads the answer and sends it back across the epair, as the vnet
    forwards it."""

    def __init__(self, driver: Driver, send) -> None:
        self.ours, self.host = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.fd = self.ours.fileno()
        self.backlogged = False
        self.send = send
        driver._answers = select.epoll()
        driver._answers.register(self.fd, select.EPOLLIN)
        driver._answering[self.fd] = self  # type: ignore[assignment]

    def poll(self) -> None:
        self.send(self.ours.recv(4096))

    def close(self) -> None:
        self.ours.close()
        self.host.close()


@pytest.mark.parametrize("backlogged", [False, True])
def test_an_answer_crosses_before_the_bulk_its_question_passed(lab, backlogged: bool) -> None:
    """Vnet a sends three bulk frames to b, then a small frame of another flow (a ping):
    it passes the bulk, b's host answers it, and the answer is read and delivered to a
    in the same pump, before the bulk, unless the answering TAP is backlogged (it then
    keeps its turn in the loop)."""
    loop = asyncio.new_event_loop()
    driver = Driver(loop)
    a, b = lab.vnet("a"), lab.vnet("b")
    ifa, ifb = lab.iface(a, "ep0", up=False), lab.iface(b, "ep0", up=False)
    epair = driver.add_epair(ifa, ifb)
    epair.queue_time = 3600.0  # building frames on a busy machine takes real time
    ifa.up = ifb.up = True
    tap = AnsweringTap(driver, ifb.output)
    tap.backlogged = backlogged
    got: list[tuple[str, int]] = []
    for vnet in (a, b):

        def record(ifp, frame, now, name=vnet.name) -> None:
            n = int.from_bytes(frame[14:18], "big")
            got.append((name, n))
            if n == 9:  # the question: b's host answers it into its TAP at once
                tap.host.send(numbered(ifa, 99, 100, ifb.mac))

        vnet.link.ethertypes = tables.put(vnet.link.ethertypes, TEST_ETHERTYPE, record)
    try:
        bulk_flow, ping_flow = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x09"
        for n in range(3):
            ifa.output(numbered(ifb, n, BULK_LEN + 100, bulk_flow))
        ifa.output(numbered(ifb, 9, 100, ping_flow))
        driver._pumping.add(id(epair))  # as _schedule_pump leaves it
        driver._pump(epair)
        assert got == [("b", 9)] if backlogged else [("b", 9), ("a", 99)]
        loop.run_until_complete(asyncio.sleep(0.01))
        if backlogged:
            tap.poll()  # the loop's own turn
            loop.run_until_complete(asyncio.sleep(0.01))
        assert sorted(got) == sorted([("b", 9), ("a", 99), ("b", 0), ("b", 1), ("b", 2)])
        assert [n for name, n in got if name == "b"] == [9, 0, 1, 2]
    finally:
        tap.close()
        driver.close()
        loop.close()


class _Woken:
    """Stands for an epair: records its pumps; the one named ``bad`` fails."""

    def __init__(self, name: str, pumped: list[str]) -> None:
        self.name, self.pumped, self.paused = name, pumped, False

    def pump(self, now: float, budget: int, quantum: float, answers: bool) -> None:
        self.pumped.append(self.name)
        if self.name == "bad":
            raise RuntimeError("pump failed")


def test_epairs_woken_in_a_pass_are_pumped_in_order_by_one_loop_callback() -> None:
    loop = asyncio.new_event_loop()
    driver = Driver(loop)
    pumped: list[str] = []
    epairs = [_Woken(name, pumped) for name in ("e0", "e1", "bad", "e3")]
    scheduled: list[object] = []
    call_soon = loop.call_soon

    def counted(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        scheduled.append(callback)
        return call_soon(callback, *args, **kwargs)

    loop.call_soon = counted  # type: ignore[method-assign]
    try:
        for epair in (*epairs, epairs[1]):  # e1 woken twice: pumped once
            driver._schedule_pump(epair)  # type: ignore[arg-type]
        assert scheduled.count(driver._pump_woken) == 1
        loop.run_until_complete(asyncio.sleep(0.01))
        # The one that failed does not strand the others, nor stay due itself.
        assert pumped == ["e0", "e1", "bad", "e3"]
        assert not driver._pumping
        driver._schedule_pump(epairs[0])  # type: ignore[arg-type]
        loop.run_until_complete(asyncio.sleep(0.01))
        assert pumped[-1] == "e0" and scheduled.count(driver._pump_woken) == 2
    finally:
        loop.call_soon = call_soon  # type: ignore[method-assign]
        driver.close()
        loop.close()
