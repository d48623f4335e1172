"""Tests for the stateless DHCPv6 server (vrouter.inet6.dhcp6), its wire format and config.

A router vnet serving one interface; the station sends Information-requests
built here by hand and decodes the Replies with dpkt and by hand::

    client fe80::(eui64) --- eth0 [red] 2001:db8:1::1/64, dhcp6
"""

from __future__ import annotations

import struct
import textwrap
from ipaddress import IPv6Address

import dpkt
import pytest

from vrouter.daemon.config import ConfigError, parse
from vrouter.inet6 import dhcp6
from vrouter.wire import dhcp6 as wire

GROUP = IPv6Address("ff02::1:2").packed
DNS = (IPv6Address("2001:db8:1::53").packed,)


def opt(code: int, value: bytes) -> bytes:
    return struct.pack("!HH", code, len(value)) + value


def inforeq(*options: bytes, type_: int = 11, xid: bytes = b"\x12\x34\x56") -> bytes:
    return bytes([type_]) + xid + b"".join(options)


CLIENT_ID = opt(1, bytes.fromhex("000300010200005e0001"))


class Net:
    def __init__(self, lab6) -> None:
        self.lab = lab6
        self.red = lab6.vnet("red")
        self.h1 = lab6.host6(self.red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10")
        lab6.finish_dad()
        self.h1.take()
        settings = dhcp6.Dhcp6Settings(DNS, ("example.com",), 3600)
        dhcp6.enable(self.red, self.h1.ifp, settings)

    @property
    def stats(self):
        return self.red.inet6.dhcp6_stats

    def ask(self, payload: bytes, src: bytes | None = None, checksum: bool = True) -> list:
        src = src or self.h1.lla
        datagram = bytearray(struct.pack("!HHHH", 546, 547, 8 + len(payload), 0x1234) + payload)
        if checksum:
            datagram[6:8] = b"\0\0"
            pseudo = src + GROUP + struct.pack("!I3xB", len(datagram), 17)
            struct.pack_into("!H", datagram, 6, dpkt.in_cksum(pseudo + bytes(datagram)) or 0xFFFF)
        packet = self.h1.packet6(GROUP, 17, bytes(datagram), src=src)
        self.h1.send(self.h1.frame6(packet, b"\x33\x33\x00\x01\x00\x02"), self.lab.now)
        self.lab.settle()
        return [f for f in self.h1.take_ip6() if f.data.nxt == 17]


@pytest.fixture
def net(lab6) -> Net:
    return Net(lab6)


def options_of(payload: bytes) -> dict[int, bytes]:
    out = {}
    i = 4
    while i < len(payload):
        code, length = struct.unpack_from("!HH", payload, i)
        out[code] = payload[i + 4 : i + 4 + length]
        i += 4 + length
    assert i == len(payload)
    return out


def test_information_request_gets_a_reply_with_dns_and_search_list(net: Net) -> None:
    [frame] = net.ask(inforeq(CLIENT_ID, opt(6, struct.pack("!HH", 23, 24)), opt(8, b"\0\0")))
    ip = frame.data
    assert ip.src == net.h1.router_lla and ip.dst == net.h1.lla
    udp = ip.data
    assert (udp.sport, udp.dport) == (547, 546)
    payload = bytes(udp.data)
    assert payload[0] == 7 and payload[1:4] == b"\x12\x34\x56"
    options = options_of(payload)
    assert options[1] == CLIENT_ID[4:]
    assert options[2] == struct.pack("!HH", 3, 1) + net.h1.ifp.mac
    assert options[23] == DNS[0]
    assert options[24] == b"\x07example\x03com\x00"
    assert options[32] == struct.pack("!I", 3600)
    assert net.stats.information_requests == 1 and net.stats.replies == 1
    assert GROUP in net.red.inet6.groups["eth0"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x0b", "dhcp6_tooshort"),
        (inforeq() + b"\x00\x01\x00\xff", "dhcp6_badopt"),
        (inforeq(opt(6, b"\0\x17\0")), "dhcp6_badopt"),
        (inforeq(opt(1, b"\0")), "dhcp6_badopt"),
        (inforeq(opt(3, bytes(12))), "dhcp6_invalid"),
        (inforeq(opt(2, bytes.fromhex("0003000102aabbccddee"))), "dhcp6_invalid"),
        (inforeq(type_=12), "dhcp6_relay"),
    ],
    ids=["short", "past_end", "oro_odd", "duid_short", "ia_na", "other_server", "relay"],
)
def test_malformed_or_invalid_requests_are_dropped_and_counted(
    net: Net, payload: bytes, reason: str
) -> None:
    assert net.ask(payload) == []
    assert net.stats.bad == 1 and net.stats.replies == 0
    assert dict(net.h1.ifp.counters.rx_drops) == {reason: 1}


def test_bad_udp_checksum_is_dropped(net: Net) -> None:
    assert net.ask(inforeq(CLIENT_ID), checksum=False) == []
    assert dict(net.h1.ifp.counters.rx_drops) == {"udp_badsum": 1}


def test_solicit_is_ignored_and_counted(net: Net) -> None:
    assert net.ask(inforeq(CLIENT_ID, type_=1)) == []
    assert net.stats.ignored == 1
    assert dict(net.h1.ifp.counters.rx_drops) == {"dhcp6_unsupported": 1}


def test_disabled_interface_leaves_the_port_closed(net: Net) -> None:
    dhcp6.disable(net.red, net.h1.ifp)
    assert net.red.inet6.udp_services == {}
    assert GROUP not in net.red.inet6.groups["eth0"]


def test_wire_message_round_trip() -> None:
    message = wire.Message(11, b"\x01\x02\x03", ((6, b"\x00\x17"), (8, b"\x00\x00")))
    parsed = wire.parse(message.emit())
    assert parsed == message and parsed.requested() == frozenset({23})


# --- config --------------------------------------------------------------------------------

BASE = """
[vnets.red.interfaces.tap0]
type = "tap"
addresses = ["2001:db8:1::1/64"]
ra = true
"""


def _parse(extra: str):
    return parse(textwrap.dedent(BASE + extra), "vrouter.toml")


def test_config_dhcp6_sets_the_o_flag_by_default() -> None:
    cfg = _parse('dhcp6 = { dns = ["2001:db8:1::53"], domains = ["Example.COM."] }\n')
    [icfg] = cfg.vnets[0].interfaces
    assert icfg.dhcp6 is not None and icfg.dhcp6.domains == ("example.com",)
    assert icfg.dhcp6.dns == (IPv6Address("2001:db8:1::53"),)
    assert icfg.ra is not None and icfg.ra.other is True
    plain = _parse("")
    assert plain.vnets[0].interfaces[0].ra.other is False


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('dhcp6 = { dns = ["192.0.2.53"] }', "is IPv4; dns lists IPv6 DNS servers"),
        ('dhcp6 = { domains = ["bad_name.example"] }', "is not a domain name"),
        ("dhcp6 = { refresh = 10 }", "refresh 10 is out of range"),
        ("dhcp6 = {}", "needs dns or domains"),
        ('dhcp6 = { dns = ["2001:db8::53"], leases = 1 }', "leases"),
    ],
)
def test_config_errors_name_the_key(text: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(text + "\n")
    assert "vnets.red.interfaces.tap0.dhcp6" in str(info.value)
    assert reason in str(info.value)
