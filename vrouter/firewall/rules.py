"""Filter rules: the ruleset's values, first-match evaluation, per-rule counters.

Responsibility: a ``Ruleset`` of frozen ``Rule`` and ``NatRule`` values, and
``Ruleset.match``, which finds the rule that decides a packet.
:func:`vrouter.firewall.ruleparse.parse_ruleset` makes one from the
``firewall`` table of a vnet, reporting every problem with its key path.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Network

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
NAT_ACTIONS = ("nat", "rdr", "binat", "nptv6")
"""What a ``[[nat]]`` entry does (pf's ``nat``/``rdr``/``binat``, and RFC 6296 NPTv6)."""
NAT_FILTERING = ("address-dependent", "endpoint-independent")
"""RFC 4787 filtering of a ``nat`` entry's mappings; the first is the default."""


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
        items = [net_text(n) for n in self.networks] + [f"<{t}>" for t in self.tables]
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
            parts.append(f"proto {proto_text(self.proto)}")
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
            names = [icmp_text(t, 6 if v6 else 4) for t in sorted(self.icmp_types)]
            text = names[0] if len(names) == 1 else "{ " + ", ".join(names) + " }"
            parts.append(f"{keyword} {text}")
        if self.flags is not None:
            parts.append(f"flags {flags_text(self.flags)}")
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
            parts.append(f"proto {proto_text(self.proto)}")
        if self.action in ("binat", "nptv6"):
            assert self.inside is not None and self.outside is not None
            parts.append(f"from {net_text(self.inside)} -> {net_text(self.outside)}")
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
        "source",
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
    source: dict[str, object] | None
    """The TOML table it was parsed from (None: built in code), written back by
    ``vrouterctl config dump``."""

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
        self.source = None

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


def net_text(network: Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def proto_text(proto: int) -> str:
    for name, number in PROTOCOLS.items():
        if number == proto:
            return name
    return str(proto)


def icmp_text(icmp_type: int, family: int) -> str:
    names = ICMP6_TYPES if family == 6 else ICMP4_TYPES
    for name, number in names.items():
        if number == icmp_type:
            return name
    return str(icmp_type)


def flags_text(flags: tuple[int, int]) -> str:
    flag_set, mask = flags

    def letters(bits: int) -> str:
        return "".join(c for i, c in enumerate(TCP_FLAG_LETTERS) if bits >> i & 1)

    return f"{letters(flag_set)}/{letters(mask)}"
