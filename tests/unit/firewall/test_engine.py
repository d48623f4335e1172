"""vrouter.firewall.engine: evaluate end to end on a router between h1 and h2.

h1 (192.0.2.10) sits behind ``vr-h1``, h2 (198.51.100.20) behind ``vr-h2``.
The policy: h1 may open TCP connections to h2:8080; nothing else comes in;
everything may go out.  A forwarded packet meets the filter twice: ``in`` on
its ingress interface and ``out`` on its egress interface.
"""

from __future__ import annotations

import tomllib

from vrouter.firewall.engine import DROP, PASS, REJECT, Firewall, Verdict, evaluate
from vrouter.firewall.packet import parse
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.firewall.states import StateTable
from vrouter.wire import icmp4, icmp6, ipv4, ipv6, tcp, udp

H1 = bytes([192, 0, 2, 10])
H2 = bytes([198, 51, 100, 20])
R = bytes([203, 0, 113, 1])
OTHER = bytes([203, 0, 113, 99])
H1_6 = bytes.fromhex("20010db8000100000000000000000010")
LL = bytes.fromhex("fe800000000000000000000000000001")
SNM = bytes.fromhex("ff0200000000000000000001ff000010")

SYN, ACK, FIN, RST, PSH = tcp.SYN, tcp.ACK, tcp.FIN, tcp.RST, tcp.PSH

POLICY = """
default = "block"

[[rules]]
action = "pass"
direction = "in"
interface = "vr-h1"
proto = "tcp"
from = "192.0.2.10"
to = "198.51.100.20"
to_port = 8080
label = "h1-web"

[[rules]]
action = "pass"
direction = "out"
label = "out"
"""


def firewall(max_states: int = 100) -> Firewall:
    return Firewall(parse_ruleset(tomllib.loads(POLICY)), StateTable(max_states=max_states))


def seg(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    flags: int,
    seq: int,
    ack: int = 0,
    data: bytes = b"",
) -> bytes:
    return ipv4.build(
        src, dst, tcp.PROTO, tcp.build(src, dst, sport, dport, seq, ack, flags, 65535, payload=data)
    )


def h1(flags: int, seq: int, ack: int = 0, dport: int = 8080, data: bytes = b"") -> bytes:
    return seg(H1, H2, 40000, dport, flags, seq, ack, data)


def h2(flags: int, seq: int, ack: int = 0, sport: int = 8080, data: bytes = b"") -> bytes:
    return seg(H2, H1, sport, 40000, flags, seq, ack, data)


def run(fw: Firewall, raw: bytes, direction: str, ifname: str, now: float = 0.0) -> Verdict:
    return evaluate(fw, parse(raw), raw, direction, ifname, now)


def forward_h1_to_h2(fw: Firewall, raw: bytes, now: float = 0.0) -> tuple[Verdict, Verdict]:
    return run(fw, raw, "in", "vr-h1", now), run(fw, raw, "out", "vr-h2", now)


def forward_h2_to_h1(fw: Firewall, raw: bytes, now: float = 0.0) -> tuple[Verdict, Verdict]:
    return run(fw, raw, "in", "vr-h2", now), run(fw, raw, "out", "vr-h1", now)


STATE0 = Verdict(PASS, "state", 0)
DEFAULT_DROP = Verdict(DROP, "default", -1)


def connect(fw: Firewall) -> None:
    assert forward_h1_to_h2(fw, h1(SYN, 1000)) == (Verdict(PASS, "rule", 0), STATE0)
    assert forward_h2_to_h1(fw, h2(SYN | ACK, 5000, 1001)) == (STATE0, STATE0)
    assert forward_h1_to_h2(fw, h1(ACK, 1001, 5001)) == (STATE0, STATE0)


def test_h1_opens_tcp_to_h2_8080_and_closes() -> None:
    fw = firewall()
    connect(fw)
    (state,) = list(fw.states)
    assert state.state_name() == "ESTABLISHED:ESTABLISHED"
    assert forward_h1_to_h2(fw, h1(ACK | PSH, 1001, 5001, data=b"GET /")) == (STATE0, STATE0)
    assert forward_h2_to_h1(fw, h2(ACK | PSH, 5001, 1006, data=b"200 OK")) == (STATE0, STATE0)
    assert forward_h1_to_h2(fw, h1(FIN | ACK, 1006, 5007)) == (STATE0, STATE0)
    assert forward_h2_to_h1(fw, h2(FIN | ACK, 5007, 1007)) == (STATE0, STATE0)
    assert forward_h1_to_h2(fw, h1(ACK, 1007, 5008)) == (STATE0, STATE0)
    assert state.state_name() == "FIN_WAIT_2:FIN_WAIT_2"
    web = fw.ruleset.counters[0]
    # The rule counts every h1 -> h2 packet where it matched (SYN, handshake
    # ACK, request, FIN, last ACK), whether it or its state passed them.
    assert (web.packets, web.bytes, web.states) == (5, 205, 1)
    assert fw.ruleset.counters[1].packets == 0  # the SYN going out matched the state
    assert fw.stats.state == 15 and fw.stats.rule == 1 and fw.stats.passed == 16


def test_nothing_else_comes_in() -> None:
    fw = firewall()
    # h2 may not connect to h1, h1 may not reach h2:22, UDP is not allowed in.
    assert run(fw, h2(SYN, 7000, sport=50000), "in", "vr-h2") == DEFAULT_DROP
    assert run(fw, h1(SYN, 1000, dport=22), "in", "vr-h1") == DEFAULT_DROP
    dgram = ipv4.build(H1, H2, udp.PROTO, udp.build(H1, H2, 5000, 53, b"q"))
    assert run(fw, dgram, "in", "vr-h1") == DEFAULT_DROP
    # The web rule is for vr-h1 only.
    assert run(fw, h1(SYN, 1000), "in", "vr-h2") == DEFAULT_DROP
    # Out, everything passes (and keeps state).
    assert run(fw, dgram, "out", "vr-h2") == Verdict(PASS, "rule", 1)
    assert len(fw.states) == 1
    assert fw.stats.default == 4 and fw.stats.dropped == 4
    assert fw.ruleset.default_counters.packets == 4
    assert fw.ruleset.counters[0].evaluations == 5


def test_non_syn_without_state_falls_through_to_the_default() -> None:
    fw = firewall()
    # flags S/SA (the default of a pass rule keeping state): a stray ACK does not match.
    assert run(fw, h1(ACK, 1001, 5001), "in", "vr-h1") == DEFAULT_DROP
    assert run(fw, h1(SYN | ACK, 1001, 5001), "in", "vr-h1") == DEFAULT_DROP
    assert len(fw.states) == 0


def test_out_of_window_segment_is_dropped_as_badstate() -> None:
    fw = firewall()
    connect(fw)
    far = h2(ACK | PSH, 5001 + 1_000_000, 1001, data=b"x")
    assert run(fw, far, "in", "vr-h2") == Verdict(DROP, "badstate", 0)
    assert fw.stats.badstate == 1 and fw.states.stats.badstate == 1
    # A RST outside the window is dropped too, and the connection lives on.
    assert run(fw, h2(RST, 5001 + 1_000_000), "in", "vr-h2") == Verdict(DROP, "badstate", 0)
    assert forward_h2_to_h1(fw, h2(RST, 5001)) == (STATE0, STATE0)
    (state,) = list(fw.states)
    assert state.state_name() == "TIME_WAIT:TIME_WAIT"


def test_related_icmp_errors_pass_with_their_flow() -> None:
    fw = firewall()
    syn = h1(SYN, 1000)
    assert forward_h1_to_h2(fw, syn)[0].action == PASS
    # A router beyond vr-h2 says the TTL ran out (traceroute) or asks for fragmentation (PMTUD).
    timex = ipv4.build(R, H1, ipv4.PROTO_ICMP, icmp4.error(icmp4.TIME_EXCEEDED, 0, syn))
    needfrag = ipv4.build(
        R, H1, ipv4.PROTO_ICMP, icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_NEEDFRAG, syn, 1400)
    )
    related = Verdict(PASS, "related", 0)
    assert forward_h2_to_h1(fw, timex) == (related, related)
    assert run(fw, needfrag, "in", "vr-h2") == related
    # The same error about a flow nobody tracks stays out.
    untracked = h1(SYN, 1000, dport=22)
    error = ipv4.build(R, H1, ipv4.PROTO_ICMP, icmp4.error(icmp4.TIME_EXCEEDED, 0, untracked))
    assert run(fw, error, "in", "vr-h2") == DEFAULT_DROP
    # And so does one addressed to someone else than the flow's sender.
    misdirected = ipv4.build(R, OTHER, ipv4.PROTO_ICMP, icmp4.error(icmp4.TIME_EXCEEDED, 0, syn))
    assert run(fw, misdirected, "in", "vr-h2") == DEFAULT_DROP
    assert fw.stats.related == 3 and fw.states.stats.related == 3


def test_port_unreachable_for_a_tracked_udp_flow() -> None:
    fw = firewall()
    dgram = ipv4.build(H1, H2, udp.PROTO, udp.build(H1, H2, 5000, 33434, b"probe"))
    assert run(fw, dgram, "out", "vr-h2") == Verdict(PASS, "rule", 1)
    unreach = ipv4.build(
        H2, H1, ipv4.PROTO_ICMP, icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, dgram)
    )
    assert run(fw, unreach, "in", "vr-h2") == Verdict(PASS, "related", 1)
    other = ipv4.build(H1, H2, udp.PROTO, udp.build(H1, H2, 5001, 33434, b"probe"))
    unreach_other = ipv4.build(
        H2, H1, ipv4.PROTO_ICMP, icmp4.error(icmp4.DEST_UNREACH, icmp4.UNREACH_PORT, other)
    )
    assert run(fw, unreach_other, "in", "vr-h2") == DEFAULT_DROP


def test_neighbor_discovery_always_passes() -> None:
    fw = firewall()
    for icmp_type in (
        icmp6.ROUTER_SOLICIT,
        icmp6.ROUTER_ADVERT,
        icmp6.NEIGHBOR_SOLICIT,
        icmp6.NEIGHBOR_ADVERT,
    ):
        msg = icmp6.build(icmp_type, 0, bytes(4) + H1_6, LL, SNM)
        raw = ipv6.build(LL, SNM, ipv6.NH_ICMPV6, msg, hop_limit=255)
        assert run(fw, raw, "in", "vr-h2") == Verdict(PASS, "nd", -1)
    redirect = icmp6.build(icmp6.REDIRECT, 0, bytes(4) + H1_6 + H1_6, LL, H1_6)
    raw = ipv6.build(LL, H1_6, ipv6.NH_ICMPV6, redirect, hop_limit=255)
    assert run(fw, raw, "in", "vr-h2") == DEFAULT_DROP
    assert fw.stats.nd == 4 and len(fw.states) == 0


def test_malformed_and_disabled() -> None:
    fw = firewall()
    truncated = ipv4.build(H1, H2, tcp.PROTO, tcp.build(H1, H2, 40000, 8080, 1, 0, SYN)[:12])
    assert run(fw, truncated, "in", "vr-h1") == Verdict(DROP, "malformed", -1)
    fw.enabled = False
    assert run(fw, truncated, "in", "vr-h1") == Verdict(PASS, "disabled", -1)
    assert run(fw, h2(SYN, 1), "in", "vr-h2") == Verdict(PASS, "disabled", -1)
    assert len(fw.states) == 0
    assert (fw.stats.malformed, fw.stats.disabled) == (1, 2)


def test_states_survive_ruleset_replacement_and_reject() -> None:
    fw = firewall()
    connect(fw)
    fw.ruleset = parse_ruleset(
        tomllib.loads('default = "block"\n[[rules]]\naction = "reject"\nproto = "tcp"')
    )
    assert forward_h1_to_h2(fw, h1(ACK | PSH, 1001, 5001, data=b"more")) == (STATE0, STATE0)
    assert run(fw, h1(SYN, 9000, dport=8081), "in", "vr-h1") == Verdict(REJECT, "rule", 0)
    assert fw.stats.rejected == 1


def test_state_limit_drops_new_flows_only() -> None:
    fw = firewall(max_states=1)
    connect(fw)
    second = seg(H1, H2, 40001, 8080, SYN, 3000)
    assert run(fw, second, "in", "vr-h1") == Verdict(DROP, "state_limit", 0)
    assert fw.states.stats.limit == 1 and fw.stats.state_limit == 1
    assert forward_h1_to_h2(fw, h1(ACK | PSH, 1001, 5001, data=b"x")) == (STATE0, STATE0)


def test_pass_without_state_and_flags_any_pickup() -> None:
    fw = Firewall(
        parse_ruleset(
            tomllib.loads(
                'default = "block"\n'
                '[[rules]]\naction = "pass"\nproto = "icmp"\n'
                '[[rules]]\naction = "pass"\nproto = "udp"\nkeep_state = false\n'
                '[[rules]]\naction = "pass"\nproto = "tcp"\nflags = "any"\ndirection = "out"\n'
            )
        ),
        StateTable(),
    )
    reply = ipv4.build(H2, H1, 1, icmp4.IcmpMessage(icmp4.ECHO_REPLY, 0, 5 << 16, b"").emit())
    assert run(fw, reply, "in", "vr-h2") == Verdict(PASS, "rule", 0)
    dgram = ipv4.build(H1, H2, udp.PROTO, udp.build(H1, H2, 5000, 53, b"q"))
    assert run(fw, dgram, "in", "vr-h1") == Verdict(PASS, "rule", 1)
    assert len(fw.states) == 0
    # An established connection seen mid-stream going out is picked up...
    assert run(fw, h1(ACK | PSH, 1001, 5001, data=b"x"), "out", "vr-h2") == Verdict(PASS, "rule", 2)
    # ... and its answers come back in by the state.
    assert run(fw, h2(ACK, 5001, 1002), "in", "vr-h2") == Verdict(PASS, "state", 2)
    assert fw.ruleset.counters[2].states == 1
