"""Malformed frames from a real host are dropped and counted; forwarding goes on.

The frames leave vr-h1 through an AF_PACKET socket on its TAP, so they take
exactly the path a broken or hostile host's frames would.
"""

from __future__ import annotations

import struct
import textwrap

import pytest
from harness import Vrouterd

from vrouter.wire import ethernet, ipv4, ipv6, udp
from vrouter.wire.checksum import checksum

pytestmark = pytest.mark.integration

SENDER = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[1], 0))
    for frame in sys.argv[2:]:
        s.send(bytes.fromhex(frame))
    """
)

H1 = bytes([192, 0, 2, 2])
H2 = bytes([198, 51, 100, 2])


def _packet(ttl: int = 64) -> bytearray:
    payload = udp.build(H1, H2, 40000, 9, b"vrouter malformed-frame test")
    return bytearray(ipv4.build(H1, H2, ipv4.PROTO_UDP, payload, ttl=ttl))


def _fix_checksum(packet: bytearray) -> bytearray:
    hlen = (packet[0] & 0x0F) * 4
    packet[10:12] = b"\0\0"
    packet[10:12] = struct.pack("!H", checksum(packet[: max(hlen, 20)]))
    return packet


def _cases() -> dict[str, tuple[bytes, str]]:
    """name -> (IPv4 packet bytes, the drop reason the router must count)."""
    bad_sum = _packet()
    bad_sum[10] ^= 0xFF
    short_ihl = _packet()
    short_ihl[0] = 0x44
    too_long = _packet()
    too_long[2:4] = struct.pack("!H", len(too_long) + 40)
    return {
        "empty payload": (b"", "ip_tooshort"),
        "truncated header": (bytes(_packet()[:12]), "ip_tooshort"),
        "bad header checksum": (bytes(bad_sum), "ip_badsum"),
        "IHL below 5": (bytes(_fix_checksum(short_ihl)), "ip_badhlen"),
        "total length beyond frame": (bytes(_fix_checksum(too_long)), "ip_tooshort"),
        "TTL 0": (bytes(_packet(ttl=0)), "ip_ttl_exceeded"),
        "TTL 1": (bytes(_packet(ttl=1)), "ip_ttl_exceeded"),
    }


def test_malformed_frames_are_dropped_and_counted(demo: Vrouterd) -> None:
    tap = demo.tap("r")
    router_mac = next(i["mac"] for i in demo.call("ifconfig", vnet="red") if i["name"] == tap)
    host_mac = demo.exec("h1", "cat", f"/sys/class/net/{tap}/address").stdout.strip()
    header = ethernet.HEADER.pack(
        ethernet.mac_from_str(router_mac), ethernet.mac_from_str(host_mac), ethernet.ETHERTYPE_IPV4
    )
    # The router must know h1 before TTL errors can go back to it.
    demo.exec("h1", "ping", "-c", "1", "-W", "2", "192.0.2.1")
    before = demo.counters("red", tap)["rx_drops"]
    cases = _cases()
    frames = [(header + packet).hex() for packet, _ in cases.values()]
    demo.python("h1", "-c", SENDER, tap, *frames)

    expected: dict[str, int] = {}
    for _, reason in cases.values():
        expected[reason] = expected.get(reason, 0) + 1
    after = demo.counters("red", tap)["rx_drops"]
    for _ in range(50):  # the frames are in flight for a moment
        if all(after.get(r, 0) - before.get(r, 0) >= n for r, n in expected.items()):
            break
        demo.exec("h1", "sleep", "0.1")
        after = demo.counters("red", tap)["rx_drops"]
    grown = {r: after.get(r, 0) - before.get(r, 0) for r in expected}
    assert grown == expected
    stats = demo.call("netstat", vnet="red")["ip"]
    assert stats["badsum"] >= 1 and stats["badhlen"] >= 1 and stats["ttl_exceeded"] >= 2

    # The daemon is alive and still forwards.
    result = demo.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2")
    assert "2 received" in result.stdout


H1_6 = bytes.fromhex("20010db8000100000000000000000002")
ROUTER_6 = bytes.fromhex("20010db8000100000000000000000001")
H2_6 = bytes.fromhex("20010db8000200000000000000000002")


def _ipv6(
    dst: bytes, next_header: int, payload: bytes, hop_limit: int = 64, src: bytes = H1_6
) -> bytes:
    return ipv6.build(src, dst, next_header, payload, hop_limit=hop_limit)


def _cases6() -> dict[str, tuple[bytes, str]]:
    """name -> (IPv6 packet bytes, the drop reason the router must count)."""
    udp6 = udp.build(H1_6, H2_6, 40000, 9, b"vrouter malformed-frame test")
    good = _ipv6(H2_6, ipv6.NH_UDP, udp6)
    bad_version = bytearray(good)
    bad_version[0] = 0x40
    too_long = bytearray(good)
    too_long[4:6] = struct.pack("!H", len(udp6) + 64)
    # Destination Options (PadN to 8 bytes) followed by Hop-by-Hop: illegal order.
    dstopts_then_hbh = bytes([ipv6.NH_HOPOPTS, 0, 1, 4, 0, 0, 0, 0])
    hbh = bytes([ipv6.NH_NONE, 0, 1, 4, 0, 0, 0, 0])
    routing0 = bytes([ipv6.NH_NONE, 2, 0, 1, 0, 0, 0, 0]) + bytes(16)
    return {
        "empty payload": (b"", "ip6_tooshort"),
        "truncated header": (good[:20], "ip6_tooshort"),
        "version 4": (bytes(bad_version), "ip6_badvers"),
        "payload length beyond frame": (bytes(too_long), "ip6_tooshort"),
        "multicast source": (_ipv6(H2_6, ipv6.NH_UDP, udp6, src=ipv6.ALL_NODES), "ip6_badsrc"),
        "hop-by-hop not first": (
            _ipv6(ROUTER_6, ipv6.NH_DSTOPTS, dstopts_then_hbh + hbh),
            "ip6_badhopopts",
        ),
        "routing type 0": (_ipv6(ROUTER_6, ipv6.NH_ROUTING, routing0), "ip6_badrouting"),
        "unknown next header": (_ipv6(ROUTER_6, 150, b"\0" * 8), "ip6_noproto"),
        "hop limit 1": (_ipv6(H2_6, ipv6.NH_UDP, udp6, hop_limit=1), "ip6_hoplimit_exceeded"),
    }


def test_malformed_ipv6_frames_are_dropped_and_counted(demo: Vrouterd) -> None:
    tap = demo.tap("r")
    router_mac = next(i["mac"] for i in demo.call("ifconfig", vnet="red") if i["name"] == tap)
    host_mac = demo.exec("h1", "cat", f"/sys/class/net/{tap}/address").stdout.strip()
    header = ethernet.HEADER.pack(
        ethernet.mac_from_str(router_mac), ethernet.mac_from_str(host_mac), ethernet.ETHERTYPE_IPV6
    )
    # The router must know h1 before errors can go back to it.
    demo.exec("h1", "ping", "-6", "-c", "1", "-W", "2", "2001:db8:1::1")
    before = demo.counters("red", tap)["rx_drops"]
    errors_before = demo.call("netstat", vnet="red")["icmp6"]["out_errors"]
    cases = _cases6()
    demo.python("h1", "-c", SENDER, tap, *[(header + p).hex() for p, _ in cases.values()])

    expected: dict[str, int] = {}
    for _, reason in cases.values():
        expected[reason] = expected.get(reason, 0) + 1
    after = demo.counters("red", tap)["rx_drops"]
    for _ in range(50):
        if all(after.get(r, 0) - before.get(r, 0) >= n for r, n in expected.items()):
            break
        demo.exec("h1", "sleep", "0.1")
        after = demo.counters("red", tap)["rx_drops"]
    assert {r: after.get(r, 0) - before.get(r, 0) for r in expected} == expected
    # Parameter problem (three) and time exceeded (one) went back to h1.
    assert demo.call("netstat", vnet="red")["icmp6"]["out_errors"] - errors_before == 4

    result = demo.exec("h1", "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:2::2")
    assert "2 received" in result.stdout
