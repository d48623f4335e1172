#!/usr/bin/env python3
"""TCP through two vnets in process: CPU per super-frame and per ACK, system calls aside.

What the daemon does for an iperf3 stream through vrouterd-2vnet
(bench/forwarding.py), without the system calls and the event loop: h1's
TAP device reads a 64 KiB TCP super-frame (virtio-net header NEEDS_CSUM,
GSO_TCPV4, gso_size 1448) through ``TapDevice._on_readable`` (its bulk
read-ahead, ``sparse_first`` on), vnet red forwards it onto the epair, the
epair is pumped as the driver pumps it, vnet blue forwards it out of h2's
TAP device (``TapDevice.write``); ACKs (66 bytes, NEEDS_CSUM) go back the
other way.  ``os.read``, ``os.write`` and ``os.writev`` are stood in for by
a queue and no-ops (for the rest of this process).

  super      one super-frame h1 -> h2 per step
  ack        one ACK h2 -> h1 per step
  small      one 100-byte GSO frame h1 -> h2 per step (the path without the size)
  udp        64 UDP frames of 64 bytes (NEEDS_CSUM, as the hosts' sockets send them)
             h1 -> h2 per step, the figure per frame: the 64-byte flood of
             vrouterd-2vnet
  udp1       one such frame per step: a frame that finds the path idle (a ping's way)
  udp6, udp6-1
             the same over IPv6 (62-byte frames, no payload, the IPv6 flood of
             bench/forwarding.py --family 6)
  super-fw, ack-fw, udp-fw
             the same with the 20-rule firewall of bench/forwarding.py on red (flow
             cache on; the TCP state opened by a handshake through the path)

CPU seconds are this process's (``time.process_time``).

Usage: .venv/bin/python bench/superpath.py [--steps 20000] [--runs 3]
The figures are printed; `levers` in bench/RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import statistics
import struct
import time
from collections.abc import Callable

from bridgepath import _Loop, _QueuedTap
from fastpath import H1, H1_6, H1_MAC, H2, H2_6, H2_MAC, NOW, _iface, with_firewall
from report import loadavg

from vrouter.core.vnet import Vnet
from vrouter.link import ether, offload
from vrouter.link.epair import Epair
from vrouter.link.ifnet import Ifnet
from vrouter.link.lltable import REACHABLE
from vrouter.route import state as route_state
from vrouter.stack import new_tree
from vrouter.wire.checksum import checksum

CASES = ("super", "ack", "small", "udp", "udp1", "udp6", "udp6-1", "super-fw", "ack-fw", "udp-fw")
BATCH = {"udp": 64, "udp6": 64, "udp-fw": 64}
"""Frames per step where a case reads more than one."""
RED_EP, BLUE_EP = bytes([203, 0, 113, 1]), bytes([203, 0, 113, 2])
RED_EP6 = ipaddress.IPv6Address("2001:db8:ff::1").packed
BLUE_EP6 = ipaddress.IPv6Address("2001:db8:ff::2").packed


def tcp_frame(src: bytes, dst: bytes, sport: int, dport: int, payload: int,
              dst_mac: bytes, src_mac: bytes, gso: bool, flags: int = 0x10) -> bytes:  # fmt: skip
    """Return a TCP frame (timestamps option) as a TAP reads it: virtio-net header first;
    sequence and acknowledgment numbers 1 (0 and 1 for a SYN and a SYN-ACK)."""
    seq = 0 if flags & 0x02 else 1
    ack = 0 if flags == 0x02 else 1
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 8 << 4, flags, 65535, 0, 0)
    tcp += b"\x01\x01\x08\x0a" + bytes(8)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + payload, 1, 0x4000, 64,
                               6, 0, src, dst))  # fmt: skip
    ip[10:12] = struct.pack("!H", checksum(bytes(ip)))
    gso_type, hdr_len, gso_size = (offload.GSO_TCPV4, 66, 1448) if gso else (0, 0, 0)
    header = offload.VirtioHdr(offload.F_NEEDS_CSUM, gso_type, hdr_len, gso_size, 34, 16)
    return header.emit() + dst_mac + src_mac + b"\x08\x00" + bytes(ip) + tcp + bytes(payload)


def _neighbour(vnet: Vnet, ifp: Ifnet, ip: bytes, mac: bytes) -> None:
    table = vnet.inet6.nd if len(ip) == 16 else vnet.inet.arp
    entry = table.add(vnet.timers, ifp, ip, REACHABLE, NOW)
    assert entry is not None
    table.confirm(entry, mac, REACHABLE, NOW)


def udp_frame(src: bytes, dst: bytes, dst_mac: bytes, src_mac: bytes,
              sport: int = 40000, dport: int = 5202) -> bytes:  # fmt: skip
    """Return a 64-byte UDP frame (18-byte payload) as a TAP reads it: virtio-net header
    first, NEEDS_CSUM (the checksum field holds the pseudo-header sum)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + 18, 0) + bytes(18)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64,
                               17, 0, src, dst))  # fmt: skip
    ip[10:12] = struct.pack("!H", checksum(bytes(ip)))
    header = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_NONE, 0, 0, 34, 6)
    return header.emit() + dst_mac + src_mac + b"\x08\x00" + bytes(ip) + udp


def udp6_frame(src: bytes, dst: bytes, dst_mac: bytes, src_mac: bytes) -> bytes:
    """Return a 62-byte IPv6 UDP frame (no payload) as a TAP reads it: virtio-net header
    first, NEEDS_CSUM."""
    udp = struct.pack("!HHHH", 40000, 5202, 8, 0)
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, src, dst)
    header = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_NONE, 0, 0, 54, 6)
    return header.emit() + dst_mac + src_mac + b"\x86\xdd" + ip + udp


def prepare(case: str) -> tuple[Callable[[], None], Callable[[], int]]:
    """Return (one step, frames that left so far) for ``case``."""
    tree = new_tree()
    red, blue = tree.create("red"), tree.create("blue")
    red.inet6.dad_transmits = blue.inet6.dad_transmits = 0
    t1 = _iface(red, "t1", ("192.0.2.1/24", "2001:db8:1::1/64"))
    ra = _iface(red, "ep0", ("203.0.113.1/30", "2001:db8:ff::1/64"))
    rb = _iface(blue, "ep0", ("203.0.113.2/30", "2001:db8:ff::2/64"))
    t2 = _iface(blue, "t2", ("198.51.100.1/24", "2001:db8:2::1/64"))
    epair = Epair(ra, rb)
    waiting: list[Epair] = []
    epair.wakeup = waiting.append
    for vnet, to, via in ((red, "198.51.100.0/24", "203.0.113.2"),
                          (blue, "192.0.2.0/24", "203.0.113.1"),
                          (red, "2001:db8:2::/64", "2001:db8:ff::2"),
                          (blue, "2001:db8:1::/64", "2001:db8:ff::1")):  # fmt: skip
        route_state.add_static(vnet, ipaddress.ip_network(to), via=ipaddress.ip_address(via))
    _neighbour(red, t1, H1, H1_MAC)
    _neighbour(blue, t2, H2, H2_MAC)
    _neighbour(red, ra, BLUE_EP, rb.mac)
    _neighbour(blue, rb, RED_EP, ra.mac)
    _neighbour(red, t1, H1_6, H1_MAC)
    _neighbour(blue, t2, H2_6, H2_MAC)
    _neighbour(red, ra, BLUE_EP6, rb.mac)
    _neighbour(blue, rb, RED_EP6, ra.mac)
    queues: dict[int, list[bytes]] = {}
    left = [0]

    def read(fd: int, size: int) -> bytes:
        queue = queues[fd]
        if not queue:
            raise BlockingIOError
        return queue.pop()

    def write(fd: int, data: object) -> int:
        left[0] += 1
        return 0

    os.read = read
    os.write = write
    os.writev = write
    tap1 = _QueuedTap(t1, _Loop(), ether.input, lambda ifp: None)  # type: ignore[arg-type]
    tap2 = _QueuedTap(t2, _Loop(), ether.input, lambda ifp: None)  # type: ignore[arg-type]
    for tap in (tap1, tap2):
        queues[tap.fd] = []
        tap._kick = lambda: None  # type: ignore[method-assign]  # the step takes the turns
    if case.endswith("-fw"):
        with_firewall(red, True)
        handshake = (
            (tap1, tcp_frame(H1, H2, 40000, 5201, 0, t1.mac, H1_MAC, False, 0x02)),
            (tap2, tcp_frame(H2, H1, 5201, 40000, 0, t2.mac, H2_MAC, False, 0x12)),
            (tap1, tcp_frame(H1, H2, 40000, 5201, 0, t1.mac, H1_MAC, False, 0x10)),
            (tap1, udp_frame(H1, H2, t1.mac, H1_MAC)),
            (tap2, udp_frame(H2, H1, t2.mac, H2_MAC, 5202, 40000)),
        )
        for tap, frame in handshake:
            queues[tap.fd].append(frame)
            tap.share.deficit = 0.0
            tap._on_readable()
            while waiting:
                waiting.pop().pump(NOW, 64, 0.0005)
        left[0] = 0
        if red.firewall.flows.inserts < 2:
            raise SystemExit(f"{case}: the flow cache learned {red.firewall.flows.inserts} flows")
    if case.startswith("ack"):
        tap, data = tap2, tcp_frame(H2, H1, 5201, 40000, 0, t2.mac, H2_MAC, False)
    elif case.startswith("udp6"):
        tap, data = tap1, udp6_frame(H1_6, H2_6, t1.mac, H1_MAC)
    elif case.startswith("udp"):
        tap, data = tap1, udp_frame(H1, H2, t1.mac, H1_MAC)
    else:
        payload = 64000 if case.startswith("super") else 100
        tap, data = tap1, tcp_frame(H1, H2, 40000, 5201, payload, t1.mac, H1_MAC, True)
    queue = queues[tap.fd]
    batch = [data] * BATCH.get(case, 1)

    def one_step() -> None:
        queue.extend(batch)
        while queue or tap._bulk:  # turns as the loop gives them, each cut by its quantum
            tap.share.deficit = 0.0
            tap._on_readable()
            while waiting:
                waiting.pop().pump(NOW, 64, 0.0005)

    return one_step, lambda: left[0]


def measure(case: str, steps: int) -> float:
    """Return CPU microseconds per frame of ``case``."""
    one_step, left = prepare(case)
    batch = BATCH.get(case, 1)
    for _ in range(100):
        one_step()
    if left() != 100 * batch:
        raise SystemExit(f"{case}: {left()} of {100 * batch} frames left the far TAP")
    steps = max(1, steps // batch)
    start = time.process_time()
    for _ in range(steps):
        one_step()
    return 1e6 * (time.process_time() - start) / (steps * batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    cases = [c for c in CASES if c in args.cases.split(",")]
    print(f"load average at start: {loadavg()}")
    results: dict[str, list[float]] = {c: [] for c in cases}
    for run in range(args.runs):
        for case in cases:
            results[case].append(measure(case, args.steps))
            print(f"run {run + 1}/{args.runs} {case:6s} {results[case][-1]:7.2f} us", flush=True)
    print(f"load average at end: {loadavg()}")
    for case, v in results.items():
        print(f"{case:6s} min {min(v):7.2f} median {statistics.median(v):7.2f} "
              f"max {max(v):7.2f} us CPU per frame")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
