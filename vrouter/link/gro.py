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

A ``UDP_GRO`` read of a tunnel (datagrams of one size back to back) is
checked whole instead, with a few numpy calls (:func:`join_train`), and
one flow's consecutive reads are copied, payloads only and once, into one
growing super-frame (:class:`Joining`), finished when the reads run dry.
"""

from __future__ import annotations

import struct
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
    """Return True if ``b`` continues ``a``'s flow with identical headers but the IPv4
    length and identification, seq, flags and the checksums."""
    ip, tcp = _ETH, _TCP_AT
    return (
        a[: ip + 2] == b[: ip + 2]  # MACs, type, IPv4 version, TOS
        and a[ip + 6 : ip + 10] == b[ip + 6 : ip + 10]  # fragment field, TTL, protocol
        and a[ip + 12 : tcp + 4] == b[ip + 12 : tcp + 4]  # addresses, ports
        and a[tcp + 8 : tcp + 13] == b[tcp + 8 : tcp + 13]  # ack, offset
        and a[tcp + 14 : tcp + 16] == b[tcp + 14 : tcp + 16]  # window
        and a[tcp + 18 : tcp + tcp_hlen] == b[tcp + 18 : tcp + tcp_hlen]  # urgent, options
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
    started = Joining.start(data, stride, skip)
    if started is None:
        return None
    joining, used = started
    return joining.finish(), used


class Joining:
    """A TCP super-frame being built from the GRO reads of one flow (:meth:`start`,
    :meth:`add`): the first segment's headers, then every payload, copied once,
    straight from the reads; made a TSO super-frame once, by :meth:`finish`."""

    __slots__ = ("frame", "end", "tcp_hlen", "size", "next_seq", "open")

    def __init__(self, frame: OffloadBuffer, end: int, tcp_hlen: int, size: int) -> None:
        self.frame = frame
        """Room for the largest super-frame; bytes up to ``end`` hold the frame so far."""
        self.end = end
        self.tcp_hlen = tcp_hlen
        self.size = size
        """Payload bytes of every segment (the last may be shorter)."""
        self.next_seq = 0
        self.open = True
        """False once a shorter segment or PSH ended the run: nothing more joins."""

    @classmethod
    def start(cls, data: bytes, stride: int, skip: int) -> tuple[Joining, int] | None:
        """Begin a super-frame with one read (see :func:`join_train`); return it and how
        many bytes of ``data`` it took, or None."""
        checked = _check_train(data, stride, skip)
        if checked is None:
            return None
        rows, tcp_hlen, payload = checked
        headers = _TCP_AT + tcp_hlen
        if headers + rows.shape[0] * payload > _ROOM:
            return None
        frame = OffloadBuffer(_ROOM)
        frame[:headers] = memoryview(data)[skip : skip + headers]
        joining = cls(frame, headers, tcp_hlen, payload)
        joining.next_seq = int.from_bytes(data[skip + _TCP_AT + 4 : skip + _TCP_AT + 8], "big")
        return joining, joining._take(rows, data, stride, skip)

    def add(self, data: bytes, stride: int, skip: int) -> int:
        """Append one read that continues the super-frame: the same flow and headers, the
        same segment size, contiguous sequence numbers, room left.  Return how many bytes
        of ``data`` it took (0: it does not continue, nothing taken)."""
        tcp_hlen = self.tcp_hlen
        payload = self.size
        if (
            not self.open
            or stride - skip != _TCP_AT + tcp_hlen + payload
            or self.end + (len(data) // stride) * payload > _ROOM
            or int.from_bytes(data[skip + _TCP_AT + 4 : skip + _TCP_AT + 8], "big") != self.next_seq
        ):
            return 0
        view = memoryview(data)
        if not _same_headers(self.frame, view[skip:], tcp_hlen):
            return 0
        checked = _check_train(data, stride, skip)
        if checked is None or checked[1] != tcp_hlen or checked[2] != payload:
            return 0
        return self._take(checked[0], data, stride, skip)

    def _take(self, rows: Any, data: bytes, stride: int, skip: int) -> int:
        """Copy the payloads of checked ``rows`` (and of the shorter last datagram, if it
        continues them) after the frame so far; return the bytes of ``data`` taken."""
        np = optional_numpy()
        count: int = rows.shape[0]
        payload = self.size
        at = skip + _TCP_AT + self.tcp_hlen
        end = self.end
        np.ndarray((count, payload), np.uint8, self.frame, end)[...] = rows[:, at:]
        end += count * payload
        used = count * stride
        seq = (self.next_seq + count * payload) & 0xFFFFFFFF
        flags = data[used - stride + skip + _TCP_AT + 13]
        tail = memoryview(data)[used:]
        if len(tail) > skip and flags == 0x10 and end + len(tail) - at <= _ROOM:
            shorter = _tail_payload(data, tail, skip, self.tcp_hlen, payload, seq)
            if shorter:
                self.frame[end : end + shorter] = tail[at:]
                end += shorter
                seq = (seq + shorter) & 0xFFFFFFFF
                flags = tail[skip + _TCP_AT + 13]
                used = len(data)
                self.open = False
        if flags != 0x10:
            self.open = False
        self.frame[_TCP_AT + 13] = flags
        self.end = end
        self.next_seq = seq
        return used

    def finish(self) -> OffloadBuffer:
        """Return the super-frame (the lengths, the IPv4 checksum, the last segment's
        flags and the TSO header set); the object is spent."""
        frame = self.frame
        del frame[self.end :]
        return _finish(frame, frame[_TCP_AT + 13], self.tcp_hlen, self.size)


_ROOM = _ETH + 20 + _MAX_SUPER
"""Bytes of the largest IPv4 super-frame with its Ethernet header."""


def _same_headers(a: Buffer, b: Buffer, tcp_hlen: int) -> bool:
    """Return True if the inner frames ``a`` and ``b`` (full segments of one size) have
    the same headers but for the identification, sequence number, flags and checksums."""
    return a[_ETH + 2 : _ETH + 4] == b[_ETH + 2 : _ETH + 4] and _same_flow(a, b, tcp_hlen)


def _check_train(data: bytes, stride: int, skip: int) -> tuple[Any, int, int] | None:
    """Return (the full datagrams as rows of a numpy array, TCP header length, payload
    size) if they are one run of one flow (see :func:`join_train`), else None.

    Few numpy calls, since each costs more than the bytes it touches: the
    headers of all rows XORed with the first, the columns allowed to differ
    masked off, the nonzero bytes counted; the sequence numbers' steps
    compared as bytes; the IPv4 header and the TCP sums of every row in one
    ``reduceat`` (each row's own checksum tested, not only their total: a
    total would miss two segments spoilt so that their errors cancel, such
    as two payloads swapped between segments of one size).
    """
    np = optional_numpy()
    rows_n = len(data) // stride
    if np is None or rows_n < 2 or stride <= skip:
        return None
    shape = _segment(memoryview(data)[skip:stride])
    if shape is None:
        return None
    tcp_hlen, payload, _ = shape
    if _TCP_AT + tcp_hlen + payload != stride - skip:
        return None
    rows = np.ndarray((rows_n, stride), np.uint8, data)
    tcp_at = skip + _TCP_AT
    flags = data[tcp_at + 13 : rows_n * stride : stride]
    if flags[:-1].strip(b"\x10") or flags[-1] not in _MERGEABLE_FLAGS:
        return None
    shared = (rows[:, : tcp_at + tcp_hlen] & _constant_mask(skip, tcp_hlen)).tobytes()
    if shared != shared[: tcp_at + tcp_hlen] * rows_n:
        return None
    seqs = np.ndarray((rows_n,), ">u4", data, tcp_at + 4, (stride,))
    if (seqs[1:] - seqs[:-1]).tobytes() != _steps(rows_n - 1, payload):
        return None  # unsigned: wraps around 2**32 as seq does
    tcp_len = tcp_hlen + payload
    pseudo = ones_sum(data[skip + _ETH + 12 : skip + _ETH + 20], 6 + tcp_len)
    if (20 + tcp_len) & 1:  # an odd packet: the odd byte summed apart
        if not sums_valid(data, skip + _ETH, stride, 20, rows_n):
            return None  # an IPv4 header checksum is wrong
        if not sums_valid(data, tcp_at, stride, tcp_len, rows_n, pseudo):
            return None
        return rows, tcp_hlen, payload
    words = np.ndarray((rows_n, (20 + tcp_len) // 2), "<u2", data, skip + _ETH, (stride, 2))
    sums = np.add.reduceat(words, _IP_TCP, axis=1, dtype=np.uint32)
    sums %= 0xFFFF
    # little-endian words: each sum byte-swapped, which leaves "== 0 modulo 0xFFFF" as
    # it is (RFC 1071 2(B)); the TCP sum must come to minus the pseudo-header's
    swapped = ((pseudo & 0xFF) << 8) | (pseudo >> 8)
    if sums.tobytes() != _sums_wanted(rows_n, (0xFFFF - swapped) % 0xFFFF):
        return None
    return rows, tcp_hlen, payload


def _tail_payload(
    data: bytes, tail: memoryview, skip: int, tcp_hlen: int, payload: int, seq: int
) -> int:
    """Return the payload length of the last, shorter datagram ``tail`` if it continues
    the run of full ones (next sequence number ``seq``), else 0."""
    frame = tail[skip:]
    shape = _segment(frame)
    if (
        shape is None
        or shape[0] != tcp_hlen
        or shape[1] >= payload
        or shape[2] != seq
        or tail[:skip] != data[:skip]
        or not _same_flow(memoryview(data)[skip:], frame, tcp_hlen)
        or not _valid(frame)
    ):
        return 0
    return shape[1]


_IP_TCP = (0, 10)
"""Where the IPv4 header's and the TCP segment's words begin in an IPv4 packet's row."""


@lru_cache(maxsize=64)
def _steps(count: int, payload: int) -> bytes:
    """``count`` times ``payload``, as the native uint32 numpy compares sequence steps to."""
    return struct.pack(f"={count}I", *([payload] * count))


@lru_cache(maxsize=64)
def _sums_wanted(count: int, tcp: int) -> bytes:
    """Each row's IPv4 header sum and TCP sum modulo 0xFFFF when every checksum is right
    (0, and minus the pseudo-header's), native uint32 pairs."""
    return struct.pack("=II", 0, tcp) * count


@lru_cache(maxsize=16)
def _constant_mask(skip: int, tcp_hlen: int) -> Any:
    """Return 0xFF for every header byte of a datagram that all segments of a run share
    (the tunnel header and every inner header byte but identification, sequence number,
    flags and the checksums), 0 for the others."""
    np = optional_numpy()
    ip = skip + _ETH
    tcp = skip + _TCP_AT
    varying = [ip + 4, ip + 5, ip + 10, ip + 11, *range(tcp + 4, tcp + 8), tcp + 13]
    varying += [tcp + 16, tcp + 17]
    mask = np.full(tcp + tcp_hlen, 0xFF, np.uint8)
    mask[varying] = 0
    return mask
