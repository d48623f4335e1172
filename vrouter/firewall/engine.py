"""The filter decision for one packet: states, related ICMP errors, then rules.

Responsibility: ``evaluate`` decides what happens to one parsed packet on
one interface in one direction and returns a ``Verdict``; it updates the
state table and the counters, and does nothing else (the caller drops the
packet, or sends the TCP RST / ICMP unreachable of a ``REJECT``).

Order of evaluation (each step that decides counts its ``reason`` in
``FirewallStats``):

1. A disabled firewall passes everything (``disabled``).
2. A packet whose transport header is truncated is dropped (``malformed``).
3. ICMPv6 Router/Neighbor Solicitations and Advertisements (types 133 to
   136: ND and DAD) always pass (``nd``), before states and rules: the link
   does not work without them, and a ruleset should not have to know.
4. A packet that belongs to a state passes without rule evaluation and
   updates the state (``state``); a TCP segment outside the state's windows
   is dropped (``badstate``).  States float: any interface, either direction.
5. An ICMP/ICMPv6 error (destination unreachable, time exceeded, packet too
   big, parameter problem, source quench) that goes back to the sender of a
   packet it quotes, where that packet belongs to a state, passes
   (``related``): traceroute and path MTU discovery work through stateful
   rules.
6. The ruleset decides, first match wins (``rule``), else its default
   (``default``).  ``packets``/``bytes`` are counted on the deciding rule
   or on the default; a packet a state passes on the interface and in the
   direction where its creating rule matched counts on that rule too, so a
   rule's counters read as "packets that met this rule".  A ``pass`` rule
   with ``keep_state`` creates a state for a packet that can start one (see
   ``StateTable.creatable``; the rule's ``flags`` already filtered TCP, so
   a rule with ``flags any`` picks up connections in the middle); when the
   table is full the packet is dropped (``state_limit``).  A packet that
   cannot start a state (an echo reply, a RST, a non-first fragment)
   passes by the rule alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vrouter.firewall.nat import NatTable
from vrouter.firewall.packet import ND_TYPES, PROTO_ICMP6, PacketInfo, is_icmp_error, quoted
from vrouter.firewall.rules import Ruleset
from vrouter.firewall.states import State, StateTable

__all__ = ["DROP", "PASS", "REJECT", "Firewall", "FirewallStats", "Verdict", "evaluate"]

PASS = "pass"
DROP = "drop"
REJECT = "reject"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a packet, why, and which rule decided (-1: none)."""

    action: str
    """``PASS``, ``DROP`` or ``REJECT`` (drop and answer)."""
    reason: str
    """The ``FirewallStats`` counter it was counted in."""
    rule: int
    """Index of the deciding rule, or of the rule that created the state; -1 if none."""


@dataclass(slots=True)
class FirewallStats:
    """Verdict counters of one firewall, one per reason, and totals per action."""

    passed: int = 0
    """Packets passed."""
    dropped: int = 0
    """Packets dropped (reject excluded)."""
    rejected: int = 0
    """Packets rejected (dropped and answered by the caller)."""
    disabled: int = 0
    """Passed: the firewall is disabled."""
    malformed: int = 0
    """Dropped: truncated transport header."""
    nd: int = 0
    """Passed: ICMPv6 Neighbor Discovery (types 133-136)."""
    state: int = 0
    """Passed: belongs to a state."""
    badstate: int = 0
    """Dropped: belongs to a state but is outside its TCP windows."""
    related: int = 0
    """Passed: an ICMP error about a packet of a state."""
    rule: int = 0
    """Decided by a rule (pass, block or reject)."""
    default: int = 0
    """Decided by the ruleset's default action."""
    state_limit: int = 0
    """Dropped: a pass rule could not create its state, the table was full."""


@dataclass(slots=True)
class Firewall:
    """The filter of one vnet: a replaceable ruleset and the states it created."""

    ruleset: Ruleset = field(default_factory=Ruleset)
    """Rules in force; replacing it keeps the states."""
    states: StateTable = field(default_factory=StateTable)
    """Tracked flows."""
    enabled: bool = True
    """False passes everything without looking."""
    stats: FirewallStats = field(default_factory=FirewallStats)
    """Verdict counters."""
    nat: NatTable = field(default_factory=NatTable)
    """Address translations; they count against the state limit."""
    matched: State | None = None
    """The state the last packet ``evaluate`` passed by state belongs to (None: it
    passed otherwise); with ``matched_forward`` it teaches the flow cache."""
    matched_forward: bool = False
    """That packet went initiator -> responder."""

    def __post_init__(self) -> None:
        self.states.others = self.nat


_DISABLED = Verdict(PASS, "disabled", -1)
_MALFORMED = Verdict(DROP, "malformed", -1)
_ND = Verdict(PASS, "nd", -1)
_PASS_DEFAULT = Verdict(PASS, "default", -1)
_DROP_DEFAULT = Verdict(DROP, "default", -1)


def evaluate(
    fw: Firewall,
    info: PacketInfo,
    packet: bytes | memoryview,
    direction: str,
    ifname: str,
    now: float,
) -> Verdict:
    """Decide the fate of ``packet`` (parsed as ``info``) on ``ifname`` going ``direction``."""
    stats = fw.stats
    if not fw.enabled:
        stats.disabled += 1
        stats.passed += 1
        return _DISABLED
    if info.malformed:
        stats.malformed += 1
        stats.dropped += 1
        return _MALFORMED
    if info.proto == PROTO_ICMP6 and info.family == 6 and info.icmp_type in ND_TYPES:
        stats.nd += 1
        stats.passed += 1
        return _ND

    states = fw.states
    fw.matched = None
    found = states.lookup(info, now)
    if found is not None:
        state, forward = found
        if states.update(state, info, forward, now):
            stats.state += 1
            stats.passed += 1
            fw.matched = state
            fw.matched_forward = forward
            if state.counters is not None and state.origin == (ifname, direction):
                state.counters.packets += 1
                state.counters.bytes += info.length
            return Verdict(PASS, "state", state.rule)
        stats.badstate += 1
        stats.dropped += 1
        return Verdict(DROP, "badstate", state.rule)

    if is_icmp_error(info):
        inner = quoted(info, packet)
        if inner is not None and inner.src == info.dst:
            related = states.related(inner, now)
            if related is not None:
                stats.related += 1
                stats.passed += 1
                return Verdict(PASS, "related", related.rule)

    ruleset = fw.ruleset
    index = ruleset.match(info, direction, ifname)
    counters = ruleset.counters_of(index)
    counters.packets += 1
    counters.bytes += info.length
    if index < 0:
        stats.default += 1
        if ruleset.default == PASS:
            stats.passed += 1
            return _PASS_DEFAULT
        stats.dropped += 1
        return _DROP_DEFAULT

    rule = ruleset.rules[index]
    if rule.action == "block":
        stats.rule += 1
        stats.dropped += 1
        return Verdict(DROP, "rule", index)
    if rule.action == "reject":
        stats.rule += 1
        stats.rejected += 1
        return Verdict(REJECT, "rule", index)
    if rule.keep_state and states.creatable(info, pickup=True):
        created = states.create(info, index, now, pickup=True)
        if created is None:
            stats.state_limit += 1
            stats.dropped += 1
            return Verdict(DROP, "state_limit", index)
        created.origin = (ifname, direction)
        created.counters = counters
        counters.states += 1
    stats.rule += 1
    stats.passed += 1
    return Verdict(PASS, "rule", index)
