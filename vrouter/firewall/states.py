"""The state table: connection tracking after pf, timeouts and a size limit.

Responsibility: remember the flows that a ``keep state`` rule let through,
so that the rest of each flow (both directions) passes without rule
evaluation, and check that TCP segments stay inside the windows the two
ends advertised.

Semantics:

- **Floating states** (pf's default ``state-policy floating``): a state is
  keyed by protocol and the unordered pair of endpoints, so it matches its
  flow in either direction on any interface.  A packet forwarded by the
  vnet meets the same state on the way in and on the way out (and is
  counted on it twice).  States live in the table, not in the ruleset, so
  they survive a ruleset replacement; ``State.rule`` is the index of the
  creating rule in the ruleset of that time.
- **Keys**: TCP and UDP by addresses and ports; ICMP/ICMPv6 echo by the
  addresses and the echo identifier (a request creates the state and may
  repeat, the reply must travel the other way: a reply with another id, or
  an echo in the wrong direction, does not match); every other protocol by
  its address pair.  Other ICMP messages never create states; errors pass
  through ``related`` instead.  Non-first fragments of TCP and UDP have no
  ports and match no state.
- **TCP** is tracked in the style of pf (Guido van Rooij, "Real Stateful TCP
  Packet Filtering in IP Filter"): each side (``Peer``) keeps ``seqlo`` (the
  highest sequence number it sent, plus one), ``seqhi`` (the highest its
  peer's ACK and window allow it to send), ``max_win`` and its window scale
  (from the SYN options; if either side did not send one, nothing is
  scaled, RFC 7323 section 2.2).  A segment passes when its data ends at or
  below ``seqhi``, starts no more than one window of the receiver before
  ``seqlo`` (retransmissions, out-of-order segments within the window, SACK
  recovery, window probes, both sides' keepalives) and acknowledges nothing
  more than one maximum window away from what the other side sent.  A
  looser bound of one maximum window either way (65535 + 1500) applies
  while the responder has not answered (a SYN retransmitted by an
  impatient stack) and after both ends are closed.  Anything else is
  dropped and counted ``badstate``, leaving the state as it was.
- Per side, the TCP states are pf's: ``CLOSED`` (has not sent), ``SYN_SENT``
  (has sent), ``ESTABLISHED`` (the other side acknowledged it), ``CLOSING``
  (sent a FIN), ``FIN_WAIT_2`` (its FIN was acknowledged) and ``TIME_WAIT``
  (after a RST).  The state's timeout class follows: ``tcp_first`` for the
  SYN, ``tcp_opening`` until both sides are ESTABLISHED (SYN, SYN-ACK, ACK;
  a simultaneous open, SYN against SYN, works too), ``tcp_established``,
  ``tcp_closing`` once one side sent a FIN ("FIN_WAIT"), ``tcp_finwait`` when
  both did ("CLOSING"), ``tcp_closed`` when both FINs are acknowledged or
  after a RST ("CLOSED/TIME_WAIT").  A SYN (without ACK) that finds a closed
  state removes it, so the next connection with the same ports gets a fresh
  one.
- **RST** (RFC 5961 section 3 in spirit: a firewall cannot send challenge
  ACKs, so it only lets through what the receiver could accept): a RST
  passes only if its sequence number lies in the receiver's window, from
  the receiver's highest ACK (or the sender's ``seqlo``, whichever is
  lower) minus one up to the sender's ``seqhi``; before the receiver has
  acknowledged anything, only ``seqlo`` +-1 is accepted, and a RST
  answering a SYN must acknowledge that SYN (RFC 9293 section 3.10.7.3).
  An accepted RST moves both sides to TIME_WAIT (timeout ``tcp_closed``).
- **Creating** a TCP state needs a SYN without ACK, unless ``pickup`` (a rule
  with ``flags any``) allows starting from the middle of a connection:
  then the window scale is unknown and taken as absent, as in pf.  A RST
  never creates a state.
- **UDP and other protocols**: pseudo-states per side ``NO_TRAFFIC`` ->
  ``SINGLE`` (only this side has sent) -> ``MULTIPLE`` (both sides have
  sent).  Timeouts: ``udp_first``/``other_first`` for the creating packet,
  ``*_single`` while only the initiator has sent, ``*_multiple`` once both
  have.  (pf waits for a third packet before calling both sides MULTIPLE.)
  ICMP echo uses the same pseudo-states with ``icmp_first`` then
  ``icmp_error``, as pf does.
- **Timeouts** are pf's defaults (``Timeouts``).  Every accepted packet
  moves the expiry to ``now`` + the timeout of the state's current class,
  which may also shorten it.  ``lookup`` ignores (and removes) an expired
  state even before ``expire`` ran; ``next_deadline`` is exact.
- **Limit**: at most ``max_states``, NAT mappings (``others``) included;
  creating one more first expires what is due, then fails and counts
  ``limit``.  Existing states keep working.
- **The flow cache's tracking** (``track_segment``, ``_track_segment``): the
  window checks of ``_track_tcp`` for a segment with neither SYN nor RST,
  from its fields and with the sequence arithmetic inline, about half the
  interpreted work per cached TCP segment; a property test holds it to
  ``_track_tcp``.

The module is long on purpose: the TCP tracking is here twice (the full
one and the flow cache's), side by side, so that they are read and changed
together.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
from collections.abc import Iterator, Sized
from dataclasses import dataclass, field

from vrouter.firewall.packet import (
    PROTO_ICMP,
    PROTO_ICMP6,
    PROTO_TCP,
    PROTO_UDP,
    PacketInfo,
    echo_request_type,
    is_echo,
)
from vrouter.firewall.rules import RuleCounters
from vrouter.wire import tcp

__all__ = [
    "CLOSED",
    "CLOSING",
    "ESTABLISHED",
    "FIN_WAIT_2",
    "MULTIPLE",
    "NO_TRAFFIC",
    "SINGLE",
    "SYN_SENT",
    "TIME_WAIT",
    "Peer",
    "State",
    "StateStats",
    "StateTable",
    "Timeouts",
]

# Per-side TCP states, numbered as pf's (TCPS_*), so order means progress.
CLOSED = 0
SYN_SENT = 2
ESTABLISHED = 4
CLOSING = 7
FIN_WAIT_2 = 9
TIME_WAIT = 10
TCP_STATE_NAMES = {
    CLOSED: "CLOSED",
    SYN_SENT: "SYN_SENT",
    ESTABLISHED: "ESTABLISHED",
    CLOSING: "CLOSING",
    FIN_WAIT_2: "FIN_WAIT_2",
    TIME_WAIT: "TIME_WAIT",
}
# Per-side pseudo-states of UDP, ICMP echo and other protocols (pf's PFUDPS_*).
NO_TRAFFIC = 0
SINGLE = 1
MULTIPLE = 2
PSEUDO_STATE_NAMES = {NO_TRAFFIC: "NO_TRAFFIC", SINGLE: "SINGLE", MULTIPLE: "MULTIPLE"}

MAX_ACK_WINDOW = 0xFFFF + 1500
"""pf's MAXACKWINDOW: one maximum unscaled window plus a fudge of 1500."""
_MOD = 1 << 32
_MASK = _MOD - 1
_HALF = 1 << 31
_ACK = tcp.ACK
_FIN = tcp.FIN

StateKey = tuple[int, bytes, int, bytes, int]
"""(protocol, lower address, its port, higher address, its port)."""


def _diff(a: int, b: int) -> int:
    """Return ``a - b`` in sequence space, signed (RFC 9293 3.4 comparisons)."""
    return ((a - b + _HALF) & _MASK) - _HALF


@dataclass(slots=True)
class Timeouts:
    """State timeouts in seconds, pf's defaults and names (``set timeout``)."""

    tcp_first: float = 120
    """TCP after the first packet (the SYN)."""
    tcp_opening: float = 30
    """TCP until both sides are ESTABLISHED."""
    tcp_established: float = 86400
    """TCP fully established."""
    tcp_closing: float = 900
    """TCP after the first FIN."""
    tcp_finwait: float = 45
    """TCP after both FINs."""
    tcp_closed: float = 90
    """TCP after both FINs were acknowledged, or a RST."""
    udp_first: float = 60
    """UDP after the first packet."""
    udp_single: float = 30
    """UDP while only the initiator has sent."""
    udp_multiple: float = 60
    """UDP once both sides have sent."""
    icmp_first: float = 20
    """ICMP echo after the first request."""
    icmp_error: float = 10
    """ICMP echo after further packets (pf's icmp.error: reply seen)."""
    other_first: float = 60
    """Other protocols after the first packet."""
    other_single: float = 30
    """Other protocols while only the initiator has sent."""
    other_multiple: float = 60
    """Other protocols once both sides have sent."""


@dataclass(slots=True)
class StateStats:
    """Counters of one state table (pf's ``pfctl -si`` state and counter lines)."""

    searches: int = 0
    """State lookups done (packets and ICMP-quoted packets that could have a state)."""
    matches: int = 0
    """Lookups that found a live state."""
    inserts: int = 0
    """States created."""
    removals: int = 0
    """States removed for any reason (expired, replaced, reopened, flushed)."""
    expired: int = 0
    """States removed because their timeout passed."""
    limit: int = 0
    """States not created because the table held ``max_states``."""
    badstate: int = 0
    """Packets dropped by a state: TCP outside the windows, or an ICMP error quoting one."""
    related: int = 0
    """ICMP errors that quoted a packet of a tracked flow."""


@dataclass(slots=True)
class Peer:
    """One side of a state: what it sent and what it may send."""

    state: int = CLOSED
    """TCP: CLOSED .. TIME_WAIT; others: NO_TRAFFIC, SINGLE, MULTIPLE."""
    seen: bool = False
    """This side has sent a packet the state tracked."""
    seqlo: int = 0
    """TCP: highest sequence number sent, plus one (the end of its last segment)."""
    seqhi: int = 0
    """TCP: highest sequence number end the other side's ACK and window allow."""
    max_win: int = 1
    """TCP: largest window advertised, in units of its window scale."""
    wscale: int = -1
    """TCP: window scale shift from its SYN, -1 if absent (then no scaling)."""
    ack: int = 0
    """TCP: highest acknowledgment number sent (valid if ``acked``)."""
    acked: bool = False
    """TCP: this side has sent an ACK the state tracked."""
    fin_end: int = -1
    """TCP: sequence number after its FIN, -1 before any FIN."""


@dataclass(slots=True, eq=False)
class State:
    """One tracked flow; ``src``/``sport`` is the initiator, ``peers[0]`` its side."""

    key: StateKey
    family: int
    proto: int
    src: bytes
    sport: int
    dst: bytes
    dport: int
    rule: int
    """Index of the creating rule in the ruleset of that time."""
    created: float
    expires: float
    timeout: str
    """Name of the ``Timeouts`` field that set ``expires``."""
    peers: tuple[Peer, Peer] = field(default_factory=lambda: (Peer(), Peer()))
    """Initiator's side, responder's side."""
    packets: list[int] = field(default_factory=lambda: [0, 0])
    """Packets initiator -> responder, responder -> initiator."""
    bytes: list[int] = field(default_factory=lambda: [0, 0])
    """IP bytes initiator -> responder, responder -> initiator."""
    removed: bool = False
    """No longer in its table."""
    deadline: float = 0.0
    """Time of this state's live entry in the table's expiry heap."""
    origin: tuple[str, str] | None = None
    """(interface, direction) where the creating rule matched."""
    counters: RuleCounters | None = None
    """The creating rule's counters: packets the state passes where the rule
    matched are counted there, as if the rule had matched them."""

    def state_name(self) -> str:
        """Return both sides' state names, initiator first: ``ESTABLISHED:ESTABLISHED``."""
        names = TCP_STATE_NAMES if self.proto == PROTO_TCP else PSEUDO_STATE_NAMES
        return ":".join(names.get(p.state, str(p.state)) for p in self.peers)

    def _is_echo(self) -> bool:
        return (self.family == 4 and self.proto == PROTO_ICMP) or (
            self.family == 6 and self.proto == PROTO_ICMP6
        )

    def describe(self, now: float) -> dict[str, object]:
        """Return the state for the API (times in seconds relative to ``now``)."""
        names = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMP6: "icmp6"}
        entry: dict[str, object] = {
            "proto": names.get(self.proto, str(self.proto)),
            "family": self.family,
            "src": _endpoint(self, self.src, self.sport),
            "dst": _endpoint(self, self.dst, self.dport),
            "state": self.state_name(),
            "age": now - self.created,
            "expires_in": max(0.0, self.expires - now),
            "timeout": self.timeout,
            "packets": list(self.packets),
            "bytes": list(self.bytes),
            "rule": self.rule,
        }
        if self.proto == PROTO_TCP:
            entry["tcp"] = [
                {"seqlo": p.seqlo, "seqhi": p.seqhi, "max_win": p.max_win, "wscale": p.wscale}
                for p in self.peers
            ]
        return entry


def _endpoint(state: State, address: bytes, port: int) -> str:
    """Return ``addr:port`` (``[addr]:port`` for IPv6), just ``addr`` without ports."""
    text = str(ipaddress.ip_address(address))
    if state.proto in (PROTO_TCP, PROTO_UDP) or state._is_echo():
        return f"[{text}]:{port}" if state.family == 6 else f"{text}:{port}"
    return text


def _key(info: PacketInfo) -> StateKey | None:
    """Return the state key of ``info``, None if it cannot have a state."""
    proto = info.proto
    if proto in (PROTO_TCP, PROTO_UDP) or is_echo(info):
        if info.fragment:
            return None
        a = (info.src, info.sport)
        b = (info.dst, info.dport)
    elif (proto == PROTO_ICMP and info.family == 4) or (proto == PROTO_ICMP6 and info.family == 6):
        return None
    else:
        a = (info.src, 0)
        b = (info.dst, 0)
    if b < a:
        a, b = b, a
    return (proto, a[0], a[1], b[0], b[1])


class StateTable:
    """The states of one firewall, keyed for lookup and ordered by expiry."""

    __slots__ = ("_heap", "_order", "_states", "max_states", "others", "stats", "timeouts")

    max_states: int
    """Most states the table holds."""
    timeouts: Timeouts
    """Timeouts applied from now on."""
    stats: StateStats
    """Counters."""
    others: Sized | None
    """Other entries that count against ``max_states`` (the NAT mappings)."""

    def __init__(self, *, max_states: int = 10000, timeouts: Timeouts | None = None) -> None:
        """Create an empty table."""
        self.max_states = max_states
        self.timeouts = timeouts if timeouts is not None else Timeouts()
        self.stats = StateStats()
        self.others = None
        self._states: dict[StateKey, State] = {}
        self._heap: list[tuple[float, int, State]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        """Return the number of states."""
        return len(self._states)

    def __iter__(self) -> Iterator[State]:
        """Iterate over the states (expired ones not yet removed included)."""
        return iter(list(self._states.values()))

    # -- lookup and tracking ---------------------------------------------------

    def lookup(self, info: PacketInfo, now: float) -> tuple[State, bool] | None:
        """Return ``(state, forward)`` for the packet's flow, None if untracked.

        ``forward`` is True when the packet goes initiator -> responder.
        """
        key = _key(info)
        if key is None:
            return None
        self.stats.searches += 1
        state = self._states.get(key)
        if state is None:
            return None
        if state.expires <= now:
            self._remove(state)
            self.stats.expired += 1
            return None
        if is_echo(info):
            forward = info.icmp_type == echo_request_type(info.family)
            if info.src != (state.src if forward else state.dst):
                return None
        else:
            forward = info.src == state.src and info.sport == state.sport
        if (
            state.proto == PROTO_TCP
            and info.tcp_flags & (tcp.SYN | tcp.ACK | tcp.RST) == tcp.SYN
            and state.peers[0].state >= FIN_WAIT_2
            and state.peers[1].state >= FIN_WAIT_2
        ):
            # A new connection reusing the ports of a closed one.
            self._remove(state)
            return None
        self.stats.matches += 1
        return state, forward

    def update(self, state: State, info: PacketInfo, forward: bool, now: float) -> bool:
        """Track a packet of ``state``; return False if it must be dropped (``badstate``)."""
        if state.proto != PROTO_TCP:
            self.refresh(state, forward, info.length, now)
            return True
        src, dst = state.peers if forward else state.peers[::-1]
        if not _track_tcp(src, dst, info):
            self.stats.badstate += 1
            return False
        direction = 0 if forward else 1
        state.packets[direction] += 1
        state.bytes[direction] += info.length
        self._set_expiry(state, _tcp_timeout(src, dst), now)
        return True

    def refresh(self, state: State, forward: bool, length: int, now: float) -> None:
        """Track a packet of ``length`` IP bytes of a state that is not TCP (``update``
        without the parsed packet, which only TCP needs)."""
        if forward:  # the peers unpacked, not reversed: no tuple made per packet
            src, dst = state.peers
            direction = 0
        else:
            dst, src = state.peers
            direction = 1
        if src.state < SINGLE:
            src.state = SINGLE
        if src.state == SINGLE and dst.state >= SINGLE:
            src.state = dst.state = MULTIPLE
        proto = state.proto
        if (proto == PROTO_ICMP and state.family == 4) or (
            proto == PROTO_ICMP6 and state.family == 6
        ):  # State._is_echo without the call
            timeout = "icmp_error"
        elif proto == PROTO_UDP:
            timeout = "udp_multiple" if src.state == MULTIPLE else "udp_single"
        else:
            timeout = "other_multiple" if src.state == MULTIPLE else "other_single"
        state.packets[direction] += 1
        state.bytes[direction] += length
        self._set_expiry(state, timeout, now)

    def track_segment(
        self,
        state: State,
        forward: bool,
        flags: int,
        seq: int,
        ack: int,
        window: int,
        payload_len: int,
        length: int,
        now: float,
    ) -> bool:
        """``update`` for a TCP segment with neither SYN nor RST, from its fields (no
        ``PacketInfo``): the flow cache's call.  ``length``: the IP bytes."""
        if forward:
            src, dst = state.peers
            direction = 0
        else:
            dst, src = state.peers
            direction = 1
        if not _track_segment(src, dst, flags, seq, ack, window, payload_len):
            self.stats.badstate += 1
            return False
        state.packets[direction] += 1
        state.bytes[direction] += length
        # _set_expiry without the call, and without looking the established timeout up
        # by name
        if src.state == ESTABLISHED and dst.state == ESTABLISHED:
            timeout = "tcp_established"
            expires = now + self.timeouts.tcp_established
        else:
            timeout = _tcp_timeout(src, dst)
            expires = now + getattr(self.timeouts, timeout)
        state.timeout = timeout
        state.expires = expires
        if expires < state.deadline:
            state.deadline = expires
            heapq.heappush(self._heap, (expires, next(self._order), state))
        return True

    def related(self, inner: PacketInfo, now: float) -> State | None:
        """Return the state of the packet quoted by an ICMP error, None if untracked.

        ``inner`` travelled the other way from the error; for TCP its
        sequence number must be inside its sender's window (else ``badstate``).
        """
        key = _key(inner)
        if key is None:
            return None
        self.stats.searches += 1
        state = self._states.get(key)
        if state is None or state.expires <= now:
            return None
        if state.proto == PROTO_TCP:
            forward = inner.src == state.src and inner.sport == state.sport
            src, dst = state.peers if forward else state.peers[::-1]
            dws = dst.wscale if src.wscale >= 0 and dst.wscale >= 0 else 0
            if not (
                src.seen
                and _diff(src.seqhi, inner.seq) >= 0
                and _diff(inner.seq, src.seqlo - (dst.max_win << dws)) >= 0
            ):
                self.stats.badstate += 1
                return None
        self.stats.matches += 1
        self.stats.related += 1
        return state

    # -- creation and removal ----------------------------------------------------

    def creatable(self, info: PacketInfo, *, pickup: bool = False) -> bool:
        """Return True if ``info`` may create a state (the limit aside).

        TCP needs a SYN without ACK (``pickup``: any segment but a RST); ICMP
        needs an echo request; non-first TCP/UDP fragments never can.
        """
        if _key(info) is None:
            return False
        if info.proto == PROTO_TCP:
            flags = info.tcp_flags
            if flags & tcp.RST:
                return False
            return pickup or flags & (tcp.SYN | tcp.ACK) == tcp.SYN
        if is_echo(info):
            return info.icmp_type == echo_request_type(info.family)
        return True

    def create(
        self, info: PacketInfo, rule: int, now: float, *, pickup: bool = False
    ) -> State | None:
        """Create the state of the flow ``info`` starts; None if not creatable or full.

        An existing state with the same key is replaced.
        """
        if not self.creatable(info, pickup=pickup):
            return None
        key = _key(info)
        assert key is not None, "creatable packets have keys"
        old = self._states.get(key)
        if old is not None:
            self._remove(old)
        if self.room() <= 0:
            self.expire(now)
            if self.room() <= 0:
                self.stats.limit += 1
                return None
        state = State(
            key,
            info.family,
            info.proto,
            info.src,
            info.sport,
            info.dst,
            info.dport,
            rule,
            now,
            now,
            "",
        )
        src, dst = state.peers
        if info.proto == PROTO_TCP:
            _open_tcp(src, dst, info)
            timeout = "tcp_first"
        else:
            src.state = SINGLE
            src.seen = True
            if state._is_echo():
                timeout = "icmp_first"
            elif info.proto == PROTO_UDP:
                timeout = "udp_first"
            else:
                timeout = "other_first"
        state.packets[0] = 1
        state.bytes[0] = info.length
        state.timeout = timeout
        state.expires = state.deadline = now + getattr(self.timeouts, timeout)
        self._states[key] = state
        heapq.heappush(self._heap, (state.deadline, next(self._order), state))
        self.stats.inserts += 1
        return state

    def room(self) -> int:
        """Return how many more states (or NAT mappings) the limit allows."""
        others = len(self.others) if self.others is not None else 0
        return self.max_states - len(self._states) - others

    def remove(self, state: State) -> None:
        """Remove ``state`` (counted in ``removals``)."""
        if not state.removed:
            self._remove(state)

    def expire(self, now: float) -> int:
        """Remove every state whose expiry is at or before ``now``; return how many."""
        heap = self._heap
        count = 0
        while heap and heap[0][0] <= now:
            at, _, state = heapq.heappop(heap)
            if state.removed or at != state.deadline:
                continue
            if state.expires > now:
                state.deadline = state.expires
                heapq.heappush(heap, (state.expires, next(self._order), state))
                continue
            self._remove(state)
            count += 1
        self.stats.expired += count
        return count

    def next_deadline(self) -> float | None:
        """Return when the next state expires (call ``expire`` then), None if empty."""
        heap = self._heap
        while heap:
            at, _, state = heap[0]
            if state.removed or at != state.deadline:
                heapq.heappop(heap)
            elif state.expires > at:
                state.deadline = state.expires
                heapq.heapreplace(heap, (state.expires, next(self._order), state))
            else:
                return at
        return None

    def flush(self) -> int:
        """Remove every state; return how many there were."""
        count = len(self._states)
        for state in self._states.values():
            state.removed = True
        self._states.clear()
        self._heap.clear()
        self.stats.removals += count
        return count

    # -- internals -------------------------------------------------------------------

    def _remove(self, state: State) -> None:
        del self._states[state.key]
        state.removed = True
        self.stats.removals += 1

    def _set_expiry(self, state: State, timeout: str, now: float) -> None:
        expires = now + getattr(self.timeouts, timeout)
        state.timeout = timeout
        state.expires = expires
        if expires < state.deadline:
            state.deadline = expires
            heapq.heappush(self._heap, (expires, next(self._order), state))


# --------------------------------------------------------------------------
# TCP tracking
# --------------------------------------------------------------------------


def _unscale_syn_window(window: int, shift: int) -> int:
    """Return a SYN's (never scaled) window in units of ``shift``, rounded up."""
    return (window + (1 << shift) - 1) >> shift


def _open_tcp(src: Peer, dst: Peer, info: PacketInfo) -> None:
    """Set up both sides from the segment that creates the state."""
    flags = info.tcp_flags
    end = info.seq + info.payload_len
    if flags & tcp.SYN:
        end += 1
        src.wscale = info.wscale
    if flags & tcp.FIN:
        end += 1
        src.fin_end = end & _MASK
        src.state = CLOSING
    else:
        src.state = SYN_SENT
    src.seen = True
    src.seqlo = end & _MASK
    src.seqhi = src.seqlo
    window = max(info.window, 1)
    if src.wscale > 0:
        window = _unscale_syn_window(window, src.wscale)
    src.max_win = window
    if flags & tcp.ACK:
        src.ack = info.ack
        src.acked = True
    dst.state = CLOSED
    dst.max_win = 1


def _track_tcp(src: Peer, dst: Peer, info: PacketInfo) -> bool:
    """Check a segment from ``src`` against the windows and advance the state."""
    flags = info.tcp_flags
    syn = flags & tcp.SYN
    win = info.window
    seq = info.seq
    if src.wscale >= 0 and dst.wscale >= 0 and not syn:
        sws, dws = src.wscale, dst.wscale
    else:
        sws = dws = 0

    if flags & tcp.RST:
        return _track_rst(src, dst, info)

    end = seq + info.payload_len + (1 if syn else 0)
    data_end = end
    if flags & tcp.FIN:
        end += 1
    if not src.seen:
        # The first segment from this side (the responder): learn it.
        if syn and dst.wscale >= 0:
            if info.wscale >= 0:
                src.wscale = info.wscale
                sws, dws = src.wscale, dst.wscale
                win = _unscale_syn_window(win, sws)
            else:
                # The responder declined scaling: the initiator's window was never scaled.
                dst.max_win = min(0xFFFF, dst.max_win << dst.wscale)
                dst.wscale = -1
        src.seen = True
        src.seqlo = seq & _MASK
        if src.state < SYN_SENT:
            src.state = SYN_SENT
        src.seqhi = (end + max(1, dst.max_win << dws)) & _MASK
        src.max_win = max(src.max_win, win)

    real_ack = bool(flags & tcp.ACK) and dst.seen
    ack = info.ack if real_ack else dst.seqlo
    if _diff(seq, end) == 0:
        # Nothing in sequence space (a pure ACK): only the ACK is checked.
        seq = data_end = end = src.seqlo
    ackskew = _diff(dst.seqlo, ack)

    in_window = (
        _diff(src.seqhi, data_end) >= 0
        and _diff(seq, src.seqlo - (dst.max_win << dws)) >= 0
        and -MAX_ACK_WINDOW <= ackskew <= (MAX_ACK_WINDOW << sws)
    )
    loose = (
        not in_window
        and (dst.state < SYN_SENT or dst.state >= FIN_WAIT_2 or src.state >= FIN_WAIT_2)
        and _diff(src.seqhi + MAX_ACK_WINDOW, data_end) >= 0
        and _diff(seq, src.seqlo - MAX_ACK_WINDOW) >= 0
    )
    if not in_window and not loose:
        return False

    src.max_win = max(src.max_win, win)
    if _diff(end, src.seqlo) > 0:
        src.seqlo = end & _MASK
    if real_ack:
        if not src.acked or _diff(ack, src.ack) > 0:
            src.ack = ack & _MASK
            src.acked = True
        scaled = win << sws
        if _diff(ack + scaled, dst.seqhi) >= 0:
            dst.seqhi = (ack + max(scaled, 1)) & _MASK
    if flags & tcp.FIN and src.state < CLOSING:
        src.state = CLOSING
        src.fin_end = end & _MASK
    if in_window:
        if syn and src.state < SYN_SENT:
            src.state = SYN_SENT
        if real_ack:
            if dst.state == SYN_SENT:
                dst.state = ESTABLISHED
            elif dst.state == CLOSING and _diff(ack, dst.fin_end) >= 0:
                dst.state = FIN_WAIT_2
    return True


def _track_segment(
    src: Peer, dst: Peer, flags: int, seq: int, ack: int, win: int, payload_len: int
) -> bool:
    """:func:`_track_tcp` for a segment with neither SYN nor RST (the flow cache's), its
    fields given: the same checks and updates, the sequence arithmetic inline."""
    sws = src.wscale
    dws = dst.wscale
    if sws < 0 or dws < 0:
        sws = dws = 0
    end = data_end = seq + payload_len
    fin = flags & _FIN
    if fin:
        end += 1
    if not src.seen:
        # The first segment from this side (the responder): learn it.
        src.seen = True
        src.seqlo = seq & _MASK
        if src.state < SYN_SENT:
            src.state = SYN_SENT
        src.seqhi = (end + max(1, dst.max_win << dws)) & _MASK
        src.max_win = max(src.max_win, win)
    dst_seqlo = dst.seqlo
    real_ack = flags & _ACK and dst.seen
    if not real_ack:
        ack = dst_seqlo
    seqlo = src.seqlo
    if end == seq:
        # Nothing in sequence space (a pure ACK): only the ACK is checked.
        seq = data_end = end = seqlo
    # _diff(a, b) is ((a - b + _HALF) & _MASK) - _HALF; its tests against 0 below are
    # (a - b) & _MASK against _HALF.
    ackskew = ((dst_seqlo - ack + _HALF) & _MASK) - _HALF
    seqhi = src.seqhi
    in_window = (
        (seqhi - data_end) & _MASK < _HALF
        and (seq - seqlo + (dst.max_win << dws)) & _MASK < _HALF
        and -MAX_ACK_WINDOW <= ackskew <= (MAX_ACK_WINDOW << sws)
    )
    if not in_window and not (
        (dst.state < SYN_SENT or dst.state >= FIN_WAIT_2 or src.state >= FIN_WAIT_2)
        and (seqhi + MAX_ACK_WINDOW - data_end) & _MASK < _HALF
        and (seq - seqlo + MAX_ACK_WINDOW) & _MASK < _HALF
    ):
        return False
    if win > src.max_win:
        src.max_win = win
    if 0 < (end - seqlo) & _MASK < _HALF:
        src.seqlo = end & _MASK
    if real_ack:
        if not src.acked or 0 < (ack - src.ack) & _MASK < _HALF:
            src.ack = ack & _MASK
            src.acked = True
        scaled = win << sws
        if (ack + scaled - dst.seqhi) & _MASK < _HALF:
            dst.seqhi = (ack + (scaled or 1)) & _MASK  # max(scaled, 1): scaled >= 0
        if in_window:
            state = dst.state
            if state == SYN_SENT:
                dst.state = ESTABLISHED
            elif state == CLOSING and (ack - dst.fin_end) & _MASK < _HALF:
                dst.state = FIN_WAIT_2
    if fin and src.state < CLOSING:
        src.state = CLOSING
        src.fin_end = end & _MASK
    return True


def _track_rst(src: Peer, dst: Peer, info: PacketInfo) -> bool:
    """Accept a RST only inside the receiver's window (RFC 5961 section 3.2 in spirit)."""
    seq = info.seq
    if not src.seen:
        # A RST answering the SYN: it must acknowledge it (RFC 9293 3.10.7.3).
        # Or, after a picked-up segment, one taking its sequence from that ACK.
        ok = (bool(info.tcp_flags & tcp.ACK) and _diff(info.ack, dst.seqlo) == 0) or (
            dst.acked and _diff(seq, dst.ack) == 0
        )
    elif dst.acked:
        left = dst.ack if _diff(dst.ack, src.seqlo) < 0 else src.seqlo
        ok = _diff(seq, left - 1) >= 0 and _diff(src.seqhi, seq) >= 0
    else:
        ok = abs(_diff(seq, src.seqlo)) <= 1
    if not ok:
        return False
    src.seen = True
    src.state = dst.state = TIME_WAIT
    return True


def _tcp_timeout(src: Peer, dst: Peer) -> str:
    """Return the timeout class of a TCP state from its sides (pf's order)."""
    if src.state >= FIN_WAIT_2 and dst.state >= FIN_WAIT_2:
        return "tcp_closed"
    if src.state >= CLOSING and dst.state >= CLOSING:
        return "tcp_finwait"
    if src.state < ESTABLISHED or dst.state < ESTABLISHED:
        return "tcp_opening"
    if src.state >= CLOSING or dst.state >= CLOSING:
        return "tcp_closing"
    return "tcp_established"
