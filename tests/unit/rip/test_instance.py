"""Tests for vrouter.rip.instance: the RIP table and its timers, driven by a fake ``now``.

Router R (the instance) has eth0 = 192.0.2.1/26 with neighbour A = 192.0.2.2
and eth1 = 192.0.2.65/26 with neighbour B = 192.0.2.66.  Packets in are
built with ``vrouter.rip.packet`` (checked against BIRD's bytes in
test_packet.py); packets out are parsed back.  Timers are RFC 2453's
defaults (update 30 s, timeout 180 s, garbage 120 s) unless a test says.
"""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest

from vrouter.rip import packet as rip
from vrouter.rip.instance import FibOp, Instance, Timers
from vrouter.rip.packet import INFINITY, REQUEST, RESPONSE, Auth, Entry

V4 = ipaddress.IPv4Network
V6 = ipaddress.IPv6Network
ip = ipaddress.ip_address
A = ip("192.0.2.2")
B = ip("192.0.2.66")
NET1 = V4("198.51.100.0/25")
NET2 = V4("198.51.100.128/26")
T0 = 1000.0
PORT = 520

# BIRD's captured packets (see test_packet.py for how they were made).
BIRD_RESPONSE_V2 = bytes.fromhex(
    "02020000"
    "00020007c6336400ffffff800000000000000001"
    "00020000c63364c0ffffffe00000000000000001"
    "00020000c6336480ffffffc0c000020300000001"
    "00020000c63364e0fffffff00000000000000005"
)
BIRD_RESPONSE_MD5 = bytes.fromhex(
    "02020000ffff0003002c01146b07c6cd0000000000000000"
    "00020000c6336400ffffff800000000000000001"
    "ffff000111b3ae00ceeb9004bb4f875c75e60e50"
)
BIRD_RESPONSE_MD5_NEXT = bytes.fromhex(
    "02020000ffff0003002c01146b07c6ce0000000000000000"
    "00020000c6336400ffffff800000000000000001"
    "ffff000169b2e03c838f4fb295751f5653a0658d"
)
# FRR's ripd with keyed MD5, key "vrouter-md5" id 1 (test_packet.py): ``auth-length
# rfc`` from 192.0.2.49 (Auth Data Len 16), ``old-ripd`` from 192.0.2.65 (20).
FRR_RESPONSE_RFC = bytes.fromhex(
    "02020000ffff0003004001100000000100000000000000000002"
    "0000c0000240fffffff00000000000000001"
    "00020000c6336400ffffff800000000000000001"
    "ffff000150b990d609af0df41e4775a309d9070d"
)
FRR_RESPONSE_OLD = bytes.fromhex(
    "02020000ffff0003004001140000000200000000000000000002"
    "0000c0000230fffffff00000000000000001"
    "00020000c6336400ffffff800000000000000001"
    "ffff000180266ad084292c98a48f9cc980dd4de4"
)
BIRD_RESPONSE_PLAIN = bytes.fromhex(
    "02020000ffff000276726f757465722d706c61696e00000000020000c6336400ffffff800000000000000001"
)
BIRD_RESPONSE_NG = bytes.fromhex(
    "02010000"
    "20010db8010000000000000000000000000930 01"
    "fe800000000000000000000000000003000000ff"
    "20010db8020000000000000000000000000038 01"
    "00000000000000000000000000000000000000ff"
    "20010db8030000000000000000000000000040 01"
)


def router(timers: Timers | None = None, auth: Auth | None = None) -> Instance:
    """Return R with both interfaces, its first regular update already sent."""
    r = Instance(4, timers or Timers(), rng=random.Random(7), auth=auth or Auth())
    r.set_interface("eth0", [ipaddress.IPv4Interface("192.0.2.1/26")], T0)
    r.set_interface("eth1", [ipaddress.IPv4Interface("192.0.2.65/26")], T0)
    r.tick(T0)
    return r


def response(*entries: Entry, auth: Auth | None = None, sequence: int = 0) -> bytes:
    return rip.build_v2(RESPONSE, entries, auth, sequence)


def hear(
    r: Instance, interface: str, source: object, data: bytes, now: float, port: int = PORT
) -> list[FibOp]:
    """Give R a packet; return its forwarding changes (it must not answer)."""
    ops, answers = r.receive(interface, ip(str(source)), port, data, now)
    assert answers == []
    return ops


def table(packets: list[bytes]) -> dict[V4 | V6, int]:
    """Return prefix -> metric of some packets R sent."""
    out: dict[V4 | V6, int] = {}
    for data in packets:
        pkt = rip.parse_v2(data) if data[1] == 2 else rip.parse_ng(data)
        out.update((e.prefix, e.metric) for e in pkt.entries)
    return out


def sent_on(out: list[tuple[str, bytes]], interface: str) -> dict[V4 | V6, int]:
    return table([data for name, data in out if name == interface])


def run_until(r: Instance, end: float) -> list[tuple[float, list[FibOp], list[tuple[str, bytes]]]]:
    """Tick R at each of its deadlines up to ``end``; return what each tick did."""
    events = []
    while (at := r.next_deadline()) <= end:
        ops, out = r.tick(at)
        events.append((at, ops, out))
    return events


# -- learning and choosing ---------------------------------------------------------------


def test_a_new_route_is_learned_with_metric_plus_one() -> None:
    r = router()
    ops = hear(r, "eth0", A, response(Entry(NET1, 2)), T0 + 1)
    assert ops == [FibOp("add", NET1, A, "eth0")]
    route = r.routes[NET1]
    assert (route.metric, route.gateway, route.source, route.interface) == (3, A, A, "eth0")
    assert route.expires == T0 + 1 + 180
    assert r.stats.routes_learned == r.stats.responses == 1
    assert [x.prefix for x in r.installed()] == [NET1]


def test_an_unreachable_route_is_not_learned() -> None:
    r = router()
    assert hear(r, "eth0", A, response(Entry(NET1, 16), Entry(NET2, 15)), T0) == []
    assert NET1 not in r.routes and NET2 not in r.routes  # 15 + 1 is infinity too


def test_a_better_metric_from_another_router_replaces_the_route() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 5)), T0)
    assert hear(r, "eth1", B, response(Entry(NET1, 5)), T0 + 1) == []  # equal: kept
    assert hear(r, "eth1", B, response(Entry(NET1, 9)), T0 + 1) == []  # worse: kept
    assert r.routes[NET1].gateway == A
    assert hear(r, "eth1", B, response(Entry(NET1, 2)), T0 + 2) == [
        FibOp("change", NET1, B, "eth1")
    ]
    route = r.routes[NET1]
    assert (route.metric, route.gateway, route.interface) == (3, B, "eth1")
    assert route.expires == T0 + 2 + 180


def test_the_same_router_is_followed_when_it_gets_worse() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0)
    r.tick(T0)  # send the triggered update for the new route
    assert hear(r, "eth0", A, response(Entry(NET1, 7)), T0 + 10) == []  # same next hop
    route = r.routes[NET1]
    assert (route.metric, route.gateway, route.expires) == (8, A, T0 + 10 + 180)
    assert route.changed  # a triggered update will tell the others
    assert hear(r, "eth0", A, response(Entry(NET1, 1)), T0 + 11) == []
    assert r.routes[NET1].metric == 2


def test_a_next_hop_on_the_link_is_used_as_gateway() -> None:
    r = router()
    nh = ip("192.0.2.3")
    assert hear(r, "eth0", A, response(Entry(NET1, 1, nh)), T0) == [FibOp("add", NET1, nh, "eth0")]
    assert r.routes[NET1].source == A
    # RFC 2453 4.4: a next hop off the link (or ours) means the sender itself.
    hear(r, "eth0", A, response(Entry(NET2, 1, ip("192.0.2.70"))), T0)
    hear(r, "eth0", A, response(Entry(V4("198.51.100.192/27"), 1, ip("192.0.2.1"))), T0)
    assert r.routes[NET2].gateway == A
    assert r.routes[V4("198.51.100.192/27")].gateway == A
    # The same router changing the next hop moves the route.
    assert hear(r, "eth0", A, response(Entry(NET1, 1)), T0 + 1) == [
        FibOp("change", NET1, A, "eth0")
    ]


def test_birds_captured_update_is_learned_with_its_next_hop_and_tag() -> None:
    r = Instance(4, rng=random.Random(1))
    r.set_interface("eth0", [ipaddress.IPv4Interface("192.0.2.2/28")], T0)
    r.set_interface("eth1", [ipaddress.IPv4Interface("192.0.2.65/26")], T0)
    ops = hear(r, "eth0", "192.0.2.1", BIRD_RESPONSE_V2, T0)
    bird, hop = ip("192.0.2.1"), ip("192.0.2.3")
    assert ops == [
        FibOp("add", V4("198.51.100.0/25"), bird, "eth0"),
        FibOp("add", V4("198.51.100.192/27"), bird, "eth0"),
        FibOp("add", V4("198.51.100.128/26"), hop, "eth0"),
        FibOp("add", V4("198.51.100.224/28"), bird, "eth0"),
    ]
    assert r.routes[V4("198.51.100.224/28")].metric == 6
    _, out = r.tick(T0)
    # The tag is kept and passed on (RFC 2453 4.2).
    tags = {
        e.prefix: e.tag for name, data in out if name == "eth1" for e in rip.parse_v2(data).entries
    }
    assert tags[V4("198.51.100.0/25")] == 7
    assert tags[V4("198.51.100.192/27")] == 0


@pytest.mark.parametrize(
    "prefix", ["224.0.0.0/24", "127.0.0.0/8", "0.1.0.0/16", "240.0.0.0/4", "239.1.0.0/16"]
)
def test_martian_destinations_are_ignored(prefix: str) -> None:
    r = router()
    assert hear(r, "eth0", A, response(Entry(V4(prefix), 1)), T0) == []
    assert r.stats.bad_entries == 1


def test_the_default_route_is_learned() -> None:
    r = router()
    assert hear(r, "eth0", A, response(Entry(V4("0.0.0.0/0"), 1)), T0) == [
        FibOp("add", V4("0.0.0.0/0"), A, "eth0")
    ]


def test_a_connected_network_is_never_replaced() -> None:
    r = router()
    assert hear(r, "eth0", A, response(Entry(V4("192.0.2.64/26"), 1)), T0) == []
    route = r.routes[V4("192.0.2.64/26")]
    assert route.connected and route.metric == 1 and route.interface == "eth1"


# -- timeout and garbage collection ------------------------------------------------------


def test_metric_16_from_its_router_starts_garbage_collection() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 1)), T0)
    assert hear(r, "eth0", A, response(Entry(NET1, 16)), T0 + 5) == [FibOp("delete", NET1)]
    route = r.routes[NET1]
    assert (route.metric, route.garbage_at) == (INFINITY, T0 + 5 + 120)
    assert r.installed() == []
    # Hearing 16 again does not restart the garbage timer.
    assert hear(r, "eth0", A, response(Entry(NET1, 16)), T0 + 50) == []
    assert route.garbage_at == T0 + 125
    # Until it goes, it is advertised as unreachable.
    _, out = r.tick(T0 + 60)
    assert sent_on(out, "eth1")[NET1] == INFINITY
    r.tick(T0 + 124.9)
    assert NET1 in r.routes
    r.tick(T0 + 125)
    assert NET1 not in r.routes


def test_a_route_in_garbage_collection_comes_back() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 1)), T0)
    hear(r, "eth0", A, response(Entry(NET1, 16)), T0 + 5)
    assert hear(r, "eth0", A, response(Entry(NET1, 3)), T0 + 6) == [FibOp("add", NET1, A, "eth0")]
    assert r.routes[NET1].garbage_at is None
    # Another router may offer it as well while it is unreachable.
    hear(r, "eth0", A, response(Entry(NET1, 16)), T0 + 7)
    assert hear(r, "eth1", B, response(Entry(NET1, 9)), T0 + 8) == [FibOp("add", NET1, B, "eth1")]


def test_timeout_without_news_deletes_then_garbage_removes() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 1)), T0)
    hear(r, "eth0", A, response(Entry(NET1, 1)), T0 + 100)  # news: the timeout restarts
    assert r.routes[NET1].expires == T0 + 280
    ops, _ = r.tick(T0 + 279)
    assert ops == []
    assert r.next_deadline() <= T0 + 280
    events = run_until(r, T0 + 280)
    assert [op for _, ops, _ in events for op in ops] == [FibOp("delete", NET1)]
    route = r.routes[NET1]
    assert (route.metric, route.garbage_at) == (INFINITY, T0 + 400)
    assert r.stats.routes_timed_out == 1
    run_until(r, T0 + 399.9)
    assert NET1 in r.routes
    run_until(r, T0 + 400)
    assert NET1 not in r.routes
    assert r.installed() == []


def test_short_timers_as_the_interop_tests_use_them() -> None:
    r = router(Timers(update=2, timeout=6, garbage=4))
    hear(r, "eth0", A, response(Entry(NET1, 1)), T0)
    events = run_until(r, T0 + 20)
    deletes = [at for at, ops, _ in events if FibOp("delete", NET1) in ops]
    assert deletes == [T0 + 6]
    assert NET1 not in r.routes


# -- updates -------------------------------------------------------------------------


def test_regular_updates_every_30_s_with_jitter() -> None:
    r = router()
    events = run_until(r, T0 + 30 * 400)
    times = [T0] + [at for at, _, out in events if out]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) > 300
    assert all(0.85 * 30 <= g <= 1.15 * 30 for g in gaps)
    assert min(gaps) < 26 and max(gaps) > 34  # really jittered, not fixed
    assert r.stats.updates_sent == len(gaps) + 1


def test_connected_networks_are_sent_with_metric_1_on_every_interface() -> None:
    r = Instance(4, rng=random.Random(3))
    r.set_interface("eth0", [ipaddress.IPv4Interface("192.0.2.1/26")], T0)
    r.set_interface("eth1", [ipaddress.IPv4Interface("192.0.2.65/26")], T0)
    _, out = r.tick(T0)
    expected = {V4("192.0.2.0/26"): 1, V4("192.0.2.64/26"): 1}
    assert sent_on(out, "eth0") == sent_on(out, "eth1") == expected
    assert all(rip.parse_v2(data).command == RESPONSE for _, data in out)


def test_split_horizon_with_poisoned_reverse() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0)
    hear(r, "eth1", B, response(Entry(NET2, 4)), T0)
    _, out = r.tick(T0 + 40)  # a regular update
    assert sent_on(out, "eth0")[NET1] == INFINITY  # learned on eth0: poisoned there
    assert sent_on(out, "eth1")[NET1] == 3
    assert sent_on(out, "eth1")[NET2] == INFINITY
    assert sent_on(out, "eth0")[NET2] == 5


def test_triggered_updates_carry_only_changes_and_are_1_to_5_s_apart() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0 + 3)
    assert r.next_triggered == T0 + 3  # the first may go at once
    _, out = r.tick(T0 + 3)
    assert sent_on(out, "eth1") == {NET1: 3}  # not the connected networks
    assert sent_on(out, "eth0") == {NET1: INFINITY}
    assert r.stats.triggered_sent == 1
    # A second change soon after waits 1-5 s after the first triggered update.
    hear(r, "eth1", B, response(Entry(NET2, 1)), T0 + 3.5)
    assert r.next_triggered is not None
    assert T0 + 4 <= r.next_triggered <= T0 + 8
    assert r.tick(T0 + 3.9)[1] == []
    due = r.next_triggered
    _, out = r.tick(due)
    assert sent_on(out, "eth0") == {NET2: 2}
    assert r.stats.triggered_sent == 2
    # Nothing changed: nothing triggered.
    hear(r, "eth1", B, response(Entry(NET2, 1)), due + 1)
    assert r.next_triggered is None


def test_triggered_update_gaps_are_random_between_1_and_5_s() -> None:
    r = router(Timers(update=1e9, timeout=1e9, garbage=1e9))
    gaps = []
    last = None
    now = T0 + 10
    for metric in range(1, 200):
        hear(r, "eth0", A, response(Entry(NET1, 1 + metric % 7)), now)
        due = r.next_triggered
        assert due is not None
        _, out = r.tick(due)
        assert sent_on(out, "eth1") == {NET1: 2 + metric % 7}
        if last is not None:
            gaps.append(due - last)
        last = now = due
    assert all(1 <= g <= 5 for g in gaps)
    assert min(gaps) < 1.5 and max(gaps) > 4.5


def test_a_withdrawal_is_triggered_with_metric_16() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0 + 1)
    r.tick(T0 + 1)
    hear(r, "eth0", A, response(Entry(NET1, 16)), T0 + 10)
    _, out = r.tick(T0 + 10)
    assert sent_on(out, "eth1") == {NET1: INFINITY}


def test_more_than_25_routes_are_split_into_several_packets() -> None:
    r = router()
    nets = list(V4("198.51.100.0/24").subnets(new_prefix=29))[:30]
    for i in range(0, 30, 10):
        hear(r, "eth0", A, response(*(Entry(n, 1) for n in nets[i : i + 10])), T0)
    _, out = r.tick(T0 + 40)
    on_eth1 = [rip.parse_v2(data) for name, data in out if name == "eth1"]
    assert [len(p.entries) for p in on_eth1] == [25, 7]  # 30 learned + 2 connected
    assert {e.prefix for p in on_eth1 for e in p.entries} >= set(nets)


# -- requests -------------------------------------------------------------------------


def test_whole_table_request_from_a_router_gets_the_update_it_would_get() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0)
    request = rip.build_v2(REQUEST, [Entry(V4("0.0.0.0/0"), INFINITY)])
    ops, answers = r.receive("eth0", A, PORT, request, T0 + 1)
    assert ops == []
    assert [(to, port) for to, port, _ in answers] == [(A, PORT)]
    assert table([data for _, _, data in answers]) == {
        NET1: INFINITY,  # poisoned reverse applies
        V4("192.0.2.0/26"): 1,
        V4("192.0.2.64/26"): 1,
    }
    assert r.stats.requests == 1


def test_whole_table_query_from_another_port_gets_the_table_as_it_is() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0)
    request = rip.build_v2(REQUEST, [Entry(V4("0.0.0.0/0"), INFINITY)])
    _, answers = r.receive("eth0", ip("192.0.2.9"), 40000, request, T0 + 1)
    assert [(to, port) for to, port, _ in answers] == [(ip("192.0.2.9"), 40000)]
    assert table([data for _, _, data in answers])[NET1] == 3


def test_specific_request_gets_our_metric_for_each_prefix() -> None:
    r = router()
    hear(r, "eth0", A, response(Entry(NET1, 2)), T0)
    request = rip.build_v2(REQUEST, [Entry(NET1, 0), Entry(NET2, 0)])
    _, answers = r.receive("eth0", A, PORT, request, T0 + 1)
    assert len(answers) == 1
    pkt = rip.parse_v2(answers[0][2])
    assert pkt.command == RESPONSE
    assert [(e.prefix, e.metric) for e in pkt.entries] == [(NET1, 3), (NET2, INFINITY)]


# -- packets that are ignored ----------------------------------------------------------


def test_our_own_packets_are_ignored() -> None:
    r = router()
    assert hear(r, "eth0", "192.0.2.1", response(Entry(NET1, 1)), T0) == []
    assert hear(r, "eth1", "192.0.2.1", response(Entry(NET1, 1)), T0) == []
    assert NET1 not in r.routes
    assert r.stats.from_self == 2


def test_responses_from_off_link_sources_are_ignored() -> None:
    r = router()
    # B's address, but heard on eth0: not a neighbour there.
    assert hear(r, "eth0", B, response(Entry(NET1, 1)), T0) == []
    assert hear(r, "eth0", "198.51.100.9", response(Entry(NET1, 1)), T0) == []
    assert NET1 not in r.routes
    assert r.stats.off_link == 2
    assert r.stats.reasons["rip_off_link"] == 2


def test_responses_not_from_port_520_are_ignored() -> None:
    r = router()
    assert hear(r, "eth0", A, response(Entry(NET1, 1)), T0, port=40000) == []
    assert NET1 not in r.routes
    assert r.stats.not_from_port == 1
    assert r.stats.responses == 0


def test_packets_on_other_interfaces_bad_packets_and_ripv1_are_counted() -> None:
    r = router()
    assert hear(r, "eth9", A, response(Entry(NET1, 1)), T0) == []
    assert hear(r, "eth0", A, b"\x02\x02\x00", T0) == []
    assert hear(r, "eth0", A, response(Entry(NET1, 1))[:-1], T0) == []
    v1 = bytearray(response(Entry(V4("198.51.100.0/24"), 1)))
    v1[1] = 1
    v1[12:16] = bytes(4)  # no mask in RIPv1
    assert hear(r, "eth0", A, bytes(v1), T0) == []
    assert (r.stats.not_rip_interface, r.stats.bad_packets, r.stats.version1) == (1, 2, 1)
    assert r.stats.reasons == {
        "rip_not_rip_interface": 1,
        "rip_short": 1,
        "rip_badlen": 1,
        "rip_v1": 1,
    }
    assert r.routes.keys() == {V4("192.0.2.0/26"), V4("192.0.2.64/26")}


# -- authentication ------------------------------------------------------------------------

MD5 = Auth("md5", b"vrouter-md5", 1)
PLAIN = Auth("plain", b"vrouter-plain")
BIRD3 = ip("192.0.2.33")


def bird_link(auth: Auth) -> Instance:
    """Return R on the link where BIRD (192.0.2.33) sent the authenticated captures."""
    r = Instance(4, rng=random.Random(5), auth=auth)
    r.set_interface("eth0", [ipaddress.IPv4Interface("192.0.2.34/28")], T0)
    r.tick(T0)
    return r


def test_birds_md5_packets_are_accepted_with_the_password() -> None:
    r = bird_link(MD5)
    assert hear(r, "eth0", BIRD3, BIRD_RESPONSE_MD5, T0) == [FibOp("add", NET1, BIRD3, "eth0")]
    assert hear(r, "eth0", BIRD3, BIRD_RESPONSE_MD5_NEXT, T0 + 3) == []
    assert r.routes[NET1].expires == T0 + 3 + 180
    assert r.stats.auth_failed == 0


def test_an_md5_replay_with_an_older_sequence_is_dropped() -> None:
    r = bird_link(MD5)
    hear(r, "eth0", BIRD3, BIRD_RESPONSE_MD5_NEXT, T0)
    hear(r, "eth0", BIRD3, BIRD_RESPONSE_MD5_NEXT, T0 + 1)  # equal: accepted
    assert hear(r, "eth0", BIRD3, BIRD_RESPONSE_MD5, T0 + 2) == []
    assert r.stats.auth_failed == 1
    assert r.stats.reasons == {"rip_auth_sequence": 1}
    assert r.stats.responses == 2
    # A neighbour silent for timeout + garbage is forgotten (it may have restarted).
    r.tick(T0 + 1 + 300.5)
    assert hear(r, "eth0", BIRD3, BIRD_RESPONSE_MD5, T0 + 302) == [
        FibOp("add", NET1, BIRD3, "eth0")
    ]


@pytest.mark.parametrize(
    ("auth", "packet", "reason"),
    [
        (MD5, BIRD_RESPONSE_PLAIN, "rip_auth_type"),
        (MD5, BIRD_RESPONSE_V2, "rip_auth_missing"),
        (Auth("md5", b"wrong", 1), BIRD_RESPONSE_MD5, "rip_auth_digest"),
        (Auth("md5", b"vrouter-md5", 7), BIRD_RESPONSE_MD5, "rip_auth_keyid"),
        (PLAIN, BIRD_RESPONSE_MD5, "rip_auth_type"),
        (Auth("plain", b"wrong"), BIRD_RESPONSE_PLAIN, "rip_auth_password"),
        (Auth(), BIRD_RESPONSE_PLAIN, "rip_auth_unexpected"),
        (Auth(), BIRD_RESPONSE_MD5, "rip_auth_unexpected"),
    ],
)
def test_packets_failing_authentication_are_dropped_and_counted(
    auth: Auth, packet: bytes, reason: str
) -> None:
    r = bird_link(auth)
    assert hear(r, "eth0", BIRD3, packet, T0) == []
    assert r.routes.keys() == {V4("192.0.2.32/28")}
    assert r.stats.auth_failed == 1
    assert r.stats.reasons == {reason: 1}
    assert reason in r.stats.last_drop


def test_frrs_md5_packets_are_accepted_in_both_auth_data_lengths() -> None:
    rfc, old = ip("192.0.2.49"), ip("192.0.2.65")
    r = Instance(4, rng=random.Random(5), auth=MD5)
    r.set_interface("eth0", [ipaddress.IPv4Interface("192.0.2.50/28")], T0)
    r.set_interface("eth1", [ipaddress.IPv4Interface("192.0.2.66/28")], T0)
    r.tick(T0)
    # Each advertises the network of our other link too: connected, that one stays ours.
    assert hear(r, "eth0", rfc, FRR_RESPONSE_RFC, T0) == [FibOp("add", NET1, rfc, "eth0")]
    assert hear(r, "eth1", old, FRR_RESPONSE_OLD, T0 + 1) == []
    assert r.routes[NET1].gateway == rfc
    assert (r.stats.responses, r.stats.auth_failed, r.stats.reasons) == (2, 0, {})
    # Its whole-table request on start is not authenticated: refused and counted.
    request = rip.build_v2(REQUEST, [Entry(V4("0.0.0.0/0"), INFINITY)])
    assert r.receive("eth0", rfc, PORT, request, T0 + 2) == ([], [])
    assert r.stats.reasons == {"rip_auth_missing": 1}


def test_an_instance_sends_the_configured_auth_data_length() -> None:
    for length in rip.MD5_AUTH_LENGTHS:
        auth = Auth("md5", b"vrouter-md5", 1, auth_length=length)
        r = bird_link(auth)
        _, out = r.tick(T0 + 40)
        for _, data in out:
            pkt = rip.parse_v2(data)
            assert pkt.auth is not None and pkt.auth.auth_length == length
            assert len(data) == 4 + 20 * (len(pkt.entries) + 1) + 20  # the trailer: 20 bytes
            rip.check_auth(pkt, MD5)


def test_plaintext_packets_are_accepted_with_the_password() -> None:
    r = bird_link(PLAIN)
    assert hear(r, "eth0", BIRD3, BIRD_RESPONSE_PLAIN, T0) == [FibOp("add", NET1, BIRD3, "eth0")]


def test_requests_must_be_authenticated_too() -> None:
    r = bird_link(MD5)
    plain_request = rip.build_v2(REQUEST, [Entry(V4("0.0.0.0/0"), INFINITY)])
    assert r.receive("eth0", BIRD3, PORT, plain_request, T0) == ([], [])
    signed = rip.build_v2(REQUEST, [Entry(V4("0.0.0.0/0"), INFINITY)], MD5, 1)
    _, answers = r.receive("eth0", BIRD3, PORT, signed, T0)
    assert len(answers) == 1
    rip.check_auth(rip.parse_v2(answers[0][2]), MD5)


def test_what_we_send_is_authenticated_with_rising_sequence_numbers() -> None:
    r = Instance(4, rng=random.Random(5), auth=MD5, clock_offset=1_795_671_000.0)
    r.set_interface("eth0", [ipaddress.IPv4Interface("192.0.2.34/28")], T0)
    r.set_interface("eth1", [ipaddress.IPv4Interface("192.0.2.65/26")], T0)
    sent = [r.request_table(T0)]
    nets = list(V4("198.51.100.0/24").subnets(new_prefix=29))[:30]
    hear(r, "eth0", BIRD3, response(*(Entry(n, 1) for n in nets), auth=MD5, sequence=5), T0)
    for at in (T0, T0 + 40, T0 + 80):
        sent += [data for _, data in r.tick(at)[1]]
    sequences = []
    for data in sent:
        pkt = rip.parse_v2(data)
        rip.check_auth(pkt, MD5)
        assert len(pkt.entries) <= 24
        assert pkt.auth is not None
        sequences.append(pkt.auth.sequence)
    # Each packet a higher number, starting from the wall clock (as BIRD does).
    assert sequences[0] == 1_795_672_000
    assert all(b > a for a, b in itertools.pairwise(sequences))
    assert sequences[-1] >= 1_795_672_080


def test_plaintext_instance_sends_its_password() -> None:
    r = bird_link(PLAIN)
    _, out = r.tick(T0 + 40)
    for _, data in out:
        rip.check_auth(rip.parse_v2(data), PLAIN)
    assert rip.parse_v2(r.request_table(T0)).auth is not None


def test_ripng_has_no_authentication() -> None:
    with pytest.raises(ValueError, match="IPsec"):
        Instance(6, auth=MD5)


# -- RIPng ------------------------------------------------------------------------------

LL_BIRD = ip("fe80::78b8:51ff:fe2e:ca78")
LL_R = ipaddress.IPv6Interface("fe80::1/64")


def ripng() -> Instance:
    r = Instance(6, rng=random.Random(2))
    r.set_interface("eth0", [ipaddress.IPv6Interface("2001:db8:1::1/64"), LL_R], T0)
    r.set_interface("eth1", [ipaddress.IPv6Interface("2001:db8:2::1/64")], T0)
    r.tick(T0)
    return r


def test_ripng_learns_birds_routes_via_link_local_next_hops() -> None:
    r = ripng()
    ops, answers = r.receive(
        "eth0", LL_BIRD, 521, BIRD_RESPONSE_NG, T0, ttl=255, destination=ip("ff02::9")
    )
    assert answers == []
    assert ops == [
        FibOp("add", V6("2001:db8:100::/48"), LL_BIRD, "eth0"),
        FibOp("add", V6("2001:db8:200::/56"), ip("fe80::3"), "eth0"),
        FibOp("add", V6("2001:db8:300::/64"), LL_BIRD, "eth0"),
    ]
    assert r.routes[V6("2001:db8:100::/48")].tag == 9
    _, out = r.tick(T0 + 40)
    assert sent_on(out, "eth1")[V6("2001:db8:100::/48")] == 2
    assert sent_on(out, "eth0")[V6("2001:db8:100::/48")] == INFINITY
    assert sent_on(out, "eth0")[V6("2001:db8:1::/64")] == 1
    assert V6("fe80::/64") not in sent_on(out, "eth0")  # link-local is not advertised


def test_ripng_responses_must_come_from_a_link_local_address_with_hop_limit_255() -> None:
    r = ripng()
    data = BIRD_RESPONSE_NG
    group = ip("ff02::9")
    assert r.receive("eth0", ip("2001:db8:1::2"), 521, data, T0, ttl=255) == ([], [])
    assert r.stats.off_link == 1
    assert r.receive("eth0", LL_BIRD, 521, data, T0, ttl=64, destination=group) == ([], [])
    assert r.stats.bad_hop_limit == 1
    assert r.receive("eth0", LL_BIRD, 40000, data, T0, ttl=255) == ([], [])
    assert r.stats.not_from_port == 1
    assert r.receive("eth0", ip("fe80::1"), 521, data, T0, ttl=255) == ([], [])
    assert r.stats.from_self == 1
    # A unicast response (an answer to our request) need not have 255.
    ops, _ = r.receive("eth0", LL_BIRD, 521, data, T0, ttl=64, destination=ip("fe80::1"))
    assert len(ops) == 3


def test_ripng_link_local_and_multicast_prefixes_are_ignored() -> None:
    r = ripng()
    data = rip.build_ng(
        RESPONSE,
        [Entry(V6("fe80::/64"), 1), Entry(V6("ff00::/8"), 1), Entry(V6("2001:db8:9::/48"), 1)],
    )
    ops, _ = r.receive("eth0", LL_BIRD, 521, data, T0)
    assert ops == [FibOp("add", V6("2001:db8:9::/48"), LL_BIRD, "eth0")]
    assert r.stats.bad_entries == 2


def test_ripng_request_and_reply() -> None:
    r = ripng()
    request = bytes.fromhex("01010000000000000000000000000000000000000000" + "0010")
    assert r.request_table(T0) == request
    _, answers = r.receive("eth0", LL_BIRD, 521, request, T0)
    assert [(to, port) for to, port, _ in answers] == [(LL_BIRD, 521)]
    assert table([answers[0][2]]) == {V6("2001:db8:1::/64"): 1, V6("2001:db8:2::/64"): 1}


def test_two_instances_teach_each_other() -> None:
    """Two routers on one link, fed each other's multicasts directly (no sockets)."""
    x = Instance(4, rng=random.Random(1))
    y = Instance(4, rng=random.Random(2))
    x.set_interface("lan", [ipaddress.IPv4Interface("192.0.2.1/26")], T0)
    x.set_interface("stubx", [ipaddress.IPv4Interface("198.51.100.1/25")], T0)
    y.set_interface("lan", [ipaddress.IPv4Interface("192.0.2.2/26")], T0)
    y.set_interface("stuby", [ipaddress.IPv4Interface("198.51.100.129/25")], T0)
    now = T0
    for _ in range(3):
        for me, other, addr in ((x, y, "192.0.2.1"), (y, x, "192.0.2.2")):
            for name, data in me.tick(now)[1]:
                if name == "lan":
                    other.receive("lan", ip(addr), PORT, data, now)
        now += 31
    assert [(r.prefix, r.metric, r.gateway) for r in x.installed()] == [
        (V4("198.51.100.128/25"), 2, ip("192.0.2.2"))
    ]
    assert [(r.prefix, r.metric, r.gateway) for r in y.installed()] == [
        (V4("198.51.100.0/25"), 2, ip("192.0.2.1"))
    ]
