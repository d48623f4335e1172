#!/usr/bin/env python3
"""The TAP-to-TAP paths in process: frames per CPU-second, virtio-net header included.

What the daemon does per 64-byte UDP frame between the read and the write
of a TAP, without the system calls: the 10-byte virtio-net header split off
the read (``offload.received``), ``ether.input`` on the ingress interface,
and the header put before the frame again for ``writev``
(``offload.header_bytes``).  The hosts' UDP sockets leave the checksum to
the TAP (offloads on), so their frames arrive with ``NEEDS_CSUM``; a frame
without offload work has an all-zero header.

  bridge-plain       bridge br0 over t1 and t2, both hosts' MACs learned; header all zero
  bridge-csum        the same, header NEEDS_CSUM (what bench/bridge.py's flood sends)
  bridge-csum-stp    bridge-csum with the spanning tree on (both ports forwarding)
  bridge-csum-parsed the same, the header parsed into a VirtioHdr on reading
                     and emitted again on writing (before the header passed through)
  ipv4-csum          routed t1 -> t2 (the IPv4 fast path), header NEEDS_CSUM
  ipv4-csum-parsed   the same, parsed and emitted again
  bridge-csum-tap    bridge-csum through the TAP device's own read loop
                     (``TapDevice._on_readable``, its turns and clock) and its
                     ``write``, with ``os.read`` and ``os.write(v)`` stood in for
                     by a queue and a no-op: what the daemon's Python costs per
                     frame, system calls and event loop aside
  ipv4-csum-tap      ipv4-csum the same way

CPU seconds are this process's (``time.process_time``).

Usage: .venv/bin/python bench/bridgepath.py [--frames 200000] [--runs 3]
The figures are printed; `levers` in bench/RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable

from fastpath import H1, H1_MAC, H2, H2_MAC, NOW, router, run_cases, timed, udp4
from report import loadavg

from vrouter.io import tap
from vrouter.link import bridge as bridge_
from vrouter.link import ether, offload
from vrouter.link.ifnet import Ifnet
from vrouter.link.stp import StpSettings

CASES = (
    "bridge-plain", "bridge-csum", "bridge-csum-stp", "bridge-csum-parsed", "ipv4-csum",
    "ipv4-csum-parsed", "bridge-csum-tap", "ipv4-csum-tap",
)  # fmt: skip
CSUM_HEADER = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_NONE, 0, 0, 34, 6).emit()
Read = Callable[[bytes], bytes | bytearray]
Write = Callable[[bytes | bytearray], object]


def parsed_read(data: bytes) -> bytes | bytearray:
    """The reading before the header passed through: parsed into a VirtioHdr."""
    if data[0] & offload.F_NEEDS_CSUM or data[1]:
        return offload.tag(memoryview(data)[offload.HEADER_LEN :], offload.VirtioHdr.parse(data))
    return data[offload.HEADER_LEN :]


def parsed_write(frame: bytes | bytearray) -> object:
    """The writing before the header passed through: emitted from the VirtioHdr."""
    vhdr = offload.vhdr_of(frame)
    return [offload.NO_HEADER if vhdr is None else vhdr.emit(), frame]


def passed_write(frame: bytes | bytearray) -> object:
    """The writing now: the header bytes as they came."""
    return [offload.header_bytes(frame), frame]


def bridged(t1: Ifnet, t2: Ifnet, stp: bool = False) -> None:
    """Put t1 and t2 in bridge br0 (up, no address) and let it learn both hosts (``stp``:
    with the spanning tree on, its ports walked to forwarding first)."""
    brif = Ifnet(t1.vnet, "br0", "bridge", bytes.fromhex("020000000b00"))
    t1.vnet.link.add(brif)
    brif.up = True
    br = bridge_.create(brif)
    br.add_port(t1, now=NOW - 20)
    br.add_port(t2, now=NOW - 20)
    if stp:
        br.set_stp(StpSettings(hello_time=1, max_age=6, forward_delay=4), NOW - 20)
        for step in range(21):
            t1.vnet.timers.run(NOW - 20 + step)
        assert all(p.forwarding for p in br.ports.values())
    ether.input(t2, udp4(H2, H1, 5202, 40000, H1_MAC, H2_MAC), NOW)


class _Loop:
    """The event loop as a TapDevice sees it: readers are never called back."""

    def add_reader(self, fd: int, callback: object) -> None: ...

    def remove_reader(self, fd: int) -> None: ...

    def time(self) -> float:
        return NOW


class _QueuedTap(tap.TapDevice):
    """A TapDevice on /dev/null whose reads come from a queue and whose writes go nowhere."""

    def _open(self, ifnet: Ifnet) -> int:
        return os.open(os.devnull, os.O_RDONLY)

    def _close_device(self) -> None:
        os.close(self.fd)


def through_taps(t1: Ifnet, t2: Ifnet, data: list[bytes]) -> Callable[[], None]:
    """Return a pass that reads ``data`` through t1's TapDevice turns and writes out of
    t2's, ``os.read``, ``os.write`` and ``os.writev`` stood in for (for the rest of this
    process)."""
    queue: list[bytes] = []

    def read(fd: int, size: int) -> bytes:
        if not queue:
            raise BlockingIOError
        return queue.pop()

    os.read = read
    os.write = lambda fd, data: 0
    os.writev = lambda fd, parts: 0
    reader = _QueuedTap(t1, _Loop(), ether.input, lambda ifp: None)  # type: ignore[arg-type]
    _QueuedTap(t2, _Loop(), ether.input, lambda ifp: None)  # type: ignore[arg-type]

    def one_pass() -> None:
        queue[:] = data
        while queue:
            reader.share.deficit = 0.0  # every turn a full one: the pass measures frames
            reader._on_readable()

    return one_pass


def prepare(case: str) -> tuple[Callable[[], None], int, Callable[[], int]]:
    """Return (one pass, frames per pass, frames sent so far) for ``case``."""
    _, t1, t2 = router()
    read: Read = parsed_read if case.endswith("-parsed") else offload.received
    write: Write = parsed_write if case.endswith("-parsed") else passed_write
    t2.transmit = write
    header = offload.NO_HEADER if case == "bridge-plain" else CSUM_HEADER
    if case.startswith("bridge"):
        bridged(t1, t2, stp="-stp" in case)
        frame = udp4(H1, H2, 40000, 5202, H2_MAC, H1_MAC)
    else:
        frame = udp4(H1, H2, 40000, 5202, t1.mac, H1_MAC)
    data = [header + frame] * 1000
    receive = ether.input

    def one_pass() -> None:
        for d in data:
            receive(t1, read(d), NOW)

    if case.endswith("-tap"):
        one_pass = through_taps(t1, t2, data)

    def sent() -> int:
        return t2.counters.tx_packets

    return one_pass, len(data), sent


def measure(case: str, frames: int) -> float:
    """Return frames per CPU-second of one run of ``case``."""
    one_pass, per_pass, sent = prepare(case)
    one_pass()
    if sent() < per_pass:
        raise SystemExit(f"{case}: only {sent()} of {per_pass} frames left t2")
    return timed(one_pass, per_pass, frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    cases = [c for c in CASES if c in args.cases.split(",")]
    print(f"load average at start: {loadavg()}")
    results = run_cases(cases, args.runs, lambda case: measure(case, args.frames))
    print(f"load average at end: {loadavg()}")
    for case in cases:
        v = results[case]
        med = statistics.median(v)
        print(f"{case:20s} min {min(v):10,.0f} median {med:10,.0f} max {max(v):10,.0f} "
              f"({1e6 / med:.2f} us/frame)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
