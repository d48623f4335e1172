"""vrouter.firewall.states: TCP tracking after pf, pseudo-states, related errors, timeouts, limit.

Every packet is built as bytes (dpkt for TCP with options, ``vrouter.wire``
builders otherwise) and parsed with ``vrouter.firewall.packet.parse``.  The
client 192.0.2.10:40000 opens to the server 198.51.100.20:8080; the clock
is a plain number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrouter.firewall.packet import PROTO_TCP, PacketInfo, parse, quoted
from vrouter.firewall.states import (
    CLOSED,
    CLOSING,
    ESTABLISHED,
    FIN_WAIT_2,
    MAX_ACK_WINDOW,
    SYN_SENT,
    TIME_WAIT,
    Peer,
    State,
    StateTable,
    Timeouts,
    _track_segment,
    _track_tcp,
)
from vrouter.wire import icmp4, icmp6, ipv4, ipv6, tcp, udp

C = bytes([192, 0, 2, 10])
S = bytes([198, 51, 100, 20])
R = bytes([203, 0, 113, 1])
C6 = bytes.fromhex("20010db8000100000000000000000010")
S6 = bytes.fromhex("20010db8000200000000000000000020")

SYN, ACK, FIN, RST, PSH = tcp.SYN, tcp.ACK, tcp.FIN, tcp.RST, tcp.PSH

ISN_C = 1000
ISN_S = 5000


def _tcp(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    flags: int,
    seq: int,
    ack: int,
    win: int,
    data: int,
    wscale: int | None,
) -> bytes:
    seg = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq % 2**32, ack=ack % 2**32, flags=flags)
    seg.win = win
    if wscale is not None:
        seg.opts = bytes([1, 3, 3, wscale])
        seg.off = 6
    seg.data = b"d" * data
    return ipv4.build(src, dst, tcp.PROTO, bytes(seg))


def c(
    flags: int, seq: int, ack: int = 0, win: int = 65535, data: int = 0, ws: int | None = None
) -> PacketInfo:
    """A segment client -> server."""
    return parse(_tcp(C, S, 40000, 8080, flags, seq, ack, win, data, ws))


def s(
    flags: int, seq: int, ack: int = 0, win: int = 65535, data: int = 0, ws: int | None = None
) -> PacketInfo:
    """A segment server -> client."""
    return parse(_tcp(S, C, 8080, 40000, flags, seq, ack, win, data, ws))


def udp_info(src: bytes = C, dst: bytes = S, sport: int = 5000, dport: int = 53) -> PacketInfo:
    return parse(ipv4.build(src, dst, udp.PROTO, udp.build(src, dst, sport, dport, b"q")))


def echo(icmp_type: int, ident: int, src: bytes = C, dst: bytes = S) -> PacketInfo:
    if len(src) == 16:
        msg = icmp6.Icmp6Message(icmp_type, 0, ident << 16 | 1, b"").emit(src, dst)
        return parse(ipv6.build(src, dst, ipv6.NH_ICMPV6, msg))
    body = icmp4.IcmpMessage(icmp_type, 0, ident << 16 | 1, b"ping").emit()
    return parse(ipv4.build(src, dst, ipv4.PROTO_ICMP, body))


def gre(src: bytes = C, dst: bytes = S) -> PacketInfo:
    return parse(ipv4.build(src, dst, 47, b"\x00\x00\x08\x00"))


def feed(table: StateTable, info: PacketInfo, now: float = 0.0) -> bool | None:
    """Look the packet up and track it: None if untracked, else whether it passes."""
    found = table.lookup(info, now)
    if found is None:
        return None
    state, forward = found
    return table.update(state, info, forward, now)


def the_state(table: StateTable) -> State:
    (state,) = list(table)
    return state


def opened(table: StateTable, ws_c: int | None = None, ws_s: int | None = None) -> State:
    """Return an ESTABLISHED:ESTABLISHED state after a three-way handshake."""
    state = table.create(c(SYN, ISN_C, ws=ws_c), 0, 0.0)
    assert state is not None
    assert feed(table, s(SYN | ACK, ISN_S, ISN_C + 1, ws=ws_s)) is True
    assert feed(table, c(ACK, ISN_C + 1, ISN_S + 1)) is True
    return state


# -- TCP ------------------------------------------------------------------------------


def test_three_way_handshake_and_orderly_close() -> None:
    table = StateTable()
    state = table.create(c(SYN, ISN_C), 4, 0.0)
    assert state is not None
    assert (state.src, state.sport, state.dst, state.dport, state.rule) == (C, 40000, S, 8080, 4)
    assert (state.state_name(), state.timeout) == ("SYN_SENT:CLOSED", "tcp_first")
    steps = [
        (s(SYN | ACK, ISN_S, ISN_C + 1), "ESTABLISHED:SYN_SENT", "tcp_opening"),
        (c(ACK, ISN_C + 1, ISN_S + 1), "ESTABLISHED:ESTABLISHED", "tcp_established"),
        (c(ACK | PSH, ISN_C + 1, ISN_S + 1, data=100), "ESTABLISHED:ESTABLISHED", None),
        (s(ACK | PSH, ISN_S + 1, ISN_C + 101, data=300), "ESTABLISHED:ESTABLISHED", None),
        (c(FIN | ACK, ISN_C + 101, ISN_S + 301), "CLOSING:ESTABLISHED", "tcp_closing"),
        (s(ACK, ISN_S + 301, ISN_C + 101), "CLOSING:ESTABLISHED", "tcp_closing"),
        (s(ACK, ISN_S + 301, ISN_C + 102), "FIN_WAIT_2:ESTABLISHED", "tcp_closing"),
        (s(FIN | ACK, ISN_S + 301, ISN_C + 102), "FIN_WAIT_2:CLOSING", "tcp_finwait"),
        (c(ACK, ISN_C + 102, ISN_S + 302), "FIN_WAIT_2:FIN_WAIT_2", "tcp_closed"),
    ]
    for info, name, timeout in steps:
        assert feed(table, info, 1.0) is True, name
        assert state.state_name() == name
        if timeout is not None:
            assert state.timeout == timeout
    assert state.packets == [5, 5]
    assert table.stats.badstate == 0
    # Port reuse: a new SYN replaces the closed state.
    assert table.lookup(c(SYN, 90000), 2.0) is None
    assert len(table) == 0 and state.removed
    assert table.create(c(SYN, 90000), 0, 2.0) is not None


def test_simultaneous_open() -> None:
    table = StateTable()
    state = table.create(c(SYN, ISN_C), 0, 0.0)
    assert state is not None
    assert feed(table, s(SYN, ISN_S)) is True
    assert state.state_name() == "SYN_SENT:SYN_SENT"
    assert feed(table, c(SYN | ACK, ISN_C, ISN_S + 1)) is True
    assert state.state_name() == "SYN_SENT:ESTABLISHED"
    assert feed(table, s(SYN | ACK, ISN_S, ISN_C + 1)) is True
    assert state.state_name() == "ESTABLISHED:ESTABLISHED"
    assert feed(table, c(ACK | PSH, ISN_C + 1, ISN_S + 1, data=10)) is True
    assert state.timeout == "tcp_established"


def test_handshake_ack_crossing_server_data() -> None:
    """The server's first data may arrive before the client's handshake ACK."""
    table = StateTable()
    state = table.create(c(SYN, ISN_C), 0, 0.0)
    assert state is not None
    assert feed(table, s(SYN | ACK, ISN_S, ISN_C + 1)) is True
    assert feed(table, s(ACK | PSH, ISN_S + 1, ISN_C + 1, data=50)) is True
    assert feed(table, c(ACK, ISN_C + 1, ISN_S + 51)) is True
    assert state.state_name() == "ESTABLISHED:ESTABLISHED"


def test_simultaneous_close() -> None:
    table = StateTable()
    state = opened(table)
    assert feed(table, c(FIN | ACK, ISN_C + 1, ISN_S + 1)) is True
    assert feed(table, s(FIN | ACK, ISN_S + 1, ISN_C + 1)) is True
    assert (state.state_name(), state.timeout) == ("CLOSING:CLOSING", "tcp_finwait")
    assert feed(table, c(ACK, ISN_C + 2, ISN_S + 2)) is True
    assert state.state_name() == "CLOSING:FIN_WAIT_2"
    assert feed(table, s(ACK, ISN_S + 2, ISN_C + 2)) is True
    assert (state.state_name(), state.timeout) == ("FIN_WAIT_2:FIN_WAIT_2", "tcp_closed")
    # Late retransmissions after the close still pass (pf's loose branch).
    assert feed(table, c(FIN | ACK, ISN_C + 1, ISN_S + 2)) is True


def test_retransmitted_syn_and_syn_ack() -> None:
    table = StateTable()
    state = table.create(c(SYN, ISN_C, ws=7), 0, 0.0)
    assert state is not None
    assert feed(table, c(SYN, ISN_C, ws=7), 1.0) is True
    assert feed(table, c(SYN, ISN_C, ws=7), 3.0) is True
    assert state.state_name() == "SYN_SENT:CLOSED"
    assert feed(table, s(SYN | ACK, ISN_S, ISN_C + 1, ws=7)) is True
    assert feed(table, s(SYN | ACK, ISN_S, ISN_C + 1, ws=7)) is True
    assert feed(table, c(ACK, ISN_C + 1, ISN_S + 1, win=500)) is True
    assert state.state_name() == "ESTABLISHED:ESTABLISHED"
    assert table.stats.badstate == 0


@pytest.mark.parametrize(
    ("rst", "accepted"),
    [
        (s(RST | ACK, 0, ISN_C + 1), True),  # closed port answers the SYN
        (s(RST | ACK, 0, ISN_C + 77), False),  # does not acknowledge the SYN
        (s(RST, 0), False),  # no ACK at all
        (c(RST, ISN_C + 1), True),  # the client aborts its own attempt
        (c(RST, ISN_C + 100), False),
    ],
)
def test_rst_in_syn_sent(rst: PacketInfo, accepted: bool) -> None:
    table = StateTable()
    state = table.create(c(SYN, ISN_C), 0, 0.0)
    assert state is not None
    assert feed(table, rst, 1.0) is accepted
    if accepted:
        assert (state.state_name(), state.timeout) == ("TIME_WAIT:TIME_WAIT", "tcp_closed")
        assert table.stats.badstate == 0
    else:
        assert state.state_name() == "SYN_SENT:CLOSED"
        assert table.stats.badstate == 1


@pytest.mark.parametrize(
    ("rst", "accepted"),
    [
        (s(RST, ISN_S + 1), True),  # exactly at the server's next sequence number
        (s(RST | ACK, ISN_S + 1, ISN_C + 1), True),
        (s(RST, ISN_S), True),  # one before
        (s(RST, ISN_S + 30000), True),  # inside the client's receive window
        (s(RST, ISN_S + 1 + 65535 + 1), False),  # past the window
        (s(RST, ISN_S + 1_000_000), False),
        (s(RST, ISN_S - 2), False),  # before what the client acknowledged
        (c(RST, ISN_C + 1), True),
        (c(RST, ISN_C + 1 - 100_000), False),
    ],
)
def test_rst_in_established(rst: PacketInfo, accepted: bool) -> None:
    table = StateTable()
    state = opened(table)
    assert feed(table, rst, 5.0) is accepted
    if accepted:
        assert state.state_name() == "TIME_WAIT:TIME_WAIT"
        assert state.expires == 5.0 + 90
    else:
        assert state.state_name() == "ESTABLISHED:ESTABLISHED"
        assert table.stats.badstate == 1
        # Ignored: the connection goes on.
        assert feed(table, c(ACK | PSH, ISN_C + 1, ISN_S + 1, data=10)) is True


@pytest.mark.parametrize(
    ("offset", "accepted"), [(0, True), (1000, True), (70_000, False), (-5, False)]
)
def test_rst_in_fin_states(offset: int, accepted: bool) -> None:
    table = StateTable()
    state = opened(table)
    assert feed(table, c(FIN | ACK, ISN_C + 1, ISN_S + 1)) is True
    assert feed(table, s(ACK, ISN_S + 1, ISN_C + 2)) is True
    assert state.state_name() == "FIN_WAIT_2:ESTABLISHED"
    assert feed(table, s(RST, ISN_S + 1 + offset)) is accepted
    expected = "TIME_WAIT:TIME_WAIT" if accepted else "FIN_WAIT_2:ESTABLISHED"
    assert state.state_name() == expected
    assert table.stats.badstate == (0 if accepted else 1)


def test_out_of_window_data_is_dropped_and_the_state_kept() -> None:
    table = StateTable()
    state = opened(table)
    before = (state.peers[1].seqlo, state.peers[1].seqhi, state.packets[:])
    # Beyond what the client's window allows.
    assert feed(table, s(ACK, ISN_S + 1 + 65535, ISN_C + 1, data=100)) is False
    # More than a window behind.
    assert feed(table, s(ACK, ISN_S + 1 - 200_000, ISN_C + 1, data=100)) is False
    # Acknowledging data the client never sent.
    assert feed(table, s(ACK, ISN_S + 1, ISN_C + 1 + MAX_ACK_WINDOW + 10)) is False
    assert table.stats.badstate == 3
    assert (state.peers[1].seqlo, state.peers[1].seqhi, state.packets) == before
    # The last byte that fits passes.
    assert feed(table, s(ACK, ISN_S + 1 + 65535 - 100, ISN_C + 1, data=100)) is True


def test_retransmission_out_of_order_probe_and_keepalives() -> None:
    table = StateTable()
    state = opened(table)
    data = c(ACK | PSH, ISN_C + 1, ISN_S + 1, data=1000)
    assert feed(table, data) is True
    assert feed(table, data) is True  # retransmission
    assert feed(table, c(ACK | PSH, ISN_C + 3001, ISN_S + 1, data=1000)) is True  # ahead
    assert feed(table, c(ACK | PSH, ISN_C + 1001, ISN_S + 1, data=2000)) is True  # the gap
    # A duplicate ACK (SACK blocks would ride on it).
    assert feed(table, s(ACK, ISN_S + 1, ISN_C + 1001)) is True
    assert feed(table, s(ACK, ISN_S + 1, ISN_C + 4001, win=0)) is True  # zero window
    assert feed(table, c(ACK, ISN_C + 4001, ISN_S + 1, data=1)) is True  # window probe
    # Keepalives: one below the next sequence number, empty or with one byte.
    assert feed(table, c(ACK, ISN_C + 4000, ISN_S + 1)) is True
    assert feed(table, c(ACK, ISN_C + 4000, ISN_S + 1, data=1)) is True
    assert feed(table, s(ACK, ISN_S, ISN_C + 4001)) is True
    assert feed(table, s(ACK, ISN_S, ISN_C + 4001, data=1)) is True
    assert table.stats.badstate == 0
    assert state.state_name() == "ESTABLISHED:ESTABLISHED"


def test_sequence_numbers_wrap() -> None:
    table = StateTable()
    isn = 2**32 - 10
    assert table.create(c(SYN, isn), 0, 0.0) is not None
    assert feed(table, s(SYN | ACK, ISN_S, isn + 1)) is True
    assert feed(table, c(ACK | PSH, isn + 1, ISN_S + 1, data=100)) is True
    assert feed(table, s(ACK, ISN_S + 1, isn + 101)) is True
    assert feed(table, c(ACK | PSH, isn + 101, ISN_S + 1, data=100)) is True
    assert table.stats.badstate == 0


def test_window_scaling_is_respected() -> None:
    """The client advertises 1000 << 7 = 128000 bytes: a segment 100000 ahead fits."""
    far = s(ACK | PSH, ISN_S + 1 + 100_000, ISN_C + 1, data=1000)
    table = StateTable()
    state = opened(table, ws_c=7, ws_s=7)
    assert (state.peers[0].wscale, state.peers[1].wscale) == (7, 7)
    assert feed(table, c(ACK, ISN_C + 1, ISN_S + 1, win=1000)) is True
    assert feed(table, far) is True
    # Without the server's option nothing is scaled, and the same segment is out of window.
    table = StateTable()
    state = opened(table, ws_c=7, ws_s=None)
    assert (state.peers[0].wscale, state.peers[1].wscale) == (-1, -1)
    assert feed(table, c(ACK, ISN_C + 1, ISN_S + 1, win=1000)) is True
    assert feed(table, far) is False
    # Nor with only the server's option (the client did not offer scaling).
    table = StateTable()
    state = opened(table, ws_c=None, ws_s=7)
    assert (state.peers[0].wscale, state.peers[1].wscale) == (-1, -1)
    assert feed(table, c(ACK, ISN_C + 1, ISN_S + 1, win=1000)) is True
    assert feed(table, far) is False


def test_tcp_creation_needs_syn_without_ack_unless_picked_up() -> None:
    table = StateTable()
    assert table.create(c(ACK, ISN_C, ISN_S), 0, 0.0) is None
    assert table.create(c(SYN | ACK, ISN_C, ISN_S), 0, 0.0) is None
    assert table.create(c(RST, ISN_C), 0, 0.0, pickup=True) is None
    assert len(table) == 0 and table.stats.limit == 0
    state = table.create(c(ACK | PSH, ISN_C, ISN_S, data=100), 0, 0.0, pickup=True)
    assert state is not None and state.peers[0].state == SYN_SENT
    assert feed(table, c(ACK | PSH, ISN_C + 100, ISN_S, data=1000)) is True
    assert feed(table, s(ACK, ISN_S, ISN_C + 1100)) is True
    assert feed(table, c(ACK | PSH, ISN_C + 1100, ISN_S, data=1000)) is True
    assert [p.state for p in state.peers] == [ESTABLISHED, ESTABLISHED]


def test_lookup_is_floating_and_direction_aware() -> None:
    table = StateTable()
    state = table.create(c(SYN, ISN_C), 0, 0.0)
    assert table.lookup(c(SYN, ISN_C), 0.0) == (state, True)
    assert table.lookup(s(SYN | ACK, ISN_S, ISN_C + 1), 0.0) == (state, False)
    other_port = parse(_tcp(S, C, 8081, 40000, SYN | ACK, ISN_S, ISN_C + 1, 100, 0, None))
    assert table.lookup(other_port, 0.0) is None
    assert table.stats.searches == 3 and table.stats.matches == 2


# -- UDP, ICMP echo, other protocols ---------------------------------------------------------


def test_udp_single_then_multiple() -> None:
    table = StateTable()
    state = table.create(udp_info(), 1, 0.0)
    assert state is not None
    assert (state.state_name(), state.timeout, state.expires) == (
        "SINGLE:NO_TRAFFIC",
        "udp_first",
        60,
    )
    assert feed(table, udp_info(), 10.0) is True
    assert (state.state_name(), state.timeout, state.expires) == (
        "SINGLE:NO_TRAFFIC",
        "udp_single",
        40,
    )
    assert table.lookup(udp_info(S, C, 53, 5000), 11.0) == (state, False)
    assert feed(table, udp_info(S, C, 53, 5000), 11.0) is True
    assert (state.state_name(), state.timeout, state.expires) == (
        "MULTIPLE:MULTIPLE",
        "udp_multiple",
        71,
    )
    assert state.packets == [2, 1] and state.bytes == [2 * 29, 29]
    assert feed(table, udp_info(sport=5001), 12.0) is None


@pytest.mark.parametrize(
    ("src", "dst", "req", "rep"),
    [(C, S, icmp4.ECHO_REQUEST, icmp4.ECHO_REPLY), (C6, S6, icmp6.ECHO_REQUEST, icmp6.ECHO_REPLY)],
)
def test_icmp_echo_by_id(src: bytes, dst: bytes, req: int, rep: int) -> None:
    table = StateTable()
    assert table.create(echo(rep, 7, src, dst), 0, 0.0) is None  # replies create nothing
    state = table.create(echo(req, 7, src, dst), 0, 0.0)
    assert state is not None and (state.timeout, state.expires) == ("icmp_first", 20)
    assert feed(table, echo(rep, 8, dst, src)) is None  # another id
    assert feed(table, echo(req, 7, dst, src)) is None  # a request the other way
    assert feed(table, echo(rep, 7, src, dst)) is None  # a reply from the requester
    assert feed(table, echo(rep, 7, dst, src), 1.0) is True
    assert (state.state_name(), state.timeout, state.expires) == (
        "MULTIPLE:MULTIPLE",
        "icmp_error",
        11,
    )
    assert feed(table, echo(req, 7, src, dst), 2.0) is True  # the next ping


def test_other_protocols_are_address_pairs() -> None:
    table = StateTable()
    state = table.create(gre(), 0, 0.0)
    assert state is not None and state.timeout == "other_first"
    assert feed(table, gre(), 1.0) is True and state.timeout == "other_single"
    assert feed(table, gre(S, C), 2.0) is True and state.timeout == "other_multiple"
    assert feed(table, gre(S, R), 2.0) is None
    assert state.describe(2.0)["src"] == "192.0.2.10"


def test_non_first_fragments_have_no_state() -> None:
    table = StateTable()
    assert table.create(udp_info(), 0, 0.0) is not None
    header = ipv4.Ipv4Header(0, 28, 1, 20, 64, udp.PROTO, C, S)
    fragment = parse(header.emit() + b"\x00" * 8)
    assert table.lookup(fragment, 0.0) is None
    assert table.create(fragment, 0, 0.0) is None
    assert not table.creatable(fragment)


# -- related ICMP errors ------------------------------------------------------------------


def _unreach(offending: bytes, src: bytes = S) -> PacketInfo | None:
    raw = ipv4.build(src, C, 1, icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, offending))
    return quoted(parse(raw), raw)


def test_related_port_unreachable_for_tracked_udp_only() -> None:
    table = StateTable()
    state = table.create(udp_info(), 3, 0.0)
    tracked = _unreach(ipv4.build(C, S, udp.PROTO, udp.build(C, S, 5000, 53, b"q")))
    untracked = _unreach(ipv4.build(C, S, udp.PROTO, udp.build(C, S, 5001, 53, b"q")))
    assert tracked is not None and untracked is not None
    assert table.related(tracked, 1.0) is state
    assert table.related(untracked, 1.0) is None
    assert table.stats.related == 1
    assert table.related(tracked, 61.0) is None  # expired


def test_related_tcp_checks_the_quoted_sequence_number() -> None:
    table = StateTable()
    state = opened(table)

    def quote(seq: int) -> PacketInfo:
        info = _unreach(_tcp(C, S, 40000, 8080, ACK, seq, ISN_S + 1, 100, 20, None), src=R)
        assert info is not None
        return info

    assert table.related(quote(ISN_C + 1), 1.0) is state
    assert table.related(quote(ISN_C + 1 + 10_000_000), 1.0) is None
    assert table.stats.badstate == 1


# -- timeouts --------------------------------------------------------------------------------

Scenario = Callable[[StateTable], float]


def _tcp_steps(count: int) -> Scenario:
    steps = [
        s(SYN | ACK, ISN_S, ISN_C + 1),
        c(ACK, ISN_C + 1, ISN_S + 1),
        c(FIN | ACK, ISN_C + 1, ISN_S + 1),
        s(FIN | ACK, ISN_S + 1, ISN_C + 1),
        c(ACK, ISN_C + 2, ISN_S + 2),
        s(ACK, ISN_S + 2, ISN_C + 2),
    ]

    def run(table: StateTable) -> float:
        table.create(c(SYN, ISN_C), 0, 0.0)
        for i, info in enumerate(steps[:count]):
            assert feed(table, info, 1.0 + i) is True
        return float(count)

    return run


def _packets(first: PacketInfo, *more: PacketInfo) -> Scenario:
    def run(table: StateTable) -> float:
        table.create(first, 0, 0.0)
        for i, info in enumerate(more):
            assert feed(table, info, 1.0 + i) is True
        return float(len(more))

    return run


TIMEOUT_SCENARIOS: dict[str, Scenario] = {
    "tcp_first": _tcp_steps(0),
    "tcp_opening": _tcp_steps(1),
    "tcp_established": _tcp_steps(2),
    "tcp_closing": _tcp_steps(3),
    "tcp_finwait": _tcp_steps(4),
    "tcp_closed": _tcp_steps(6),
    "udp_first": _packets(udp_info()),
    "udp_single": _packets(udp_info(), udp_info()),
    "udp_multiple": _packets(udp_info(), udp_info(S, C, 53, 5000)),
    "icmp_first": _packets(echo(8, 1)),
    "icmp_error": _packets(echo(8, 1), echo(0, 1, S, C)),
    "other_first": _packets(gre()),
    "other_single": _packets(gre(), gre()),
    "other_multiple": _packets(gre(), gre(S, C)),
}


def test_every_timeout_has_a_scenario_and_pf_defaults() -> None:
    assert [f.name for f in fields(Timeouts)] == list(TIMEOUT_SCENARIOS)
    assert Timeouts() == Timeouts(120, 30, 86400, 900, 45, 90, 60, 30, 60, 20, 10, 60, 30, 60)


@pytest.mark.parametrize("name", list(TIMEOUT_SCENARIOS))
def test_each_class_expires_at_its_default(name: str) -> None:
    table = StateTable()
    last = TIMEOUT_SCENARIOS[name](table)
    state = the_state(table)
    timeout = getattr(Timeouts(), name)
    assert (state.timeout, state.expires) == (name, last + timeout)
    assert table.next_deadline() == last + timeout
    assert table.expire(last + timeout - 0.001) == 0
    assert table.expire(last + timeout) == 1
    assert len(table) == 0 and table.next_deadline() is None
    assert table.stats.expired == 1 and table.stats.removals == 1


def test_expiry_moves_with_traffic_both_ways() -> None:
    table = StateTable()
    state = table.create(udp_info(), 0, 0.0)
    assert state is not None
    assert table.next_deadline() == 60
    assert feed(table, udp_info(), 50.0) is True  # udp_single: 50 + 30
    assert feed(table, udp_info(S, C, 53, 5000), 55.0) is True  # udp_multiple: 55 + 60
    assert table.expire(60.0) == 0
    assert table.next_deadline() == 115
    # A shorter class brings the deadline forward: established TCP, then RST.
    tcp_table = StateTable()
    opened(tcp_table)
    assert tcp_table.next_deadline() == 86400
    assert feed(tcp_table, s(RST, ISN_S + 1), 100.0) is True
    assert tcp_table.next_deadline() == 190
    assert tcp_table.expire(190.0) == 1


def test_lookup_ignores_an_expired_state_before_expire_runs() -> None:
    table = StateTable(timeouts=Timeouts(udp_first=5))
    assert table.create(udp_info(), 0, 0.0) is not None
    assert feed(table, udp_info(), 4.9) is True
    assert table.lookup(udp_info(), 4.9 + 30) is None
    assert len(table) == 0 and table.stats.expired == 1
    assert table.expire(100.0) == 0


def test_expire_several_in_order() -> None:
    table = StateTable()
    for i in range(5):
        table.create(udp_info(sport=6000 + i), 0, float(i))
    assert table.next_deadline() == 60
    assert table.expire(62.0) == 3
    assert len(table) == 2 and table.next_deadline() == 63


# -- limit, flush, describe --------------------------------------------------------------------


def test_state_limit() -> None:
    table = StateTable(max_states=3)
    infos = [udp_info(sport=7000 + i) for i in range(4)]
    states = [table.create(info, 0, 0.0) for info in infos]
    assert all(st is not None for st in states[:3]) and states[3] is None
    assert table.stats.limit == 1 and table.stats.inserts == 3 and len(table) == 3
    for info in infos[:3]:
        assert feed(table, info, 1.0) is True
    assert feed(table, infos[3], 1.0) is None
    # Once one has expired, creating makes room by expiring first.
    assert feed(table, infos[0], 100.0) is None
    assert table.create(infos[3], 0, 200.0) is not None
    assert table.stats.limit == 1


def test_flush_iter_len_and_replacement() -> None:
    table = StateTable()
    first = table.create(udp_info(), 0, 0.0)
    second = table.create(udp_info(), 1, 1.0)  # same key: replaces
    assert first is not None and first.removed and second is not None
    assert list(table) == [second] and len(table) == 1
    table.create(gre(), 0, 0.0)
    assert table.flush() == 2
    assert len(table) == 0 and table.next_deadline() is None
    assert table.stats.removals == 3 and table.stats.inserts == 3


def test_describe() -> None:
    table = StateTable()
    state = opened(table)
    assert feed(table, c(ACK | PSH, ISN_C + 1, ISN_S + 1, data=10), 2.0) is True
    entry = state.describe(10.0)
    assert {k: v for k, v in entry.items() if k != "tcp"} == {
        "proto": "tcp",
        "family": 4,
        "src": "192.0.2.10:40000",
        "dst": "198.51.100.20:8080",
        "state": "ESTABLISHED:ESTABLISHED",
        "age": 10.0,
        "expires_in": 86392.0,
        "timeout": "tcp_established",
        "packets": [3, 1],
        "bytes": [40 + 40 + 50, 40],
        "rule": 0,
    }
    table6 = StateTable()
    state6 = table6.create(echo(icmp6.ECHO_REQUEST, 9, C6, S6), 2, 0.0)
    assert state6 is not None
    described = state6.describe(1.0)
    assert (described["proto"], described["src"], described["dst"]) == (
        "icmp6",
        "[2001:db8:1::10]:9",
        "[2001:db8:2::20]:9",
    )
    assert described["state"] == "SINGLE:NO_TRAFFIC"


# -- the flow cache's tracking: the same as the full path's ------------------------

_SIDE_STATES = (CLOSED, SYN_SENT, ESTABLISHED, CLOSING, FIN_WAIT_2, TIME_WAIT)
_SEQ = st.integers(0, (1 << 32) - 1)


@st.composite
def _peer(draw: st.DrawFn) -> Peer:
    near = draw(_SEQ)
    near_seq = st.integers(near - 200_000, near + 200_000).map(lambda v: v & 0xFFFFFFFF)
    return Peer(
        state=draw(st.sampled_from(_SIDE_STATES)),
        seen=draw(st.booleans()),
        seqlo=near,
        seqhi=draw(near_seq),
        max_win=draw(st.integers(1, 0xFFFF)),
        wscale=draw(st.integers(-1, 14)),
        ack=draw(near_seq),
        acked=draw(st.booleans()),
        fin_end=draw(st.one_of(st.just(-1), near_seq)),
    )


@settings(max_examples=2500, deadline=None)
@given(
    src=_peer(),
    dst=_peer(),
    ack_flag=st.booleans(),
    fin=st.booleans(),
    window=st.integers(0, 0xFFFF),
    payload_len=st.sampled_from((0, 0, 1, 100, 1448, 65000)),
    data=st.data(),
)
def test_the_flow_cache_tracks_a_segment_as_the_full_path_does(
    src: Peer,
    dst: Peer,
    ack_flag: bool,
    fin: bool,
    window: int,
    payload_len: int,
    data: st.DataObject,
) -> None:
    """``_track_segment`` (fields given, the arithmetic inline) decides and moves both
    sides exactly as ``_track_tcp`` does with a ``PacketInfo``, for every segment
    without SYN and RST: sequence and acknowledgment numbers at each edge the checks
    draw (plus or minus 2), anywhere near, and across the wrap."""
    scaled = src.wscale >= 0 and dst.wscale >= 0
    sws, dws = (src.wscale, dst.wscale) if scaled else (0, 0)
    seq_edges = (
        src.seqlo, src.seqlo - (dst.max_win << dws), src.seqhi - payload_len,
        src.seqlo - MAX_ACK_WINDOW, src.seqhi + MAX_ACK_WINDOW - payload_len,
    )  # fmt: skip
    ack_edges = (
        dst.seqlo, dst.seqlo + MAX_ACK_WINDOW, dst.seqlo - (MAX_ACK_WINDOW << sws),
        dst.seqhi - (window << sws), dst.fin_end, src.ack,
    )  # fmt: skip
    far = st.integers(-300_000, 300_000)
    seq = data.draw(st.sampled_from(seq_edges)) + data.draw(st.one_of(st.integers(-2, 2), far))
    ack = data.draw(st.sampled_from(ack_edges)) + data.draw(st.one_of(st.integers(-2, 2), far))
    seq &= 0xFFFFFFFF
    ack &= 0xFFFFFFFF
    flags = (tcp.ACK if ack_flag else 0) | (tcp.FIN if fin else 0) | tcp.PSH
    info = PacketInfo(4, PROTO_TCP, C, S, 40 + payload_len, 1, 2, flags, seq, ack, window,
                      -1, payload_len)  # fmt: skip
    full_src, full_dst = replace(src), replace(dst)
    fast_src, fast_dst = replace(src), replace(dst)
    verdict = _track_tcp(full_src, full_dst, info)
    assert _track_segment(fast_src, fast_dst, flags, seq, ack, window, payload_len) == verdict
    assert (fast_src, fast_dst) == (full_src, full_dst)


@pytest.mark.parametrize("forward", [True, False])
def test_track_segment_counts_and_times_out_as_update(forward: bool) -> None:
    """``StateTable.track_segment`` (the flow cache's call) leaves a state, its counters
    and its expiry as ``update`` leaves them, and refuses what ``update`` refuses."""
    tables = [StateTable(), StateTable()]
    states = [opened(t) for t in tables]
    for state in states:
        assert [p.state for p in state.peers] == [ESTABLISHED, ESTABLISHED]
    sender = states[0].peers[0 if forward else 1]
    other = states[0].peers[1 if forward else 0]
    for seq, payload in ((sender.seqlo, 100), (sender.seqlo + 100, 0), (sender.seqlo + 10**7, 5)):
        info = PacketInfo(4, PROTO_TCP, C, S, 40 + payload, 1, 2, tcp.ACK, seq, other.seqlo,
                          1000, -1, payload)  # fmt: skip
        full = tables[0].update(states[0], info, forward, 50.0)
        fast = tables[1].track_segment(states[1], forward, tcp.ACK, seq, other.seqlo, 1000,
                                       payload, 40 + payload, 50.0)  # fmt: skip
        assert fast == full
        a, b = states
        assert (a.peers, a.packets, a.bytes, a.expires, a.timeout, a.deadline) == (
            b.peers, b.packets, b.bytes, b.expires, b.timeout, b.deadline
        )
        assert tables[0].stats == tables[1].stats


@pytest.mark.parametrize("forward", [True, False])
def test_track_segment_follows_update_through_a_close(forward: bool) -> None:
    """Through a close (a FIN, its ACK, the other side's FIN, the last ACK) the flow
    cache's call moves the sides, the timeout class, the expiry and the expiry queue as
    ``update`` does, once the sides have left ESTABLISHED too."""
    tables = [StateTable(), StateTable()]
    states = [opened(t) for t in tables]
    seen = []
    steps = ((forward, FIN | ACK), (not forward, ACK), (not forward, FIN | ACK), (forward, ACK))
    for step, (way, flags) in enumerate(steps):
        now = 50.0 + step
        sender, receiver = states[0].peers if way else states[0].peers[::-1]
        seq, ack = sender.seqlo, receiver.seqlo
        info = PacketInfo(4, PROTO_TCP, C, S, 40, 1, 2, flags, seq, ack, 1000, -1, 0)
        assert tables[0].update(states[0], info, way, now)
        assert tables[1].track_segment(states[1], way, flags, seq, ack, 1000, 0, 40, now)
        a, b = states
        assert (a.peers, a.packets, a.bytes, a.expires, a.timeout, a.deadline) == (
            b.peers, b.packets, b.bytes, b.expires, b.timeout, b.deadline
        )
        assert [entry[0] for entry in tables[0]._heap] == [entry[0] for entry in tables[1]._heap]
        seen.append(a.timeout)
    assert seen == ["tcp_closing", "tcp_closing", "tcp_finwait", "tcp_closed"]
    assert [p.state for p in states[1].peers] == [FIN_WAIT_2, FIN_WAIT_2]


@pytest.mark.parametrize("forward", [True, False])
@pytest.mark.parametrize("make", [udp_info, lambda: echo(8, 7), gre])
def test_refresh_tracks_as_update(make: Callable[[], PacketInfo], forward: bool) -> None:
    """``refresh`` (no ``PacketInfo``, the flow cache's call for UDP and echo) moves a
    state's sides, counters and timeout as ``update`` does, from the first packet on."""
    tables = [StateTable(), StateTable()]
    states = [t.create(make(), 0, 0.0) for t in tables]
    assert states[0] is not None and states[1] is not None
    for step in range(3):
        now = 1.0 + step
        assert tables[0].update(states[0], make(), forward, now)
        tables[1].refresh(states[1], forward, make().length, now)
        a, b = states
        assert a is not None and b is not None
        assert (a.peers, a.packets, a.bytes, a.expires, a.timeout) == (
            b.peers, b.packets, b.bytes, b.expires, b.timeout
        )
