"""Tests for vrouter.inet.closed: UDP and TCP to a closed port, IPv4 and IPv6 alike.

Segments and datagrams are built with dpkt; what is checked is what the
sender is owed (port unreachable, a reset decoded with dpkt) and the
interface's drop counters.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import dpkt
import pytest

from vrouter.inet import closed
from vrouter.wire import tcp, udp

V4 = (IPv4Address("192.0.2.10").packed, IPv4Address("192.0.2.1").packed)
V6 = (IPv6Address("2001:db8::10").packed, IPv6Address("2001:db8::1").packed)


@pytest.fixture
def ifp(lab):
    return lab.iface(lab.vnet("red"), "eth0")


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_a_valid_datagram_is_owed_port_unreachable(ifp, addresses) -> None:
    src, dst = addresses
    datagram = memoryview(udp.build(src, dst, 40000, 33434, b"probe"))
    assert closed.udp_input(ifp, src, dst, datagram) is True
    assert ifp.counters.rx_drops == {"udp_noport": 1}
    assert ifp.counters.rx_errors == 0


@pytest.mark.parametrize(
    ("addresses", "owed"), [(V4, True), (V6, False)], ids=["ipv4", "ipv6"]
)
def test_a_zero_checksum_is_valid_in_ipv4_only(ifp, addresses, owed) -> None:
    src, dst = addresses
    datagram = bytearray(udp.build(src, dst, 40000, 33434, b"probe"))
    datagram[6:8] = b"\x00\x00"
    assert closed.udp_input(ifp, src, dst, memoryview(datagram)) is owed
    assert ifp.counters.rx_drops == ({"udp_noport": 1} if owed else {"udp_badsum": 1})


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_a_syn_is_owed_a_reset_that_acknowledges_it(ifp, addresses) -> None:
    src, dst = addresses
    syn = memoryview(tcp.build(src, dst, 40000, 80, 1000, 0, tcp.SYN))
    reset = closed.tcp_input(ifp, src, dst, syn, unicast=True)
    assert reset is not None
    segment = dpkt.tcp.TCP(reset)
    assert (segment.sport, segment.dport) == (80, 40000)
    assert segment.flags == dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK
    assert segment.ack == 1001
    assert ifp.counters.rx_drops == {"tcp_noport": 1}


def test_nothing_is_owed_to_a_broadcast_syn_or_a_reset(ifp) -> None:
    src, dst = V4
    syn = memoryview(tcp.build(src, dst, 40000, 80, 1000, 0, tcp.SYN))
    rst = memoryview(tcp.build(src, dst, 40000, 80, 1000, 0, tcp.RST))
    assert closed.tcp_input(ifp, src, dst, syn, unicast=False) is None
    assert closed.tcp_input(ifp, src, dst, rst, unicast=True) is None
    assert ifp.counters.rx_drops == {"tcp_noport": 2}


def test_a_bad_tcp_checksum_is_an_error_and_owed_nothing(ifp) -> None:
    src, dst = V6
    segment = bytearray(tcp.build(src, dst, 40000, 80, 1000, 0, tcp.SYN))
    segment[16] ^= 0xFF
    assert closed.tcp_input(ifp, src, dst, memoryview(segment), unicast=True) is None
    assert ifp.counters.rx_drops == {"tcp_badsum": 1}
    assert ifp.counters.rx_errors == 1
