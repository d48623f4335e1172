"""IP reassembly (a family-neutral engine) and IPv4 fragmentation (RFC 791, RFC 815).

``Reassembly`` holds one vnet's datagrams in progress for one family, keyed
by whatever the family says identifies a datagram.  Each datagram keeps a
sorted list of disjoint data intervals; it completes when the intervals tile
``[0, end of the last fragment)``.  Every datagram has a deadline (arrival of
its first fragment + ``timeout``); ``expire(now)`` drops what is late and
returns the offset-0 fragments, so the caller can send ICMP time exceeded
(RFC 792, RFC 4443 3.3 code 1).  The table is bounded: at most
``memory_limit`` bytes (oldest datagrams evicted first) and at most
``max_fragments`` pieces per datagram.

Policy, the same for both families (RFC 5722 for IPv6, applied to IPv4 as
well): an exact duplicate (same offset and length) is ignored; any other
overlap, or a fragment contradicting the end of the datagram, drops the whole
datagram and marks its key *dead* until the datagram's deadline, so its
remaining fragments are ignored instead of starting a new datagram.

``ipv4_input`` reassembles IPv4 (key: source, destination, protocol,
identification); ``fragment_ipv4`` splits a packet for an outgoing link.
Nothing here does I/O or reads a clock: callers pass ``now``.
"""

from __future__ import annotations

import heapq
import struct
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from vrouter.wire.checksum import checksum
from vrouter.wire.ipv4 import (
    CHECKSUM,
    FLAG_DF,
    FLAG_MF,
    FLAGS_FRAG,
    HEADER_LEN,
    IDENT,
    OFFSET_MASK,
    PROTO,
    TOTAL_LENGTH,
)

FRAGMENT_COST = 64
"""Bytes charged per held fragment on top of its data, so floods of tiny fragments are bounded."""
DEAD_LIMIT = 4096
"""Dead keys remembered per table; beyond that the oldest is forgotten."""
IPV4_MAX = 65535
"""Largest IPv4 datagram (the Total Length field is 16 bits)."""
IPV4_MIN_MTU = 68
"""Every IPv4 link must carry 68 bytes unfragmented (RFC 791)."""

_U16 = struct.Struct("!H")
_OPT_EOL = 0
_OPT_NOP = 1
_OPT_COPIED = 0x80


@dataclass(slots=True)
class ReassStats:
    """Reassembly counters of one vnet and family (FreeBSD ``ips_frag*``, Linux ``Reasm*``)."""

    fragments: int = 0
    """Fragments received for reassembly (including those then dropped)."""
    reassembled: int = 0
    """Datagrams completed and returned."""
    timeout: int = 0
    """Datagrams dropped because their deadline passed before they completed."""
    overlap: int = 0
    """Datagrams dropped because fragments overlapped or contradicted the end (RFC 5722)."""
    duplicate: int = 0
    """Exact duplicate fragments (same offset and length) ignored."""
    toolong: int = 0
    """Fragments or datagrams dropped because the datagram would exceed the family's maximum."""
    badlen: int = 0
    """Fragments dropped: non-final with data not a multiple of 8 or empty, or a truncated chain."""
    memory: int = 0
    """Datagrams evicted (or single fragments refused) because of the memory limit."""
    toomany: int = 0
    """Datagrams dropped for having more than ``max_fragments`` pieces."""
    dead: int = 0
    """Fragments ignored because their datagram was already dropped and has not timed out."""


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A completed datagram as the engine hands it to the family code."""

    head: bytes
    """The offset-0 fragment up to where its data starts (its headers)."""
    payload: bytes
    """The reassembled data, all fragments joined."""


@dataclass(slots=True)
class _Datagram:
    """One datagram in progress: disjoint pieces sorted by start."""

    seq: int
    deadline: float
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    data: list[bytes | memoryview] = field(default_factory=list)
    first: bytes | None = None
    """The whole offset-0 fragment, once it has arrived."""
    start: int = 0
    """Where the data starts in ``first``."""
    end: int | None = None
    """End of the data, known once the last fragment (more clear) has arrived."""
    covered: int = 0
    """Data bytes held; with disjoint pieces, complete when equal to ``end``."""
    size: int = 0
    """Bytes charged to the table's memory."""


_NO_DATAGRAMS: OrderedDict[Hashable, _Datagram] = OrderedDict()
_NO_DEAD: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()
_NO_DEADLINES: list[tuple[float, int, Hashable]] = []
"""The empty tables every :class:`Reassembly` starts with and shares until its first
fragment (an idle vnet's two tables would otherwise hold about 600 bytes)."""


class Reassembly:
    """One vnet's reassembly buffers for one family, bounded in time and memory."""

    __slots__ = (
        "_datagrams",
        "_dead",
        "_heap",
        "_memory",
        "_seq",
        "max_fragments",
        "memory_limit",
        "stats",
        "timeout",
    )

    def __init__(
        self, *, timeout: float, memory_limit: int = 4 << 20, max_fragments: int = 64
    ) -> None:
        self.timeout = timeout
        """Seconds from a datagram's first fragment to its deadline."""
        self.memory_limit = memory_limit
        """Bytes the table may hold (data plus ``FRAGMENT_COST`` per fragment)."""
        self.max_fragments = max_fragments
        """Pieces one datagram may have."""
        self.stats = ReassStats()
        # OrderedDict, not dict: finding the oldest entry stays O(1) however
        # many were deleted before it (a dict would skip over their slots).
        # Until the first fragment the three are the shared empty ones (see _hold).
        self._datagrams: OrderedDict[Hashable, _Datagram] = _NO_DATAGRAMS
        """Datagrams in progress, oldest first."""
        self._dead: OrderedDict[Hashable, tuple[int, float]] = _NO_DEAD
        """Keys dropped for overlap: (sequence, deadline), oldest first."""
        self._heap: list[tuple[float, int, Hashable]] = _NO_DEADLINES
        """Deadlines (deadline, sequence, key); entries whose sequence is gone are stale."""
        self._memory = 0
        self._seq = 0

    def memory(self) -> int:
        """Return the bytes currently held."""
        return self._memory

    def __len__(self) -> int:
        """Return the number of datagrams in progress."""
        return len(self._datagrams)

    def _live(self, seq: int, key: Hashable) -> bool:
        """Return True if a heap entry still belongs to a datagram or a dead key."""
        dg = self._datagrams.get(key)
        if dg is not None and dg.seq == seq:
            return True
        dead = self._dead.get(key)
        return dead is not None and dead[0] == seq

    def next_deadline(self) -> float | None:
        """Return the earliest deadline of a datagram in progress or a dead key."""
        heap = self._heap
        while heap and not self._live(heap[0][1], heap[0][2]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[bytes]:
        """Drop every datagram whose deadline is at or before ``now``.

        Return the offset-0 fragment (whole packet) of each dropped datagram
        that had one, for ICMP time exceeded / reassembly time exceeded.
        Dead keys whose deadline passed are forgotten.
        """
        heap = self._heap
        firsts: list[bytes] = []
        while heap and heap[0][0] <= now:
            _, seq, key = heapq.heappop(heap)
            dg = self._datagrams.get(key)
            if dg is not None and dg.seq == seq:
                del self._datagrams[key]
                self._memory -= dg.size
                self.stats.timeout += 1
                if dg.first is not None:
                    firsts.append(dg.first)
                continue
            dead = self._dead.get(key)
            if dead is not None and dead[0] == seq:
                del self._dead[key]
        return firsts

    def _hold(self) -> None:
        """Give this table tables of its own before it first holds a datagram.

        A vnet that never receives a fragment keeps the shared empty ones,
        which are only read, cleared (a no-op) or deleted from by keys they
        cannot hold; every insertion comes after a new datagram, so after this.
        """
        if self._datagrams is _NO_DATAGRAMS:
            self._datagrams = OrderedDict()
            self._dead = OrderedDict()
            self._heap = []

    def clear(self) -> None:
        """Drop everything held, counting nothing."""
        self._datagrams.clear()
        self._dead.clear()
        self._heap.clear()
        self._memory = 0

    def _drop(self, key: Hashable, dg: _Datagram, *, dead: bool) -> None:
        """Forget a datagram in progress; if ``dead``, ignore its key until its deadline."""
        del self._datagrams[key]
        self._memory -= dg.size
        if dead:
            self._dead[key] = (dg.seq, dg.deadline)  # its heap entry now serves the key
            if len(self._dead) > DEAD_LIMIT:
                self._dead.popitem(last=False)
        self._compact()

    def _compact(self) -> None:
        """Rebuild the deadline heap when stale entries dominate it."""
        heap = self._heap
        if len(heap) > 2 * (len(self._datagrams) + len(self._dead)) + 64:
            self._heap = [e for e in heap if self._live(e[1], e[2])]
            heapq.heapify(self._heap)

    def _make_room(self, key: Hashable, need: int) -> bool:
        """Evict the oldest other datagrams until ``need`` more bytes fit."""
        while self._memory + need > self.memory_limit:
            # The oldest, or the second oldest when the oldest is ``key``: O(1).
            victim = next((k for k in self._datagrams if k != key), None)
            if victim is None:
                return False
            self._drop(victim, self._datagrams[victim], dead=False)
            self.stats.memory += 1
        return True

    def add(
        self,
        key: Hashable,
        *,
        offset: int,
        more: bool,
        packet: bytes | memoryview,
        start: int,
        now: float,
        limit: int,
    ) -> Reassembled | None:
        """Add one validated fragment; return the datagram if this completes it.

        ``packet`` is the whole fragment, its data ``packet[start:]`` at byte
        ``offset`` of the datagram; ``more`` is the more-fragments flag.  The
        completed datagram is refused (``toolong``) if the offset-0 fragment's
        headers (``head``) plus the data exceed ``limit`` bytes.  The family
        code counts ``fragments`` and its own header checks; this counts the rest.
        """
        stats = self.stats
        dead = self._dead.get(key)
        if dead is not None:
            if dead[1] > now:
                stats.dead += 1
                return None
            del self._dead[key]
        length = len(packet) - start
        end = offset + length
        dg = self._datagrams.get(key)
        index = 0
        duplicate = False
        if dg is not None:
            max_end = dg.ends[-1] if dg.ends else 0
            if (not more and ((dg.end is not None and dg.end != end) or max_end > end)) or (
                more and dg.end is not None and end > dg.end
            ):
                stats.overlap += 1  # contradicts the end of the datagram
                self._drop(key, dg, dead=True)
                return None
            index = bisect_left(dg.starts, offset)
            n = len(dg.starts)
            if length == 0 and offset > 0:
                duplicate = dg.end == end
            elif index < n and dg.starts[index] == offset and dg.ends[index] == end:
                duplicate = True
            elif (index > 0 and dg.ends[index - 1] > offset) or (
                index < n and dg.starts[index] < end
            ):
                stats.overlap += 1
                self._drop(key, dg, dead=True)
                return None
            elif n >= self.max_fragments:
                stats.toomany += 1
                self._drop(key, dg, dead=True)
                return None
            if duplicate:
                stats.duplicate += 1
                if more or dg.end is not None:
                    return None
                dg.end = end  # a duplicate piece that also says where the end is
                return self._complete(key, dg, limit)
        # A final empty fragment past offset 0 only tells where the end is: no piece.
        store = length > 0 or offset == 0
        cost = FRAGMENT_COST + ((len(packet) if offset == 0 else length) if store else 0)
        if cost > self.memory_limit:
            stats.memory += 1  # could never be held: refuse the fragment alone
            return None
        if not self._make_room(key, cost):
            stats.memory += 1  # this datagram alone outgrew the limit
            assert dg is not None
            self._drop(key, dg, dead=False)
            return None
        if dg is None:
            self._hold()
            self._seq += 1
            dg = _Datagram(self._seq, now + self.timeout)
            self._datagrams[key] = dg
            heapq.heappush(self._heap, (dg.deadline, dg.seq, key))
        if not more:
            dg.end = end
        dg.size += cost
        self._memory += cost
        if store:
            data: bytes | memoryview
            if offset == 0:
                dg.first = bytes(packet)
                dg.start = start
                data = memoryview(dg.first)[start:]
            else:
                data = bytes(packet[start:])
            dg.starts.insert(index, offset)
            dg.ends.insert(index, end)
            dg.data.insert(index, data)
            dg.covered += length
        return self._complete(key, dg, limit)

    def _complete(self, key: Hashable, dg: _Datagram, limit: int) -> Reassembled | None:
        """Return the datagram if its pieces tile it, removing it from the table."""
        if dg.end is None or dg.covered != dg.end or dg.first is None:
            return None
        self._drop(key, dg, dead=False)
        if dg.start + dg.end > limit:
            self.stats.toolong += 1
            return None
        self.stats.reassembled += 1
        return Reassembled(dg.first[: dg.start], b"".join(dg.data))


def ipv4_input(table: Reassembly, packet: bytes | memoryview, now: float) -> bytes | None:
    """Add one IPv4 fragment; return the whole datagram once its last hole fills.

    ``packet`` has passed ``vrouter.wire.ipv4.check`` and is trimmed to its
    total length.  The result carries the offset-0 fragment's header (with its
    options and DF), total length set, MF and offset cleared, checksum
    recomputed.  Drops are counted in ``table.stats``.
    """
    stats = table.stats
    stats.fragments += 1
    hlen = (packet[0] & 0x0F) << 2
    flags_frag = (packet[FLAGS_FRAG] << 8) | packet[FLAGS_FRAG + 1]
    offset = (flags_frag & OFFSET_MASK) << 3
    more = bool(flags_frag & FLAG_MF)
    length = len(packet) - hlen
    if more and (length == 0 or length & 7):
        stats.badlen += 1
        return None
    if offset + length > IPV4_MAX - hlen:
        stats.toolong += 1
        return None
    ident = (packet[IDENT] << 8) | packet[IDENT + 1]
    key = (bytes(packet[12:20]), packet[PROTO], ident)
    done = table.add(
        key, offset=offset, more=more, packet=packet, start=hlen, now=now, limit=IPV4_MAX
    )
    if done is None:
        return None
    head = bytearray(done.head)
    _U16.pack_into(head, TOTAL_LENGTH, len(head) + len(done.payload))
    first_flags = (head[FLAGS_FRAG] << 8) | head[FLAGS_FRAG + 1]
    _U16.pack_into(head, FLAGS_FRAG, first_flags & ~(FLAG_MF | OFFSET_MASK))
    _U16.pack_into(head, CHECKSUM, 0)
    _U16.pack_into(head, CHECKSUM, checksum(head))
    return bytes(head) + done.payload


def copied_options(options: bytes | memoryview) -> bytes:
    """Return the options a non-first fragment carries (RFC 791 section 3.2).

    Options with the copied bit (0x80) are kept with the NOPs that align
    them; the others are removed; the list ends at EOL or at a malformed
    option.  Trailing NOPs are dropped and the result padded with EOL to a
    multiple of 4 (as FreeBSD's ``ip_optcopy``).
    """
    out = bytearray()
    i = 0
    n = len(options)
    while i < n:
        opt = options[i]
        if opt == _OPT_EOL:
            break
        if opt == _OPT_NOP:
            out.append(_OPT_NOP)
            i += 1
            continue
        if i + 1 >= n or options[i + 1] < 2 or i + options[i + 1] > n:
            break  # malformed: nothing after it can be trusted
        optlen = options[i + 1]
        if opt & _OPT_COPIED:
            out += options[i : i + optlen]
        i += optlen
    while out and out[-1] == _OPT_NOP:
        out.pop()
    out += bytes(-len(out) % 4)
    return bytes(out)


def _piece(header: bytes | bytearray, data: bytes | memoryview, field_frag: int) -> bytes:
    """Return one fragment: ``header`` with length, flags/offset and checksum set."""
    head = bytearray(header)
    head[0] = 0x40 | (len(head) >> 2)
    _U16.pack_into(head, TOTAL_LENGTH, len(head) + len(data))
    _U16.pack_into(head, FLAGS_FRAG, field_frag)
    _U16.pack_into(head, CHECKSUM, 0)
    _U16.pack_into(head, CHECKSUM, checksum(head))
    return bytes(head) + bytes(data)


def fragment_ipv4(packet: bytes | memoryview, mtu: int) -> list[bytes]:
    """Split a valid IPv4 packet into fragments of at most ``mtu`` bytes (RFC 791).

    A packet that fits is returned as it is (one piece).  Data goes in multiples of 8
    except in the last piece; offsets count from the packet's own offset, so
    a fragment can be fragmented again, and the last piece keeps its MF.  The
    first piece keeps every option, the others only ``copied_options``.
    Raises ValueError if DF is set, ``mtu`` is below 68 or no data fits.
    """
    if mtu < IPV4_MIN_MTU:
        raise ValueError(f"MTU {mtu} is below the IPv4 minimum of {IPV4_MIN_MTU}")
    hlen = (packet[0] & 0x0F) << 2
    total = (packet[TOTAL_LENGTH] << 8) | packet[TOTAL_LENGTH + 1]
    if total <= mtu:
        return [bytes(packet[:total])]
    flags_frag = (packet[FLAGS_FRAG] << 8) | packet[FLAGS_FRAG + 1]
    if flags_frag & FLAG_DF:
        raise ValueError("DF is set: the packet may not be fragmented")
    first_header = bytes(packet[:hlen])
    later_header = first_header[:HEADER_LEN] + copied_options(packet[HEADER_LEN:hlen])
    if mtu - hlen < 8 or mtu - len(later_header) < 8:
        raise ValueError(f"MTU {mtu} leaves no room for data after a {hlen}-byte header")
    data = memoryview(bytes(packet[hlen:total]))
    base = (flags_frag & OFFSET_MASK) << 3
    kept = flags_frag & ~(FLAG_MF | OFFSET_MASK)
    last_more = flags_frag & FLAG_MF
    pieces: list[bytes] = []
    pos = 0
    header = first_header
    while True:
        room = (mtu - len(header)) & ~7
        chunk = data[pos : pos + room]
        pos += len(chunk)
        more = FLAG_MF if pos < len(data) else last_more
        frag_field = kept | more | ((base + pos - len(chunk)) >> 3)
        pieces.append(_piece(header, chunk, frag_field))
        if pos >= len(data):
            return pieces
        header = later_header
