"""Receive coalescing: consecutive TCP segments of one flow become one super-frame (GRO).

A device that receives many frames at once (a VXLAN socket's ``UDP_GRO``
read) hands them to :func:`coalesce`, which joins runs of IPv4 TCP segments
the way Linux's GRO does: same addresses and ports, contiguous sequence
numbers, the same acknowledgement, window and options (timestamps
included), only ACK (PSH on the last) set, no IP options or fragments, and
every segment but the last of the run's size.  Each segment's TCP checksum
is verified first; one that fails is passed on alone (its receiver drops
it), never merged.  A run becomes an
:class:`~vrouter.link.offload.OffloadBuffer` carrying a TSO header: its
checksum field holds the pseudo-header sum, so whoever takes it (a TAP with
offloads, or :func:`~vrouter.link.offload.resolve` on the way to a device
without) finishes it.  Everything else passes unchanged, in order.
"""

from __future__ import annotations

from vrouter.link.offload import OffloadBuffer, tcp_super_header
from vrouter.wire.checksum import checksum, ones_sum

_ETH = 14
_TCP_AT = _ETH + 20
_MAX_SUPER = 65535 - 20
"""Bytes of TCP (header and payload) one IPv4 super-frame may hold."""
_MERGEABLE_FLAGS = (0x10, 0x18)
"""ACK, ACK|PSH."""


def _segment(frame: bytes | bytearray) -> tuple[int, int, int] | None:
    """Return (TCP header length, payload length, sequence) of a mergeable segment, or None."""
    if len(frame) < _TCP_AT + 20 or frame[12] != 0x08 or frame[13] != 0x00:
        return None
    if frame[_ETH] != 0x45 or frame[_ETH + 9] != 6 or frame[_ETH + 6] & 0x3F or frame[_ETH + 7]:
        return None  # IP options, not TCP, or a fragment
    ip_len = (frame[_ETH + 2] << 8) | frame[_ETH + 3]
    if ip_len + _ETH != len(frame):
        return None  # Ethernet padding or a truncated packet
    tcp_hlen = (frame[_TCP_AT + 12] >> 4) * 4
    payload = ip_len - 20 - tcp_hlen
    if tcp_hlen < 20 or payload <= 0 or frame[_TCP_AT + 13] not in _MERGEABLE_FLAGS:
        return None
    return tcp_hlen, payload, int.from_bytes(frame[_TCP_AT + 4 : _TCP_AT + 8], "big")


def _valid(frame: bytes | bytearray) -> bool:
    """Return True if the segment's TCP checksum is right."""
    tcp_len = len(frame) - _TCP_AT
    pseudo = ones_sum(frame[_ETH + 12 : _ETH + 20], 6 + tcp_len)
    return ones_sum(memoryview(frame)[_TCP_AT:], pseudo) == 0xFFFF


def _same_flow(a: bytes | bytearray, b: bytes | bytearray, tcp_hlen: int) -> bool:
    """Return True if ``b`` continues ``a``'s flow with identical headers but seq and flags."""
    return (
        a[_ETH + 12 : _ETH + 20] == b[_ETH + 12 : _ETH + 20]  # addresses
        and a[_TCP_AT : _TCP_AT + 4] == b[_TCP_AT : _TCP_AT + 4]  # ports
        and a[_TCP_AT + 8 : _TCP_AT + 13] == b[_TCP_AT + 8 : _TCP_AT + 13]  # ack, offset
        and a[_TCP_AT + 14 : _TCP_AT + 16] == b[_TCP_AT + 14 : _TCP_AT + 16]  # window
        and a[_TCP_AT + 20 : _TCP_AT + tcp_hlen] == b[_TCP_AT + 20 : _TCP_AT + tcp_hlen]
    )


def _merge(run: list[bytes | bytearray], tcp_hlen: int, size: int) -> OffloadBuffer:
    """Join ``run`` (checked, in order) into one TSO super-frame."""
    headers = _TCP_AT + tcp_hlen
    first = run[0]
    out = OffloadBuffer(first[:headers])
    for frame in run:
        out += memoryview(frame)[headers:]
    ip_len = len(out) - _ETH
    out[_ETH + 2 : _ETH + 4] = ip_len.to_bytes(2, "big")
    out[_ETH + 10 : _ETH + 12] = b"\0\0"
    out[_ETH + 10 : _ETH + 12] = checksum(memoryview(out)[_ETH:_TCP_AT]).to_bytes(2, "big")
    out[_TCP_AT + 13] = run[-1][_TCP_AT + 13]  # PSH of the last segment
    pseudo = ones_sum(first[_ETH + 12 : _ETH + 20], 6 + ip_len - 20)
    out[_TCP_AT + 16 : _TCP_AT + 18] = pseudo.to_bytes(2, "big")
    out.vhdr = tcp_super_header(True, 20, tcp_hlen, size)
    return out


def coalesce(frames: list[bytes | bytearray]) -> list[bytes | bytearray]:
    """Return ``frames`` with runs of one TCP flow's segments joined into super-frames."""
    out: list[bytes | bytearray] = []
    run: list[bytes | bytearray] = []
    run_hlen = run_size = next_seq = total = 0

    def close() -> None:
        if len(run) > 1:
            out.append(_merge(run, run_hlen, run_size))
        elif run:
            out.append(run[0])
        run.clear()

    for frame in frames:
        shape = _segment(frame)
        if shape is None or not _valid(frame):
            close()
            out.append(frame)
            continue
        tcp_hlen, payload, seq = shape
        if (
            run
            and tcp_hlen == run_hlen
            and seq == next_seq
            and payload <= run_size
            and total + payload <= _MAX_SUPER
            and run[-1][_TCP_AT + 13] == 0x10  # no PSH inside a run
            and _same_flow(run[0], frame, tcp_hlen)
        ):
            run.append(frame)
            next_seq = (seq + payload) & 0xFFFFFFFF
            total += payload
            if payload < run_size:
                close()  # a short segment ends the run
            continue
        close()
        run.append(frame)
        run_hlen, run_size, total = tcp_hlen, payload, tcp_hlen + payload
        next_seq = (seq + payload) & 0xFFFFFFFF
    close()
    return out
