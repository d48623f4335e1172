"""Tests for the Subnet-Router anycast address (RFC 4291 2.6.1) of a forwarding vnet.

A router vnet with 2001:db8:1::1/64 on eth0 answers ND and echo for
2001:db8:1:: (NA without the override flag, RFC 4861 7.2.4); a host vnet
does not, and /127 prefixes have none (RFC 6164).
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Interface

import dpkt
import pytest

from vrouter.inet6 import ipv6

ANYCAST = IPv6Address("2001:db8:1::").packed
NA, O_FLAG = 136, 0x20000000


@pytest.fixture
def net(lab6):
    red = lab6.vnet("red")
    h1 = lab6.host6(red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10")
    lab6.finish_dad()
    h1.take()
    return lab6, red, h1


def _echo_replies(h1) -> list[dpkt.ip6.IP6]:
    return [
        f.data
        for f in h1.take_ip6()
        if isinstance(f.data.data, dpkt.icmp6.ICMP6) and f.data.data.type == 129
    ]


def test_ping_to_the_subnet_router_anycast_address_is_answered(net) -> None:
    lab, red, h1 = net
    h1.learn_router6(lab.now)
    h1.send(h1.ping6("2001:db8:1::"), lab.now)
    lab.settle()
    [reply] = _echo_replies(h1)
    assert reply.src == ANYCAST and reply.dst == h1.ip6
    assert red.inet6.stats.forward == 0


def test_anycast_na_has_no_override_flag(net) -> None:
    lab, red, h1 = net
    h1.send(h1.ns("2001:db8:1::"), lab.now)
    lab.settle()
    [na] = [f.data for f in h1.take_nd() if f.data.data.type == NA]
    body = bytes(na.data)
    flags = struct.unpack_from("!I", body, 4)[0]
    assert body[8:24] == ANYCAST and not flags & O_FLAG
    assert bytes.fromhex("ff0200000000000000000001ff000000") in red.inet6.groups["eth0"]


def test_a_host_vnet_does_not_answer_for_the_anycast_address(net) -> None:
    lab, red, h1 = net
    red.inet6.forwarding = False
    h1.send(h1.ns("2001:db8:1::"), lab.now)
    lab.settle()
    assert [f for f in h1.take_nd() if f.data.data.type == NA] == []


@pytest.mark.parametrize(
    ("address", "anycast"),
    [("2001:db8::1/64", "2001:db8::"), ("2001:db8::1/127", None), ("fe80::1/64", None)],
)
def test_which_prefixes_have_an_anycast_address(address: str, anycast: str | None) -> None:
    found = ipv6.subnet_router_anycast(IPv6Interface(address))
    assert found == (IPv6Address(anycast).packed if anycast else None)


def test_removing_the_address_removes_its_anycast_address(net) -> None:
    _, red, h1 = net
    ipv6.remove_address(red, h1.ifp, IPv6Interface("2001:db8:1::1/64"))
    assert red.inet6.anycast == {}
    assert bytes.fromhex("ff0200000000000000000001ff000000") not in red.inet6.groups["eth0"]
