"""Address translation on the filter's hooks: NAT44 (nat, rdr, binat) and NPTv6.

Responsibility: rewrite the addresses and ports of the packets the
ruleset's ``[[nat]]`` entries (``vrouter.firewall.rules.NatRule``) select,
remember the translations of flows (``NatTable``) and keep every checksum
right.  ``translate_in`` runs on the IN hook *before* the filter and
rewrites destinations; ``translate_out`` runs on the OUT hook *after* the
filter passed the packet and rewrites sources.  So, as in pf, filter rules
and states see the original (pre-``nat``) source and the translated
(post-``rdr``) destination, and a flow's firewall state has one key from
its first packet to its last.

Translations:

- **nat** (source NAT, masquerade): a packet leaving by the entry's
  interface gets the entry's ``address`` (or the interface's first IPv4
  address, read when the mapping is made: masquerade) as its source.  The
  mapping is endpoint-independent (RFC 4787 REQ-1, RFC 5382 REQ-1): one
  inside address and port has one outside port for every destination.
  Inbound packets to that outside port reach the inside endpoint if the
  entry's filtering allows: ``endpoint-independent`` from anyone,
  ``address-dependent`` (the default) only from an address the inside
  endpoint sent to; others are dropped (``filtered``).  The source port
  (ICMP echo id) is kept when it is in the entry's ``port_range`` and free
  on the outside address, else the next free one in the range is taken;
  when the range is full the packet is dropped (``exhausted``).  Packets
  from the vnet's own addresses are never translated.  TCP, UDP and ICMP
  echo are translated; other protocols pass untranslated.
- **Masquerade and address changes**: a mapping whose outside address is no
  longer its interface's first address is removed when its inside endpoint
  next sends, and a new one is made on the new address.  UDP and ping flows
  carry on from the new address; a TCP connection cannot (its peer knows
  the old address) and ends when the peer resets it or times out.
- **rdr** (port forwarding): a TCP or UDP packet to the entry's public
  address (by default the interface's) and port in ``to_port`` goes to
  ``target``, port ``target_port`` plus its offset in the range (the same
  port without ``target_port``).  A redirected flow is remembered, so its
  replies leave with the public address and port.  **Hairpin**: the same
  packet arriving on another interface (an inside host using the public
  address) is redirected too, and its source becomes the vnet's own address
  towards the target, so the target answers through the vnet.
- **nat hairpin** (RFC 4787 REQ-9, RFC 5382 REQ-8): a packet from inside to
  a ``nat`` mapping's outside endpoint goes to its inside endpoint, from
  the sender's own mapping on that interface (made if need be), so both
  ends see each other as the outside does; the mapping's filtering applies
  to the sender's outside address.  The destination is rewritten on the
  way in and the source on the way out, as for ``rdr``.
- **binat**: 1:1 between two prefixes of one length, both ways, on one
  interface, for every protocol; stateless.
- **nptv6** (RFC 6296): IPv6 prefix translation, stateless and
  checksum-neutral: the prefix is replaced and one 16-bit word of the rest
  of the address absorbs the change of the one's complement sum (bits 48-63
  for prefixes up to /48, else the first interface-identifier word that is
  not 0xFFFF).  An address whose adjusting word is 0xFFFF cannot be
  translated and is dropped (``untranslatable``).  No transport checksum
  changes.

- **ICMP errors** about a translated packet are translated the way that
  packet's reply would be, inside and out: the quoted header (address,
  port or echo id, its IP checksum and the part of its transport checksum
  that is quoted) and the outer address when it is the quoted one.  So
  traceroute and path MTU discovery work through the translation.
- **Checksums** are updated incrementally (RFC 1624).  A frame whose L4
  checksum is partial (a TAP frame with ``NEEDS_CSUM``, a TSO super-frame)
  holds only the pseudo-header sum in that field: only the address change
  is applied to it, the port is summed by whoever completes it.  A UDP
  checksum of zero (none) stays zero.
- **Fragments**: a first fragment is translated like a whole packet; the
  later fragments of its datagram (no ports: matched by addresses, protocol
  and identification) get the same address for ``FRAGMENT_HOLD`` seconds.
  A later fragment that arrives before its first passes untranslated.
- **Timeouts** (RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1): UDP 300 s,
  TCP 7440 s once both sides have sent and 240 s before that and after a
  FIN or RST, ICMP echo 60 s; any translated packet, either way, refreshes
  its mapping.  Mappings live in the table, not in the ruleset: replacing
  the ruleset keeps them.  They count against the firewall's state limit.

Nothing here does I/O or reads a clock: the time is passed in as ``now``
and what the translation needs of the vnet (interface addresses, the
source address towards a target) comes through a ``NatHost``.

The module is long on purpose: :class:`NatTable` is one structure whose
lookups in both directions, port allocation, expiry and translation of
ICMP errors keep the same invariants, and it is followed by the checksum
arithmetic (RFC 1624) and NPTv6 (RFC 6296) that only it uses.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from typing import Literal, Protocol

from vrouter.firewall.packet import (
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    PacketInfo,
    is_icmp_error,
    quoted,
)
from vrouter.firewall.rules import NatRule, Ruleset
from vrouter.link.offload import F_NEEDS_CSUM, vhdr_of
from vrouter.wire import icmp4, tcp
from vrouter.wire.checksum import ones_sum
from vrouter.wire.ipv6 import NH_ICMPV6

__all__ = [
    "Binding",
    "NatHost",
    "NatStats",
    "NatTable",
    "NatTimeouts",
    "Redirect",
    "describe_mapping",
    "npt_map",
]

ETH_LEN = 14
"""Where the IP header starts in a frame (offload offsets count from the frame)."""
DEFAULT_PORTS = (1024, 65535)
"""TCP and UDP ports a ``nat`` entry without ``port_range`` allocates from."""
DEFAULT_IDS = (1, 65535)
"""ICMP echo ids a ``nat`` entry without ``port_range`` allocates from."""
ADDRESS_DEPENDENT = "address-dependent"
FRAGMENT_HOLD = 60.0
"""Seconds the later fragments of a translated first fragment are translated alike."""
FRAGMENT_ENTRIES = 4096
"""Fragmented datagrams remembered at once; the oldest is forgotten first."""
_MF = 0x20
"""More Fragments, in the byte at offset 6 of an IPv4 header."""

_PORTED = (PROTO_TCP, PROTO_UDP)
_ECHO_PAIR = {icmp4.ECHO_REQUEST: icmp4.ECHO_REPLY, icmp4.ECHO_REPLY: icmp4.ECHO_REQUEST}
_CLOSING_FLAGS = tcp.FIN | tcp.RST

_Found = tuple[bytes, int] | None | Literal[False]
"""A lookup's answer: the new (address, port), None (untouched) or False (drop)."""


class NatHost(Protocol):
    """What the translation needs of its vnet."""

    def address_of(self, ifname: str) -> bytes | None:
        """Return the first IPv4 address of interface ``ifname``, None if it has none."""

    def source_toward(self, dst: bytes) -> bytes | None:
        """Return the vnet's IPv4 source address towards ``dst``."""

    def is_local(self, address: bytes) -> bool:
        """Return True if ``address`` is one of the vnet's IPv4 addresses."""


@dataclass(slots=True)
class NatTimeouts:
    """Mapping timeouts in seconds (RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1)."""

    udp: float = 300
    """UDP: at least 120 s; 300 s recommended."""
    tcp_established: float = 7440
    """TCP once both sides have sent: at least 2 h 4 min."""
    tcp_transitory: float = 240
    """TCP before that, and after a FIN or RST: at least 4 min."""
    icmp: float = 60
    """ICMP echo: at least 60 s."""


@dataclass(slots=True)
class NatStats:
    """Translation counters of one vnet."""

    translated: int = 0
    """Packets whose addresses were rewritten (ICMP errors included)."""
    errors: int = 0
    """ICMP errors whose quoted packet was translated."""
    created: int = 0
    """Mappings made (``nat`` bindings and ``rdr`` flows)."""
    expired: int = 0
    """Mappings removed after their timeout."""
    moved: int = 0
    """Masquerade mappings dropped because their interface's address changed."""
    filtered: int = 0
    """Dropped: inbound to a mapping from an address its filtering refuses."""
    exhausted: int = 0
    """Dropped: no free port (ICMP id) left in the range."""
    limit: int = 0
    """Dropped: the firewall's state limit leaves no room for a new mapping."""
    noaddress: int = 0
    """Dropped: a masquerade interface without an IPv4 address."""
    untranslatable: int = 0
    """Dropped: an NPTv6 address whose adjusting word is 0xFFFF."""
    remotes_forgotten: int = 0
    """Peers a busy ``nat`` mapping stopped remembering for its filtering (oldest first)."""
    hairpinned: int = 0
    """Packets from inside to a ``nat`` mapping's outside endpoint, sent back in (REQ-9)."""


@dataclass(slots=True, eq=False)
class _Mapping:
    """What every mapping has: protocol, creating entry, times and counters."""

    proto: int
    rule: int
    """Index of the creating ``nat`` entry in the ruleset of that time."""
    created: float
    expires: float = 0.0
    seen: list[bool] = field(default_factory=lambda: [False, False])
    """Packets seen outbound (from the initiator), inbound."""
    closing: bool = False
    """TCP: a FIN or RST was seen."""
    packets: list[int] = field(default_factory=lambda: [0, 0])
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    removed: bool = False


REMOTES_MAX = 1024
"""Peers one ``nat`` mapping remembers: one UDP socket sending everywhere cannot grow it
without bound; a forgotten peer's answers are filtered until the endpoint sends to it again."""


@dataclass(slots=True, eq=False)
class Binding(_Mapping):
    """An endpoint-independent ``nat`` mapping: ``inside`` is ``outside`` on ``ifname``."""

    ifname: str = ""
    inside: bytes = b""
    inside_port: int = 0
    outside: bytes = b""
    outside_port: int = 0
    masquerade: bool = False
    """The outside address is the interface's, followed when it changes."""
    filtering: str = ADDRESS_DEPENDENT
    remotes: dict[bytes, None] = field(default_factory=dict)
    """Addresses the inside endpoint sent to (address-dependent filtering), oldest first,
    at most :data:`REMOTES_MAX`."""


@dataclass(slots=True, eq=False)
class Redirect(_Mapping):
    """An ``rdr`` flow: ``client`` reached ``public``, which is ``server``.

    ``hairpin`` is the source the server sees when the client is inside
    (None otherwise).
    """

    client: bytes = b""
    client_port: int = 0
    public: bytes = b""
    public_port: int = 0
    server: bytes = b""
    server_port: int = 0
    hairpin: bytes | None = None
    hairpin_port: int = 0


def _endpoint(address: bytes, port: int) -> str:
    return f"{ipaddress.ip_address(address)}:{port}"


_PROTO_NAMES = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp"}


class NatTable:
    """The NAT44 mappings of one vnet and how to find them from either side."""

    __slots__ = (
        "_by_inside",
        "_by_outside",
        "_cursor",
        "_freed",
        "_full",
        "_fragments",
        "_hairpin_ports",
        "_hairpinned",
        "_inbound",
        "_interfaces",
        "_npt",
        "_outbound",
        "_redirects",
        "stats",
        "timeouts",
    )

    stats: NatStats
    timeouts: NatTimeouts

    def __init__(self, timeouts: NatTimeouts | None = None) -> None:
        """Create an empty table."""
        self.stats = NatStats()
        self.timeouts = timeouts if timeouts is not None else NatTimeouts()
        self._by_inside: dict[tuple[str, int, bytes, int], Binding] = {}
        self._by_outside: dict[tuple[int, bytes, int], Binding] = {}
        self._inbound: dict[tuple[int, bytes, int, bytes, int], tuple[Redirect, bytes, int]] = {}
        self._outbound: dict[tuple[int, bytes, int, bytes, int], tuple[Redirect, bytes, int]] = {}
        self._redirects: set[Redirect] = set()
        self._hairpin_ports: set[tuple[int, bytes, int]] = set()
        self._hairpinned: tuple[memoryview, Binding] | None = None
        """The packet :meth:`_hairpin` sent back in, and the sender's mapping, its source
        when that packet leaves (the next hook call; as the filter's ``passed_in``)."""
        self._interfaces: dict[str, int] = {}
        self._cursor: dict[tuple[int, bytes], int] = {}
        self._freed: dict[tuple[int, bytes], int] = {}
        """Ports freed per (protocol, address): a range found full stays full until one is."""
        self._full: dict[tuple[tuple[int, bytes], tuple[int, int]], int] = {}
        """Ranges found full, with the freed count of their address then."""
        self._npt: dict[NatRule, _Npt] = {}
        self._fragments: OrderedDict[tuple[bool, bytes, int, bytes], tuple[bytes, float]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        """Return the number of mappings (each counts as a firewall state)."""
        return len(self._by_outside) + len(self._redirects)

    def bindings(self) -> list[Binding]:
        """Return the ``nat`` mappings."""
        return list(self._by_outside.values())

    def redirects(self) -> list[Redirect]:
        """Return the ``rdr`` flows."""
        return list(self._redirects)

    def touches(self, ruleset: Ruleset, ifname: str) -> bool:
        """Return True if a packet leaving by ``ifname`` may need translating."""
        return (
            bool(self._outbound)
            or self._hairpinned is not None
            or ifname in self._interfaces
            or ifname in ruleset.nat_interfaces
        )

    # -- the hooks -------------------------------------------------------------------

    def translate_in(
        self,
        host: NatHost,
        ruleset: Ruleset,
        ifname: str,
        info: PacketInfo,
        packet: memoryview,
        now: float,
        room: int,
    ) -> bool:
        """Rewrite the destination of a packet received on ``ifname``; False to drop it.

        ``info`` is updated to the translated packet.  ``room``: how many
        mappings may still be made (the state limit's).
        """
        self._hairpinned = None
        if info.family == 6:
            return self._npt_packet(ruleset, ifname, info, packet, inbound=True)
        if info.fragment:
            self._follow_fragment(packet, info, True, now)
            return True
        if info.malformed:
            return True
        proto = info.proto
        if proto in _PORTED:
            # The common case first: a packet for a mapped endpoint.
            binding = self._by_outside.get((proto, info.dst, info.dport))
            if binding is not None and binding.expires > now:
                if binding.ifname != ifname and (
                    not self._inbound
                    or (proto, info.src, info.sport, info.dst, info.dport) not in self._inbound
                ):
                    return self._hairpin(host, ruleset, binding, info, packet, now, room)
                if not self._inbound and (
                    binding.filtering != ADDRESS_DEPENDENT or info.src in binding.remotes
                ):
                    self._refresh(binding, info, True, now)
                    self._translate(packet, info, True, binding.inside, binding.inside_port, now)
                    return True
            if binding is None and not self._inbound and not ruleset.nat_inbound:
                return True  # no mapping, no redirect: nothing to translate
        return self._by_rules(host, ruleset, ifname, info, packet, now, room, inbound=True)

    def translate_out(
        self,
        host: NatHost,
        ruleset: Ruleset,
        ifname: str,
        info: PacketInfo,
        packet: memoryview,
        now: float,
        room: int,
    ) -> bool:
        """Rewrite the source of a packet leaving by ``ifname``; False to drop it."""
        if info.family == 6:
            return self._npt_packet(ruleset, ifname, info, packet, inbound=False)
        if info.fragment:
            self._follow_fragment(packet, info, False, now)
            return True
        if info.malformed:
            return True
        proto = info.proto
        if self._hairpinned is not None:
            hairpinned, sender = self._hairpinned
            self._hairpinned = None
            if hairpinned is packet:
                self._refresh(sender, info, False, now)
                self._translate(packet, info, False, sender.outside, sender.outside_port, now)
                return True
        if proto in _PORTED and not self._outbound:
            # The common case first: a packet of a mapped endpoint.
            binding = self._by_inside.get((ifname, proto, info.src, info.sport))
            if (
                binding is not None
                and binding.expires > now
                and (not binding.masquerade or host.address_of(ifname) == binding.outside)
            ):
                self._remember(binding, info.dst)
                self._refresh(binding, info, False, now)
                self._translate(packet, info, False, binding.outside, binding.outside_port, now)
                return True
        return self._by_rules(host, ruleset, ifname, info, packet, now, room, inbound=False)

    def _by_rules(
        self,
        host: NatHost,
        ruleset: Ruleset,
        ifname: str,
        info: PacketInfo,
        packet: memoryview,
        now: float,
        room: int,
        *,
        inbound: bool,
    ) -> bool:
        """Translate a packet no mapping answered: an ICMP error as what it quotes,
        anything else as the first matching rule says (a new mapping); False to drop it."""
        if is_icmp_error(info):
            self._error(host, ruleset, ifname, info, packet, now, inbound=inbound)
            return True
        find = self._find_in if inbound else self._find_out
        found = find(
            host, ruleset, ifname, info.proto, info.src, info.sport, info.dst, info.dport,
            info.icmp_type, now, info, room,
        )  # fmt: skip
        if found is None:
            return True
        if found is False:
            return False
        self._translate(packet, info, inbound, *found, now)
        return True

    def _hairpin(
        self,
        host: NatHost,
        ruleset: Ruleset,
        binding: Binding,
        info: PacketInfo,
        packet: memoryview,
        now: float,
        room: int,
    ) -> bool:
        """Send a packet from inside to ``binding``'s outside endpoint back in to its
        inside endpoint (RFC 4787 REQ-9, RFC 5382 REQ-8), from the sender's own
        mapping on ``binding``'s interface, so both ends see each other as the
        outside does.  The destination is rewritten now, the source on the
        way out (the filter sees the sender's own address, as for ``rdr``).
        False to drop it."""
        proto = info.proto
        found = self._find_out(
            host, ruleset, binding.ifname, proto, info.src, info.sport,
            binding.outside, binding.outside_port, info.icmp_type, now, info, room,
        )  # fmt: skip
        if found is False:
            return False
        source = found[0] if found is not None else info.src
        if binding.filtering == ADDRESS_DEPENDENT and source not in binding.remotes:
            self.stats.filtered += 1
            return False
        self._refresh(binding, info, True, now)
        self._translate(packet, info, True, binding.inside, binding.inside_port, now)
        sender = self._by_inside.get((binding.ifname, proto, info.src, info.sport))
        if found is not None and sender is not None:
            self._hairpinned = (packet, sender)
        self.stats.hairpinned += 1
        return True

    # -- rewriting and fragments ----------------------------------------------------

    def _translate(
        self,
        packet: memoryview,
        info: PacketInfo,
        inbound: bool,
        address: bytes,
        port: int,
        now: float,
    ) -> None:
        """Rewrite ``packet``'s destination (``inbound``) or source, count it, and make
        ``info`` describe the packet as it now is (an ICMP echo's id is both ports)."""
        self._rewrite(packet, inbound, address, port, now)
        self.stats.translated += 1
        if inbound:
            info.dst = address
        else:
            info.src = address
        if info.proto not in _PORTED:
            info.sport = info.dport = port
        elif inbound:
            info.dport = port
        else:
            info.sport = port

    def _rewrite(
        self, packet: memoryview, destination: bool, address: bytes, port: int, now: float
    ) -> None:
        """Rewrite ``packet``; remember a first fragment's new address for the rest."""
        if packet[6] & _MF:
            key = (destination, bytes(packet[12:20]), packet[9], bytes(packet[4:6]))
            fragments = self._fragments
            fragments[key] = (address, now + FRAGMENT_HOLD)
            fragments.move_to_end(key)
            while len(fragments) > FRAGMENT_ENTRIES:
                fragments.popitem(last=False)
        _rewrite(packet, destination, address, port)

    def _follow_fragment(
        self, packet: memoryview, info: PacketInfo, destination: bool, now: float
    ) -> None:
        """Give a later fragment the address its first fragment got (its ports are
        in the first fragment only)."""
        if not self._fragments:
            return
        key = (destination, bytes(packet[12:20]), packet[9], bytes(packet[4:6]))
        found = self._fragments.get(key)
        if found is None:
            return
        address, expiry = found
        if expiry < now:
            del self._fragments[key]
            return
        at = 16 if destination else 12
        delta = _delta32(packet[at : at + 4], address)
        packet[at : at + 4] = address
        _U16.pack_into(packet, 10, _apply(_U16.unpack_from(packet, 10)[0], delta))
        if destination:
            info.dst = address
        else:
            info.src = address
        self.stats.translated += 1

    # -- lookups -----------------------------------------------------------------------

    def _find_in(
        self,
        host: NatHost,
        ruleset: Ruleset,
        ifname: str,
        proto: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        icmp_type: int,
        now: float,
        info: PacketInfo | None,
        room: int,
    ) -> _Found:
        """Return where a packet received on ``ifname`` really goes.

        ``info`` None: an ICMP error's quoted packet is being looked up
        (nothing is made or refreshed).
        """
        ported = proto in _PORTED
        if ported:
            hit = self._inbound.get((proto, src, sport, dst, dport))
            if hit is not None:
                redirect, address, port = hit
                if redirect.expires > now:
                    if info is not None:
                        self._refresh(redirect, info, address != redirect.server, now)
                    return address, port
                self._remove_redirect(redirect)
                self.stats.expired += 1
        if ported or (proto == PROTO_ICMP and icmp_type == icmp4.ECHO_REPLY):
            binding = self._by_outside.get((proto, dst, dport))
            if binding is not None:
                if binding.expires <= now:
                    self._remove_binding(binding)
                    self.stats.expired += 1
                elif binding.filtering == ADDRESS_DEPENDENT and src not in binding.remotes:
                    if info is None:
                        return None
                    self.stats.filtered += 1
                    return False
                else:
                    if info is not None:
                        self._refresh(binding, info, True, now)
                    return binding.inside, binding.inside_port
        for index, entry in enumerate(ruleset.nat):
            action = entry.action
            if action == "binat":
                if entry.interface != ifname:
                    continue
                mapped = _map_prefix(dst, entry.outside, entry.inside)
                if mapped is not None:
                    if info is not None:
                        _count(ruleset, index, info)
                    return mapped, dport
            elif action == "rdr" and ported and info is not None:
                found = self._redirect(host, ruleset, index, entry, ifname, info, now, room)
                if found is not None:
                    return found
        return None

    def _find_out(
        self,
        host: NatHost,
        ruleset: Ruleset,
        ifname: str,
        proto: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        icmp_type: int,
        now: float,
        info: PacketInfo | None,
        room: int,
    ) -> _Found:
        """Return the source a packet leaving by ``ifname`` really has."""
        ported = proto in _PORTED
        if ported and self._outbound:
            hit = self._outbound.get((proto, src, sport, dst, dport))
            if hit is not None:
                redirect, address, port = hit
                if redirect.expires > now:
                    if info is not None:
                        self._refresh(redirect, info, address == redirect.public, now)
                    return address, port
                self._remove_redirect(redirect)
                self.stats.expired += 1
        mappable = ported or (proto == PROTO_ICMP and icmp_type == icmp4.ECHO_REQUEST)
        if mappable and ifname in self._interfaces:
            binding = self._by_inside.get((ifname, proto, src, sport))
            if binding is not None:
                if binding.expires <= now:
                    self._remove_binding(binding)
                    self.stats.expired += 1
                elif binding.masquerade and host.address_of(ifname) != binding.outside:
                    self._remove_binding(binding)
                    self.stats.moved += 1
                else:
                    if info is not None:
                        self._remember(binding, dst)
                        self._refresh(binding, info, False, now)
                    return binding.outside, binding.outside_port
        if ifname not in ruleset.nat_interfaces:
            return None
        for index, entry in enumerate(ruleset.nat):
            if entry.interface != ifname:
                continue
            action = entry.action
            if action == "binat":
                mapped = _map_prefix(src, entry.inside, entry.outside)
                if mapped is not None:
                    if info is not None:
                        _count(ruleset, index, info)
                    return mapped, sport
            elif action == "nat" and mappable and info is not None:
                if entry.proto is not None and entry.proto != proto:
                    continue
                if host.is_local(src) or not ruleset.nat_matches(index, src, dst):
                    continue
                return self._bind(host, ruleset, index, entry, ifname, info, now, room)
        return None

    # -- making mappings -----------------------------------------------------------------

    def _bind(
        self,
        host: NatHost,
        ruleset: Ruleset,
        index: int,
        entry: NatRule,
        ifname: str,
        info: PacketInfo,
        now: float,
        room: int,
    ) -> _Found:
        """Map ``info``'s source endpoint for entry ``index``; the new source, or False."""
        if entry.address is not None:
            address: bytes | None = entry.address.packed
        else:
            address = host.address_of(ifname)
        if address is None:
            self.stats.noaddress += 1
            return False
        if room <= 0:
            self.stats.limit += 1
            return False
        proto = info.proto
        span = entry.port_range or (DEFAULT_PORTS if proto in _PORTED else DEFAULT_IDS)
        port = self._allocate(proto, address, info.sport, span)
        if port is None:
            self.stats.exhausted += 1
            return False
        binding = Binding(
            proto,
            index,
            now,
            ifname=ifname,
            inside=info.src,
            inside_port=info.sport,
            outside=address,
            outside_port=port,
            masquerade=entry.address is None,
            filtering=entry.filtering,
        )
        self._remember(binding, info.dst)
        self._by_inside[(ifname, proto, info.src, info.sport)] = binding
        self._by_outside[(proto, address, port)] = binding
        self._interfaces[ifname] = self._interfaces.get(ifname, 0) + 1
        self._refresh(binding, info, False, now)
        self.stats.created += 1
        ruleset.nat_counters[index].states += 1
        _count(ruleset, index, info)
        return address, port

    def _redirect(
        self,
        host: NatHost,
        ruleset: Ruleset,
        index: int,
        entry: NatRule,
        ifname: str,
        info: PacketInfo,
        now: float,
        room: int,
    ) -> _Found:
        """Redirect ``info`` if entry ``index`` takes it; its new destination, or None/False."""
        proto = info.proto
        if entry.proto is not None and entry.proto != proto:
            return None
        if entry.public is not None:
            public: bytes | None = entry.public.packed
        else:
            public = host.address_of(entry.interface)
        if public is None or info.dst != public:
            return None
        if entry.dport is not None and not entry.dport.contains(info.dport):
            return None
        if not ruleset.nat_matches(index, info.src, info.dst):
            return None
        if room <= 0:
            self.stats.limit += 1
            return False
        assert entry.target is not None, "the parser requires a target"
        server = entry.target.packed
        port = info.dport
        if entry.target_port is not None and entry.dport is not None:
            port = entry.target_port + info.dport - entry.dport.ranges[0][0]
        redirect = Redirect(
            proto,
            index,
            now,
            client=info.src,
            client_port=info.sport,
            public=public,
            public_port=info.dport,
            server=server,
            server_port=port,
        )
        if ifname != entry.interface:
            source = host.source_toward(server)
            if source is not None and source != info.src:
                hairpin_port = self._allocate(proto, source, info.sport, DEFAULT_PORTS)
                if hairpin_port is None:
                    self.stats.exhausted += 1
                    return False
                redirect.hairpin = source
                redirect.hairpin_port = hairpin_port
                self._hairpin_ports.add((proto, source, hairpin_port))
                self._outbound[(proto, info.src, info.sport, server, port)] = (
                    redirect,
                    source,
                    hairpin_port,
                )
                self._inbound[(proto, server, port, source, hairpin_port)] = (
                    redirect,
                    info.src,
                    info.sport,
                )
        self._inbound[(proto, info.src, info.sport, public, info.dport)] = (redirect, server, port)
        self._outbound[(proto, server, port, info.src, info.sport)] = (
            redirect,
            public,
            info.dport,
        )
        self._redirects.add(redirect)
        self._refresh(redirect, info, False, now)
        self.stats.created += 1
        ruleset.nat_counters[index].states += 1
        _count(ruleset, index, info)
        return server, port

    def _allocate(self, proto: int, address: bytes, want: int, span: tuple[int, int]) -> int | None:
        """Return a free port of ``address`` for ``proto``: ``want`` if it can be, else
        the next free one in ``span`` (round robin), None if every one is taken."""
        low, high = span
        if low <= want <= high and self._free(proto, address, want):
            return want
        size = high - low + 1
        key = (proto, address)
        freed = self._freed.get(key, 0)
        if self._full.get((key, span)) == freed:
            return None  # full at the last scan, and nothing freed since: no scan per packet
        start = self._cursor.get(key, 0)
        for step in range(size):
            port = low + (start + step) % size
            if self._free(proto, address, port):
                self._cursor[key] = (start + step + 1) % size
                return port
        self._full[(key, span)] = freed
        return None

    def _remember(self, binding: Binding, peer: bytes) -> None:
        """Note that ``binding``'s endpoint sent to ``peer`` (the newest last)."""
        remotes = binding.remotes
        if peer in remotes:
            if next(reversed(remotes)) != peer:
                del remotes[peer]
                remotes[peer] = None
            return
        remotes[peer] = None
        if len(remotes) > REMOTES_MAX:
            del remotes[next(iter(remotes))]
            self.stats.remotes_forgotten += 1

    def _free(self, proto: int, address: bytes, port: int) -> bool:
        key = (proto, address, port)
        return key not in self._by_outside and key not in self._hairpin_ports

    def _refresh(self, mapping: _Mapping, info: PacketInfo, inbound: bool, now: float) -> None:
        """Count a packet of ``mapping`` and push its expiry out."""
        side = 1 if inbound else 0
        mapping.seen[side] = True
        mapping.packets[side] += 1
        mapping.bytes[side] += info.length
        timeouts = self.timeouts
        if mapping.proto == PROTO_TCP:
            if info.tcp_flags & _CLOSING_FLAGS:
                mapping.closing = True
            if mapping.closing or not (mapping.seen[0] and mapping.seen[1]):
                timeout = timeouts.tcp_transitory
            else:
                timeout = timeouts.tcp_established
        elif mapping.proto == PROTO_UDP:
            timeout = timeouts.udp
        else:
            timeout = timeouts.icmp
        mapping.expires = now + timeout

    # -- removal ----------------------------------------------------------------------

    def _remove_binding(self, binding: Binding) -> None:
        if binding.removed:
            return
        binding.removed = True
        proto = binding.proto
        self._by_inside.pop((binding.ifname, proto, binding.inside, binding.inside_port), None)
        self._by_outside.pop((proto, binding.outside, binding.outside_port), None)
        self._port_freed(proto, binding.outside)
        left = self._interfaces.get(binding.ifname, 1) - 1
        if left:
            self._interfaces[binding.ifname] = left
        else:
            self._interfaces.pop(binding.ifname, None)

    def _port_freed(self, proto: int, address: bytes) -> None:
        key = (proto, address)
        self._freed[key] = self._freed.get(key, 0) + 1

    def _remove_redirect(self, redirect: Redirect) -> None:
        if redirect.removed:
            return
        redirect.removed = True
        proto = redirect.proto
        client = (redirect.client, redirect.client_port)
        server = (redirect.server, redirect.server_port)
        self._inbound.pop((proto, *client, redirect.public, redirect.public_port), None)
        self._outbound.pop((proto, *server, *client), None)
        if redirect.hairpin is not None:
            hairpin = (redirect.hairpin, redirect.hairpin_port)
            self._outbound.pop((proto, *client, *server), None)
            self._inbound.pop((proto, *server, *hairpin), None)
            self._hairpin_ports.discard((proto, *hairpin))
            self._port_freed(proto, redirect.hairpin)
        self._redirects.discard(redirect)

    def expire(self, now: float) -> int:
        """Remove every mapping whose timeout has passed; return how many."""
        count = 0
        for binding in [b for b in self._by_outside.values() if b.expires <= now]:
            self._remove_binding(binding)
            count += 1
        for redirect in [r for r in self._redirects if r.expires <= now]:
            self._remove_redirect(redirect)
            count += 1
        self.stats.expired += count
        return count

    def flush(self) -> int:
        """Remove every mapping; return how many there were."""
        count = len(self)
        for binding in list(self._by_outside.values()):
            self._remove_binding(binding)
        for redirect in list(self._redirects):
            self._remove_redirect(redirect)
        return count

    # -- ICMP errors ------------------------------------------------------------------

    def _error(
        self,
        host: NatHost,
        ruleset: Ruleset,
        ifname: str,
        info: PacketInfo,
        packet: memoryview,
        now: float,
        *,
        inbound: bool,
    ) -> None:
        """Translate the packet an ICMP error quotes as its reply would be translated."""
        inner = quoted(info, packet)
        if inner is None:
            return
        reply_type = _ECHO_PAIR.get(inner.icmp_type, -1)
        find = self._find_in if inbound else self._find_out
        found = find(
            host, ruleset, ifname, inner.proto, inner.dst, inner.dport, inner.src, inner.sport,
            reply_type, now, None, 0,
        )  # fmt: skip
        if not found:
            return
        address, port = found
        # Inbound: the quoted packet left with the translated source; outbound,
        # it arrived with the translated destination.
        quoted_address = inner.src if inbound else inner.dst
        outer = (info.dst if inbound else info.src) == quoted_address
        _rewrite_quoted(packet, inbound, address, port, outer)
        if outer:
            if inbound:
                info.dst = address
            else:
                info.src = address
        self.stats.translated += 1
        self.stats.errors += 1

    # -- NPTv6 ------------------------------------------------------------------------

    def _npt_packet(
        self, ruleset: Ruleset, ifname: str, info: PacketInfo, packet: memoryview, *, inbound: bool
    ) -> bool:
        """Translate an IPv6 packet by the first ``nptv6`` entry of ``ifname`` that takes it."""
        if ifname not in ruleset.nat_interfaces:
            return True
        for entry in ruleset.nat:
            if entry.action != "nptv6" or entry.interface != ifname:
                continue
            npt = self._npt.get(entry)
            if npt is None:
                assert isinstance(entry.inside, IPv6Network)
                assert isinstance(entry.outside, IPv6Network)
                npt = self._npt[entry] = _Npt(entry.inside, entry.outside)
            at = 24 if inbound else 8
            address = bytes(packet[at : at + 16])
            mapped = npt.translate(address, outward=not inbound)
            if mapped is None:
                continue
            if mapped is False:
                self.stats.untranslatable += 1
                return False
            packet[at : at + 16] = mapped
            if inbound:
                info.dst = mapped
            else:
                info.src = mapped
            self.stats.translated += 1
            if info.proto == NH_ICMPV6 and is_icmp_error(info) and packet[6] == NH_ICMPV6:
                # The quoted packet's other end (its source in, destination out).
                inner = 40 + 8 + (8 if inbound else 24)
                if len(packet) >= inner + 16:
                    quoted_mapped = npt.translate(
                        bytes(packet[inner : inner + 16]), outward=not inbound
                    )
                    if quoted_mapped:
                        packet[inner : inner + 16] = quoted_mapped
                        self.stats.errors += 1
            return True
        return True

    def describe(self, now: float) -> list[dict[str, object]]:
        """Return every mapping for the API, both sides of each."""
        mappings: list[Binding | Redirect] = [*self.bindings(), *self.redirects()]
        return [describe_mapping(m, now) for m in mappings]

    def translation_of(
        self, proto: int, src: bytes, sport: int, dst: bytes, dport: int
    ) -> dict[str, str]:
        """Return how a flow seen inside appears outside: its ``src`` and ``dst``, if changed."""
        seen: dict[str, str] = {}
        if proto in _PORTED or proto == PROTO_ICMP:
            for ifname in self._interfaces:
                binding = self._by_inside.get((ifname, proto, src, sport))
                if binding is not None:
                    seen["src"] = _endpoint(binding.outside, binding.outside_port)
                    break
        hit = self._outbound.get((proto, dst, dport, src, sport))
        if hit is not None:
            seen["dst"] = _endpoint(hit[1], hit[2])
        return seen


def describe_mapping(mapping: Binding | Redirect, now: float) -> dict[str, object]:
    """Return one mapping for the API (times relative to ``now``): both of its sides."""
    entry: dict[str, object] = {"proto": _PROTO_NAMES.get(mapping.proto, str(mapping.proto))}
    if isinstance(mapping, Binding):
        entry.update(
            kind="nat",
            interface=mapping.ifname,
            inside=_endpoint(mapping.inside, mapping.inside_port),
            outside=_endpoint(mapping.outside, mapping.outside_port),
            filtering=mapping.filtering,
        )
    else:
        entry.update(
            kind="rdr",
            client=_endpoint(mapping.client, mapping.client_port),
            public=_endpoint(mapping.public, mapping.public_port),
            server=_endpoint(mapping.server, mapping.server_port),
        )
        if mapping.hairpin is not None:
            entry["hairpin"] = _endpoint(mapping.hairpin, mapping.hairpin_port)
    entry.update(
        age=now - mapping.created,
        expires_in=max(0.0, mapping.expires - now),
        packets=list(mapping.packets),
        bytes=list(mapping.bytes),
        rule=mapping.rule,
    )
    return entry


def _count(ruleset: Ruleset, index: int, info: PacketInfo) -> None:
    counters = ruleset.nat_counters[index]
    counters.packets += 1
    counters.bytes += info.length


def _map_prefix(address: bytes, src: object, dst: object) -> bytes | None:
    """Return ``address`` moved from prefix ``src`` to prefix ``dst``, None if outside ``src``."""
    assert isinstance(src, ipaddress.IPv4Network) and isinstance(dst, ipaddress.IPv4Network)
    value = int.from_bytes(address, "big")
    mask = int(src.netmask)
    if value & mask != int(src.network_address):
        return None
    return (int(dst.network_address) | (value & ~mask & 0xFFFFFFFF)).to_bytes(4, "big")


# --------------------------------------------------------------------------
# Rewriting and checksums (RFC 1624)
# --------------------------------------------------------------------------


_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


def _fold(total: int) -> int:
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _delta32(old: bytes | memoryview, new: bytes) -> int:
    """Return what a checksum absorbs when 4 bytes change: sum of ~m + m' per word."""
    o = int.from_bytes(old, "big")
    n = int.from_bytes(new, "big")
    return 0x1FFFE - (o >> 16) - (o & 0xFFFF) + (n >> 16) + (n & 0xFFFF)


def _apply(check: int, delta: int) -> int:
    """Return the checksum field ``check`` updated by ``delta`` (RFC 1624 eqn. 3)."""
    return ~_fold((~check & 0xFFFF) + delta) & 0xFFFF


def _get16(packet: memoryview, at: int) -> int:
    return (packet[at] << 8) | packet[at + 1]


def _put16(packet: memoryview, at: int, value: int) -> None:
    packet[at] = value >> 8
    packet[at + 1] = value & 0xFF


def _rewrite(packet: memoryview, destination: bool, address: bytes, port: int) -> None:
    """Give an IPv4 packet a new destination (or source) address and port (echo id)."""
    hlen = (packet[0] & 0x0F) << 2
    at = 16 if destination else 12
    old = _U32.unpack_from(packet, at)[0]
    new = int.from_bytes(address, "big")
    delta = 0x1FFFE - (old >> 16) - (old & 0xFFFF) + (new >> 16) + (new & 0xFFFF)
    packet[at : at + 4] = address
    _U16.pack_into(packet, 10, _apply(_U16.unpack_from(packet, 10)[0], delta))
    proto = packet[9]
    if proto in (PROTO_UDP, PROTO_TCP):
        port_at = hlen + 2 if destination else hlen
        field = hlen + (16 if proto == PROTO_TCP else 6)
        old_port = _U16.unpack_from(packet, port_at)[0]
        _U16.pack_into(packet, port_at, port)
        check = _U16.unpack_from(packet, field)[0]
        vhdr = vhdr_of(packet.obj)
        if vhdr is not None and vhdr.flags & F_NEEDS_CSUM and vhdr.csum_start == ETH_LEN + hlen:
            # The pseudo-header sum, not complemented: the addresses only.
            _U16.pack_into(packet, field, _fold(check + delta))
        elif check or proto == PROTO_TCP:  # a UDP checksum of 0: none, left so
            check = _apply(check, delta + 0xFFFF - old_port + port)
            _U16.pack_into(packet, field, 0xFFFF if check == 0 and proto == PROTO_UDP else check)
    elif proto == PROTO_ICMP:
        id_at = hlen + 4
        old_id = _U16.unpack_from(packet, id_at)[0]
        if old_id != port:
            _U16.pack_into(packet, id_at, port)
            check = _U16.unpack_from(packet, hlen + 2)[0]
            _U16.pack_into(packet, hlen + 2, _apply(check, 0xFFFF - old_id + port))


def _rewrite_quoted(
    packet: memoryview, source: bool, address: bytes, port: int, outer: bool
) -> None:
    """Rewrite the source (or destination) of the packet an ICMP error quotes, and
    the outer destination (or source) when ``outer``; fix the ICMP checksum."""
    hlen = (packet[0] & 0x0F) << 2
    start = hlen + 8
    inner_hlen = (packet[start] & 0x0F) << 2
    end = min(len(packet), start + inner_hlen + 20)
    before = ones_sum(packet[start:end])
    at = start + (12 if source else 16)
    delta = _delta32(packet[at : at + 4], address)
    packet[at : at + 4] = address
    _put16(packet, start + 10, _apply(_get16(packet, start + 10), delta))
    l4 = start + inner_hlen
    available = len(packet) - l4
    proto = packet[start + 9]
    if proto in _PORTED and available >= 4:
        port_at = l4 + (0 if source else 2)
        old_port = _get16(packet, port_at)
        _put16(packet, port_at, port)
        field = l4 + (16 if proto == PROTO_TCP else 6)
        if field + 2 <= len(packet):
            check = _get16(packet, field)
            if not (proto == PROTO_UDP and check == 0):
                check = _apply(check, delta + 0xFFFF - old_port + port)
                _put16(packet, field, 0xFFFF if proto == PROTO_UDP and check == 0 else check)
    elif proto == PROTO_ICMP and available >= 8:
        old = _get16(packet, l4 + 4)
        _put16(packet, l4 + 4, port)
        _put16(packet, l4 + 2, _apply(_get16(packet, l4 + 2), 0xFFFF - old + port))
    after = ones_sum(packet[start:end])
    _put16(packet, hlen + 2, _apply(_get16(packet, hlen + 2), 0xFFFF - before + after))
    if outer:
        at = 16 if source else 12
        delta = _delta32(packet[at : at + 4], address)
        packet[at : at + 4] = address
        _put16(packet, 10, _apply(_get16(packet, 10), delta))


# --------------------------------------------------------------------------
# NPTv6 (RFC 6296)
# --------------------------------------------------------------------------


def _sum128(value: int) -> int:
    """Return the one's complement sum of the eight 16-bit words of ``value``."""
    return ones_sum(value.to_bytes(16, "big"))


class _Npt:
    """One NPTv6 mapping, precomputed: prefixes, mask and adjustments."""

    __slots__ = ("_inside", "_mask", "_outside", "_prefixlen", "_to_inside", "_to_outside")

    def __init__(self, inside: IPv6Network, outside: IPv6Network) -> None:
        self._inside = int(inside.network_address)
        self._outside = int(outside.network_address)
        self._mask = int(inside.netmask)
        self._prefixlen = inside.prefixlen
        inside_sum = _sum128(self._inside)
        outside_sum = _sum128(self._outside)
        # What the adjusting word gains, outward and inward (RFC 6296 section 3.1).
        self._to_outside = _fold(inside_sum + (~outside_sum & 0xFFFF))
        self._to_inside = _fold(outside_sum + (~inside_sum & 0xFFFF))

    def translate(self, address: bytes, *, outward: bool) -> bytes | Literal[False] | None:
        """Return ``address`` in the other prefix; None if not in this one; False if
        it cannot be translated (its adjusting word is 0xFFFF)."""
        value = int.from_bytes(address, "big")
        mask = self._mask
        own, other, adjustment = (
            (self._inside, self._outside, self._to_outside)
            if outward
            else (self._outside, self._inside, self._to_inside)
        )
        if value & mask != own:
            return None
        value = (value & ~mask) | other
        return npt_adjust(value, self._prefixlen, adjustment)


def npt_adjust(value: int, prefixlen: int, adjustment: int) -> bytes | Literal[False]:
    """Add ``adjustment`` to the adjusting word of address ``value`` (RFC 6296 3.4, 3.5)."""
    words = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    if prefixlen <= 48:
        index = 3
        if words[3] == 0xFFFF:
            return False
    else:
        candidates = [i for i in range(4, 8) if words[i] != 0xFFFF]
        if not candidates:
            return False
        index = candidates[0]
    word = _fold(words[index] + adjustment)
    words[index] = 0 if word == 0xFFFF else word
    return b"".join(w.to_bytes(2, "big") for w in words)


def npt_map(
    inside: IPv6Network, outside: IPv6Network, address: bytes, *, outward: bool
) -> bytes | None:
    """Return ``address`` translated by the NPTv6 mapping ``inside`` <-> ``outside``
    (None if it is not in the prefix or cannot be translated)."""
    mapped = _Npt(inside, outside).translate(address, outward=outward)
    return mapped or None
