"""The firewall's flow cache: established flows pass on the fast path, and only while
their state would pass them (windows, expiry, ruleset loads, flushes, NAT)."""

from __future__ import annotations

import tomllib

import dpkt
import pytest

from vrouter.firewall import subsystem as firewall
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.firewall.states import ESTABLISHED, TIME_WAIT
from vrouter.inet import ipv4

H1, H2 = "192.0.2.2", "198.51.100.2"

RULES = """
default = "block"

[[rules]]
action = "pass"
direction = "in"
interface = "t1"
proto = "udp"
label = "udp-out"

[[rules]]
action = "pass"
direction = "in"
interface = "t1"
proto = "tcp"
label = "tcp-out"
"""


def _ruleset(text: str = RULES):
    return parse_ruleset(tomllib.loads(text))


@pytest.fixture
def net(lab):
    """Router r between h1 and h2 with a stateful firewall: h1 may start flows, h2 may not."""
    r = lab.vnet("r")
    h1 = lab.host(r, "t1", "192.0.2.1/24", H1)
    h2 = lab.host(r, "t2", "198.51.100.1/24", H2)
    h1.learn_router(lab.now)
    h2.learn_router(lab.now)
    h1.send(h1.udp(H2, sport=1), lab.now)  # resolve both neighbours before the filter is on
    h2.send(h2.udp(H1, sport=1), lab.now)
    lab.settle()
    h1.take()
    h2.take()
    firewall.replace_ruleset(r, _ruleset())
    firewall.set_enabled(r, True)
    return r, h1, h2


class FullPath:
    """Counts the packets the full forwarding path takes."""

    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = ipv4._forward

        def counting(*args, **kw):
            self.calls += 1
            return real(*args, **kw)

        monkeypatch.setattr(ipv4, "_forward", counting)


def _tcp(
    host,
    dst: str,
    flags: int,
    seq: int,
    ack: int,
    data: bytes = b"",
    *,
    sport: int = 40001,
    dport: int = 5201,
) -> bytes:
    segment = dpkt.tcp.TCP(
        sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, win=65535, data=data
    )
    return host.frame(host.packet(dst, dpkt.ip.IP_PROTO_TCP, segment))


SYN, ACK, FIN, RST = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN, dpkt.tcp.TH_RST


def _handshake(lab, h1, h2) -> tuple[int, int]:
    """Open h1:40001 -> h2:5201; return (h1's next seq, h2's next seq)."""
    h1.send(_tcp(h1, H2, SYN, 1000, 0), lab.now)
    h2.send(_tcp(h2, H1, SYN | ACK, 5000, 1001, sport=5201, dport=40001), lab.now)
    h1.send(_tcp(h1, H2, ACK, 1001, 5001), lab.now)
    assert len(h2.take_ip()) == 2 and len(h1.take_ip()) == 1
    return 1001, 5001


def test_an_established_udp_flow_is_forwarded_from_the_cache(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    fw, flows = r.firewall.fw, r.firewall.flows
    h1.send(h1.udp(H2), lab.now)  # creates the state (full path)
    h1.send(h1.udp(H2), lab.now)  # passed by the state (full path), learned
    assert len(h2.take_ip()) == 2 and flows.inserts == 1
    full = FullPath(monkeypatch)
    passed, by_state = fw.stats.passed, fw.stats.state
    rule = fw.ruleset.rules[0]
    counted = fw.ruleset.counters_of(0).packets
    frame = h1.udp(H2)
    h1.send(frame, lab.now)
    [eth] = h2.take_ip()
    assert full.calls == 0 and flows.hits == 1
    sent = dpkt.ethernet.Ethernet(frame).data
    assert eth.data.ttl == 63 and bytes(eth.data.data) == bytes(sent.data)
    # Counted as the full path counts it: passed in and out, and on the creating rule.
    assert fw.stats.passed == passed + 2 and fw.stats.state == by_state + 2
    assert rule.label == "udp-out" and fw.ruleset.counters_of(0).packets == counted + 1
    [state] = list(fw.states)
    assert state.packets == [4, 0]  # the first packet met the state in and out


def test_the_reply_direction_is_learned_on_its_own(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    for _ in range(2):
        h1.send(h1.udp(H2), lab.now)
    h2.send(h2.udp(H1, sport=33434, dport=40000), lab.now)  # first reply: full path, learned
    assert len(r.firewall.flows.entries) == 2
    full = FullPath(monkeypatch)
    h2.send(h2.udp(H1, sport=33434, dport=40000), lab.now)
    assert len(h1.take_ip()) == 2 and full.calls == 0


def test_a_ruleset_load_empties_the_cache_and_a_flush_stops_the_flow(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    for _ in range(3):
        h1.send(h1.udp(H2), lab.now)
    assert len(h2.take_ip()) == 3 and r.firewall.flows.hits == 1
    firewall.replace_ruleset(r, _ruleset('default = "block"\n'))
    assert r.firewall.flows.entries == {}
    full = FullPath(monkeypatch)
    h1.send(h1.udp(H2), lab.now)  # states are kept across a load (pf): it still passes
    assert len(h2.take_ip()) == 1 and full.calls == 1
    h1.send(h1.udp(H2), lab.now)  # learned again under the new generation
    assert full.calls == 1 and len(h2.take_ip()) == 1
    assert firewall.flush_states(r) == 1
    h1.send(h1.udp(H2), lab.now)
    assert h2.take_ip() == [] and r.inet.stats.filtered == 1


def test_an_expired_state_is_not_passed_by_the_cache(net, lab) -> None:
    r, h1, h2 = net
    for _ in range(3):
        h1.send(h1.udp(H2), lab.now)
    h2.send(h2.udp(H1, sport=33434, dport=40000), lab.now)
    h2.send(h2.udp(H1, sport=33434, dport=40000), lab.now)
    assert len(h1.take_ip()) == 2 and len(r.firewall.flows.entries) == 2
    lab.clock.advance(r.firewall.fw.states.timeouts.udp_multiple + 1)
    h2.send(h2.udp(H1, sport=33434, dport=40000), lab.now)  # h2 may not start a flow
    assert h1.take_ip() == [] and r.inet.stats.filtered == 1
    assert len(r.firewall.fw.states) == 0 and r.firewall.fw.states.stats.expired == 1


def test_tcp_is_cached_once_established_and_its_windows_are_still_checked(
    net, lab, monkeypatch
) -> None:
    r, h1, h2 = net
    fw, flows = r.firewall.fw, r.firewall.flows
    seq, ack = _handshake(lab, h1, h2)
    [state] = list(fw.states)
    assert [p.state for p in state.peers] == [ESTABLISHED, ESTABLISHED]
    assert flows.inserts == 1  # learned from the handshake's last ACK
    full = FullPath(monkeypatch)
    h1.send(_tcp(h1, H2, ACK, seq, ack, b"b" * 100), lab.now)
    seq += 100
    assert len(h2.take_ip()) == 1 and full.calls == 0 and flows.hits == 1
    assert state.peers[0].seqlo == seq  # tracked by the state, as the full path would
    # Far outside the window: refused by the state through the cache, counted as such.
    badstate = fw.stats.badstate
    h1.send(_tcp(h1, H2, ACK, seq + 10_000_000, ack, b"c" * 100), lab.now)
    assert h2.take_ip() == [] and full.calls == 0 and flows.hits == 2
    assert fw.stats.badstate == badstate + 1 and r.inet.stats.filtered == 1
    assert state.peers[0].seqlo == seq  # the state did not move


def test_fin_and_rst_take_the_full_path(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    seq, ack = _handshake(lab, h1, h2)
    for _ in range(2):
        h1.send(_tcp(h1, H2, ACK, seq, ack, b"x" * 10), lab.now)
        seq += 10
    [state] = list(r.firewall.fw.states)
    full = FullPath(monkeypatch)
    h1.send(_tcp(h1, H2, ACK | FIN, seq, ack), lab.now)
    assert full.calls == 1 and len(h2.take_ip()) == 3
    assert state.timeout == "tcp_closing"
    h2.send(_tcp(h2, H1, RST | ACK, ack, seq + 1, sport=5201, dport=40001), lab.now)
    assert full.calls == 2 and len(h1.take_ip()) == 1
    assert [p.state for p in state.peers] == [TIME_WAIT, TIME_WAIT]
    # A new SYN on the same ports after the close: the full path replaces the state.
    h1.send(_tcp(h1, H2, SYN, 90_000, 0), lab.now)
    assert full.calls == 3 and len(h2.take_ip()) == 1
    assert state.removed and len(r.firewall.fw.states) == 1


def test_a_syn_is_never_passed_by_the_cache(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    seq, ack = _handshake(lab, h1, h2)
    h1.send(_tcp(h1, H2, ACK, seq, ack, b"x"), lab.now)
    assert r.firewall.flows.inserts == 1 and r.firewall.flows.hits == 1
    full = FullPath(monkeypatch)
    h1.send(_tcp(h1, H2, SYN, seq + 1, 0), lab.now)
    assert full.calls == 1 and r.firewall.flows.hits == 1


def test_a_route_change_is_seen_by_a_cached_flow(net, lab) -> None:
    import ipaddress

    from vrouter.route import state as route_state

    r, h1, h2 = net
    h3 = lab.host(r, "t3", "203.0.113.1/24", "203.0.113.2")
    for _ in range(3):
        h1.send(h1.udp(H2), lab.now)
    assert len(h2.take_ip()) == 3
    route_state.add_static(
        r, ipaddress.ip_network(f"{H2}/32"), "unicast", ipaddress.ip_address("203.0.113.2"), None
    )
    h1.send(h1.udp(H2), lab.now)
    lab.settle()
    assert h2.take_ip() == [] and len(h3.take_ip()) == 1


def test_a_translating_vnet_does_not_use_the_cache(net, lab) -> None:
    r, h1, h2 = net
    rules = RULES + '\n[[nat]]\naction = "nat"\ninterface = "t2"\nfrom = "192.0.2.0/24"\n'
    firewall.replace_ruleset(r, _ruleset(rules))
    for _ in range(4):
        h1.send(h1.udp(H2), lab.now)
    frames = h2.take_ip()
    assert len(frames) == 4
    assert {bytes(f.data.src) for f in frames} == {bytes([198, 51, 100, 1])}  # translated
    assert r.firewall.flows.entries == {} and r.firewall.flows.hits == 0


def test_mappings_left_by_an_earlier_ruleset_keep_flows_out_of_the_cache(net, lab) -> None:
    r, h1, h2 = net
    rules = RULES + '\n[[nat]]\naction = "nat"\ninterface = "t2"\nfrom = "192.0.2.0/24"\n'
    firewall.replace_ruleset(r, _ruleset(rules))
    h1.send(h1.udp(H2), lab.now)
    assert len(h2.take_ip()) == 1 and len(r.firewall.fw.nat) == 1
    firewall.replace_ruleset(r, _ruleset())  # no NAT rule; the mapping stays
    for _ in range(3):
        h1.send(h1.udp(H2), lab.now)
    frames = h2.take_ip()
    assert {bytes(f.data.src) for f in frames} == {bytes([198, 51, 100, 1])}  # still mapped
    assert len(frames) == 3 and r.firewall.flows.entries == {}
    # Once the mapping is gone the flow is learned and passed from the cache.
    r.firewall.fw.nat.flush()
    for _ in range(3):
        h1.send(h1.udp(H2), lab.now)
    assert len(h2.take_ip()) == 3 and r.firewall.flows.hits >= 1


def test_fragments_never_match_a_cached_flow(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    for _ in range(2):
        h1.send(h1.udp(H2), lab.now)
    h2.take()
    datagram = bytes(dpkt.ethernet.Ethernet(h1.udp(H2)).data.data)
    packet = h1.packet(H2, dpkt.ip.IP_PROTO_UDP, datagram)
    packet.offset = 800  # a later fragment: its first 4 bytes look like the flow's ports
    full = FullPath(monkeypatch)
    h1.send(h1.frame(packet), lab.now)
    assert full.calls + r.inet.stats.filtered == 1 and r.firewall.flows.hits == 0


@pytest.mark.parametrize(
    ("mf", "offset", "cached"), [(False, 0, True), (True, 0, False), (False, 8, False)]
)
def test_a_cached_tcp_flow_takes_whole_packets_only(
    net, lab, monkeypatch, mf: bool, offset: int, cached: bool
) -> None:
    """The flags and fragment offset word, read in one unpack with the length and the
    protocol: DF alone is a whole packet and the cache passes it; MF or an offset is a
    fragment, never the cache's (the full path decides)."""
    r, h1, h2 = net
    seq, ack = _handshake(lab, h1, h2)
    segment = dpkt.tcp.TCP(sport=40001, dport=5201, seq=seq, ack=ack, flags=ACK, win=65535,
                           data=b"d" * 64)  # fmt: skip
    packet = h1.packet(H2, dpkt.ip.IP_PROTO_TCP, segment, df=True)
    packet.mf = int(mf)
    packet.offset = offset
    full = FullPath(monkeypatch)
    hits = r.firewall.flows.hits
    h1.send(h1.frame(packet), lab.now)
    assert r.firewall.flows.hits == hits + cached
    if cached:
        assert len(h2.take_ip()) == 1 and full.calls == 0
    else:  # the full path took it (forwarded or held), never the cache
        assert full.calls + r.inet.stats.filtered == 1


def test_the_cache_is_bounded(net, lab) -> None:
    r, h1, _ = net
    r.firewall.flows.limit = 3
    for port in range(10):
        for _ in range(2):
            h1.send(h1.udp(H2, sport=41000 + port), lab.now)
        assert len(r.firewall.flows.entries) <= 3
    assert r.firewall.flows.inserts == 10


def test_the_sysctl_turns_the_cache_off_and_on(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    knob = next(k for k in firewall.KNOBS if k.name == "net.pf.flowcache")
    assert knob.get(r) is True
    for _ in range(2):
        h1.send(h1.udp(H2), lab.now)
    knob.set(r, False)
    assert r.firewall.flows.entries == {}
    full = FullPath(monkeypatch)
    for _ in range(3):
        h1.send(h1.udp(H2), lab.now)
    assert full.calls == 3 and r.firewall.flows.hits == 0 and len(h2.take_ip()) == 5
    knob.set(r, True)
    for _ in range(2):
        h1.send(h1.udp(H2), lab.now)
    assert full.calls == 4 and r.firewall.flows.hits == 1


PING_RULES = RULES + """
[[rules]]
action = "pass"
direction = "in"
interface = "t1"
proto = "icmp"
icmp_type = "echo-request"
"""


def test_an_echo_flow_is_cached_per_direction_and_type(net, lab, monkeypatch) -> None:
    r, h1, h2 = net
    firewall.replace_ruleset(r, _ruleset(PING_RULES))
    for seq in (1, 2):  # creates the state, then both directions are learned
        h1.send(h1.ping(H2, ident=77, seq=seq), lab.now)
        reply = dpkt.icmp.ICMP(
            type=dpkt.icmp.ICMP_ECHOREPLY,
            data=dpkt.icmp.ICMP.Echo(id=77, seq=seq, data=b"vrouter ping payload"),
        )
        h2.send(h2.frame(h2.packet(H1, dpkt.ip.IP_PROTO_ICMP, reply)), lab.now)
    assert len(h2.take_ip()) == 2 and len(h1.take_ip()) == 2
    assert len(r.firewall.flows.entries) == 2
    assert r.firewall.flows.hits == 1  # the second reply: its direction was learned first
    full = FullPath(monkeypatch)
    h1.send(h1.ping(H2, ident=77, seq=3), lab.now)
    h2.send(h2.frame(h2.packet(H1, dpkt.ip.IP_PROTO_ICMP, reply)), lab.now)
    assert full.calls == 0 and r.firewall.flows.hits == 3
    assert len(h2.take_ip()) == 1 and len(h1.take_ip()) == 1
    # A request from h2 with the same identifier is not a reply: the filter refuses it.
    h2.send(h2.ping(H1, ident=77, seq=9), lab.now)
    assert h1.take_ip() == [] and r.inet.stats.filtered == 1 and r.firewall.flows.hits == 3
    # Another identifier is another flow.
    h1.send(h1.ping(H2, ident=78, seq=1), lab.now)
    assert full.calls == 1 and r.firewall.flows.hits == 3 and len(h2.take_ip()) == 1
