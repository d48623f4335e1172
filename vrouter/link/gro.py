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

from functools import lru_cache
from typing import Any

from vrouter.link.offload import OffloadBuffer, tcp_super_header
from vrouter.wire.checksum import checksum, ones_sum, optional_numpy, sums_valid

_ETH = 14
_TCP_AT = _ETH + 20
_MAX_SUPER = 65535 - 20
"""Bytes of TCP (header and payload) one IPv4 super-frame may hold."""
_MERGEABLE_FLAGS = (0x10, 0x18)
"""ACK, ACK|PSH."""
Buffer = bytes | bytearray | memoryview


def _segment(frame: Buffer) -> tuple[int, int, int] | None:
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


def _valid(frame: Buffer) -> bool:
    """Return True if the segment's TCP checksum is right."""
    tcp_len = len(frame) - _TCP_AT
    pseudo = ones_sum(frame[_ETH + 12 : _ETH + 20], 6 + tcp_len)
    return ones_sum(memoryview(frame)[_TCP_AT:], pseudo) == 0xFFFF


def _same_flow(a: Buffer, b: Buffer, tcp_hlen: int) -> bool:
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
    return _finish(out, run[-1][_TCP_AT + 13], tcp_hlen, size)


def _finish(out: OffloadBuffer, flags: int, tcp_hlen: int, size: int) -> OffloadBuffer:
    """Make ``out`` (the first segment's headers, then every payload) a TSO super-frame
    with ``flags`` (the last segment's) and segments of ``size`` payload bytes."""
    ip_len = len(out) - _ETH
    out[_ETH + 2 : _ETH + 4] = ip_len.to_bytes(2, "big")
    out[_ETH + 10 : _ETH + 12] = b"\0\0"
    out[_ETH + 10 : _ETH + 12] = checksum(memoryview(out)[_ETH:_TCP_AT]).to_bytes(2, "big")
    out[_TCP_AT + 13] = flags  # PSH of the last segment
    pseudo = ones_sum(out[_ETH + 12 : _ETH + 20], 6 + ip_len - 20)
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


def extend(held: OffloadBuffer, more: OffloadBuffer) -> bool:
    """Append super-frame ``more`` (of :func:`join_train` or :func:`coalesce`) to ``held``
    if it continues it: the same flow and headers, the same segment size, ``held``
    a whole number of segments without PSH, contiguous sequence numbers, room
    left.  Return False, ``held`` unchanged, if it does not."""
    size = held.vhdr.gso_size
    tcp_hlen = (held[_TCP_AT + 12] >> 4) * 4
    headers = _TCP_AT + tcp_hlen
    payload = len(held) - headers
    if (
        more.vhdr.gso_size != size
        or held[_TCP_AT + 13] != 0x10
        or payload % size
        or len(more) - headers + len(held) - _ETH - 20 > _MAX_SUPER
        or (more[_TCP_AT + 12] >> 4) * 4 != tcp_hlen
    ):
        return False
    seq = int.from_bytes(held[_TCP_AT + 4 : _TCP_AT + 8], "big")
    if int.from_bytes(more[_TCP_AT + 4 : _TCP_AT + 8], "big") != (seq + payload) & 0xFFFFFFFF:
        return False
    if not _same_flow(held, more, tcp_hlen):
        return False
    held += memoryview(more)[headers:]
    _finish(held, more[_TCP_AT + 13], tcp_hlen, size)
    return True


def join_train(data: bytes, stride: int, skip: int) -> tuple[OffloadBuffer, int] | None:
    """Join one read's datagrams into one super-frame if they are one TCP flow's segments.

    ``data`` holds datagrams of ``stride`` bytes (the last may be shorter),
    each a ``skip``-byte tunnel header and an inner frame.  The tunnel
    headers must be identical, the inner frames what :func:`coalesce` joins:
    all but the last of one size, every header identical but for the
    IPv4 identification, sequence number, PSH on the last and the checksums,
    the sequence numbers contiguous, every checksum right.  Return the
    super-frame and how many bytes of ``data`` it took (less than all when
    the last, shorter datagram does not continue the run: the caller takes
    it alone), or None: no numpy, or another kind of read.
    """
    np = optional_numpy()
    rows_n = len(data) // stride
    if np is None or rows_n < 2 or stride <= skip:
        return None
    view = memoryview(data)
    first = view[skip:stride]
    shape = _segment(first)
    if shape is None:
        return None
    tcp_hlen, payload, _ = shape
    if _TCP_AT + tcp_hlen + payload != stride - skip:
        return None
    rows = np.ndarray((rows_n, stride), np.uint8, data)
    if not _rows_continue(np, rows, data, skip, tcp_hlen, payload):
        return None
    tcp_at = skip + _TCP_AT
    headers = tcp_at + tcp_hlen
    used = rows_n * stride
    last_flags = view[used - stride + tcp_at + 13]
    out = OffloadBuffer(first[: _TCP_AT + tcp_hlen])
    out += rows[:, headers:].tobytes()
    tail = view[used:]
    if len(tail) > skip and last_flags == 0x10 and _tail_continues(view, tail, skip, shape):
        out += tail[headers:]
        last_flags = tail[tcp_at + 13]
        used = len(data)
    return _finish(out, last_flags, tcp_hlen, payload), used


def _rows_continue(
    np: Any, rows: Any, data: bytes, skip: int, tcp_hlen: int, payload: int
) -> bool:
    """Return True if the datagrams in ``rows`` (all full) form one run of one flow."""
    count, stride = rows.shape
    tcp_at = skip + _TCP_AT
    constant = rows[:, _constant_columns(skip, tcp_hlen)]
    if not (constant == constant[0]).all():
        return False
    flags = rows[:, tcp_at + 13].tobytes()
    if flags[:-1] != b"\x10" * (count - 1) or flags[-1] not in _MERGEABLE_FLAGS:
        return False
    seqs = np.ndarray((count,), ">u4", data, tcp_at + 4, (stride,))
    if not (np.diff(seqs) == payload).all():  # unsigned: wraps around 2**32 as seq does
        return False
    if not sums_valid(data, skip + _ETH, stride, 20, count):
        return False  # an IPv4 header checksum is wrong
    tcp_len = tcp_hlen + payload
    pseudo = ones_sum(data[skip + _ETH + 12 : skip + _ETH + 20], 6 + tcp_len)
    return sums_valid(data, tcp_at, stride, tcp_len, count, pseudo)


def _tail_continues(
    view: memoryview, tail: memoryview, skip: int, shape: tuple[int, int, int]
) -> bool:
    """Return True if the last, shorter datagram ``tail`` continues the run of full ones."""
    tcp_hlen, payload, seq = shape
    frame = tail[skip:]
    tail_shape = _segment(frame)
    if tail_shape is None or tail[:skip] != view[:skip]:
        return False
    count = (len(view) - len(tail)) // (skip + _TCP_AT + tcp_hlen + payload)
    return (
        tail_shape[0] == tcp_hlen
        and tail_shape[1] < payload
        and tail_shape[2] == (seq + count * payload) & 0xFFFFFFFF
        and _valid(frame)
        and _same_flow(view[skip:], frame, tcp_hlen)
    )


@lru_cache(maxsize=16)
def _constant_columns(skip: int, tcp_hlen: int) -> Any:
    """Return the columns of a datagram that every segment of a run shares: the tunnel
    header and every inner header byte but identification, sequence number, flags and
    the checksums."""
    np = optional_numpy()
    ip = skip + _ETH
    tcp = skip + _TCP_AT
    varying = {ip + 4, ip + 5, ip + 10, ip + 11, *range(tcp + 4, tcp + 8), tcp + 13}
    varying |= {tcp + 16, tcp + 17}
    return np.array([c for c in range(tcp + tcp_hlen) if c not in varying], dtype=np.intp)
