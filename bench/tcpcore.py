#!/usr/bin/env python3
"""A vnet's TCP in process: CPU seconds per GB of one connection between two vnets.

Vnet ``red`` (192.0.2.1) sends to vnet ``blue`` (192.0.2.2) over an epair
(offloads on, as a TAP has them: new data leaves as TSO super-segments and
arrives whole).  The sending program is played by ``send`` calls of
``--chunk`` bytes (fresh ``bytes`` each, as a ``recv`` from a program's
socket gives them), the receiving program by ``recv`` calls of the same
size.  No TAP, no socket, no event loop: the figures are the Python side of
``bench/tcp.py``'s daemon (its TCP sending, its TCP receiving, the IP and
Ethernet layers between them) without the system calls, both ends in one
process, so the CPU per GB here is the sum of a sender's and a receiver's.

Usage: .venv/bin/python bench/tcpcore.py [--size-mb 500] [--runs 3] [--chunk 262144]
           [--profile FILE]   (cProfile of one more run, sorted by own time)
It prints its figures; ``levers`` in bench/RESULTS.md keeps them.
"""

from __future__ import annotations

import argparse
import cProfile
import ipaddress
import os
import pstats
import statistics
import time

from fastpath import NOW, _iface
from report import loadavg

from vrouter.link.epair import Epair
from vrouter.stack import new_tree
from vrouter.transport.tcp.conn import Connection, State
from vrouter.transport.tcp.stack import state_of

RED = ipaddress.IPv4Address("192.0.2.1").packed
BLUE = ipaddress.IPv4Address("192.0.2.2").packed
PORT = 80
STEP = 0.0001
"""Seconds the fake clock moves per pass (timers stay quiet: no loss here)."""


class Pair:
    """Two vnets on an epair, one connection from red to blue established."""

    def __init__(self) -> None:
        self.now = NOW
        tree = new_tree()
        self.red = tree.create("red")
        self.blue = tree.create("blue")
        a = _iface(self.red, "e0", ("192.0.2.1/24",))
        b = _iface(self.blue, "e0", ("192.0.2.2/24",))
        self.epair = Epair(a, b)
        self.epair.queue_time = 3600.0  # the clock is fake
        self.vnets = (self.red, self.blue)
        listener = state_of(self.blue).listen(4, b"", PORT)
        self.client = state_of(self.red).connect(BLUE, PORT, self.now)
        self.server: Connection | None = None
        for _ in range(100):
            self.settle()
            self.server = state_of(self.blue).accept(listener)
            if self.server is not None and self.client.state == State.ESTABLISHED:
                return
        raise SystemExit("the connection did not open")

    def settle(self) -> None:
        """Move frames and run due timers until nothing moves."""
        self.now += STEP
        for vnet in self.vnets:
            vnet.timers.run(self.now)
        for _ in range(1000):
            if not self.epair.pump(self.now):
                return

    def transfer(self, size: int, chunk: int) -> float:
        """Move ``size`` bytes red -> blue; return the CPU seconds it took."""
        client, server = self.client, self.server
        assert server is not None
        block = os.urandom(chunk)
        red_tcp, blue_tcp = state_of(self.red), state_of(self.blue)
        sent = got = 0
        offset = 0
        start = time.process_time()
        for _ in range(size // 1000 + 10_000):
            while sent < size:
                data = block[offset:] if offset else bytes(block)  # a fresh buffer, as recv gives
                n = client.send(data)
                sent += n
                offset = (offset + n) % chunk
                if n < len(data):
                    break
            red_tcp.flush(self.now)
            while data := server.recv(chunk):
                got += len(data)
            blue_tcp.flush(self.now)
            self.settle()
            if got >= size:
                return time.process_time() - start
        raise SystemExit(f"no progress: {got} of {size} bytes arrived")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=256 * 1024)
    parser.add_argument("--profile", help="write a cProfile listing of one more run here")
    args = parser.parse_args()
    size = args.size_mb * 1_000_000
    print(f"load average at start: {loadavg()}")
    per_gb = []
    for run in range(args.runs):
        pair = Pair()
        cpu = pair.transfer(size, args.chunk)
        per_gb.append(cpu / (size / 1e9))
        stats = state_of(pair.red).stats
        print(f"run {run + 1}/{args.runs}: {per_gb[-1]:.3f} CPU-s per GB "
              f"({stats.sndtotal} segments sent, {stats.rcvackpack} ACKs of new data, "
              f"{state_of(pair.blue).stats.sndtotal} segments back)", flush=True)  # fmt: skip
    print(f"median {statistics.median(per_gb):.3f} CPU-s per GB; load average at end: "
          f"{loadavg()}")  # fmt: skip
    if args.profile:
        pair = Pair()
        profiler = cProfile.Profile()
        profiler.enable()
        pair.transfer(size, args.chunk)
        profiler.disable()
        with open(args.profile, "w") as out:
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(40)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
