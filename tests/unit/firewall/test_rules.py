"""vrouter.firewall.rules: parsing (values and every problem's key path), matching, order."""

from __future__ import annotations

import tomllib
from ipaddress import ip_network

import pytest

from vrouter.firewall.packet import PacketInfo, parse
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.firewall.rules import (
    DEFAULT_FLAGS,
    AddrMatch,
    PortMatch,
    Rule,
    Ruleset,
    RulesetError,
)
from vrouter.wire import icmp4, icmp6, ipv4, ipv6, tcp, udp

A4 = bytes([192, 0, 2, 10])
B4 = bytes([198, 51, 100, 20])
C4 = bytes([203, 0, 113, 5])
A6 = bytes.fromhex("20010db8000100000000000000000010")
B6 = bytes.fromhex("20010db8000200000000000000000020")

SYN = tcp.SYN
SA = tcp.SYN | tcp.ACK


def load(text: str, prefix: str = "") -> Ruleset:
    return parse_ruleset(tomllib.loads(text), prefix)


def problems(text: str, prefix: str = "") -> list[tuple[str, str]]:
    with pytest.raises(RulesetError) as info:
        load(text, prefix)
    return info.value.problems


# -- packets (bytes, parsed) -----------------------------------------------------------


def tcp_pkt(
    src: bytes = A4, dst: bytes = B4, sport: int = 40000, dport: int = 8080, flags: int = SYN
) -> PacketInfo:
    seg = tcp.build(src, dst, sport, dport, 1, 0, flags, 1000)
    if len(src) == 4:
        return parse(ipv4.build(src, dst, tcp.PROTO, seg))
    return parse(ipv6.build(src, dst, ipv6.NH_TCP, seg))


def udp_pkt(src: bytes = A4, dst: bytes = B4, sport: int = 5000, dport: int = 53) -> PacketInfo:
    dgram = udp.build(src, dst, sport, dport, b"q")
    if len(src) == 4:
        return parse(ipv4.build(src, dst, udp.PROTO, dgram))
    return parse(ipv6.build(src, dst, ipv6.NH_UDP, dgram))


def icmp_pkt(icmp_type: int, src: bytes = A4, dst: bytes = B4) -> PacketInfo:
    if len(src) == 4:
        msg = icmp4.IcmpMessage(icmp_type, 0, 1 << 16, b"").emit()
        return parse(ipv4.build(src, dst, ipv4.PROTO_ICMP, msg))
    msg6 = icmp6.Icmp6Message(icmp_type, 0, 1 << 16, b"").emit(src, dst)
    return parse(ipv6.build(src, dst, ipv6.NH_ICMPV6, msg6))


def fragment_pkt() -> PacketInfo:
    header = ipv4.Ipv4Header(0, 28, 1, 10, 64, tcp.PROTO, A4, B4)
    return parse(header.emit() + b"\x00" * 8)


# -- parsing: valid forms ---------------------------------------------------------------

NET_A = ip_network("192.0.2.0/24")
NET_6 = ip_network("2001:db8::/32")

VALID = [
    ('action = "pass"', Rule("pass", flags=DEFAULT_FLAGS, keep_state=True)),
    ('action = "block"', Rule("block")),
    ('action = "reject"\nproto = "tcp"', Rule("reject", proto=6)),
    (
        'action = "pass"\ndirection = "in"\ninterface = "vr-red0"\nfamily = "inet"\n'
        'proto = "tcp"\nfrom = "192.0.2.0/24"\nto_port = 8080\nlabel = "web"',
        Rule(
            "pass",
            "in",
            "vr-red0",
            4,
            6,
            AddrMatch((NET_A,)),
            AddrMatch(),
            None,
            PortMatch(((8080, 8080),)),
            None,
            DEFAULT_FLAGS,
            True,
            False,
            "web",
        ),
    ),
    (
        'action = "pass"\nproto = "udp"\nkeep_state = false\nfrom_port = [53, "1024-65535"]',
        Rule("pass", proto=17, sport=PortMatch(((53, 53), (1024, 65535)))),
    ),
    (
        'action = "pass"\nproto = "icmp"\nicmp_type = ["echo-request", 3]',
        Rule("pass", family=4, proto=1, icmp_types=frozenset({8, 3}), keep_state=True),
    ),
    (
        'action = "pass"\nproto = "icmp6"\nicmp_type = ["toobig", "echoreq", 1]',
        Rule("pass", family=6, proto=58, icmp_types=frozenset({2, 128, 1}), keep_state=True),
    ),
    (
        'action = "block"\nfrom = "!192.0.2.0/24"',
        Rule("block", family=4, src=AddrMatch((NET_A,), (), True)),
    ),
    (
        'action = "block"\nto = "2001:db8::1"\ndirection = "out"\nlog = true',
        Rule("block", "out", family=6, dst=AddrMatch((ip_network("2001:db8::1/128"),)), log=True),
    ),
    (
        'action = "block"\nfrom = [" ! <trusted>", "!2001:db8::/32"]',
        Rule("block", src=AddrMatch((NET_6,), ("trusted",), True)),
    ),
    (
        'action = "block"\nfamily = "inet6"\nfrom = "<trusted>"\nto = "any"',
        Rule("block", family=6, src=AddrMatch((), ("trusted",))),
    ),
    ('action = "block"\nproto = 47', Rule("block", proto=47)),
    (
        'action = "pass"\nproto = "tcp"\nflags = "any"',
        Rule("pass", proto=6, keep_state=True),
    ),
    ('action = "block"\nproto = "tcp"\nflags = "S"', Rule("block", proto=6, flags=(SYN, 0xFF))),
    (
        'action = "pass"\nflags = "SA/SAFR"',
        Rule("pass", flags=(SA, SA | tcp.FIN | tcp.RST), keep_state=True),
    ),
    (
        'action = "pass"\nproto = "udp"\nfrom = ["192.0.2.0/24", "2001:db8::/32"]',
        Rule("pass", proto=17, src=AddrMatch((NET_A, NET_6)), keep_state=True),
    ),
    (
        'action = "pass"\nfrom = ["192.0.2.0/24", "2001:db8::/32"]\nto = "198.51.100.7"',
        Rule(
            "pass",
            family=4,
            src=AddrMatch((NET_A, NET_6)),
            dst=AddrMatch((ip_network("198.51.100.7/32"),)),
            flags=DEFAULT_FLAGS,
            keep_state=True,
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_rule(text: str, expected: Rule) -> None:
    ruleset = load('[tables]\ntrusted = ["192.0.2.0/24"]\n[[rules]]\n' + text)
    assert ruleset.rules == (expected,)


def test_ruleset_defaults_tables_and_counters() -> None:
    empty = load("")
    assert (empty.rules, empty.default, empty.tables) == ((), "pass", {})
    ruleset = load(
        'default = "block"\n[tables]\nt = ["192.0.2.0/24", "2001:db8:1::/64", "198.51.100.1"]\n'
        '[[rules]]\naction = "pass"\n[[rules]]\naction = "block"'
    )
    assert ruleset.default == "block"
    assert ruleset.tables == {
        "t": (NET_A, ip_network("2001:db8:1::/64"), ip_network("198.51.100.1/32"))
    }
    assert len(ruleset.counters) == 2 and ruleset.counters[0] is not ruleset.counters[1]


def test_describe_is_pf_like() -> None:
    ruleset = load(
        "[tables]\nt = []\n"
        '[[rules]]\naction = "pass"\ndirection = "in"\ninterface = "vr-red0"\n'
        'family = "inet"\nproto = "tcp"\nfrom = "192.0.2.0/24"\nto_port = 8080\nlabel = "web"\n'
        '[[rules]]\naction = "block"\ndirection = "out"\nlog = true\n'
        'proto = "udp"\nfrom = ["!<t>", "!2001:db8::/32"]\nfrom_port = [53, "8000-8080"]\n'
        '[[rules]]\naction = "pass"\nproto = "icmp6"\nicmp_type = ["echo-request", "toobig"]\n'
        '[[rules]]\naction = "pass"\nproto = "tcp"\nflags = "any"\n'
        '[[rules]]\naction = "pass"\nkeep_state = false\nto = "198.51.100.1"\n'
        '[[rules]]\naction = "reject"\nproto = 132'
    )
    assert [r.describe() for r in ruleset.rules] == [
        "pass in on vr-red0 inet proto tcp from 192.0.2.0/24 to any port 8080 "
        "flags S/SA keep state label web",
        "block out log proto udp from ! { 2001:db8::/32, <t> } port { 53, 8000:8080 } to any",
        "pass inet6 proto icmp6 all icmp6-type { toobig, echo-request } keep state",
        "pass proto tcp all flags any keep state",
        "pass inet from any to 198.51.100.1 no state",
        "reject proto 132 all",
    ]
    listing = ruleset.describe()
    assert listing[0]["index"] == 0 and listing[0]["text"] == ruleset.rules[0].describe()
    assert listing[-1] == {
        "index": -1,
        "text": "pass all",
        "evaluations": 0,
        "packets": 0,
        "bytes": 0,
        "states": 0,
    }


# -- parsing: problems with key paths -----------------------------------------------------

PROBLEMS = [
    ('rulez = 1\n[[rules]]\naction = "pass"', [("rulez", "unknown key 'rulez'")]),
    ('default = "allow"', [("default", "'allow' is not one of: pass, block")]),
    ("rules = 3", [("rules", "expected an array of tables ([[rules]]), got integer")]),
    ('rules = [{action = "pass"}, 5]', [("rules[1]", "expected a table")]),
    ("[[rules]]\ndirection = 'in'", [("rules[0].action", "missing required key 'action'")]),
    ('[[rules]]\naction = "allow"', [("rules[0].action", "'allow' is not one of")]),
    ("[[rules]]\naction = 1", [("rules[0].action", "expected a string, got integer")]),
    (
        '[[rules]]\naction = "pass"\nport = 80',
        [("rules[0].port", "unknown key 'port' (allowed: action, direction,")],
    ),
    ('[[rules]]\naction = "pass"\ndirection = "both"', [("rules[0].direction", "'both'")]),
    (
        '[[rules]]\naction = "pass"\ninterface = "a-very-long-interface"',
        [("rules[0].interface", "invalid interface name")],
    ),
    ('[[rules]]\naction = "pass"\nfamily = "ipv4"', [("rules[0].family", "'ipv4' is not")]),
    ('[[rules]]\naction = "pass"\nproto = "sctpx"', [("rules[0].proto", "unknown protocol")]),
    ('[[rules]]\naction = "pass"\nproto = 256', [("rules[0].proto", "out of range 0..255")]),
    ('[[rules]]\naction = "pass"\nproto = true', [("rules[0].proto", "got boolean")]),
    (
        '[[rules]]\naction = "pass"\nfrom = "192.0.2.1/24"',
        [("rules[0].from", "host bits set; did you mean 192.0.2.0/24?")],
    ),
    ('[[rules]]\naction = "pass"\nfrom = "192.0.2.0/33"', [("rules[0].from", "out of range")]),
    ('[[rules]]\naction = "pass"\nfrom = "192.0.2.0/x"', [("rules[0].from", "decimal")]),
    ('[[rules]]\naction = "pass"\nto = "fe80::1%eth0"', [("rules[0].to", "zone index")]),
    (
        '[[rules]]\naction = "pass"\nto = ["192.0.2.0/24", "host.example"]',
        [("rules[0].to[1]", "is not an address or prefix")],
    ),
    ('[[rules]]\naction = "pass"\nto = ["192.0.2.0/24", 7]', [("rules[0].to[1]", "got integer")]),
    ('[[rules]]\naction = "pass"\nto = 7', [("rules[0].to", "a string or an array")]),
    ('[[rules]]\naction = "pass"\nto = []', [("rules[0].to", "empty list")]),
    (
        '[[rules]]\naction = "pass"\nfrom = ["!192.0.2.0/24", "198.51.100.0/24"]',
        [("rules[0].from", "negation applies to the whole list")],
    ),
    ('[[rules]]\naction = "pass"\nfrom = "!any"', [("rules[0].from", "'!any' matches nothing")]),
    (
        '[[rules]]\naction = "pass"\nfrom = ["any", "192.0.2.0/24"]',
        [("rules[0].from[0]", "'any' cannot be part of a list")],
    ),
    ('[[rules]]\naction = "pass"\nfrom = "<nope>"', [("rules[0].from", "unknown table <nope>")]),
    (
        '[[rules]]\naction = "pass"\nto = ["<nope>", "<t>"]',
        [("rules[0].to[0]", "unknown table <nope>")],
    ),
    ('[[rules]]\naction = "pass"\nto_port = 80', [("rules[0].to_port", "need proto tcp or udp")]),
    (
        '[[rules]]\naction = "pass"\nproto = "icmp"\nfrom_port = 80',
        [("rules[0].from_port", "need proto tcp or udp")],
    ),
    (
        '[[rules]]\naction = "pass"\nproto = "tcp"\nto_port = 70000',
        [("rules[0].to_port", "port 70000 is out of range 0..65535")],
    ),
    (
        '[[rules]]\naction = "pass"\nproto = "udp"\nto_port = [53, "90-80", "1-99999", "x", 1.5]',
        [
            ("rules[0].to_port[1]", "range '90-80' is empty"),
            ("rules[0].to_port[2]", "port 99999 is out of range"),
            ("rules[0].to_port[3]", "'x' is not a port"),
            ("rules[0].to_port[4]", "got float"),
        ],
    ),
    ('[[rules]]\naction = "pass"\nproto = "udp"\nto_port = []', [("rules[0].to_port", "empty")]),
    (
        '[[rules]]\naction = "pass"\nproto = "tcp"\nicmp_type = 8',
        [("rules[0].icmp_type", "icmp_type needs proto icmp or icmp6")],
    ),
    (
        '[[rules]]\naction = "pass"\nproto = "icmp6"\nicmp_type = ["squench", 300, true]',
        [
            ("rules[0].icmp_type[0]", "unknown icmp6 type 'squench'"),
            ("rules[0].icmp_type[1]", "out of range 0..255"),
            ("rules[0].icmp_type[2]", "got boolean"),
        ],
    ),
    (
        '[[rules]]\naction = "pass"\nproto = "udp"\nflags = "S/SA"',
        [("rules[0].flags", "flags need proto tcp")],
    ),
    ('[[rules]]\naction = "pass"\nflags = "X/SA"', [("rules[0].flags", "is not SET/MASK")]),
    ('[[rules]]\naction = "pass"\nflags = "SA/S"', [("rules[0].flags", "outside the mask")]),
    ('[[rules]]\naction = "pass"\nflags = 2', [("rules[0].flags", "got integer")]),
    (
        '[[rules]]\naction = "block"\nkeep_state = true',
        [("rules[0].keep_state", "a block rule cannot keep state")],
    ),
    ('[[rules]]\naction = "pass"\nkeep_state = "yes"', [("rules[0].keep_state", "boolean")]),
    ('[[rules]]\naction = "pass"\nlog = 1', [("rules[0].log", "boolean")]),
    ('[[rules]]\naction = "pass"\nlabel = "' + "x" * 64 + '"', [("rules[0].label", "longer")]),
    (
        '[[rules]]\naction = "pass"\nfamily = "inet"\nto = ["192.0.2.0/24", "2001:db8::/32"]',
        [("rules[0].to[1]", "2001:db8::/32 is an IPv6 address but family is inet")],
    ),
    (
        '[[rules]]\naction = "pass"\nfamily = "inet6"\nproto = "icmp"',
        [("rules[0].proto", "proto icmp is for IPv4 but family is inet6; use icmp6")],
    ),
    (
        '[[rules]]\naction = "pass"\nproto = "icmp6"\nfrom = "192.0.2.0/24"',
        [("rules[0].from", "192.0.2.0/24 is an IPv4 address but proto icmp6 is IPv6 only")],
    ),
    (
        '[[rules]]\naction = "pass"\nfrom = "192.0.2.0/24"\nto = "2001:db8::/32"',
        [("rules[0].to", "'to' is IPv6 only and 'from' IPv4 only: no packet can match")],
    ),
    ('[tables]\nt = "192.0.2.0/24"', [("tables.t", "expected an array")]),
    ("tables = 1", [("tables", "expected a table")]),
    (
        '[tables]\nt = ["192.0.2.0/24", "192.0.2.1/24", 5]',
        [("tables.t[1]", "host bits set"), ("tables.t[2]", "got integer")],
    ),
    ('[tables]\n"a b" = []', [('tables."a b"', "invalid table name 'a b'")]),
]


@pytest.mark.parametrize(("text", "expected"), PROBLEMS)
def test_problem(text: str, expected: list[tuple[str, str]]) -> None:
    # Rules may refer to an (empty) table <t>; top-level keys must come before it.
    found = problems("[tables]\nt = []\n" + text if text.startswith("[[rules]]") else text)
    assert [key for key, _ in found] == [key for key, _ in expected]
    for (_, reason), (_, fragment) in zip(found, expected, strict=True):
        assert fragment in reason


def test_all_problems_are_collected_with_the_prefix() -> None:
    text = (
        'default = 1\n[tables]\nt = ["nope"]\n'
        '[[rules]]\naction = "pass"\nto_port = 80\n'
        '[[rules]]\naction = "pass"\n'
        '[[rules]]\naction = "drop"\nfrom = "<missing>"\nlog = "no"\n'
    )
    found = problems(text, "vnets.red.firewall")
    assert [key for key, _ in found] == [
        "vnets.red.firewall.default",
        "vnets.red.firewall.tables.t[0]",
        "vnets.red.firewall.rules[0].to_port",
        "vnets.red.firewall.rules[2].action",
        "vnets.red.firewall.rules[2].from",
        "vnets.red.firewall.rules[2].log",
    ]


def test_error_text_is_one_line_per_problem() -> None:
    error = RulesetError([("rules[3].to_port", "port 70000 is out of range"), ("", "whole")])
    assert str(error) == "rules[3].to_port: port 70000 is out of range\nwhole"


def test_ruleset_constructor_checks_tables_and_default() -> None:
    rule = Rule("block", src=AddrMatch((), ("missing",)))
    with pytest.raises(RulesetError) as info:
        Ruleset([rule], "deny")
    assert [key for key, _ in info.value.problems] == ["default", "rules[0].from"]


# -- matching ------------------------------------------------------------------------------

TABLES = '[tables]\ninside = ["192.0.2.0/24", "2001:db8:1::/48"]\n'

MATCHES = [
    # direction
    ('direction = "in"', tcp_pkt(), "in", "eth0", True),
    ('direction = "in"', tcp_pkt(), "out", "eth0", False),
    ('direction = "out"', tcp_pkt(), "out", "eth0", True),
    # interface
    ('interface = "vr-red0"', tcp_pkt(), "in", "vr-red0", True),
    ('interface = "vr-red0"', tcp_pkt(), "in", "vr-red1", False),
    # family
    ('family = "inet"', udp_pkt(), "in", "e", True),
    ('family = "inet"', udp_pkt(A6, B6), "in", "e", False),
    ('family = "inet6"', udp_pkt(A6, B6), "in", "e", True),
    # proto
    ('proto = "udp"', udp_pkt(), "in", "e", True),
    ('proto = "udp"', tcp_pkt(), "in", "e", False),
    ("proto = 6", tcp_pkt(A6, B6), "in", "e", True),
    # prefixes
    ('from = "192.0.2.0/24"', tcp_pkt(), "in", "e", True),
    ('from = "192.0.2.0/25"', tcp_pkt(C4), "in", "e", False),
    ('from = "192.0.2.10"', tcp_pkt(), "in", "e", True),
    ('from = "192.0.2.11"', tcp_pkt(), "in", "e", False),
    ('to = ["203.0.113.0/24", "198.51.100.0/24"]', tcp_pkt(), "in", "e", True),
    ('to = "198.51.100.0/24"', tcp_pkt(B4, A4), "in", "e", False),
    ('from = "2001:db8:1::/48"', tcp_pkt(A6, B6), "in", "e", True),
    ('from = "2001:db8:1::/48"', tcp_pkt(B6, A6), "in", "e", False),
    ('from = "0.0.0.0/0"', tcp_pkt(), "in", "e", True),
    ('from = "::/0"', tcp_pkt(), "in", "e", False),
    # negation
    ('from = "!192.0.2.0/24"', tcp_pkt(), "in", "e", False),
    ('from = "!192.0.2.0/24"', tcp_pkt(C4), "in", "e", True),
    ('from = "!192.0.2.0/24"', tcp_pkt(A6, B6), "in", "e", False),  # implies inet
    ('from = ["!192.0.2.0/24", "!203.0.113.0/24"]', tcp_pkt(C4), "in", "e", False),
    ('from = ["!192.0.2.0/24", "!203.0.113.0/24"]', tcp_pkt(B4), "in", "e", True),
    # tables (both families)
    ('from = "<inside>"', tcp_pkt(), "in", "e", True),
    ('from = "<inside>"', tcp_pkt(A6, B6), "in", "e", True),
    ('from = "<inside>"', tcp_pkt(B6, A6), "in", "e", False),
    ('from = "!<inside>"', tcp_pkt(C4), "in", "e", True),
    ('from = "!<inside>"', tcp_pkt(), "in", "e", False),
    ('to = ["<inside>", "198.51.100.20"]', tcp_pkt(), "in", "e", True),
    # ports and ranges
    ('proto = "tcp"\nto_port = 8080', tcp_pkt(), "in", "e", True),
    ('proto = "tcp"\nto_port = 80', tcp_pkt(), "in", "e", False),
    ('proto = "tcp"\nto_port = "8000-8080"', tcp_pkt(), "in", "e", True),
    ('proto = "tcp"\nto_port = "8081-9000"', tcp_pkt(), "in", "e", False),
    ('proto = "tcp"\nto_port = [22, "8080-8080"]', tcp_pkt(), "in", "e", True),
    ('proto = "tcp"\nfrom_port = "1024-65535"', tcp_pkt(), "in", "e", True),
    ('proto = "tcp"\nfrom_port = "1-1023"', tcp_pkt(), "in", "e", False),
    ('proto = "udp"\nto_port = 53', udp_pkt(), "in", "e", True),
    ('proto = "udp"\nto_port = 53', udp_pkt(dport=54), "in", "e", False),
    ('proto = "tcp"\nto_port = "0-65535"', fragment_pkt(), "in", "e", False),
    ('proto = "tcp"', fragment_pkt(), "in", "e", True),
    # icmp types
    ('proto = "icmp"\nicmp_type = "echo-request"', icmp_pkt(8), "in", "e", True),
    ('proto = "icmp"\nicmp_type = "echo-request"', icmp_pkt(0), "in", "e", False),
    ('proto = "icmp"\nicmp_type = ["unreach", "timex"]', icmp_pkt(11), "in", "e", True),
    ('proto = "icmp6"\nicmp_type = "echo-request"', icmp_pkt(128, A6, B6), "in", "e", True),
    ('proto = "icmp6"\nicmp_type = "echo-request"', icmp_pkt(8), "in", "e", False),
    ('proto = "icmp"', icmp_pkt(128, A6, B6), "in", "e", False),
    # flags (TCP only)
    ('flags = "S/SA"\nproto = "tcp"', tcp_pkt(flags=SYN), "in", "e", True),
    ('flags = "S/SA"\nproto = "tcp"', tcp_pkt(flags=SA), "in", "e", False),
    ('flags = "S/SA"\nproto = "tcp"', tcp_pkt(flags=tcp.ACK), "in", "e", False),
    ('flags = "S/SA"\nproto = "tcp"', tcp_pkt(flags=SYN | tcp.FIN), "in", "e", True),
    ('flags = "S/SAF"\nproto = "tcp"', tcp_pkt(flags=SYN | tcp.FIN), "in", "e", False),
    ('flags = "A/A"\nproto = "tcp"', tcp_pkt(flags=SA), "in", "e", True),
    ('flags = "S"', tcp_pkt(flags=SYN | tcp.PSH), "in", "e", False),
    ('flags = "S/SA"', udp_pkt(), "in", "e", True),  # flags do not concern UDP
]


@pytest.mark.parametrize(("criteria", "info", "direction", "ifname", "matches"), MATCHES)
def test_match(criteria: str, info: PacketInfo, direction: str, ifname: str, matches: bool) -> None:
    ruleset = load(TABLES + '[[rules]]\naction = "block"\n' + criteria)
    assert ruleset.match(info, direction, ifname) == (0 if matches else -1)


def test_default_pass_rules_keeping_state_only_match_syn() -> None:
    ruleset = load('[[rules]]\naction = "pass"\nproto = "tcp"\n[[rules]]\naction = "pass"')
    assert ruleset.match(tcp_pkt(flags=SYN), "in", "e") == 0
    assert ruleset.match(tcp_pkt(flags=SA), "in", "e") == -1
    assert ruleset.match(tcp_pkt(flags=tcp.ACK), "in", "e") == -1
    assert ruleset.match(udp_pkt(), "in", "e") == 1


def test_first_match_wins_and_evaluations_are_counted() -> None:
    ruleset = load(
        'default = "block"\n'
        '[[rules]]\naction = "block"\nproto = "udp"\n'
        '[[rules]]\naction = "pass"\nfrom = "192.0.2.0/24"\n'
        '[[rules]]\naction = "reject"\n'
    )
    assert ruleset.match(udp_pkt(), "in", "e") == 0
    assert ruleset.match(tcp_pkt(), "in", "e") == 1
    assert ruleset.match(tcp_pkt(C4), "in", "e") == 2
    assert [c.evaluations for c in ruleset.counters] == [3, 2, 1]
    assert ruleset.default_counters.evaluations == 0
    empty = load('default = "block"')
    assert empty.match(udp_pkt(), "in", "e") == -1
    assert empty.default_counters.evaluations == 1
    assert empty.counters_of(-1) is empty.default_counters


def test_rules_constructed_directly() -> None:
    rule = Rule(
        "pass",
        src=AddrMatch((), ("t",)),
        dport=PortMatch(((53, 53),)),
        keep_state=True,
    )
    ruleset = Ruleset([rule], "block", {"t": [ip_network("192.0.2.0/24")]})
    assert ruleset.match(udp_pkt(), "in", "e") == 0
    assert ruleset.match(udp_pkt(C4), "in", "e") == -1
    assert ruleset.match(icmp_pkt(8), "in", "e") == -1  # ports need TCP or UDP
