"""Tests for vrouter.inet.icmp: it builds echo replies and errors and sends nothing itself.

The IP layer (vrouter.inet.ipv4) sends what these functions return; here
each is called directly, the returned datagram decoded with dpkt, and the
station checked to have received nothing.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import dpkt

from vrouter.inet import icmp
from vrouter.wire import icmp4
from vrouter.wire.ethernet import HEADER_LEN


def ip(text: str) -> bytes:
    return IPv4Address(text).packed


def _setup(lab):
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    h1.learn_router(lab.now)
    h1.take()
    return red, h1


def _ip_of(frame: bytes) -> memoryview:
    return memoryview(frame)[HEADER_LEN:]


def test_input_returns_the_echo_reply_and_sends_nothing(lab) -> None:
    red, h1 = _setup(lab)
    request = h1.ping("192.0.2.1", ident=7, seq=3, payload=b"hello", tos=0x10)
    reply = icmp.input(h1.ifp, _ip_of(request), 20, True, lab.now)
    assert reply is not None
    packet = dpkt.ip.IP(reply)
    assert (packet.src, packet.dst, packet.tos) == (ip("192.0.2.1"), ip("192.0.2.10"), 0x10)
    assert packet.data.type == dpkt.icmp.ICMP_ECHOREPLY
    assert (packet.data.data.id, packet.data.data.seq, packet.data.data.data) == (7, 3, b"hello")
    assert h1.take() == []
    assert red.inet.icmp.in_echo == 1
    assert red.inet.icmp.out_echo_reply == 0, "counted by the IP layer once it is sent"


def test_input_returns_nothing_for_a_broadcast_echo(lab) -> None:
    red, h1 = _setup(lab)
    request = h1.ping("192.0.2.255")
    assert icmp.input(h1.ifp, _ip_of(request), 20, False, lab.now) is None
    assert red.inet.icmp.in_bcast_echo == 1


def test_error_returns_a_datagram_from_the_receiving_interface(lab) -> None:
    red, h1 = _setup(lab)
    probe = h1.udp("198.51.100.7", payload=b"probe")
    error = icmp.error(red, h1.ifp, _ip_of(probe), icmp4.DEST_UNREACH, icmp4.UNREACH_NET, lab.now)
    assert error is not None
    packet = dpkt.ip.IP(error)
    assert (packet.src, packet.dst, packet.ttl) == (ip("192.0.2.1"), ip("192.0.2.10"), 64)
    assert (packet.data.type, packet.data.code) == (icmp4.DEST_UNREACH, icmp4.UNREACH_NET)
    assert bytes(packet.data.data.data).startswith(bytes(_ip_of(probe))[:28])
    assert h1.take() == []
    assert red.inet.icmp.out_errors == 0, "counted by the IP layer once it is sent"


def test_error_about_an_icmp_error_is_not_built(lab) -> None:
    red, h1 = _setup(lab)
    unreachable = dpkt.icmp.ICMP(
        type=dpkt.icmp.ICMP_UNREACH, code=1, data=dpkt.icmp.ICMP.Unreach(data=b"\x45" + bytes(27))
    )
    offender = bytes(h1.packet("198.51.100.7", dpkt.ip.IP_PROTO_ICMP, unreachable))
    built = icmp.error(
        red, h1.ifp, memoryview(offender), icmp4.DEST_UNREACH, icmp4.UNREACH_NET, lab.now
    )
    assert built is None
    assert red.inet.icmp.suppressed == 1
