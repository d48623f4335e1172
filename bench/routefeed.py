#!/usr/bin/env python3
"""Add or delete a feed of IPv4 /32 routes in the current network namespace, in netlink batches.

A routing daemon's data plane installs a large table this way (FRR zebra's
``dplane`` writes batches of route messages to one netlink socket): about
a thousand ``RTM_NEWROUTE`` (or ``RTM_DELROUTE``) messages to a ``send``, no
acknowledgement asked, the kernel answering only failures.  ``ip -batch``
instead waits for an answer to each route and takes some 30 s for a million
on the benchmark machine, longer than the sync's whole budget.

Usage (in the namespace, e.g. under ``ip netns exec``):
  routefeed.py add|del FIRST COUNT GATEWAY DEVICE PROTOCOL

Routes FIRST, FIRST+1, ... (``FIRST`` an IPv4 address) via ``GATEWAY`` dev
``DEVICE``, ``proto PROTOCOL`` (a number), main table.  Prints the routes
sent and the failures; exits 1 if any failed.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

from vrouter.mirror.rtnetlink import (
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSGHDR,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTM_DELROUTE,
    RTM_NEWROUTE,
    RTN_UNICAST,
)

NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
BATCH = 1000
"""Route messages to one send (some 60 KiB)."""

ROUTE = struct.Struct("=BBBBBBBBI HH4s HH4s HHI")
"""An rtmsg with RTA_DST, RTA_GATEWAY and RTA_OIF."""


def batch(kind: int, first: int, count: int, seq: int, gateway: bytes, oif: int,
          proto: int) -> bytes:  # fmt: skip
    """Return ``count`` route messages from address number ``first`` on."""
    flags = NLM_F_REQUEST | (NLM_F_CREATE | NLM_F_EXCL if kind == RTM_NEWROUTE else 0)
    out = bytearray()
    for n in range(count):
        body = ROUTE.pack(
            socket.AF_INET, 32, 0, 0, RT_TABLE_MAIN, proto, 0, RTN_UNICAST, 0,
            8, RTA_DST, (first + n).to_bytes(4, "big"),
            8, RTA_GATEWAY, gateway,
            8, RTA_OIF, oif,
        )  # fmt: skip
        out += NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, flags, seq + n, 0) + body
    return bytes(out)


def failures(sock: socket.socket) -> int:
    """Read what the kernel answered so far (only failures); return how many."""
    failed = 0
    while True:
        try:
            data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return failed
        at = 0
        while at + NLMSGHDR.size <= len(data):
            length, kind, _, _, _ = NLMSGHDR.unpack_from(data, at)
            if kind == NLMSG_ERROR and struct.unpack_from("=i", data, at + NLMSGHDR.size)[0]:
                failed += 1
            at += max((length + 3) & ~3, NLMSGHDR.size)


def main(argv: list[str]) -> int:
    if len(argv) != 6 or argv[0] not in ("add", "del"):
        print(__doc__, file=sys.stderr)
        return 2
    verb, first_text, count_text, gateway_text, device, proto_text = argv
    kind = RTM_NEWROUTE if verb == "add" else RTM_DELROUTE
    first = int(ipaddress.IPv4Address(first_text))
    count, proto = int(count_text), int(proto_text)
    gateway = ipaddress.IPv4Address(gateway_text).packed
    oif = socket.if_nametoindex(device)
    failed = 0
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        sock.bind((0, 0))
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            sock.send(batch(kind, first + start, size, start + 1, gateway, oif, proto))
            failed += failures(sock)
        failed += failures(sock)
    print(f"{verb}: {count} routes sent, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
