"""Offloads over TAP: the virtio-net header, partial checksums and GSO super-frames.

A TAP opened with ``IFF_VNET_HDR`` puts a virtio-net header (RFC-less, the
Linux ``struct virtio_net_hdr``) before every frame.  With offloads enabled
(``TUNSETOFFLOAD``) the host hands over frames whose L4 checksum is only
partial (``NEEDS_CSUM``: the field holds the pseudo-header sum, the rest is
to be summed from ``csum_start``) and TCP "super-frames" of up to 64 KiB
that stand for many segments of ``gso_size`` bytes each.

Such a frame travels through the stack as an :class:`OffloadBuffer` (a
``bytearray`` carrying its header in ``vhdr``) and leaves whole through any
interface that accepts offloads (a TAP with offloads on, an epair); where
it cannot (a TAP with offloads off, local delivery), :func:`resolve` turns
it into ordinary frames: the checksum completed, super-frames cut into
segments with their own IP and TCP headers and checksums (what the host
would have sent without TSO).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from vrouter.link import tso
from vrouter.wire.checksum import checksum

HEADER = struct.Struct("<BBHHHH")
HEADER_LEN = 10
"""Size of ``struct virtio_net_hdr``; the TAP is told to use exactly this."""
NO_HEADER = bytes(HEADER_LEN)

F_NEEDS_CSUM = 1
F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_ECN = 0x80

_ETH = 14


class VirtioHdr(NamedTuple):
    """The meaning of one virtio-net header (a tuple: built per frame, so it must be cheap)."""

    flags: int
    gso_type: int
    hdr_len: int
    gso_size: int
    csum_start: int
    csum_offset: int

    @classmethod
    def parse(cls, raw: bytes | bytearray | memoryview) -> VirtioHdr:
        """Parse the first ``HEADER_LEN`` bytes of ``raw``."""
        return cls._make(HEADER.unpack_from(raw))

    def emit(self) -> bytes:
        """Return the header bytes."""
        return HEADER.pack(*self)

    @property
    def is_gso(self) -> bool:
        """Return True for a super-frame standing for several segments."""
        return self.gso_type & ~GSO_ECN != GSO_NONE


class OffloadBuffer(bytearray):
    """An Ethernet frame that still carries offload work: its header bytes in ``raw``,
    their meaning in ``vhdr``.

    Mutable on purpose: a router rewrites the TTL and the MACs of a 64 KiB
    super-frame in place and hands the same buffer on (epair, TAP), instead
    of copying it at every hop.  The header bytes are kept as they came and
    written out as they are; they are parsed only where a path reads their
    meaning (most frames cross a bridge or a route without it), and setting
    ``vhdr`` replaces them.
    """

    __slots__ = ("raw", "_meaning")  # no instance dict to allocate per frame

    raw: bytes
    """The ``HEADER_LEN`` header bytes, as received or as emitted from ``vhdr``."""
    _meaning: VirtioHdr
    """Set by the first read of ``vhdr`` (unset until then: nothing to store per frame)."""

    @property
    def vhdr(self) -> VirtioHdr:
        """The meaning of ``raw`` (parsed on the first read)."""
        try:
            return self._meaning
        except AttributeError:
            meaning = self._meaning = VirtioHdr.parse(self.raw)
            return meaning

    @vhdr.setter
    def vhdr(self, value: VirtioHdr) -> None:
        self._meaning = value
        self.raw = HEADER.pack(*value)


def tcp_super_header(ipv4: bool, ip_hlen: int, tcp_hlen: int, gso_size: int) -> VirtioHdr:
    """Return the header of a TCP super-frame this host built (TSO): Ethernet, an IP
    header of ``ip_hlen`` bytes, a TCP header of ``tcp_hlen`` bytes whose checksum
    field holds the pseudo-header sum, and a payload of ``gso_size`` segments."""
    start = _ETH + ip_hlen
    gso_type = GSO_TCPV4 if ipv4 else GSO_TCPV6
    return VirtioHdr(F_NEEDS_CSUM, gso_type, start + tcp_hlen, gso_size, start, 16)


def vhdr_of(frame: object) -> VirtioHdr | None:
    """Return the offload header a frame carries, None for an ordinary frame."""
    if frame.__class__ is OffloadBuffer:
        header: VirtioHdr = frame.vhdr
        return header
    return None


def header_bytes(frame: object) -> bytes:
    """Return the header bytes to write before ``frame`` (``NO_HEADER`` for an ordinary
    frame): an offload frame's as they came, never parsed and emitted again."""
    if frame.__class__ is OffloadBuffer:
        raw: bytes = frame.raw
        return raw
    return NO_HEADER


def carry(frame: bytes | bytearray, length: int) -> OffloadBuffer:
    """Return an offload ``frame`` trimmed to ``length`` IP bytes (plus Ethernet), keeping
    its header, for a router to rewrite and send on: the frame itself when it
    already is exactly that, else a copy."""
    if frame.__class__ is OffloadBuffer and len(frame) == _ETH + length:
        return frame
    return tag_raw(memoryview(frame)[: _ETH + length], header_bytes(frame))


def tag(frame: bytes | bytearray | memoryview, vhdr: VirtioHdr) -> OffloadBuffer:
    """Return a copy of ``frame`` as an :class:`OffloadBuffer` carrying ``vhdr``."""
    tagged = OffloadBuffer(frame)
    tagged.vhdr = vhdr
    return tagged


def tag_raw(frame: bytes | bytearray | memoryview, raw: bytes) -> OffloadBuffer:
    """Return a copy of ``frame`` as an :class:`OffloadBuffer` carrying the header bytes
    ``raw`` (``HEADER_LEN`` of them) unparsed."""
    tagged = OffloadBuffer(frame)
    tagged.raw = raw
    return tagged


def received(data: bytes) -> bytes | OffloadBuffer:
    """Return the frame after the header in ``data`` (as a device read it): plain bytes
    when the header asks for no offload work, else an :class:`OffloadBuffer` with
    the header bytes as they came."""
    if data[0] & F_NEEDS_CSUM or data[1]:
        tagged = tag_raw(data, data[:HEADER_LEN])
        del tagged[:HEADER_LEN]  # cheaper than a view: a bytearray drops its head in place
        return tagged
    return data[HEADER_LEN:]


def segment_length(frame: bytes | bytearray, vhdr: VirtioHdr) -> int:
    """Return the IP length of the largest segment a super-frame stands for."""
    return headers_len(frame, vhdr) - _ETH + vhdr.gso_size


def tcp_offset(frame: bytes | bytearray, vhdr: VirtioHdr) -> int:
    """Return where the TCP header starts (after IPv4 options or IPv6 extensions)."""
    if frame[_ETH] >> 4 == 4:
        return _ETH + (frame[_ETH] & 0x0F) * 4
    if vhdr.flags & F_NEEDS_CSUM and vhdr.csum_start > _ETH:
        return vhdr.csum_start
    return _ETH + 40


def headers_len(frame: bytes | bytearray, vhdr: VirtioHdr) -> int:
    """Return Ethernet + IP + TCP header length (trusting the frame, not hdr_len)."""
    tcp_at = tcp_offset(frame, vhdr)
    return tcp_at + (frame[tcp_at + 12] >> 4) * 4


def complete_checksum(frame: bytes | bytearray, vhdr: VirtioHdr) -> bytearray:
    """Return a copy of ``frame`` with the partial L4 checksum completed."""
    out = bytearray(frame)
    start = vhdr.csum_start
    field = start + vhdr.csum_offset
    if vhdr.flags & F_NEEDS_CSUM and field + 2 <= len(out):
        out[field : field + 2] = checksum(memoryview(out)[start:]).to_bytes(2, "big")
    return out


def resolve(frame: bytes | bytearray, vhdr: VirtioHdr) -> list[bytearray]:
    """Turn ``frame`` into ordinary frames: segments with complete checksums."""
    if not vhdr.is_gso:
        return [complete_checksum(frame, vhdr)]
    return segment(frame, vhdr)


def segment(frame: bytes | bytearray, vhdr: VirtioHdr) -> list[bytearray]:
    """Cut a TCP super-frame into ``gso_size`` segments (what TSO does in hardware).

    Each segment gets its IP length (and, for IPv4, identification + i and
    header checksum), its sequence number, FIN/PSH only on the last and CWR
    only on the first, and a complete TCP checksum: the datagrams of
    :func:`vrouter.link.tso.cut` without a tunnel header.
    """
    train = tso.cut(frame, tcp_offset(frame, vhdr), vhdr.gso_size, b"")
    data, size = train.data, train.size
    return [bytearray(data[at : at + size]) for at in range(0, len(data), size)]
