"""Tunnel segmentation: a TCP super-frame cut into the datagrams of one ``UDP_SEGMENT`` send.

A tunnel interface (VXLAN) that transmits a TSO super-frame (the TAP's
64 KiB frames, :mod:`vrouter.link.offload`) hands the host UDP socket
every datagram of it in one buffer for one ``sendmsg``: each datagram is
the tunnel's header, the inner headers of one segment and its payload.
The kernel cuts the send at the datagram size (``UDP_SEGMENT``); every
datagram but the last has that size.

The inner headers are one template patched per segment: the IPv4 length,
identification (+ i) and header checksum, or the IPv6 payload length; the
TCP sequence number, FIN/PSH only on the last segment and CWR only on the
first.  Both checksums are computed incrementally from the template's
sum: only the lengths, those fields and the payload's sum differ from
segment to segment.  With numpy (the ``fib`` extra) the datagrams are laid
out, summed and patched as the rows of one array, a few vectorised steps
for the whole super-frame; without it segment by segment.  Without a
tunnel header the datagrams are plain segments:
:func:`vrouter.link.offload.segment` (a TAP without offloads, local
delivery) cuts its super-frames here too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

from vrouter.wire.checksum import ones_sum, optional_numpy, swapped_totals

_ETH = 14
_TCP_FIN_PSH = 0x09
"""FIN and PSH: set on the last segment only."""
_TCP_CWR = 0x80


class Train(NamedTuple):
    """The datagrams of one super-frame, back to back, ready for ``sendmsg``."""

    data: bytes | bytearray | memoryview
    size: int
    """Bytes of every datagram but the last, which may be shorter."""
    datagrams: int


@dataclass(slots=True)
class _Shape:
    """What every datagram of one super-frame shares, and where each differs."""

    template: bytearray
    """Tunnel header and inner headers, the fields each segment patches zeroed."""
    payload: memoryview
    size: int
    """Payload bytes of every segment but the last."""
    count: int
    ipv4: bool
    ip: int
    """Offsets of the inner IP and TCP headers in the template."""
    tcp: int
    ip_hlen: int
    tcp_hlen: int
    ip_sum: int
    """One's complement sum of the template's IPv4 header (0 for IPv6)."""
    tcp_sum: int
    """... of its TCP header and the pseudo-header without the length."""
    ident: int
    seq: int
    flags: int

    def flags_of(self, i: int) -> int:
        """Return segment ``i``'s TCP flags: FIN/PSH on the last only, CWR on the first."""
        flags = self.flags
        if i < self.count - 1:
            flags &= ~_TCP_FIN_PSH
        if i:
            flags &= ~_TCP_CWR
        return flags


def _fold(total: int) -> int:
    """Return the checksum field for a one's complement ``total`` (as :func:`checksum`)."""
    return (0xFFFF - total % 0xFFFF) % 0xFFFF


def _shape(frame: bytes | bytearray, tcp_at: int, gso_size: int, prefix: bytes) -> _Shape:
    headers = tcp_at + (frame[tcp_at + 12] >> 4) * 4
    ipv4 = frame[_ETH] >> 4 == 4
    payload = memoryview(frame)[headers:]
    size = gso_size or len(payload) or 1
    p = len(prefix)
    template = bytearray(prefix)
    template += frame[:headers]
    ip = p + _ETH
    tcp = p + tcp_at
    view = memoryview(template)
    template[tcp + 4 : tcp + 8] = bytes(4)
    template[tcp + 13] = 0
    template[tcp + 16 : tcp + 18] = b"\0\0"
    if ipv4:
        template[ip + 2 : ip + 6] = bytes(4)
        template[ip + 10 : ip + 12] = b"\0\0"
        ip_sum = ones_sum(view[ip:tcp])
        pseudo = ones_sum(view[ip + 12 : ip + 20], 6)
    else:
        template[ip + 4 : ip + 6] = b"\0\0"
        ip_sum = 0
        pseudo = ones_sum(view[ip + 8 : ip + 40], 6)
    return _Shape(
        template=template,
        payload=payload,
        size=size,
        count=max(1, -(-len(payload) // size)),
        ipv4=ipv4,
        ip=ip,
        tcp=tcp,
        ip_hlen=tcp_at - _ETH,
        tcp_hlen=headers - tcp_at,
        ip_sum=ip_sum,
        tcp_sum=ones_sum(view[tcp:], pseudo),
        ident=int.from_bytes(frame[_ETH + 4 : _ETH + 6], "big") if ipv4 else 0,
        seq=int.from_bytes(frame[tcp_at + 4 : tcp_at + 8], "big"),
        flags=frame[tcp_at + 13],
    )


def cut(frame: bytes | bytearray, tcp_at: int, gso_size: int, prefix: bytes) -> Train:
    """Return the datagrams of TCP super-frame ``frame`` (its TCP header at ``tcp_at``,
    see :func:`vrouter.link.offload.tcp_offset`): ``prefix`` (the tunnel's header)
    and one ``gso_size`` segment each, headers and checksums complete."""
    shape = _shape(frame, tcp_at, gso_size, prefix)
    np = optional_numpy()
    data = _cut_loop(shape) if np is None else _cut_numpy(np, shape)
    return Train(data, len(shape.template) + shape.size, shape.count)


_U16 = struct.Struct("!H")
_U16X2 = struct.Struct("!HH")
_U32 = struct.Struct("!I")


def _cut_loop(shape: _Shape) -> bytearray:
    """Lay out and patch the datagrams one by one."""
    out = bytearray()
    ip, tcp, size, payload = shape.ip, shape.tcp, shape.size, shape.payload
    for i in range(shape.count):
        chunk = payload[i * size : (i + 1) * size]
        l4_len = shape.tcp_hlen + len(chunk)
        flags = shape.flags_of(i)
        seq = (shape.seq + i * size) & 0xFFFFFFFF
        head = shape.template[:]
        if shape.ipv4:
            ident = (shape.ident + i) & 0xFFFF
            ip_len = shape.ip_hlen + l4_len
            _U16X2.pack_into(head, ip + 2, ip_len, ident)
            _U16.pack_into(head, ip + 10, _fold(shape.ip_sum + ip_len + ident))
        else:
            _U16.pack_into(head, ip + 4, shape.ip_hlen - 40 + l4_len)
        _U32.pack_into(head, tcp + 4, seq)
        head[tcp + 13] = flags
        total = shape.tcp_sum + l4_len + flags + (seq >> 16) + (seq & 0xFFFF) + ones_sum(chunk)
        _U16.pack_into(head, tcp + 16, _fold(total))
        out += head
        out += chunk
    return out


def _cut_numpy(np: Any, shape: _Shape) -> memoryview:
    """Lay out the datagrams as the rows of one array and patch every row at once."""
    hlen = len(shape.template)
    size, count = shape.size, shape.count
    row = hlen + size
    full = len(shape.payload) // size
    rest = len(shape.payload) - full * size
    buf = np.zeros(count * row, np.uint8)
    rows = buf.reshape(count, row)
    rows[:, :hlen] = np.frombuffer(shape.template, np.uint8)
    payload = np.frombuffer(shape.payload, np.uint8)
    rows[:full, hlen:] = payload[: full * size].reshape(full, size)
    if rest:
        rows[full, hlen : hlen + rest] = payload[full * size :]
    index = np.arange(count, dtype=np.int64)
    l4_len = np.full(count, shape.tcp_hlen + size, dtype=np.int64)
    if rest:
        l4_len[-1] = shape.tcp_hlen + rest
    flags = np.full(count, shape.flags_of(1 if count > 2 else 0), dtype=np.int64)
    flags[0] = shape.flags_of(0)
    flags[-1] = shape.flags_of(count - 1)
    seq = (shape.seq + index * size) & 0xFFFFFFFF
    folded = _payload_totals(np, shape, buf, row).astype(np.int64) % 0xFFFF
    payload_sum = ((folded & 0xFF) << 8) | (folded >> 8)
    tcp_total = shape.tcp_sum + l4_len + flags + (seq >> 16) + (seq & 0xFFFF) + payload_sum
    ip, tcp = shape.ip, shape.tcp
    if shape.ipv4:
        ident = (shape.ident + index) & 0xFFFF
        ip_len = shape.ip_hlen + l4_len
        _column(np, buf, ip + 2, row, ">u2")[:] = ip_len
        _column(np, buf, ip + 4, row, ">u2")[:] = ident
        ip_total = shape.ip_sum + ip_len + ident
        _column(np, buf, ip + 10, row, ">u2")[:] = (0xFFFF - ip_total % 0xFFFF) % 0xFFFF
    else:
        _column(np, buf, ip + 4, row, ">u2")[:] = shape.ip_hlen - 40 + l4_len
    _column(np, buf, tcp + 4, row, ">u4")[:] = seq
    rows[:, tcp + 13] = flags
    _column(np, buf, tcp + 16, row, ">u2")[:] = (0xFFFF - tcp_total % 0xFFFF) % 0xFFFF
    return memoryview(buf)[: count * row - (size - rest if rest else 0)]


def _payload_totals(np: Any, shape: _Shape, buf: Any, row: int) -> Any:
    """Return each segment's payload sum (byte-swapped, unfolded), read from the
    super-frame where its segments lie back to back (an even size: summed
    there, about twice as fast) or from the datagrams."""
    size, count = shape.size, shape.count
    payload = shape.payload
    if size & 1 or len(payload) < count * size:
        return swapped_totals(np, buf, len(shape.template), row, size, count)
    return swapped_totals(np, payload, 0, size, size, count)


def _column(np: Any, buf: Any, offset: int, row: int, kind: str) -> Any:
    """Return the field at ``offset`` of every row of ``buf`` as one writable array."""
    return np.ndarray((len(buf) // row,), kind, buf, offset, (row,))
