"""The driver runs vnet deadlines and epair pumps a bounded time per loop pass."""

from __future__ import annotations

import asyncio
import socket
import time

from vrouter.io.driver import PASS_QUANTUM, Driver
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
