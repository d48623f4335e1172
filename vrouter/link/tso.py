"""Tunnel segmentation: a TCP super-frame cut into the datagrams of one ``UDP_SEGMENT`` send.

A tunnel interface (VXLAN) that transmits a TSO super-frame (the TAP's
64 KiB frames, :mod:`vrouter.link.offload`) hands the host UDP socket
every datagram of it in one ``sendmsg``: each datagram is the tunnel's
header and the inner headers of one segment, then that segment's payload,
a slice of the super-frame itself (never copied here).  The kernel cuts
the send at the size of the first datagram (``UDP_SEGMENT``); every
datagram but the last has that size.

The inner headers are one template patched per segment: the IPv4 length,
identification (+ i) and header checksum, or the IPv6 payload length; the
TCP sequence number, FIN/PSH only on the last segment and CWR only on the
first.  Both checksums are computed incrementally from the template's
sum: only the payload's sum differs from segment to segment, and those
are summed all at once (:func:`vrouter.wire.checksum.ones_sums`).  The
segments are the ones :func:`vrouter.link.offload.segment` makes.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from vrouter.link.offload import VirtioHdr, headers_len, tcp_offset
from vrouter.wire.checksum import ones_sum, ones_sums

_ETH = 14
_TCP_FIN = 0x01
_TCP_PSH = 0x08
_TCP_CWR = 0x80
_U16 = struct.Struct("!H")
_U16X2 = struct.Struct("!HH")
_U32 = struct.Struct("!I")


class Train(NamedTuple):
    """The datagrams of one super-frame, ready for one ``sendmsg``."""

    parts: list[bytes | bytearray | memoryview]
    """Two parts a datagram, in order: its headers (tunnel and inner), its payload."""
    size: int
    """Bytes of every datagram but the last, which may be shorter."""
    datagrams: int
    nbytes: int
    """Bytes of all datagrams together."""


def _fold(total: int) -> int:
    """Return the checksum field for a one's complement ``total`` (as :func:`checksum`)."""
    folded = total % 0xFFFF
    if folded == 0 and total:
        folded = 0xFFFF
    return ~folded & 0xFFFF


def cut(frame: bytes | bytearray, vhdr: VirtioHdr, prefix: bytes) -> Train:
    """Return the datagrams of TCP super-frame ``frame``: ``prefix`` (the tunnel's header)
    and one ``gso_size`` segment each, headers and checksums complete."""
    tcp_at = tcp_offset(frame, vhdr)
    headers = headers_len(frame, vhdr)
    ipv4 = frame[_ETH] >> 4 == 4
    payload = memoryview(frame)[headers:]
    total = len(payload)
    size = vhdr.gso_size or total or 1
    count = max(1, -(-total // size))
    full = total // size
    sums = ones_sums(payload, 0, size, size, full)
    if len(sums) < count:
        sums.append(ones_sum(payload[full * size :]))
    p = len(prefix)
    template = bytearray(prefix)
    template += frame[:headers]
    ip = p + _ETH
    tcp = p + tcp_at
    tcp_len = headers - tcp_at
    ip_len = tcp_at - _ETH
    # The template's sums leave out what each segment patches: lengths, identification,
    # sequence number, flags and both checksum fields.
    template[tcp + 4 : tcp + 8] = bytes(4)
    template[tcp + 13] = 0
    template[tcp + 16 : tcp + 18] = b"\0\0"
    if ipv4:
        template[ip + 2 : ip + 6] = bytes(4)
        template[ip + 10 : ip + 12] = b"\0\0"
        ip_sum = ones_sum(memoryview(template)[ip:tcp])
        pseudo = ones_sum(memoryview(template)[ip + 12 : ip + 20], 6)
        ident = _U16.unpack_from(frame, _ETH + 4)[0]
    else:
        template[ip + 4 : ip + 6] = b"\0\0"
        ip_sum = 0
        pseudo = ones_sum(memoryview(template)[ip + 8 : ip + 40], 6)
        ident = 0
    tcp_sum = ones_sum(memoryview(template)[tcp : p + headers], pseudo)
    seq = _U32.unpack_from(frame, tcp_at + 4)[0]
    flags = frame[tcp_at + 13]
    parts: list[bytes | bytearray | memoryview] = []
    last = count - 1
    for i in range(count):
        chunk = payload[i * size : (i + 1) * size]
        l4_len = tcp_len + len(chunk)
        seg_flags = flags
        if i < last:
            seg_flags &= ~(_TCP_FIN | _TCP_PSH)
        if i:
            seg_flags &= ~_TCP_CWR
        seg_seq = (seq + i * size) & 0xFFFFFFFF
        head = template[:]
        if ipv4:
            seg_ident = (ident + i) & 0xFFFF
            _U16X2.pack_into(head, ip + 2, ip_len + l4_len, seg_ident)
            _U16.pack_into(head, ip + 10, _fold(ip_sum + ip_len + l4_len + seg_ident))
        else:
            _U16.pack_into(head, ip + 4, ip_len - 40 + l4_len)
        _U32.pack_into(head, tcp + 4, seg_seq)
        head[tcp + 13] = seg_flags
        csum = tcp_sum + l4_len + seg_flags + (seg_seq >> 16) + (seg_seq & 0xFFFF) + sums[i]
        _U16.pack_into(head, tcp + 16, _fold(csum))
        parts.append(head)
        parts.append(chunk)
    datagram = p + headers + size
    return Train(parts, datagram, count, count * (p + headers) + total)
