"""The flow cache: packets of tracked TCP, UDP and echo flows passed without parsing them again.

Responsibility: a packet that belongs to a firewall state is otherwise
parsed into a ``PacketInfo``, looked up and, if forwarded, met again on its
way out.  The cache maps the raw bytes of a packet's addresses and ports
(one slice of the IP header, in the packet's direction) to the state it
belongs to, so the next packets of the flow cost one dict probe and the
state's own tracking (``StateTable.update``, with pf's TCP window checks),
as nftables' flowtable and pf's state keys do.  The IPv4 and IPv6 fast paths
(:mod:`vrouter.inet.ipv4`, :mod:`vrouter.inet6.ipv6`) ask it through
``InetState.flows``/``Inet6State.flows``, and so does the filter hook for
the packets the fast path leaves (super-frames, say); a miss goes the whole
way, which learns the flow again.

What is cached (``learn``), and what is not:

- Only a packet that a state passed on its way in teaches the cache: TCP
  once both sides are ESTABLISHED, UDP and ICMP/ICMPv6 echo from their
  second packet on.  The entry is per direction and per ingress interface
  (the creating rule's counters count the packets of its interface and
  direction, as ``evaluate`` does); an echo entry also holds the message
  type its direction carries (requests one way, replies the other), and
  its key is the addresses and the echo identifier.
- IPv4 packets with options, IPv6 packets with extension headers,
  fragments, ICMP errors, and TCP segments with SYN, FIN or RST never take
  the cache: the full path handles them (a SYN that reopens a closed state,
  the close of a connection, a reset).
- A vnet that translates addresses (NAT rules, or mappings left from
  them) does not use the cache: translated packets take the full path
  with their rewrite, untranslated ones too (cheaper than knowing which
  are which).  This is tested when a flow is learned, not per packet: an
  entry of the current generation was learned while nothing translated,
  the ruleset has not been replaced since (a replacement bumps the
  generation), so it still has no NAT rule, and without one the NAT
  table makes no mapping.

Invalidation: every entry records the cache's generation, bumped when the
ruleset is replaced, the firewall is enabled or disabled, or the states are
flushed; an entry whose state was removed or has expired is a miss (the
full path then removes the state).  Routes and neighbours are the
destination cache's business: the fast path still asks it for every packet,
under its own generation, so an entry here never outlives a route change.
A per-flow choice of next hop (ECMP) would be one more slot of
``FlowEntry``, filled when the flow is learned.

The cache is bounded: when full it is emptied, as the destination cache is.
The sysctl ``net.pf.flowcache`` (on by default) turns it off: every packet
then takes the full path, as without a cache.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from vrouter.firewall.packet import (
    PROTO_ICMP,
    PROTO_ICMP6,
    PROTO_TCP,
    PROTO_UDP,
    PacketInfo,
    is_echo,
)
from vrouter.firewall.states import ESTABLISHED, State
from vrouter.wire import tcp

if TYPE_CHECKING:
    from vrouter.firewall.engine import Firewall
    from vrouter.firewall.rules import RuleCounters
    from vrouter.link.ifnet import Ifnet

__all__ = ["DROP", "LIMIT", "MISS", "PASS", "FlowCache", "FlowEntry"]

PASS: Final = 1
"""``admit``: the packet belongs to a cached flow and passes."""
MISS: Final = 0
"""``admit``: not cached (or no longer valid); the full path decides."""
DROP: Final = -1
"""``admit``: a cached TCP flow's window checks refuse the segment (``badstate``)."""
LIMIT: Final = 8192
"""Flow directions cached per vnet before the cache is emptied."""

_IP4: Final = struct.Struct("!2xH2xHxB").unpack_from
"""Total length, flags and fragment offset, and protocol of an IPv4 header (one call
for what three reads and their arithmetic took)."""
_IP6: Final = struct.Struct("!4xHB").unpack_from
"""Payload length and next header of an IPv6 header."""
_TCP: Final = struct.Struct("!4xIIBBH").unpack_from
"""Sequence, acknowledgment, data offset, flags and window of a TCP header."""
_KEY4: Final = struct.Struct("12s").unpack_from
"""An IPv4 flow's key, addresses and ports, as one bytes object (a bytearray's slice
then ``bytes`` made two)."""
_KEY6: Final = struct.Struct("36s").unpack_from
"""An IPv6 flow's key."""
_ECHO4: Final = struct.Struct("8s4x2s").unpack_from
"""An IPv4 echo flow's key in two parts: the addresses, the echo identifier."""
_NOT_CACHED_FLAGS: Final = tcp.SYN | tcp.FIN | tcp.RST


class FlowEntry:
    """One direction of one tracked flow, as it enters by one interface."""

    __slots__ = ("counters", "forward", "generation", "icmp_type", "ifp", "proto", "state")

    def __init__(
        self,
        state: State,
        forward: bool,
        proto: int,
        ifp: Ifnet,
        counters: RuleCounters | None,
        generation: int,
        icmp_type: int = -1,
    ) -> None:
        self.state = state
        self.forward = forward
        """The packets go initiator -> responder."""
        self.proto = proto
        self.icmp_type = icmp_type
        """The echo message type of this direction (request or reply); -1: not ICMP."""
        self.ifp = ifp
        """The ingress interface the entry is for."""
        self.counters = counters
        """The creating rule's counters if it matched on this interface, going in."""
        self.generation = generation


class FlowCache:
    """The cached flows of one vnet's firewall (both families)."""

    __slots__ = ("enabled", "entries", "fw", "generation", "hits", "inserts", "limit")

    def __init__(self, fw: Firewall, limit: int = LIMIT) -> None:
        self.fw = fw
        self.entries: dict[bytes, FlowEntry] = {}
        self.limit = limit
        self.generation = 0
        self.hits = 0
        """Packets passed (or dropped) by a cached flow."""
        self.inserts = 0
        """Flow directions learned."""
        self.enabled = True
        """``net.pf.flowcache``: False learns nothing (and so passes nothing)."""

    def invalidate(self) -> None:
        """Forget every cached flow (ruleset replaced, firewall switched, states flushed)."""
        self.generation += 1
        self.entries.clear()

    # -- the data path ------------------------------------------------------------

    def admit4(
        self, ifp: Ifnet, buf: bytes | bytearray | memoryview, at: int, legs: int, now: float
    ) -> int:
        """Decide the IPv4 packet at ``buf[at:]`` (no options, checked) entering by ``ifp``.

        ``legs``: 2 when the caller forwards it at once (the way in and the
        way out are counted, as the full path counts them), 1 from the
        filter hook (the way out is counted there).
        """
        total, fragment, proto = _IP4(buf, at)
        if fragment & 0x3FFF:
            return MISS  # a fragment (MF or an offset)
        if proto == PROTO_TCP:
            if total < 40:
                return MISS  # no room for a TCP header: never a cached flow's
            entry = self.entries.get(_KEY4(buf, at + 12)[0])
            if entry is None or entry.ifp is not ifp or entry.proto != PROTO_TCP:
                return MISS
            return self._segment(entry, buf, at + 20, total - 20, total, legs, now)
        if proto == PROTO_UDP:
            if total < 28:
                return MISS  # no room for a UDP header: never a cached flow's
            entry = self.entries.get(_KEY4(buf, at + 12)[0])
        elif proto == PROTO_ICMP and total >= 28:  # addresses and the echo identifier
            addresses, ident = _ECHO4(buf, at + 12)
            entry = self.entries.get(addresses + ident)
            if entry is not None and entry.icmp_type != buf[at + 20]:
                return MISS
        else:
            return MISS
        if entry is None or entry.ifp is not ifp or entry.proto != proto:
            return MISS
        return self._track(entry, buf, at + 20, total - 20, total, legs, now)

    def admit6(
        self, ifp: Ifnet, buf: bytes | bytearray | memoryview, at: int, legs: int, now: float
    ) -> int:
        """Decide the IPv6 packet at ``buf[at:]`` (fixed header checked) entering by ``ifp``;
        ``legs`` as in :meth:`admit4`."""
        length, proto = _IP6(buf, at)
        if proto == PROTO_TCP:
            if length < 20:
                return MISS  # no room for a TCP header: never a cached flow's
            entry = self.entries.get(_KEY6(buf, at + 8)[0])
            if entry is None or entry.ifp is not ifp or entry.proto != PROTO_TCP:
                return MISS
            return self._segment(entry, buf, at + 40, length, length + 40, legs, now)
        if proto == PROTO_UDP:
            if length < 8:
                return MISS  # no room for a UDP header: never a cached flow's
            entry = self.entries.get(_KEY6(buf, at + 8)[0])
        elif proto == PROTO_ICMP6 and length >= 8:  # addresses and the echo identifier
            entry = self.entries.get(bytes(buf[at + 8 : at + 40]) + bytes(buf[at + 44 : at + 46]))
            if entry is not None and entry.icmp_type != buf[at + 40]:
                return MISS
        else:
            return MISS  # another protocol, or extension headers
        if entry is None or entry.ifp is not ifp or entry.proto != proto:
            return MISS
        return self._track(entry, buf, at + 40, length, length + 40, legs, now)

    def _segment(
        self,
        entry: FlowEntry,
        buf: bytes | bytearray | memoryview,
        l4: int,
        l4len: int,
        total: int,
        legs: int,
        now: float,
    ) -> int:
        """Track a TCP segment (``l4len`` >= 20) with its state as ``evaluate`` would; count it.

        One call per segment as the sender handed it over: a GSO super-frame
        is one segment here, its whole payload tracked at once, as the state
        sees the segments it stands for arrive back to back (the window checks
        take the super-frame's first and last sequence numbers; the segments
        in between lie within them).
        """
        state = entry.state
        if entry.generation != self.generation or state.removed or state.expires <= now:
            return MISS
        seq, ack, offset, flags, window = _TCP(buf, l4)
        hlen = (offset >> 4) << 2
        if flags & _NOT_CACHED_FLAGS or hlen < 20 or hlen > l4len:
            return MISS
        fw = self.fw
        states = fw.states
        self.hits += 1
        states_stats = states.stats
        states_stats.searches += 1
        states_stats.matches += 1
        if not states.track_segment(
            state, entry.forward, flags, seq, ack, window, l4len - hlen, total, now
        ):
            stats = fw.stats
            stats.badstate += 1
            stats.dropped += 1
            return DROP
        stats = fw.stats
        stats.state += legs
        stats.passed += legs
        counters = entry.counters
        if counters is not None:
            counters.packets += 1
            counters.bytes += total
        return PASS

    def _track(
        self,
        entry: FlowEntry,
        buf: bytes | bytearray | memoryview,
        l4: int,
        l4len: int,
        total: int,
        legs: int,
        now: float,
    ) -> int:
        """Track a UDP or echo packet with its state as ``evaluate`` would; count it."""
        state = entry.state
        if entry.generation != self.generation or state.removed or state.expires <= now:
            return MISS
        if entry.proto == PROTO_UDP:
            if l4len < 8:
                return MISS
            length = buf[l4 + 4] << 8 | buf[l4 + 5]
            if length < 8 or length > l4len:
                return MISS  # malformed: the full path counts it
        fw = self.fw
        states = fw.states
        self.hits += 1
        states_stats = states.stats
        states_stats.searches += 1
        states_stats.matches += 1
        states.refresh(state, entry.forward, total, now)
        stats = fw.stats
        stats.state += legs
        stats.passed += legs
        counters = entry.counters
        if counters is not None:
            counters.packets += 1
            counters.bytes += total
        return PASS

    # -- learning -------------------------------------------------------------------

    def learn(
        self, ifp: Ifnet, packet: memoryview, info: PacketInfo, state: State, forward: bool
    ) -> None:
        """Cache the flow of ``packet``, which ``state`` just passed on its way in by ``ifp``
        (see the module's description of what is cached)."""
        proto = info.proto
        echo = is_echo(info)
        if not self.enabled or (proto != PROTO_TCP and proto != PROTO_UDP and not echo):
            return
        fw = self.fw
        if fw.ruleset.nat or len(fw.nat):
            return  # translated flows take the full path (and so, while any is, all do)
        if info.fragment or info.first_fragment or info.malformed:
            return
        if proto == PROTO_TCP:
            peers = state.peers
            if (
                info.tcp_flags & _NOT_CACHED_FLAGS
                or peers[0].state != ESTABLISHED
                or peers[1].state != ESTABLISHED
            ):
                return
        if info.family == 4:
            if packet[0] != 0x45:
                return
            key = bytes(packet[12 : 20 if echo else 24])
        else:
            if packet[6] != proto:
                return
            key = bytes(packet[8 : 40 if echo else 44])
        if echo:
            key += info.sport.to_bytes(2, "big")  # the echo identifier (packet.py)
        entries = self.entries
        if len(entries) >= self.limit:
            entries.clear()
        counters = state.counters if state.origin == (ifp.name, "in") else None
        entries[key] = FlowEntry(
            state, forward, proto, ifp, counters, self.generation, info.icmp_type if echo else -1
        )
        self.inserts += 1
