"""The firewall subsystem: one filter per vnet, hooked into IPv4 and IPv6.

Attaching gives every vnet a disabled :class:`~vrouter.firewall.engine.Firewall`
(``vnet.firewall``); enabling it (``net.pf.enable``) installs the filter as
the vnet's pfil hook for both families, disabling removes the hook so the
data path pays nothing.  The hook parses the packet, asks
:func:`~vrouter.firewall.engine.evaluate`, answers ``reject`` with a TCP RST
(from the address the segment was sent to) or an ICMP/ICMPv6 unreachable,
logs packets of rules with ``log``, and keeps the state table swept.

Non-first fragments carry no ports, so they follow their first fragment:
when a first fragment passes, its datagram's identification is remembered
for ``FRAGMENT_HOLD`` seconds and the later pieces pass with it (pf does
this by reassembling in ``scrub``).  A piece that arrives before its first
fragment goes through the rules on addresses and protocol alone.

Address translation (:mod:`vrouter.firewall.nat`) runs in the same hook:
destinations are translated on the way in before the filter, sources on the
way out after it, in place (the IP layer hands over a writable packet).

Packets the firewall itself sends (resets, unreachables) are not filtered,
only translated.
A forwarded packet that a state passed on its way in is not matched again on
its way out: the floating state it met would pass it there too.

Established TCP and UDP flows are cached (:mod:`vrouter.firewall.flow`): the
IPv4 and IPv6 fast paths, and this hook on the way in, pass their packets
after the state's own checks without parsing them; replacing the ruleset or
switching the filter empties the cache.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.ratelimit import TokenBucket
from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import Knob, Value, field_knob
from vrouter.core.timers import Deadline
from vrouter.firewall import flow
from vrouter.firewall.engine import DROP, PASS, Firewall, evaluate
from vrouter.firewall.nat import NatTimeouts
from vrouter.firewall.packet import PacketInfo, parse
from vrouter.firewall.rules import Ruleset
from vrouter.firewall.states import StateTable, Timeouts
from vrouter.inet import ipv4
from vrouter.inet.state import IN, OUT
from vrouter.inet6 import ipv6
from vrouter.wire import icmp4, icmp6, tcp
from vrouter.wire import ipv4 as ip4_wire
from vrouter.wire.errors import WireError
from vrouter.wire.ipv6 import NH_TCP, walk

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.firewall")

PURGE_INTERVAL = 10.0
"""Seconds between sweeps of expired states (pf's ``interval``)."""
FRAGMENT_HOLD = 60.0
"""Seconds the later fragments of a passed datagram may follow it."""
FRAGMENT_ENTRIES = 4096
"""Datagrams remembered for their later fragments; the oldest is forgotten first."""
_IPV6_EXTENSIONS = frozenset({0, 43, 44, 60})
LOG_RATE = 100
"""Log lines per second per vnet for rules with ``log``; the rest are counted."""


@dataclass(slots=True)
class VnetNatHost:
    """What address translation needs of a vnet (``vrouter.firewall.nat.NatHost``)."""

    vnet: Vnet

    def address_of(self, ifname: str) -> bytes | None:
        """Return the first IPv4 address of interface ``ifname``, None if it has none."""
        ifp = self.vnet.link.interfaces.get(ifname)
        if ifp is None or not ifp.addresses:
            return None
        return ifp.addresses[0].packed  # an IPv4Interface is its address

    def source_toward(self, dst: bytes) -> bytes | None:
        """Return the vnet's IPv4 source address towards ``dst``."""
        return ipv4.source_address(self.vnet, dst)

    def is_local(self, address: bytes) -> bool:
        """Return True if ``address`` is one of the vnet's IPv4 addresses."""
        return address in self.vnet.inet.local


@dataclass(slots=True)
class FilterState:
    """Per-vnet firewall state: the engine's firewall and its glue."""

    fw: Firewall
    host: VnetNatHost
    flows: flow.FlowCache
    """Established flows passed without parsing (:mod:`vrouter.firewall.flow`)."""
    purge: Deadline = field(default_factory=Deadline)
    fragments: OrderedDict[tuple[object, ...], float] = field(default_factory=OrderedDict)
    sending: bool = False
    """True while the firewall sends its own reset or unreachable."""
    passed_in: memoryview | None = None
    """The packet a state just passed on its way in: on its way out (forwarded)
    it meets the same floating state, so it is not parsed and matched twice."""
    log_bucket: TokenBucket = field(default_factory=TokenBucket)
    log_suppressed: int = 0
    rejects_sent: int = 0


def _attach(vnet: Vnet) -> FilterState:
    fw = Firewall(Ruleset(), StateTable(), enabled=False)
    return FilterState(fw, VnetNatHost(vnet), flow.FlowCache(fw))


def _detach(vnet: Vnet) -> None:
    vnet.inet.pfil = None
    vnet.inet6.pfil = None
    vnet.inet.flows = None
    vnet.inet6.flows = None
    vnet.firewall.flows.invalidate()
    vnet.firewall.purge.cancel()
    vnet.firewall.fw.states.flush()
    vnet.firewall.fw.nat.flush()


def set_enabled(vnet: Vnet, enabled: bool) -> None:
    """Turn the filter of ``vnet`` on or off (installing or removing the hooks)."""
    state = vnet.firewall
    state.fw.enabled = enabled
    hook = _hook(vnet) if enabled else None
    flows = state.flows if enabled else None
    state.flows.invalidate()
    vnet.inet.pfil = hook
    vnet.inet6.pfil = hook
    vnet.inet.flows = flows
    vnet.inet6.flows = flows


def replace_ruleset(vnet: Vnet, ruleset: Ruleset) -> None:
    """Put ``ruleset`` in force at once; states are kept (pf's ``pfctl -f``), the
    flow cache is emptied (the next packet of each flow takes the full path)."""
    vnet.firewall.fw.ruleset = ruleset
    vnet.firewall.flows.invalidate()


def flush_states(vnet: Vnet) -> int:
    """Forget every state and NAT mapping of ``vnet`` (and the cached flows); return how many."""
    state = vnet.firewall
    state.flows.invalidate()
    return state.fw.states.flush() + state.fw.nat.flush()


def _hook(vnet: Vnet) -> Callable[[Ifnet, memoryview, str, float], bool]:
    def pfil(ifp: Ifnet, packet: memoryview, direction: str, now: float) -> bool:
        return check(vnet, ifp, packet, direction, now)

    return pfil


def _fragment_key(info: PacketInfo, packet: memoryview) -> tuple[tuple[object, ...], bool] | None:
    """Return (datagram key, is first fragment) for a fragment, None otherwise."""
    if info.family == 4:
        flags = (packet[6] << 8) | packet[7]
        if not flags & (ip4_wire.FLAG_MF | ip4_wire.OFFSET_MASK):
            return None
        key = (4, info.src, info.dst, packet[9], (packet[4] << 8) | packet[5])
        return key, not flags & ip4_wire.OFFSET_MASK
    if packet[6] not in _IPV6_EXTENSIONS:
        return None
    try:
        chain = walk(packet, len(packet), local=True)
    except WireError:
        return None
    frag = chain.fragment_offset
    if frag < 0:
        return None
    ident = int.from_bytes(packet[frag + 4 : frag + 8], "big")
    first = not ((packet[frag + 2] << 8) | packet[frag + 3]) & 0xFFF8
    return (6, info.src, info.dst, ident), first


def check(vnet: Vnet, ifp: Ifnet, packet: memoryview, direction: str, now: float) -> bool:
    """The pfil hook: True if ``packet`` may go on (rewritten in place when translated).

    Translation brackets the filter (see :mod:`vrouter.firewall.nat`):
    destinations are translated on the way in before the filter looks,
    sources on the way out after it passed the packet.
    """
    state = vnet.firewall
    fw = state.fw
    if not fw.enabled:
        return True
    nat = fw.nat
    ruleset = fw.ruleset
    if state.sending:
        # Our own reset or unreachable: not filtered, but translated like the
        # flow it answers (a redirected client sees the public address).
        if direction == OUT and nat.touches(ruleset, ifp.name):
            try:
                own = parse(packet)
            except WireError:
                return True
            return nat.translate_out(
                state.host, ruleset, ifp.name, own, packet, now, fw.states.room()
            )
        return True
    if direction == OUT and state.passed_in is packet:
        state.passed_in = None
        fw.stats.state += 1
        fw.stats.passed += 1
        if not nat.touches(ruleset, ifp.name):
            return True
        return nat.translate_out(
            state.host, ruleset, ifp.name, parse(packet), packet, now, fw.states.room()
        )
    state.passed_in = None
    if direction == IN:
        first = packet[0]
        if first == 0x45:
            cached = state.flows.admit4(ifp, packet, 0, 1, now)
        elif first >> 4 == 6:
            cached = state.flows.admit6(ifp, packet, 0, 1, now)
        else:
            cached = flow.MISS
        if cached == flow.PASS:
            state.passed_in = packet
            return True
        if cached == flow.DROP:
            return False
    try:
        info = parse(packet)
    except WireError:
        fw.stats.malformed += 1
        fw.stats.dropped += 1
        return False
    translating = bool(ruleset.nat) or len(nat) > 0
    if (
        direction == IN
        and translating
        and not nat.translate_in(state.host, ruleset, ifp.name, info, packet, now, fw.states.room())
    ):
        return False
    frag = _fragment_key(info, packet)
    if frag is not None and not frag[1]:
        expiry = state.fragments.get(frag[0])
        if expiry is not None and expiry >= now:
            fw.stats.passed += 1
            if direction == OUT and translating:
                return nat.translate_out(
                    state.host, ruleset, ifp.name, info, packet, now, fw.states.room()
                )
            return True
    verdict = evaluate(fw, info, packet, direction, ifp.name, now)
    if verdict.rule >= 0 and verdict.reason == "rule":
        rule = fw.ruleset.rules[verdict.rule]
        if rule.log:
            _log(vnet, state, verdict.action, rule.describe(), ifp, direction, info, now)
    if len(fw.states) or len(nat):
        state.purge.arm(vnet.timers, now + PURGE_INTERVAL, lambda t: _purge(vnet, t))
    if verdict.action == PASS:
        if frag is not None and frag[1]:
            _remember_fragment(state, frag[0], now)
        if direction == IN and verdict.reason == "state":
            state.passed_in = packet
            if fw.matched is not None and not translating:
                state.flows.learn(ifp, packet, info, fw.matched, fw.matched_forward)
        if direction == OUT and translating and nat.touches(ruleset, ifp.name):
            return nat.translate_out(
                state.host, ruleset, ifp.name, info, packet, now, fw.states.room()
            )
        return True
    if verdict.action != DROP:
        _reject(vnet, ifp, packet, info, now)
    return False


def _remember_fragment(state: FilterState, key: tuple[object, ...], now: float) -> None:
    fragments = state.fragments
    fragments[key] = now + FRAGMENT_HOLD
    fragments.move_to_end(key)
    while len(fragments) > FRAGMENT_ENTRIES:
        fragments.popitem(last=False)


def _purge(vnet: Vnet, now: float) -> None:
    state = vnet.firewall
    state.fw.states.expire(now)
    state.fw.nat.expire(now)
    for key in [k for k, expiry in state.fragments.items() if expiry < now]:
        del state.fragments[key]
    if len(state.fw.states) or len(state.fw.nat) or state.fragments:
        state.purge.arm(vnet.timers, now + PURGE_INTERVAL, lambda t: _purge(vnet, t))


def _log(
    vnet: Vnet,
    state: FilterState,
    action: str,
    rule: str,
    ifp: Ifnet,
    direction: str,
    info: PacketInfo,
    now: float,
) -> None:
    if not state.log_bucket.take(LOG_RATE, now):
        state.log_suppressed += 1
        return
    src = ipaddress.ip_address(info.src)
    dst = ipaddress.ip_address(info.dst)
    ports = f" {info.sport} > {info.dport}" if info.proto in (6, 17) else ""
    log.info(
        "vnet %s: %s %s on %s: %s > %s proto %d%s (rule: %s)",
        vnet.name,
        action,
        direction,
        ifp.name,
        src,
        dst,
        info.proto,
        ports,
        rule,
    )


def _reject(vnet: Vnet, ifp: Ifnet, packet: memoryview, info: PacketInfo, now: float) -> None:
    """Answer a rejected packet: RST for TCP, port unreachable for UDP, else prohibited."""
    state = vnet.firewall
    state.sending = True
    try:
        if info.proto == NH_TCP and not info.fragment:
            header = tcp.TcpHeader(
                info.sport,
                info.dport,
                info.seq,
                info.ack,
                info.tcp_flags,
                info.window,
                20,
                info.payload_len,
            )
            reset = tcp.reset_for(info.dst, info.src, header)
            if reset is None:
                return
            if info.family == 4:
                sent = ipv4.output(
                    vnet, ip4_wire.build(info.dst, info.src, 6, reset, ttl=vnet.inet.ttl), now
                )
            else:
                sent = ipv6.output(
                    vnet, ipv6.packet(vnet, info.dst, info.src, NH_TCP, reset), now, ifp
                )
        elif info.family == 4:
            code = icmp4.UNREACH_PORT if info.proto == 17 else icmp4.UNREACH_FILTER_PROHIB
            ipv4.send_error(vnet, ifp, packet, icmp4.DEST_UNREACH, code, now)
            sent = True
        else:
            code = icmp6.UNREACH_PORT if info.proto == 17 else icmp6.UNREACH_ADMIN
            ipv6.send_error(vnet, ifp, packet, icmp6.DEST_UNREACH, code, now)
            sent = True
        if sent:
            state.rejects_sent += 1
    finally:
        state.sending = False


def _set_enable(vnet: Vnet, value: Value) -> None:
    set_enabled(vnet, bool(value))


def _set_flowcache(vnet: Vnet, value: Value) -> None:
    flows = vnet.firewall.flows
    flows.enabled = bool(value)
    flows.invalidate()


def _timeout_knob(name: str) -> Knob:
    def get(vnet: Vnet) -> Value:
        return float(getattr(vnet.firewall.fw.states.timeouts, name))

    def set_(vnet: Vnet, value: Value) -> None:
        setattr(vnet.firewall.fw.states.timeouts, name, float(value))

    return Knob(
        f"net.pf.timeout.{name}",
        float,
        f"Seconds a state in pf's {name.replace('_', '.')} phase lives without traffic",
        get,
        set_,
        1,
        86400 * 7,
    )


def _nat_timeout_knob(name: str, minimum: float) -> Knob:
    def get(vnet: Vnet) -> Value:
        return float(getattr(vnet.firewall.fw.nat.timeouts, name))

    def set_(vnet: Vnet, value: Value) -> None:
        setattr(vnet.firewall.fw.nat.timeouts, name, float(value))

    return Knob(
        f"net.pf.nat.timeout.{name}",
        float,
        f"Seconds a {name.replace('_', ' ')} NAT mapping lives without traffic",
        get,
        set_,
        minimum,
        86400 * 7,
    )


# RFC 4787 REQ-5, RFC 5382 REQ-5, RFC 5508 REQ-1: the least a NAT may use.
_NAT_TIMEOUT_MINIMUMS = {"udp": 120, "tcp_established": 7440, "tcp_transitory": 240, "icmp": 60}

KNOBS = (
    Knob(
        "net.pf.enable",
        bool,
        "Filter this vnet's packets with its firewall ruleset",
        lambda vnet: vnet.firewall.fw.enabled,
        _set_enable,
    ),
    Knob(
        "net.pf.flowcache",
        bool,
        "Pass established TCP and UDP flows from the flow cache, without parsing them",
        lambda vnet: vnet.firewall.flows.enabled,
        _set_flowcache,
    ),
    field_knob(
        "net.pf.states_max",
        int,
        "Firewall states allowed at once; new flows beyond it are dropped",
        "firewall.fw.states.max_states",
        1,
        10_000_000,
    ),
    *(_timeout_knob(f.name) for f in dataclasses.fields(Timeouts)),
    *(
        _nat_timeout_knob(f.name, _NAT_TIMEOUT_MINIMUMS[f.name])
        for f in dataclasses.fields(NatTimeouts)
    ),
)

SUBSYSTEM = Subsystem(
    "firewall", _attach, _detach, depends=("inet", "inet6"), knobs=KNOBS, lazy=True
)
"""Lazy: a vnet gets its filter state when first asked (ruleset, knob, view)."""
