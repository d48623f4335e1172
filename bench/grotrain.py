#!/usr/bin/env python3
"""VXLAN receive in process: CPU per UDP_GRO read joined into a TCP super-frame.

What the daemon does with the reads of a Linux VTEP's TCP stream
(bench/vxlan.py, h2 -> h1), without the socket and the event loop: each
read is ``--datagrams`` VXLAN datagrams of one size (an inner TCP segment
of 1,398 bytes with timestamps, MTU 1450), ``--reads`` consecutive reads
of one flow make one super-frame; each is checked and joined
(``gro.Joining.start`` for the first, ``add`` for the others, ``finish``
once), as ``Vxlan.input_train`` does.

Usage: .venv/bin/python bench/grotrain.py [--datagrams 23] [--reads 2] [--runs 5]
The figures are printed; the levers table of bench/RESULTS.md's vxlan section
records them.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time

from report import loadavg

from vrouter.link import gro
from vrouter.wire import vxlan as wire
from vrouter.wire.checksum import checksum, ones_sum

MSS = 1398


def segment(seq: int, payload: bytes) -> bytes:
    """An IPv4 TCP segment 198.51.100.2:5201 -> .3:40000 with a timestamp option."""
    tcp = struct.pack("!HHIIBBHHH", 5201, 40000, seq, 7, 8 << 4, 0x10, 500, 0, 0)
    tcp += b"\x01\x01\x08\x0a" + bytes(8)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 1,
                               0x4000, 64, 6, 0, bytes([198, 51, 100, 2]),
                               bytes([198, 51, 100, 3])))  # fmt: skip
    ip[10:12] = checksum(ip).to_bytes(2, "big")
    seg = bytearray(tcp + payload)
    seg[16:18] = checksum(seg, ones_sum(bytes(ip[12:20]), 6 + len(seg))).to_bytes(2, "big")
    return bytes.fromhex("0200000000030200000000020800") + bytes(ip) + bytes(seg)


def reads(datagrams: int, count: int) -> tuple[list[bytes], int]:
    """``count`` consecutive reads of ``datagrams`` datagrams each, and their stride."""
    out = []
    seq = 1000
    for _ in range(count):
        out.append(
            b"".join(
                wire.header(42) + segment(seq + i * MSS, bytes([i]) * MSS) for i in range(datagrams)
            )
        )
        seq += datagrams * MSS
    return out, len(out[0]) // datagrams


def join(data: list[bytes], stride: int) -> int:
    """Join the reads as Vxlan.input_train does; return the super-frame's length."""
    joining = None
    for read in data:
        if joining is None or not joining.add(read, stride, wire.HEADER_LEN):
            started = gro.Joining.start(read, stride, wire.HEADER_LEN)
            assert started is not None and started[1] == len(read)
            joining = started[0]
    assert joining is not None
    return len(joining.finish())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datagrams", type=int, default=23, help="datagrams a read")
    parser.add_argument("--reads", type=int, default=2, help="reads a super-frame")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5000, help="super-frames a run")
    args = parser.parse_args()
    data, stride = reads(args.datagrams, args.reads)
    assert join(data, stride) == 14 + 20 + 32 + args.datagrams * args.reads * MSS
    print(f"load average at start: {loadavg()}")
    per_read = []
    for _ in range(args.runs):
        start = time.process_time()
        for _ in range(args.steps):
            join(data, stride)
        per_read.append((time.process_time() - start) / args.steps / args.reads * 1e6)
    print(
        f"{args.datagrams} datagrams a read, {args.reads} reads a super-frame: "
        f"{min(per_read):.1f} / {statistics.median(per_read):.1f} / {max(per_read):.1f} us "
        f"a read (min / median / max of {args.runs}), "
        f"{statistics.median(per_read) / args.datagrams:.2f} us a datagram; "
        f"load average at end: {loadavg()}"
    )


if __name__ == "__main__":
    main()
