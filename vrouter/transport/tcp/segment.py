"""TCP segments with their options: parse from bytes, build to bytes.

:func:`parse` turns a received segment (header, options, payload) into a
:class:`Segment` (the header fields and the :class:`Options` meaning) and a
view of the payload; :func:`build` writes a segment with its checksum over
the IPv4 or IPv6 pseudo-header (chosen by the address length).

Options understood (everything else is skipped by its length):

* MSS (kind 2, RFC 9293 3.2 and 3.7.1),
* window scale (kind 3, RFC 7323 section 2),
* SACK-permitted (kind 4) and SACK blocks (kind 5, RFC 2018),
* timestamps (kind 8, RFC 7323 section 3).

An option with an impossible length (0, 1, or running past the header) ends
option parsing, keeping what was parsed before it (RFC 9293 3.1 asks that
such a segment not crash the receiver; Linux does the same).  Emitted
options use Linux's layouts (``MSS, SACK_PERM, TS, NOP, WS`` on a SYN;
``NOP, NOP, TS`` and ``NOP, NOP, SACK`` after), so every header is a
multiple of 4 bytes and the common receive path can match the 12-byte
timestamp block at a fixed offset.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from vrouter.wire.errors import IntegrityError
from vrouter.wire.tcp import (
    ACK,
    CWR,
    ECE,
    FIN,
    HEADER,
    HEADER_LEN,
    PROTO,
    PSH,
    RST,
    SYN,
    URG,
    addresses_sum,
    build,
    header,
    header_from,
    verify,
)

# The fixed header, flags, build, header(_from) and verify are the wire module's; this one adds
# options.
__all__ = [
    "ACK",
    "CWR",
    "ECE",
    "FIN",
    "HEADER",
    "HEADER_LEN",
    "MAX_OPTIONS",
    "MAX_WSCALE",
    "NO_OPTIONS",
    "OPT_EOL",
    "OPT_MSS",
    "OPT_NOP",
    "OPT_SACK",
    "OPT_SACK_PERMITTED",
    "OPT_TIMESTAMP",
    "OPT_WSCALE",
    "PROTO",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "Options",
    "Segment",
    "addresses_sum",
    "build",
    "emit",
    "flag_names",
    "header",
    "header_from",
    "parse",
    "parse_options",
    "reset_for",
    "sack_option",
    "syn_options",
    "ts_option",
    "verify",
]

MAX_OPTIONS = 40

OPT_EOL = 0
OPT_NOP = 1
OPT_MSS = 2
OPT_WSCALE = 3
OPT_SACK_PERMITTED = 4
OPT_SACK = 5
OPT_TIMESTAMP = 8

MAX_WSCALE = 14
"""The largest window shift (RFC 7323 2.3: larger values are used as 14)."""

_TS_BLOCK = b"\x01\x01\x08\x0a"
_TS = struct.Struct("!II")
_TS_FULL = struct.Struct("!4sII")
_U16 = struct.Struct("!H")
_HEADER_TS = struct.Struct("!HHIIBBHHH4sII")
"""A header whose options are ``NOP NOP TS`` alone (32 bytes), unpacked at once."""
_TS_HEADER_LEN = 32
_TS_OFF = (_TS_HEADER_LEN >> 2) << 4
"""The data offset byte of such a header."""


class Options(NamedTuple):
    """The TCP options of one segment (absent options are None / False / empty).

    A tuple rather than a frozen dataclass, as :class:`Segment`: one is parsed
    per segment received, and a tuple is as immutable and much cheaper to make.
    """

    mss: int | None = None
    """Maximum segment size the sender can receive (SYN only)."""
    wscale: int | None = None
    """Window shift the sender will apply to the windows it advertises (SYN only)."""
    sack_permitted: bool = False
    """The sender can receive SACK blocks (SYN only)."""
    sack: tuple[tuple[int, int], ...] = ()
    """SACK blocks: (left edge, right edge) pairs of data held beyond the ACK."""
    ts: tuple[int, int] | None = None
    """Timestamps (TSval, TSecr)."""

    def emit(self) -> bytes:
        """Return the options as header bytes, padded to a multiple of 4."""
        out = bytearray()
        if self.mss is not None:
            out += bytes((OPT_MSS, 4)) + _U16.pack(self.mss)
        if self.ts is not None:
            out += b"\x04\x02" if self.sack_permitted else b"\x01\x01"
            out += b"\x08\x0a" + _TS.pack(*self.ts)
        elif self.sack_permitted:
            out += b"\x01\x01\x04\x02"
        if self.wscale is not None:
            out += bytes((OPT_NOP, OPT_WSCALE, 3, self.wscale))
        if self.sack:
            out += sack_option(self.sack)
        if len(out) > MAX_OPTIONS:
            raise ValueError(f"{len(out)} bytes of options do not fit in a TCP header")
        return bytes(out)


NO_OPTIONS = Options()


class Segment(NamedTuple):
    """The header of one TCP segment, options parsed (the payload travels beside it)."""

    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    options: Options = NO_OPTIONS

    def seg_len(self, payload_len: int) -> int:
        """Return SEG.LEN: the payload plus one for each of SYN and FIN."""
        return payload_len + (self.flags & SYN != 0) + (self.flags & FIN != 0)


def parse_options(raw: bytes | memoryview) -> Options:
    """Parse the option bytes of a header (everything after the fixed 20 bytes)."""
    n = len(raw)
    if n == 12 and raw[:4] == _TS_BLOCK:  # the common case: NOP NOP TS
        tsval, tsecr = _TS.unpack_from(raw, 4)
        return Options(ts=(tsval, tsecr))
    mss: int | None = None
    wscale: int | None = None
    sack_permitted = False
    sack: tuple[tuple[int, int], ...] = ()
    ts: tuple[int, int] | None = None
    i = 0
    while i < n:
        kind = raw[i]
        if kind == OPT_EOL:
            break
        if kind == OPT_NOP:
            i += 1
            continue
        if i + 1 >= n:
            break
        length = raw[i + 1]
        if length < 2 or i + length > n:
            break  # malformed: keep what came before
        if kind == OPT_MSS and length == 4:
            mss = (raw[i + 2] << 8) | raw[i + 3]
        elif kind == OPT_WSCALE and length == 3:
            wscale = min(raw[i + 2], MAX_WSCALE)
        elif kind == OPT_SACK_PERMITTED and length == 2:
            sack_permitted = True
        elif kind == OPT_SACK and length >= 10 and (length - 2) % 8 == 0:
            sack = tuple(
                struct.unpack_from("!II", raw, i + 2 + 8 * k) for k in range((length - 2) // 8)
            )
        elif kind == OPT_TIMESTAMP and length == 10:
            ts = _TS.unpack_from(raw, i + 2)
        i += length
    if mss is None and wscale is None and not sack_permitted and not sack and ts is None:
        return NO_OPTIONS
    return Options(mss, wscale, sack_permitted, sack, ts)


def parse(raw: bytes | memoryview) -> tuple[Segment, memoryview]:
    """Parse a whole segment; return its header and a view of its payload.

    The checksum is not checked here (see :func:`verify`); a segment too
    short for its header raises :class:`~vrouter.wire.errors.IntegrityError`.
    """
    view = raw if isinstance(raw, memoryview) else memoryview(raw)
    if len(view) < HEADER_LEN:
        raise IntegrityError("tcp_tooshort", f"{len(view)} bytes")
    if len(view) >= _TS_HEADER_LEN and view[12] == _TS_OFF:  # the common case: NOP NOP TS
        sport, dport, seq, ack, _, flags, window, _, _, block, tsval, tsecr = (
            _HEADER_TS.unpack_from(view)
        )
        if block == _TS_BLOCK:
            segment = Segment(sport, dport, seq, ack, flags, window, Options(ts=(tsval, tsecr)))
            return segment, view[_TS_HEADER_LEN:]
    sport, dport, seq, ack, off, flags, window, _, _ = HEADER.unpack_from(view)
    hlen = (off >> 4) << 2
    if hlen < HEADER_LEN or hlen > len(view):
        raise IntegrityError("tcp_badoff", f"data offset {off >> 4}")
    options = parse_options(view[HEADER_LEN:hlen]) if hlen > HEADER_LEN else NO_OPTIONS
    return Segment(sport, dport, seq, ack, flags, window, options), view[hlen:]


def emit(src: bytes, dst: bytes, seg: Segment, payload: bytes | memoryview = b"") -> bytes:
    """Return ``seg`` with ``payload`` as bytes (the round trip of :func:`parse`)."""
    return build(
        src,
        dst,
        seg.sport,
        seg.dport,
        seg.seq,
        seg.ack,
        seg.flags,
        seg.window,
        seg.options.emit(),
        payload,
    )


def ts_option(tsval: int, tsecr: int) -> bytes:
    """Return ``NOP NOP TS`` (12 bytes), the option block of most segments."""
    return _TS_FULL.pack(_TS_BLOCK, tsval, tsecr)


def sack_option(blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]]) -> bytes:
    """Return ``NOP NOP SACK`` with ``blocks`` (at most 4; 3 fit beside timestamps)."""
    out = bytearray((OPT_NOP, OPT_NOP, OPT_SACK, 2 + 8 * len(blocks)))
    for left, right in blocks:
        out += _TS.pack(left, right)
    return bytes(out)


def syn_options(
    mss: int, wscale: int | None, sack_permitted: bool, ts: tuple[int, int] | None
) -> bytes:
    """Return the options of a SYN or SYN-ACK in Linux's order."""
    return Options(mss=mss, wscale=wscale, sack_permitted=sack_permitted, ts=ts).emit()


def flag_names(flags: int) -> str:
    """Return the flags as tcpdump prints them (``S.``, ``P.``, ``F.``, ``R``)."""
    text = "".join(c for bit, c in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P")) if flags & bit)
    return text + ("." if flags & ACK else "") if text or flags & ACK else "none"


def reset_for(src: bytes, dst: bytes, seg: Segment, payload_len: int) -> bytes | None:
    """Return the RST answering ``seg`` where no connection wants it (RFC 9293 3.10.7.1).

    ``src``/``dst`` are the reply's addresses.  A RST is never answered; a
    segment with ACK gets ``<SEQ=SEG.ACK><CTL=RST>``, one without gets
    ``<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>``.
    """
    if seg.flags & RST:
        return None
    if seg.flags & ACK:
        return build(src, dst, seg.dport, seg.sport, seg.ack, 0, RST, 0)
    ack = (seg.seq + seg.seg_len(payload_len)) & 0xFFFFFFFF
    return build(src, dst, seg.dport, seg.sport, 0, ack, RST | ACK, 0)
