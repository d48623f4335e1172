"""Filter rules: parsing a ruleset from TOML, first-match evaluation, per-rule counters.

Responsibility: ``parse_ruleset`` turns the ``firewall`` table of a vnet
(already loaded from TOML) into a ``Ruleset`` of frozen ``Rule`` values, or
raises ``RulesetError`` with *every* problem found, each with its key path
(``rules[3].to_port``, ``tables.trusted[1]``, prefixed by ``key_prefix``
such as ``vnets.red.firewall``), the way ``vrouter.daemon.config`` reports
problems.  ``Ruleset.match`` finds the rule that decides a packet.

Semantics:

- **First match wins**, as in ipfw (there is no pf ``quick``: every rule is
  quick).  If no rule matches, the ruleset's ``default`` action applies:
  ``"pass"`` unless the table says ``default = "block"``.
- A rule matches when every criterion it has matches; a missing criterion
  matches anything.  ``direction`` is ``"in"`` or ``"out"`` as the IP layer
  calls the hook; ``interface`` is the name of the interface the packet is
  received on or sent from.
- Addresses: ``from``/``to`` take ``"any"``, an address, a prefix (host bits
  must be clear), ``"<table>"`` or a list of these; ``"!"`` negates, and in a
  list it must be on every item or on none: it negates the whole list
  ("not in any of them").  A side made only of prefixes of one family (no
  table) restricts the rule to that family, as pf does, so ``from =
  "!192.0.2.0/24"`` matches IPv4 packets only; tables may mix families.
- ``proto = "icmp"`` implies ``family = "inet"`` and ``"icmp6"`` implies
  ``"inet6"``.  Ports need ``proto`` tcp or udp; ``icmp_type`` needs icmp or
  icmp6 (names: ``ICMP4_TYPES``/``ICMP6_TYPES``).  A non-first fragment has
  no ports, type or flags, so it never matches a rule that asks for them.
- ``flags = "S/SA"`` (pf syntax, letters ``FSRPAUEW``; ``"S"`` alone means
  ``S/FSRPAUEW``; ``"any"`` disables the check) applies to TCP packets only;
  it is allowed with ``proto = "tcp"`` or with no ``proto``.
- ``keep_state`` defaults to true for ``pass`` rules (pf's default ``keep
  state``) and must not be set for ``block``/``reject``.  A ``pass`` rule
  that keeps state and may match TCP (``proto`` tcp or none) gets pf's
  default ``flags S/SA`` unless it gives ``flags``: a TCP packet that is not
  a connection-opening SYN does not match it at all and falls through to
  later rules (and the default); it can only pass by the state its SYN
  created.  ``flags = "any"`` restores pf's ``flags any``: a mid-stream TCP
  packet then matches and its state is picked up from there.
- ``reject`` drops the packet; the caller answers it (TCP RST or ICMP
  unreachable).  ``log`` only marks the rule for the caller.
- ``[[nat]]`` entries (``NatRule``: ``nat``, ``rdr``, ``binat``, ``nptv6``)
  belong to the same ruleset and are replaced with it; ``vrouter.firewall.nat``
  applies them.  Every ``nat`` entry names its (outside) ``interface``.
- Counters: ``evaluations`` counts every time a rule was tried, ``packets``
  and ``bytes`` what it decided plus what its states passed where it had
  matched (same interface and direction; the engine adds them), ``states``
  the states it created.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from vrouter.core.tomlkeys import TomlReader
from vrouter.core.tomlkeys import join as _join
from vrouter.firewall.packet import PROTO_ICMP, PROTO_ICMP6, PROTO_TCP, PROTO_UDP, PacketInfo
from vrouter.wire import tcp

__all__ = [
    "ACTIONS",
    "DEFAULT_FLAGS",
    "ICMP4_TYPES",
    "ICMP6_TYPES",
    "NAT_ACTIONS",
    "NAT_FILTERING",
    "PROTOCOLS",
    "AddrMatch",
    "NatRule",
    "PortMatch",
    "Rule",
    "RuleCounters",
    "Ruleset",
    "RulesetError",
    "parse_ruleset",
]

Network = IPv4Network | IPv6Network

ACTIONS = ("pass", "block", "reject")
DEFAULTS = ("pass", "block")
DIRECTIONS = ("in", "out")
FAMILIES = {"inet": 4, "inet6": 6}
PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": PROTO_ICMP, "icmp6": PROTO_ICMP6}
"""Protocol names a rule may use (any other protocol by its number 0..255)."""

ICMP4_TYPES: dict[str, int] = {
    "echo-reply": 0,
    "echorep": 0,
    "unreach": 3,
    "squench": 4,
    "redirect": 5,
    "echo-request": 8,
    "echoreq": 8,
    "routeradv": 9,
    "routersol": 10,
    "timex": 11,
    "paramprob": 12,
    "timereq": 13,
    "timerep": 14,
}
"""ICMP type names (spec names first; pf's ``echoreq``/``echorep`` as aliases)."""
ICMP6_TYPES: dict[str, int] = {
    "unreach": 1,
    "toobig": 2,
    "timex": 3,
    "paramprob": 4,
    "echo-request": 128,
    "echoreq": 128,
    "echo-reply": 129,
    "echorep": 129,
    "routersol": 133,
    "routeradv": 134,
    "neighbrsol": 135,
    "neighbradv": 136,
    "redirect": 137,
}
"""ICMPv6 type names (pf's, plus ``echo-request``/``echo-reply``)."""

TCP_FLAG_LETTERS = "FSRPAUEW"
"""pf's flag letters, bit 0 (FIN) to bit 7 (CWR)."""
DEFAULT_FLAGS = (tcp.SYN, tcp.SYN | tcp.ACK)
"""pf's ``flags S/SA``, the default of pass rules that keep state."""
_ALL_FLAGS = 0xFF

_RULE_KEYS = (
    "action",
    "direction",
    "interface",
    "family",
    "proto",
    "from",
    "to",
    "from_port",
    "to_port",
    "icmp_type",
    "flags",
    "keep_state",
    "log",
    "label",
)
_TOP_KEYS = ("default", "tables", "rules", "nat")
_NAT_KEYS = (
    "action",
    "interface",
    "proto",
    "from",
    "to",
    "to_port",
    "address",
    "target",
    "target_port",
    "port_range",
    "filtering",
    "label",
)
NAT_ACTIONS = ("nat", "rdr", "binat", "nptv6")
"""What a ``[[nat]]`` entry does (pf's ``nat``/``rdr``/``binat``, and RFC 6296 NPTv6)."""
NAT_FILTERING = ("address-dependent", "endpoint-independent")
"""RFC 4787 filtering of a ``nat`` entry's mappings; the first is the default."""
_NAT_PROTOCOLS = (PROTO_TCP, PROTO_UDP, PROTO_ICMP)
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_FLAGS = re.compile(r"([FSRPAUEW]*)(?:/([FSRPAUEW]+))?")
LABEL_MAX = 63
"""Longest label, as pf's PF_RULE_LABEL_SIZE allows."""


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------


class RulesetError(Exception):
    """The ruleset is invalid; ``problems`` lists every ``(key path, reason)``."""

    problems: list[tuple[str, str]]

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__(list(problems))
        self.problems = list(problems)

    def __str__(self) -> str:
        """Return one ``KEY: REASON`` line per problem (``REASON`` for the whole table)."""
        return "\n".join(f"{key}: {reason}" if key else reason for key, reason in self.problems)


@dataclass(frozen=True, slots=True)
class AddrMatch:
    """Addresses a rule side matches: any of ``networks`` or of the named tables.

    Both empty means any address.  ``negate`` inverts the whole set.
    """

    networks: tuple[Network, ...] = ()
    tables: tuple[str, ...] = ()
    negate: bool = False

    @property
    def is_any(self) -> bool:
        """Return True if this matches every address."""
        return not self.networks and not self.tables

    def describe(self) -> str:
        """Return the pf-like text: ``any``, ``192.0.2.0/24``, ``! { <t>, 2001:db8::/32 }``."""
        if self.is_any:
            return "any"
        items = [_net_text(n) for n in self.networks] + [f"<{t}>" for t in self.tables]
        text = items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"
        return f"! {text}" if self.negate else text


@dataclass(frozen=True, slots=True)
class PortMatch:
    """Port ranges, inclusive; a port matches if it is in any of them."""

    ranges: tuple[tuple[int, int], ...]

    def contains(self, port: int) -> bool:
        """Return True if ``port`` is in one of the ranges."""
        return any(lo <= port <= hi for lo, hi in self.ranges)

    def describe(self) -> str:
        """Return the pf-like text: ``80``, ``8000:8080`` or ``{ 80, 443 }``."""
        items = [str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in self.ranges]
        return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


@dataclass(frozen=True, slots=True)
class Rule:
    """One filter rule; ``None`` criteria match anything."""

    action: str
    """``"pass"``, ``"block"`` or ``"reject"``."""
    direction: str | None = None
    """``"in"``, ``"out"`` or None for both."""
    interface: str | None = None
    """Interface name, None for any."""
    family: int | None = None
    """4, 6 or None; given or implied by ``proto`` and the addresses."""
    proto: int | None = None
    """IP protocol number (after IPv6 extension headers)."""
    src: AddrMatch = AddrMatch()
    """Source addresses."""
    dst: AddrMatch = AddrMatch()
    """Destination addresses."""
    sport: PortMatch | None = None
    """Source ports (TCP/UDP)."""
    dport: PortMatch | None = None
    """Destination ports (TCP/UDP)."""
    icmp_types: frozenset[int] | None = None
    """ICMP or ICMPv6 types."""
    flags: tuple[int, int] | None = None
    """TCP ``(set, mask)``: matches when ``flags & mask == set``; TCP packets only."""
    keep_state: bool = False
    """Create a state for the packets this rule passes."""
    log: bool = False
    """Log the packets this rule decides (for the caller)."""
    label: str = ""
    """Free text shown by ``describe`` and the API."""

    def describe(self) -> str:
        """Return a pf-like one-line text of the rule."""
        parts = [self.action]
        if self.direction is not None:
            parts.append(self.direction)
        if self.log:
            parts.append("log")
        if self.interface is not None:
            parts.append(f"on {self.interface}")
        if self.family is not None:
            parts.append("inet" if self.family == 4 else "inet6")
        if self.proto is not None:
            parts.append(f"proto {_proto_text(self.proto)}")
        if self.src.is_any and self.dst.is_any and self.sport is None and self.dport is None:
            parts.append("all")
        else:
            parts.append(f"from {self.src.describe()}")
            if self.sport is not None:
                parts.append(f"port {self.sport.describe()}")
            parts.append(f"to {self.dst.describe()}")
            if self.dport is not None:
                parts.append(f"port {self.dport.describe()}")
        if self.icmp_types is not None:
            v6 = self.proto == PROTO_ICMP6
            keyword = "icmp6-type" if v6 else "icmp-type"
            names = [_icmp_text(t, 6 if v6 else 4) for t in sorted(self.icmp_types)]
            text = names[0] if len(names) == 1 else "{ " + ", ".join(names) + " }"
            parts.append(f"{keyword} {text}")
        if self.flags is not None:
            parts.append(f"flags {_flags_text(self.flags)}")
        elif self.action == "pass" and self.keep_state and self.proto in (None, PROTO_TCP):
            parts.append("flags any")
        if self.keep_state:
            parts.append("keep state")
        elif self.action == "pass":
            parts.append("no state")
        if self.label:
            parts.append(f"label {self.label}")
        return " ".join(parts)


@dataclass(slots=True)
class RuleCounters:
    """Counters of one rule (or of the default action)."""

    evaluations: int = 0
    """Times the rule was tried against a packet."""
    packets: int = 0
    """Packets the rule decided."""
    bytes: int = 0
    """IP bytes of those packets."""
    states: int = 0
    """States the rule created."""


@dataclass(frozen=True, slots=True)
class NatRule:
    """One ``[[nat]]`` entry: what to translate on ``interface``, and to what.

    - ``nat``: packets leaving by ``interface`` from ``src`` to ``dst`` get
      the source ``address`` (None: the interface's first IPv4 address, read
      live: masquerade) and a port from ``port_range``;
    - ``rdr``: packets for ``public`` (None: the interface's address) port
      ``dport`` arriving on ``interface`` (or, hairpinned, on any other) go
      to ``target``, port ``target_port`` plus the offset in ``dport``;
    - ``binat``: ``inside`` and ``outside`` (prefixes of one length) map
      one to one, both ways, on ``interface``;
    - ``nptv6``: IPv6 prefix ``inside`` is ``outside`` on ``interface``
      (RFC 6296, checksum-neutral).
    """

    action: str
    interface: str
    proto: int | None = None
    """tcp, udp or icmp; None for all three (``rdr``: tcp and udp)."""
    src: AddrMatch = AddrMatch()
    dst: AddrMatch = AddrMatch()
    dport: PortMatch | None = None
    """``rdr``: the public ports."""
    public: IPv4Address | None = None
    """``rdr``: the public address; None: the interface's."""
    address: IPv4Address | None = None
    """``nat``: the translated source; None: the interface's (masquerade)."""
    inside: Network | None = None
    """``binat``/``nptv6``: the inside prefix."""
    outside: Network | None = None
    """``binat``/``nptv6``: the outside prefix."""
    target: IPv4Address | None = None
    """``rdr``: the inside server."""
    target_port: int | None = None
    """``rdr``: the server port of the first public port; None: the same ports."""
    port_range: tuple[int, int] | None = None
    """``nat``: ports (ICMP ids) to allocate from; None: the protocol's default."""
    filtering: str = NAT_FILTERING[0]
    """``nat``: RFC 4787 filtering of inbound packets to a mapping."""
    label: str = ""

    def describe(self) -> str:
        """Return a pf-like one-line text of the entry."""
        parts = [self.action, f"on {self.interface}"]
        if self.proto is not None:
            parts.append(f"proto {_proto_text(self.proto)}")
        if self.action in ("binat", "nptv6"):
            assert self.inside is not None and self.outside is not None
            parts.append(f"from {_net_text(self.inside)} -> {_net_text(self.outside)}")
        elif self.action == "nat":
            parts.append(f"from {self.src.describe()} to {self.dst.describe()}")
            parts.append(
                f"-> {self.address if self.address is not None else f'({self.interface})'}"
            )
            if self.port_range is not None:
                parts.append(f"port {self.port_range[0]}:{self.port_range[1]}")
            parts.append(self.filtering)
        else:
            parts.append(f"from {self.src.describe()}")
            public = self.public if self.public is not None else f"({self.interface})"
            parts.append(f"to {public}")
            if self.dport is not None:
                parts.append(f"port {self.dport.describe()}")
            parts.append(f"-> {self.target}")
            if self.target_port is not None:
                parts.append(f"port {self.target_port}")
        if self.label:
            parts.append(f"label {self.label}")
        return " ".join(parts)


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------

_Nets = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class _Side:
    """An ``AddrMatch`` compiled to integer (network, mask) pairs per family."""

    any: bool
    negate: bool
    nets4: _Nets
    nets6: _Nets

    def matches(self, family: int, address: int) -> bool:
        if self.any:
            return True
        nets = self.nets4 if family == 4 else self.nets6
        found = False
        for net, mask in nets:
            if address & mask == net:
                found = True
                break
        return found != self.negate


def _compile_side(side: AddrMatch, tables: Mapping[str, tuple[Network, ...]]) -> _Side:
    networks = list(side.networks)
    for name in side.tables:
        networks.extend(tables[name])
    nets4 = tuple((int(n.network_address), int(n.netmask)) for n in networks if n.version == 4)
    nets6 = tuple((int(n.network_address), int(n.netmask)) for n in networks if n.version == 6)
    return _Side(side.is_any, side.negate, nets4, nets6)


class Ruleset:
    """An ordered list of rules with their counters, a default action and tables."""

    __slots__ = (
        "_compiled",
        "_nat_sides",
        "counters",
        "default",
        "default_counters",
        "nat",
        "nat_counters",
        "nat_inbound",
        "nat_interfaces",
        "rules",
        "tables",
    )

    rules: tuple[Rule, ...]
    counters: list[RuleCounters]
    """One per rule, same index."""
    default: str
    """``"pass"`` or ``"block"``: what happens when no rule matches."""
    default_counters: RuleCounters
    """Counters of the default action."""
    tables: dict[str, tuple[Network, ...]]
    """Named address tables rules refer to as ``<name>``."""
    nat: tuple[NatRule, ...]
    """Translation entries, tried in order (first match wins)."""
    nat_counters: list[RuleCounters]
    """One per ``nat`` entry: packets it translated first, mappings it made (``states``)."""
    nat_interfaces: frozenset[str]
    """Interfaces some ``nat``, ``binat`` or ``nptv6`` entry translates sources on."""
    nat_inbound: bool
    """Some ``rdr`` or ``binat`` entry may translate a packet on its way in."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        default: str = "pass",
        tables: Mapping[str, Sequence[Network]] | None = None,
        nat: Sequence[NatRule] = (),
    ) -> None:
        """Build a ruleset; raise ``RulesetError`` for an unknown default or table."""
        self.rules = tuple(rules)
        self.nat = tuple(nat)
        self.default = default
        self.tables = {name: tuple(nets) for name, nets in (tables or {}).items()}
        problems: list[tuple[str, str]] = []
        if default not in DEFAULTS:
            problems.append(("default", f"{default!r} is not one of: {', '.join(DEFAULTS)}"))
        for i, rule in enumerate(self.rules):
            for side_key, side in (("from", rule.src), ("to", rule.dst)):
                for name in side.tables:
                    if name not in self.tables:
                        problems.append((f"rules[{i}].{side_key}", f"unknown table <{name}>"))
        for i, entry in enumerate(self.nat):
            for side_key, side in (("from", entry.src), ("to", entry.dst)):
                for name in side.tables:
                    if name not in self.tables:
                        problems.append((f"nat[{i}].{side_key}", f"unknown table <{name}>"))
        if problems:
            raise RulesetError(problems)
        self.counters = [RuleCounters() for _ in self.rules]
        self.default_counters = RuleCounters()
        self._compiled = tuple(
            (rule, _compile_side(rule.src, self.tables), _compile_side(rule.dst, self.tables))
            for rule in self.rules
        )
        self.nat_counters = [RuleCounters() for _ in self.nat]
        self._nat_sides = tuple(
            (_compile_side(n.src, self.tables), _compile_side(n.dst, self.tables)) for n in self.nat
        )
        self.nat_interfaces = frozenset(
            n.interface for n in self.nat if n.action in ("nat", "binat", "nptv6")
        )
        self.nat_inbound = any(n.action in ("rdr", "binat") for n in self.nat)

    def nat_matches(self, index: int, src: bytes, dst: bytes) -> bool:
        """Return True if the ``from``/``to`` of ``nat`` entry ``index`` match (IPv4)."""
        src_side, dst_side = self._nat_sides[index]
        return src_side.matches(4, int.from_bytes(src, "big")) and dst_side.matches(
            4, int.from_bytes(dst, "big")
        )

    def describe_nat(self) -> list[dict[str, object]]:
        """Return every ``nat`` entry with its text and counters."""
        return [
            {
                "index": i,
                "text": entry.describe(),
                "packets": counters.packets,
                "bytes": counters.bytes,
                "mappings": counters.states,
            }
            for i, (entry, counters) in enumerate(zip(self.nat, self.nat_counters, strict=True))
        ]

    def __repr__(self) -> str:
        return f"Ruleset({len(self.rules)} rules, default={self.default!r})"

    def match(self, info: PacketInfo, direction: str, ifname: str) -> int:
        """Return the index of the first rule matching the packet, -1 for the default.

        Counts an evaluation on every rule tried (and on the default when reached).
        """
        family = info.family
        src = int.from_bytes(info.src, "big")
        dst = int.from_bytes(info.dst, "big")
        counters = self.counters
        for index, (rule, src_side, dst_side) in enumerate(self._compiled):
            counters[index].evaluations += 1
            if rule.direction is not None and rule.direction != direction:
                continue
            if rule.interface is not None and rule.interface != ifname:
                continue
            if rule.family is not None and rule.family != family:
                continue
            if rule.proto is not None and rule.proto != info.proto:
                continue
            if not src_side.matches(family, src) or not dst_side.matches(family, dst):
                continue
            if (rule.sport is not None or rule.dport is not None) and (
                info.fragment or info.proto not in (PROTO_TCP, PROTO_UDP)
            ):
                continue
            if rule.sport is not None and not rule.sport.contains(info.sport):
                continue
            if rule.dport is not None and not rule.dport.contains(info.dport):
                continue
            if rule.icmp_types is not None and info.icmp_type not in rule.icmp_types:
                continue
            if rule.flags is not None and info.proto == PROTO_TCP:
                flag_set, mask = rule.flags
                if info.fragment or info.tcp_flags & mask != flag_set:
                    continue
            return index
        self.default_counters.evaluations += 1
        return -1

    def counters_of(self, index: int) -> RuleCounters:
        """Return the counters of rule ``index`` (-1: the default's)."""
        return self.default_counters if index < 0 else self.counters[index]

    def describe(self) -> list[dict[str, object]]:
        """Return every rule, then the default (index -1), with text and counters."""
        entries: list[dict[str, object]] = []
        rows = [
            (i, r.describe(), c)
            for i, (r, c) in enumerate(zip(self.rules, self.counters, strict=True))
        ]
        rows.append((-1, f"{self.default} all", self.default_counters))
        for index, text, counters in rows:
            entries.append(
                {
                    "index": index,
                    "text": text,
                    "evaluations": counters.evaluations,
                    "packets": counters.packets,
                    "bytes": counters.bytes,
                    "states": counters.states,
                }
            )
        return entries


# --------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------


def _net_text(network: Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _proto_text(proto: int) -> str:
    for name, number in PROTOCOLS.items():
        if number == proto:
            return name
    return str(proto)


def _icmp_text(icmp_type: int, family: int) -> str:
    names = ICMP6_TYPES if family == 6 else ICMP4_TYPES
    for name, number in names.items():
        if number == icmp_type:
            return name
    return str(icmp_type)


def _flags_text(flags: tuple[int, int]) -> str:
    flag_set, mask = flags

    def letters(bits: int) -> str:
        return "".join(c for i, c in enumerate(TCP_FLAG_LETTERS) if bits >> i & 1)

    return f"{letters(flag_set)}/{letters(mask)}"


def _parse_prefix(text: str) -> Network | str:
    """Parse ``ADDRESS`` or ``ADDRESS/LEN`` (host bits clear), or return why not."""
    address_text, slash, length_text = text.partition("/")
    if "%" in address_text:
        return f"{text!r} has a zone index; write the address without it"
    try:
        address: IPv4Address | IPv6Address = ipaddress.ip_address(address_text)
    except ValueError:
        return (
            f"{text!r} is not an address or prefix "
            "(expected any, ADDRESS, ADDRESS/LEN, <table>, optionally after '!')"
        )
    if not slash:
        return ipaddress.ip_network(address)
    if not length_text.isdigit() or not length_text.isascii():
        return f"{text!r}: the prefix length must be a decimal number"
    length = int(length_text)
    if length > address.max_prefixlen:
        return f"{text!r}: prefix length {length} is out of range 0..{address.max_prefixlen}"
    network = ipaddress.ip_network((address, length), strict=False)
    if network.network_address != address:
        return f"{text!r} has host bits set; did you mean {network}?"
    return network


# --------------------------------------------------------------------------
# The parser: collects problems, never stops at the first
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Addr:
    """A parsed rule side and the key path of each of its prefixes."""

    match: AddrMatch
    keyed: tuple[tuple[Network, str], ...]


class _Parser(TomlReader):
    """Walks one firewall table, recording every problem it finds."""

    # -- tables ----------------------------------------------------------------

    def tables(self, value: object, key: str) -> tuple[dict[str, tuple[Network, ...]], set[str]]:
        """Return the tables that parsed and every declared name (for references)."""
        parsed: dict[str, tuple[Network, ...]] = {}
        declared: set[str] = set()
        if value is None:
            return parsed, declared
        if not isinstance(value, dict):
            self.wrong_type(key, "a table of address lists", value)
            return parsed, declared
        for name, entries in value.items():
            tkey = _join(key, name)
            declared.add(name)
            if not _TABLE_NAME.fullmatch(name):
                self.problem(
                    tkey,
                    f"invalid table name {name!r}: 1-32 characters from [A-Za-z0-9_.-], "
                    "starting with a letter, digit or '_'",
                )
                continue
            if not isinstance(entries, list):
                self.wrong_type(tkey, "an array of addresses or prefixes", entries)
                continue
            networks: list[Network] = []
            for j, entry in enumerate(entries):
                ekey = f"{tkey}[{j}]"
                if not isinstance(entry, str):
                    self.wrong_type(ekey, "a string (an address or prefix)", entry)
                    continue
                network = _parse_prefix(entry)
                if isinstance(network, str):
                    self.problem(ekey, network)
                else:
                    networks.append(network)
            parsed[name] = tuple(networks)
        return parsed, declared

    # -- rule parts ------------------------------------------------------------

    def side(
        self, rule: Mapping[str, object], name: str, key: str, tables: set[str]
    ) -> _Addr | None:
        """Parse ``from``/``to``; None if absent-or-any is not the answer because of a problem."""
        value = rule.get(name)
        skey = _join(key, name)
        if value is None:
            return _Addr(AddrMatch(), ())
        if isinstance(value, str):
            items: list[tuple[object, str]] = [(value, skey)]
        elif isinstance(value, list):
            if not value:
                self.problem(skey, 'an empty list matches nothing; omit the key (or "any")')
                return None
            items = [(v, f"{skey}[{j}]") for j, v in enumerate(value)]
        else:
            self.wrong_type(skey, "a string or an array of strings", value)
            return None
        ok = True
        negations: list[bool] = []
        networks: list[tuple[Network, str]] = []
        names: list[str] = []
        for item, ikey in items:
            if not isinstance(item, str):
                self.wrong_type(ikey, "a string", item)
                ok = False
                continue
            text = item.strip()
            negated = text.startswith("!")
            if negated:
                text = text[1:].strip()
            negations.append(negated)
            if text == "any":
                if negated:
                    self.problem(ikey, "'!any' matches nothing")
                    ok = False
                elif len(items) > 1:
                    self.problem(ikey, "'any' cannot be part of a list")
                    ok = False
                continue
            if text.startswith("<") and text.endswith(">"):
                table = text[1:-1]
                if table not in tables:
                    self.problem(ikey, f"unknown table <{table}> (declare it under [tables])")
                    ok = False
                else:
                    names.append(table)
                continue
            network = _parse_prefix(text)
            if isinstance(network, str):
                self.problem(ikey, network)
                ok = False
            else:
                networks.append((network, ikey))
        if any(negations) and not all(negations):
            self.problem(
                skey, "negation applies to the whole list: put '!' on every item or on none"
            )
            ok = False
        if not ok:
            return None
        negate = bool(negations) and all(negations)
        match = AddrMatch(tuple(n for n, _ in networks), tuple(names), negate)
        return _Addr(match, tuple(networks))

    def ports(self, rule: Mapping[str, object], name: str, key: str) -> PortMatch | None:
        value = rule.get(name)
        pkey = _join(key, name)
        if isinstance(value, list):
            if not value:
                self.problem(pkey, "an empty list matches nothing; omit the key")
                return None
            items = [(v, f"{pkey}[{j}]") for j, v in enumerate(value)]
        else:
            items = [(value, pkey)]
        ranges: list[tuple[int, int]] = []
        ok = True
        for item, ikey in items:
            parsed = self.port_range(item, ikey)
            if parsed is None:
                ok = False
            else:
                ranges.append(parsed)
        return PortMatch(tuple(ranges)) if ok else None

    def port_range(self, value: object, key: str) -> tuple[int, int] | None:
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.wrong_type(key, 'a port (0..65535), a range "LOW-HIGH" or an array of them', value)
            return None
        if isinstance(value, int):
            if not 0 <= value <= 65535:
                self.problem(key, f"port {value} is out of range 0..65535")
                return None
            return value, value
        match = _PORT_RANGE.fullmatch(value.strip())
        if match is None:
            self.problem(key, f'{value!r} is not a port or a range "LOW-HIGH"')
            return None
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        for port in (low, high):
            if port > 65535:
                self.problem(key, f"port {port} is out of range 0..65535")
                return None
        if low > high:
            self.problem(key, f"range {value!r} is empty: {low} > {high}")
            return None
        return low, high

    def proto(self, rule: Mapping[str, object], key: str) -> tuple[int | None, bool]:
        """Return the protocol number (None: any) and whether it parsed."""
        value = rule.get("proto")
        if value is None:
            return None, True
        pkey = _join(key, "proto")
        if isinstance(value, str):
            if value in PROTOCOLS:
                return PROTOCOLS[value], True
            self.problem(
                pkey, f"unknown protocol {value!r} (names: {', '.join(PROTOCOLS)}; or 0..255)"
            )
            return None, False
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(pkey, "a protocol name or number", value)
            return None, False
        if not 0 <= value <= 255:
            self.problem(pkey, f"protocol {value} is out of range 0..255")
            return None, False
        return value, True

    def icmp_types(self, rule: Mapping[str, object], key: str, proto: int) -> frozenset[int] | None:
        value = rule.get("icmp_type")
        tkey = _join(key, "icmp_type")
        names = ICMP6_TYPES if proto == PROTO_ICMP6 else ICMP4_TYPES
        if isinstance(value, list):
            if not value:
                self.problem(tkey, "an empty list matches nothing; omit the key")
                return None
            items = [(v, f"{tkey}[{j}]") for j, v in enumerate(value)]
        else:
            items = [(value, tkey)]
        types: set[int] = set()
        ok = True
        for item, ikey in items:
            if isinstance(item, str):
                if item in names:
                    types.add(names[item])
                else:
                    which = "icmp6" if proto == PROTO_ICMP6 else "icmp"
                    self.problem(
                        ikey,
                        f"unknown {which} type {item!r} (names: {', '.join(names)}; or 0..255)",
                    )
                    ok = False
            elif isinstance(item, int) and not isinstance(item, bool):
                if 0 <= item <= 255:
                    types.add(item)
                else:
                    self.problem(ikey, f"ICMP type {item} is out of range 0..255")
                    ok = False
            else:
                self.wrong_type(ikey, "an ICMP type name or number", item)
                ok = False
        return frozenset(types) if ok else None

    def flags(self, rule: Mapping[str, object], key: str) -> tuple[tuple[int, int] | None, bool]:
        """Return ``(flags, given)``; flags None for ``"any"`` or a problem."""
        value = rule.get("flags")
        if value is None:
            return None, False
        fkey = _join(key, "flags")
        if not isinstance(value, str):
            self.wrong_type(fkey, 'a string such as "S/SA" or "any"', value)
            return None, True
        if value == "any":
            return None, True
        match = _FLAGS.fullmatch(value)
        if match is None or not match.group(1):
            self.problem(
                fkey, f'{value!r} is not SET/MASK of the letters {TCP_FLAG_LETTERS}, e.g. "S/SA"'
            )
            return None, True

        def bits(letters: str) -> int:
            return sum(1 << TCP_FLAG_LETTERS.index(c) for c in set(letters))

        flag_set = bits(match.group(1))
        mask = bits(match.group(2)) if match.group(2) is not None else _ALL_FLAGS
        if flag_set & ~mask:
            self.problem(fkey, f"{value!r}: flags set outside the mask can never be tested")
            return None, True
        return (flag_set, mask), True

    # -- a whole rule ------------------------------------------------------------

    def rule(self, value: object, key: str, tables: set[str]) -> Rule | None:
        if not isinstance(value, dict):
            self.wrong_type(key, "a table (a [[rules]] entry)", value)
            return None
        before = len(self.problems)
        self.check_keys(value, key, _RULE_KEYS)
        if "action" not in value:
            self.problem(_join(key, "action"), "missing required key 'action'")
        action = self.choice(value, "action", key, ACTIONS)
        direction = self.choice(value, "direction", key, DIRECTIONS)
        interface = self.string(value, "interface", key)
        if interface is not None and (not _IFNAME.fullmatch(interface) or interface in (".", "..")):
            self.problem(
                _join(key, "interface"),
                f"invalid interface name {interface!r}: must be 1-15 characters "
                "from [A-Za-z0-9_.-] (Linux IFNAMSIZ)",
            )
        family_name = self.choice(value, "family", key, tuple(FAMILIES))
        family = FAMILIES[family_name] if family_name is not None else None
        proto, proto_ok = self.proto(value, key)
        src = self.side(value, "from", key, tables)
        dst = self.side(value, "to", key, tables)

        sport = dport = None
        for name in ("from_port", "to_port"):
            if name not in value:
                continue
            if proto_ok and proto not in (PROTO_TCP, PROTO_UDP):
                self.problem(_join(key, name), "ports need proto tcp or udp")
                continue
            ports = self.ports(value, name, key)
            if name == "from_port":
                sport = ports
            else:
                dport = ports

        icmp_types = None
        if "icmp_type" in value:
            if proto_ok and proto not in (PROTO_ICMP, PROTO_ICMP6):
                self.problem(_join(key, "icmp_type"), "icmp_type needs proto icmp or icmp6")
            elif proto is not None:
                icmp_types = self.icmp_types(value, key, proto)

        flags, flags_given = self.flags(value, key)
        if flags_given and proto_ok and proto not in (None, PROTO_TCP):
            self.problem(_join(key, "flags"), "flags need proto tcp (or no proto)")

        keep_state = self.boolean(value, "keep_state", key)
        if keep_state and action in ("block", "reject"):
            self.problem(_join(key, "keep_state"), f"a {action} rule cannot keep state")
        log = self.boolean(value, "log", key)
        label = self.string(value, "label", key)
        if label is not None and len(label) > LABEL_MAX:
            self.problem(_join(key, "label"), f"longer than {LABEL_MAX} characters")

        if proto_ok and src is not None and dst is not None:
            family = self.rule_family(key, family, family_name, proto, src, dst)
        if len(self.problems) != before or action is None:
            return None
        assert src is not None and dst is not None, "no problem means both sides parsed"
        if keep_state is None:
            keep_state = action == "pass"
        if not flags_given and action == "pass" and keep_state and proto in (None, PROTO_TCP):
            flags = DEFAULT_FLAGS
        return Rule(
            action=action,
            direction=direction,
            interface=interface,
            family=family,
            proto=proto,
            src=src.match,
            dst=dst.match,
            sport=sport,
            dport=dport,
            icmp_types=icmp_types,
            flags=flags,
            keep_state=keep_state,
            log=bool(log),
            label=label or "",
        )

    def rule_family(
        self,
        key: str,
        family: int | None,
        family_name: str | None,
        proto: int | None,
        src: _Addr,
        dst: _Addr,
    ) -> int | None:
        """Return the family the rule is restricted to, reporting contradictions."""
        implied = {PROTO_ICMP: 4, PROTO_ICMP6: 6}.get(proto) if proto is not None else None
        reason = f"family is {family_name}"
        if implied is not None:
            proto_name = _proto_text(proto) if proto is not None else ""
            if family is not None and family != implied:
                other = "icmp6" if implied == 4 else "icmp"
                self.problem(
                    _join(key, "proto"),
                    f"proto {proto_name} is for {'IPv4' if implied == 4 else 'IPv6'} but "
                    f"{reason}; use {other}",
                )
                return family
            if family is None:
                family = implied
                reason = f"proto {proto_name} is {'IPv4' if implied == 4 else 'IPv6'} only"
        if family is not None:
            for network, nkey in src.keyed + dst.keyed:
                if network.version != family:
                    kind = "an IPv4" if network.version == 4 else "an IPv6"
                    self.problem(nkey, f"{_net_text(network)} is {kind} address but {reason}")
            return family
        candidates = {4, 6}
        for side in (src, dst):
            if side.match.tables or not side.match.networks:
                continue
            candidates &= {n.version for n in side.match.networks}
        if not candidates:
            self.problem(
                _join(key, "to"),
                f"'to' is IPv{dst.match.networks[0].version} only and 'from' "
                f"IPv{src.match.networks[0].version} only: no packet can match",
            )
            return None
        return candidates.pop() if len(candidates) == 1 else None

    # -- a [[nat]] entry -----------------------------------------------------------

    def address4(self, entry: Mapping[str, object], name: str, key: str) -> IPv4Address | None:
        """Return the IPv4 address ``name`` of ``entry`` (a problem if it is anything else)."""
        value = self.string(entry, name, key)
        if value is None:
            return None
        try:
            return IPv4Address(value)
        except ValueError:
            self.problem(_join(key, name), f"{value!r} is not an IPv4 address")
            return None

    def prefix_of(
        self, entry: Mapping[str, object], name: str, key: str, version: int
    ) -> Network | None:
        """Return the prefix (or address) ``name`` of ``entry``, of IP ``version``."""
        value = self.string(entry, name, key)
        if value is None:
            self.problem(_join(key, name), f"missing required key {name!r}")
            return None
        network = _parse_prefix(value)
        if isinstance(network, str):
            self.problem(_join(key, name), network)
            return None
        if network.version != version:
            self.problem(_join(key, name), f"{value!r} is not an IPv{version} prefix")
            return None
        return network

    def nat_entry(self, value: object, key: str, tables: set[str]) -> NatRule | None:
        if not isinstance(value, dict):
            self.wrong_type(key, "a table (a [[nat]] entry)", value)
            return None
        before = len(self.problems)
        self.check_keys(value, key, _NAT_KEYS, required=("action", "interface"))
        action = self.choice(value, "action", key, NAT_ACTIONS)
        interface = self.string(value, "interface", key)
        if interface is not None and (not _IFNAME.fullmatch(interface) or interface in (".", "..")):
            self.problem(_join(key, "interface"), f"invalid interface name {interface!r}")
        label = self.string(value, "label", key)
        if label is not None and len(label) > LABEL_MAX:
            self.problem(_join(key, "label"), f"longer than {LABEL_MAX} characters")
        if action is None:
            return None
        allowed = {
            "nat": ("proto", "from", "to", "address", "port_range", "filtering"),
            "rdr": ("proto", "from", "to", "to_port", "target", "target_port"),
            "binat": ("from", "address"),
            "nptv6": ("from", "address"),
        }[action]
        for name in _NAT_KEYS[2:-1]:
            if name in value and name not in allowed:
                self.problem(_join(key, name), f"{action} takes no {name!r}")
        proto, proto_ok = self.proto(value, key)
        if proto_ok and proto is not None:
            protos = (PROTO_TCP, PROTO_UDP) if action == "rdr" else _NAT_PROTOCOLS
            if proto not in protos:
                names = ", ".join(_proto_text(p) for p in protos)
                self.problem(_join(key, "proto"), f"{action} translates {names} only")
        entry = NatRule(action, interface or "", proto, label=label or "")
        if action in ("binat", "nptv6"):
            version = 4 if action == "binat" else 6
            inside = self.prefix_of(value, "from", key, version)
            outside = self.prefix_of(value, "address", key, version)
            if inside is not None and outside is not None:
                if inside.prefixlen != outside.prefixlen:
                    self.problem(
                        _join(key, "address"),
                        f"{_net_text(outside)} and 'from' {_net_text(inside)} differ in length",
                    )
                if action == "nptv6" and inside.prefixlen > 64:
                    self.problem(_join(key, "from"), "NPTv6 prefixes are /64 or shorter")
            entry = NatRule(
                action, entry.interface, label=entry.label, inside=inside, outside=outside
            )
        elif action == "nat":
            src = self.side(value, "from", key, tables)
            dst = self.side(value, "to", key, tables)
            for side, name in ((src, "from"), (dst, "to")):
                if side is not None and any(n.version != 4 for n, _ in side.keyed):
                    self.problem(_join(key, name), "nat translates IPv4 (use nptv6 for IPv6)")
            port_range = None
            if "port_range" in value:
                port_range = self.port_range(value["port_range"], _join(key, "port_range"))
                if port_range is not None and port_range[0] == 0:
                    self.problem(_join(key, "port_range"), "port 0 cannot be allocated")
            filtering = self.choice(value, "filtering", key, NAT_FILTERING) or NAT_FILTERING[0]
            entry = NatRule(
                action,
                entry.interface,
                proto,
                src.match if src is not None else AddrMatch(),
                dst.match if dst is not None else AddrMatch(),
                address=self.address4(value, "address", key),
                port_range=port_range,
                filtering=filtering,
                label=entry.label,
            )
        else:
            src = self.side(value, "from", key, tables)
            if src is not None and any(n.version != 4 for n, _ in src.keyed):
                self.problem(_join(key, "from"), "rdr translates IPv4")
            dport = self.ports(value, "to_port", key) if "to_port" in value else None
            target_port = None
            if "target_port" in value:
                if "to_port" not in value:
                    self.problem(_join(key, "target_port"), "target_port needs to_port")
                target_port = self.integer(value, "target_port", key)
                if target_port is not None and not 1 <= target_port <= 65535:
                    self.problem(
                        _join(key, "target_port"), f"port {target_port} is out of range 1..65535"
                    )
                if dport is not None and target_port is not None:
                    span = max(hi - lo for lo, hi in dport.ranges)
                    if target_port + span > 65535 or len(dport.ranges) > 1:
                        self.problem(
                            _join(key, "target_port"),
                            "a shifted port range must be one range ending at or below 65535",
                        )
            if "target" not in value:
                self.problem(_join(key, "target"), "missing required key 'target'")
            entry = NatRule(
                action,
                entry.interface,
                proto,
                src.match if src is not None else AddrMatch(),
                dport=dport,
                public=self.address4(value, "to", key),
                target=self.address4(value, "target", key),
                target_port=target_port,
                label=entry.label,
            )
        if len(self.problems) != before:
            return None
        return entry


def parse_ruleset(data: Mapping[str, object], key_prefix: str = "") -> Ruleset:
    """Parse a firewall table into a ``Ruleset``; raise ``RulesetError`` with all problems."""
    parser = _Parser()
    parser.check_keys(data, key_prefix, _TOP_KEYS)
    default = parser.choice(data, "default", key_prefix, DEFAULTS) or "pass"
    tables, declared = parser.tables(data.get("tables"), _join(key_prefix, "tables"))
    rules: list[Rule] = []
    value = data.get("rules")
    rkey = _join(key_prefix, "rules")
    if value is not None:
        if not isinstance(value, list):
            parser.wrong_type(rkey, "an array of tables ([[rules]])", value)
        else:
            for i, item in enumerate(value):
                rule = parser.rule(item, f"{rkey}[{i}]", declared)
                if rule is not None:
                    rules.append(rule)
    nat: list[NatRule] = []
    value = data.get("nat")
    nkey = _join(key_prefix, "nat")
    if value is not None:
        if not isinstance(value, list):
            parser.wrong_type(nkey, "an array of tables ([[nat]])", value)
        else:
            for i, item in enumerate(value):
                entry = parser.nat_entry(item, f"{nkey}[{i}]", declared)
                if entry is not None:
                    nat.append(entry)
    if parser.problems:
        raise RulesetError(parser.problems)
    return Ruleset(rules, default, tables, nat)
