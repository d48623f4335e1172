"""TCP header (RFC 9293 section 3.1) and the reset a closed port answers with."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from vrouter.wire.checksum import checksum, ones_sum_pieces, pseudo_header_sum
from vrouter.wire.errors import IntegrityError

HEADER = struct.Struct("!HHIIBBHHH")
HEADER_LEN = 20
PROTO = 6

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

_U16 = struct.Struct("!H")


@dataclass(frozen=True, slots=True)
class TcpHeader:
    """The fixed part of a TCP header; ``payload_len`` is what follows the options."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int
    window: int
    header_len: int
    payload_len: int

    @classmethod
    def parse(cls, segment: bytes | memoryview) -> TcpHeader:
        """Parse the header of ``segment`` (checksum not verified here)."""
        if len(segment) < HEADER_LEN:
            raise IntegrityError("tcp_tooshort", f"{len(segment)} bytes")
        src, dst, seq, ack, off, flags, window, _, _ = HEADER.unpack_from(segment)
        hlen = (off >> 4) * 4
        if hlen < HEADER_LEN or hlen > len(segment):
            raise IntegrityError("tcp_badoff", f"data offset {off >> 4}")
        return cls(src, dst, seq, ack, flags, window, hlen, len(segment) - hlen)

    @property
    def seg_len(self) -> int:
        """Return SEG.LEN: payload plus one for each of SYN and FIN."""
        return self.payload_len + bool(self.flags & SYN) + bool(self.flags & FIN)


def verify(src: bytes, dst: bytes, segment: bytes | memoryview) -> bool:
    """Return True if the segment's checksum is correct."""
    return checksum(segment, pseudo_header_sum(src, dst, PROTO, len(segment))) == 0


def header(
    src: bytes,
    dst: bytes,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int = 0,
    options: bytes = b"",
    payload: Sequence[bytes | bytearray | memoryview] = (),
    partial: bool = False,
) -> bytes:
    """Return the header and ``options`` (already padded) of a segment carrying the
    ``payload`` pieces, its checksum covering them (the payload is not copied).

    ``partial``: leave only the pseudo-header sum in the checksum field (not
    complemented), for a device that completes the checksum over the segment
    itself (a checksum offload, the virtio-net ``NEEDS_CSUM`` convention).
    """
    return header_from(
        addresses_sum(src, dst), src_port, dst_port, seq, ack, flags, window, options,
        payload, partial,
    )  # fmt: skip


def addresses_sum(src: bytes, dst: bytes) -> int:
    """Return the addresses' share of the pseudo-header sum, for :func:`header_from`
    (a connection's, computed once: its addresses do not change)."""
    return int.from_bytes(src + dst, "big") % 0xFFFF


def header_from(
    addr_sum: int,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes,
    payload: Sequence[bytes | bytearray | memoryview],
    partial: bool,
) -> bytes:
    """:func:`header` with the addresses given as :func:`addresses_sum`'s sum.

    The pseudo-header sum is that plus the protocol and the length; the
    header's own words are summed from the packed bytes as one integer (RFC
    1071 as :func:`~vrouter.wire.checksum.ones_sum` does), and the header is
    packed a second time with the checksum in place.
    """
    hlen = HEADER_LEN + len(options)
    length = hlen
    for piece in payload:
        length += len(piece)
    field = (addr_sum + PROTO + (length & 0xFFFF) + (length >> 16)) % 0xFFFF or 0xFFFF
    off = hlen << 2
    if not partial:
        if payload:
            field = ones_sum_pieces(payload, field)
        words = int.from_bytes(
            HEADER.pack(src_port, dst_port, seq, ack, off, flags, window, 0, 0), "big"
        )
        if options:
            words += int.from_bytes(options, "big")
        field = ~((words + field) % 0xFFFF or 0xFFFF) & 0xFFFF
    raw = HEADER.pack(src_port, dst_port, seq, ack, off, flags, window, field, 0)
    return raw + options if options else raw


def build(
    src: bytes,
    dst: bytes,
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int = 0,
    options: bytes = b"",
    payload: bytes | bytearray | memoryview = b"",
    partial: bool = False,
) -> bytes:
    """Return a whole segment: :func:`header` followed by ``payload``."""
    pieces = (payload,) if payload else ()
    raw = header(src, dst, src_port, dst_port, seq, ack, flags, window, options, pieces, partial)
    return raw + payload if payload else raw


def reset_for(src: bytes, dst: bytes, segment: TcpHeader) -> bytes | None:
    """Return the RST answering ``segment`` (from ``src`` to ``dst``) at a closed port.

    RFC 9293 section 3.10.7.1: never answer a RST; if the segment has an
    ACK, the reset takes its sequence number from it, otherwise it
    acknowledges the segment.  Addresses are those of the reply.
    """
    if segment.flags & RST:
        return None
    if segment.flags & ACK:
        return build(src, dst, segment.dst_port, segment.src_port, segment.ack, 0, RST)
    return build(
        src,
        dst,
        segment.dst_port,
        segment.src_port,
        0,
        (segment.seq + segment.seg_len) & 0xFFFFFFFF,
        RST | ACK,
    )
