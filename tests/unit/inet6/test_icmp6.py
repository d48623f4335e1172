"""Tests for vrouter.inet6.icmp6: echo and error building, Packet Too Big and path MTU (RFC 8201).

The dual-stack scenario of test_ipv6.py::

    h1 2001:db8:1::10 --- eth0 [red] ep0 ====== ep0 [blue] eth0 --- h2 2001:db8:2::10
                    2001:db8:1::1/64  2001:db8:ff::1/64  2001:db8:ff::2/64  2001:db8:2::1/64

h1 pings blue's eth0 address 2001:db8:2::1: blue's echo replies are the
packets "of its own" whose path MTU a Packet Too Big lowers.  Replies reach
h1 through red; their fragments are decoded with dpkt and reassembled here.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Network

import dpkt
import pytest

from vrouter.inet6 import icmp6
from vrouter.inet6.icmp6 import PMTU_LIFETIME
from vrouter.route import state as route_state

ETH_IP6 = dpkt.ethernet.ETH_TYPE_IP6
NH_FRAG, NH_ICMP6 = 44, 58
ECHO_REQUEST, ECHO_REPLY, TOOBIG = 128, 129, 2
BLUE = IPv6Address("2001:db8:2::1").packed


def a6(text: str) -> bytes:
    return IPv6Address(text).packed


def pseudo_sum(src: bytes, dst: bytes, proto: int, data: bytes) -> int:
    return dpkt.in_cksum(src + dst + struct.pack("!I3xB", len(data), proto) + data)


def icmp6_msg(type_: int, code: int, body: bytes, src: bytes, dst: bytes) -> bytes:
    raw = bytes([type_, code, 0, 0]) + body
    return raw[:2] + struct.pack("!H", pseudo_sum(src, dst, NH_ICMP6, raw)) + raw[4:]


class Scenario:
    def __init__(self, lab6) -> None:
        self.lab = lab6
        self.red = lab6.vnet("red")
        self.blue = lab6.vnet("blue")
        self.h1 = lab6.host6(self.red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10")
        self.h2 = lab6.host6(self.blue, "eth0", ("2001:db8:2::1/64",), "2001:db8:2::10")
        self.epair = lab6.epair6(
            self.red, "ep0", ("2001:db8:ff::1/64",), self.blue, "ep0", ("2001:db8:ff::2/64",)
        )
        lab6.finish_dad()
        route_state.add_static(
            self.red, IPv6Network("2001:db8:2::/64"), via=IPv6Address("2001:db8:ff::2")
        )
        route_state.add_static(
            self.blue, IPv6Network("2001:db8:1::/64"), via=IPv6Address("2001:db8:ff::1")
        )
        self.h1.learn_router6(lab6.now)
        self.h2.learn_router6(lab6.now)
        assert len(self.replies(self.ping(b"warm-up"))) == 1
        self.h1.take()
        self.h2.take()

    @property
    def now(self) -> float:
        return self.lab.now

    def send(self, host, frame: bytes) -> None:
        host.send(frame, self.lab.now)
        self.lab.settle()

    def ping(self, payload: bytes, seq: int = 1, host=None, dst: bytes = BLUE):
        """h1 (or ``host``) pings ``dst``; return the host."""
        host = host or self.h1
        self.send(host, host.ping6(dst, ident=0x77, seq=seq, payload=payload))
        return host

    def ping_in_fragments(self, payload: bytes, size: int = 1232) -> None:
        """h1 pings blue with a request it fragments itself (``size`` data bytes each)."""
        body = struct.pack("!HH", 0x77, 1) + payload
        request = self.h1.packet6(
            BLUE, NH_ICMP6, icmp6_msg(ECHO_REQUEST, 0, body, self.h1.ip6, BLUE)
        )
        header, data = request[:40], request[40:]
        for start in range(0, len(data), size):
            chunk = data[start : start + size]
            fixed = bytearray(header)
            fixed[4:6] = struct.pack("!H", 8 + len(chunk))
            fixed[6] = NH_FRAG
            more = int(start + size < len(data))
            fh = struct.pack("!BBHI", NH_ICMP6, 0, start | more, 0xF00D)
            self.send(self.h1, self.h1.frame6(bytes(fixed) + fh + chunk))

    def replies(self, host) -> list[list[bytes]]:
        """Return the echo replies that reached ``host``: each a list of IPv6 packets."""
        whole, frags = [], []
        for raw in host.take_raw():
            eth = dpkt.ethernet.Ethernet(raw)
            if eth.type != ETH_IP6:
                continue
            packet = raw[14:]
            if packet[6] == NH_FRAG:
                frags.append(packet)
            elif packet[6] == NH_ICMP6 and packet[40] == ECHO_REPLY:
                whole.append([packet])
        if frags:
            whole.append(frags)
        return whole

    def ptb(self, mtu: int, quoted: bytes, to: bytes = BLUE) -> bytes:
        """Return a Packet Too Big from h1 to ``to`` quoting ``quoted``."""
        message = icmp6_msg(TOOBIG, 0, struct.pack("!I", mtu) + quoted, self.h1.ip6, to)
        return self.h1.frame6(self.h1.packet6(to, NH_ICMP6, message))

    def blue_reply(self, size: int = 1400, src: bytes = BLUE) -> bytes:
        """Return an IPv6 packet as blue would send to h1 (what a router quotes)."""
        body = struct.pack("!HH", 0x77, 1) + bytes(size - 48)
        echo = icmp6_msg(ECHO_REPLY, 0, body, src, self.h1.ip6)
        return self.h1.packet6(self.h1.ip6, NH_ICMP6, echo, src=src)


@pytest.fixture
def sc(lab6) -> Scenario:
    return Scenario(lab6)


def reassemble(pieces: list[bytes], src: bytes, dst: bytes) -> tuple[int, bytes]:
    """Check fragments with dpkt and rebuild the ICMPv6 message; return (max size, message)."""
    parts, idents = [], set()
    for piece in pieces:
        packet = dpkt.ip6.IP6(piece)
        assert packet.src == src and packet.dst == dst
        frag = packet.extension_hdrs[NH_FRAG]
        idents.add(frag.id)
        nh, _, off_m, _ = struct.unpack("!BBHI", piece[40:48])
        assert nh == NH_ICMP6
        parts.append((off_m & 0xFFF8, bool(off_m & 1), piece[48:]))
    assert len(idents) == 1
    parts.sort()
    assert [p[1] for p in parts] == [True] * (len(parts) - 1) + [False]
    offset = 0
    for start, _, data in parts:
        assert start == offset
        offset += len(data)
    message = b"".join(p[2] for p in parts)
    assert pseudo_sum(src, dst, NH_ICMP6, message) == 0
    return max(len(p) for p in pieces), message


def assert_fragmented_reply(sc: Scenario, replies: list[list[bytes]], mtu: int, payload: bytes):
    [pieces] = replies
    assert len(pieces) >= 2
    largest, message = reassemble(pieces, BLUE, sc.h1.ip6)
    assert largest <= mtu
    assert largest > mtu - 8 - 8  # as large as the MTU allows, in 8-byte units
    reply = dpkt.icmp6.ICMP6(message)
    assert reply.type == ECHO_REPLY and reply.data.data == payload


# --- learning from Packet Too Big --------------------------------------------------------


def test_packet_too_big_about_our_own_packet_lowers_the_path_mtu(sc: Scenario) -> None:
    sc.h1.ifp.mtu = 1280  # red's link to h1
    payload = bytes(range(256)) * 5 + bytes(72)  # 1352 bytes: a 1400-byte packet
    assert sc.replies(sc.ping(payload)) == []  # red could not forward blue's reply ...
    assert sc.red.inet6.stats.toobig == 1  # ... and sent blue a Packet Too Big
    assert sc.blue.inet6.icmp.in_toobig == 1
    assert sc.blue.inet6.pmtu[sc.h1.ip6] == (1280, sc.now + PMTU_LIFETIME)
    replies = sc.replies(sc.ping(payload, seq=2))
    assert_fragmented_reply(sc, replies, 1280, payload)
    assert sc.blue.inet6.stats.fragmented == 1


def test_path_mtu_is_kept_per_destination(sc: Scenario) -> None:
    sc.h1.ifp.mtu = 1280
    sc.ping(b"p" * 1352)
    assert sc.h1.ip6 in sc.blue.inet6.pmtu
    # blue's replies to h2 (its own link, MTU 1500) are not fragmented.
    replies = sc.replies(sc.ping(b"p" * 1352, host=sc.h2))
    [[whole]] = replies
    assert len(whole) == 1400


def test_packet_too_big_from_a_station_lowers_the_path_mtu_to_its_value(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(1300, sc.blue_reply()))
    assert sc.blue.inet6.pmtu[sc.h1.ip6][0] == 1300
    payload = b"q" * 1352
    assert_fragmented_reply(sc, sc.replies(sc.ping(payload)), 1300, payload)


def test_packet_too_big_quoting_someone_elses_packet_is_ignored(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(1280, sc.blue_reply(src=sc.h2.ip6)))  # h2's packet, not blue's
    stat = sc.blue.inet6.icmp
    assert (stat.in_toobig, stat.in_error_msgs) == (1, 1)
    assert sc.blue.inet6.pmtu == {}
    [[whole]] = sc.replies(sc.ping(b"r" * 1352))
    assert len(whole) == 1400


def test_packet_too_big_quoting_a_link_local_source_not_ours_is_ignored(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(1280, sc.blue_reply(src=a6("fe80::dead"))))
    assert sc.blue.inet6.icmp.in_toobig == 1
    assert sc.blue.inet6.pmtu == {}, "learnt a path MTU from a packet that is not ours"


def test_packet_too_big_with_a_truncated_quote_is_ignored(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(1280, sc.blue_reply()[:39]))
    assert sc.blue.inet6.icmp.in_toobig == 1
    assert sc.blue.inet6.pmtu == {}


def test_packet_too_big_with_a_bad_checksum_is_dropped(sc: Scenario) -> None:
    frame = bytearray(sc.ptb(1280, sc.blue_reply()))
    frame[14 + 40 + 2] ^= 0x55
    sc.send(sc.h1, bytes(frame))
    assert sc.blue.inet6.icmp.in_errors == 1 and sc.blue.inet6.icmp.in_toobig == 0
    assert sc.blue.inet6.pmtu == {}


def test_packet_too_big_below_the_ipv6_minimum_is_taken_as_1280(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(576, sc.blue_reply()))
    assert sc.blue.inet6.pmtu[sc.h1.ip6][0] == 1280
    payload = b"s" * 1352
    assert_fragmented_reply(sc, sc.replies(sc.ping(payload)), 1280, payload)


def test_packet_too_big_above_the_link_mtu_does_not_raise_it(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(9000, sc.blue_reply()))
    payload = b"t" * 2000
    sc.ping_in_fragments(payload)
    assert_fragmented_reply(sc, sc.replies(sc.h1), 1500, payload)


def test_packet_too_big_never_raises_a_learnt_path_mtu(sc: Scenario) -> None:
    """RFC 8201 4: a node MUST NOT increase its estimate of the Path MTU in
    response to the contents of a Packet Too Big message."""
    sc.send(sc.h1, sc.ptb(1280, sc.blue_reply()))
    sc.send(sc.h1, sc.ptb(1400, sc.blue_reply()))
    assert sc.blue.inet6.pmtu[sc.h1.ip6][0] == 1280, "a Packet Too Big raised the path MTU"
    payload = b"u" * 1352
    assert_fragmented_reply(sc, sc.replies(sc.ping(payload)), 1280, payload)


# --- expiry ----------------------------------------------------------------------------


def test_path_mtu_entries_expire_after_600_seconds(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(1280, sc.blue_reply()))
    learnt_at = sc.now
    payload = b"v" * 1352
    sc.lab.advance(PMTU_LIFETIME - 1)
    assert_fragmented_reply(sc, sc.replies(sc.ping(payload)), 1280, payload)
    sc.lab.advance(learnt_at + PMTU_LIFETIME - sc.now)
    assert_fragmented_reply(sc, sc.replies(sc.ping(payload)), 1280, payload)  # 600 s: still
    sc.lab.advance(1)
    [[whole]] = sc.replies(sc.ping(payload))
    assert len(whole) == 1400
    assert sc.h1.ip6 not in sc.blue.inet6.pmtu


def test_relearning_after_expiry_restarts_the_lifetime(sc: Scenario) -> None:
    sc.send(sc.h1, sc.ptb(1280, sc.blue_reply()))
    sc.lab.advance(PMTU_LIFETIME + 1)
    sc.send(sc.h1, sc.ptb(1300, sc.blue_reply()))
    assert sc.blue.inet6.pmtu[sc.h1.ip6] == (1300, sc.now + PMTU_LIFETIME)


# --- icmp6 builds, the IP layer sends ---------------------------------------------------


def _host_on_red(lab6):
    red = lab6.vnet("red")
    h1 = lab6.host6(red, "eth0", ("2001:db8:1::1/64",), "2001:db8:1::10")
    lab6.finish_dad()
    h1.learn_router6(lab6.now)
    h1.take()
    return red, h1


def test_input_returns_the_echo_reply_and_sends_nothing(lab6) -> None:
    red, h1 = _host_on_red(lab6)
    request = memoryview(h1.ping6("2001:db8:1::1", ident=9, seq=4, payload=b"hi"))[14:]
    reply = icmp6.input(h1.ifp, request, 40, True, lab6.now)
    assert reply is not None
    packet = dpkt.ip6.IP6(reply)
    assert (packet.src, packet.dst) == (a6("2001:db8:1::1"), a6("2001:db8:1::10"))
    assert packet.data.type == ECHO_REPLY
    assert bytes(packet.data)[4:] == struct.pack("!HH", 9, 4) + b"hi"
    assert h1.take() == []
    assert red.inet6.icmp.out_echo_reply == 0, "counted by the IP layer once it is sent"


def test_error_returns_a_packet_from_the_offended_address(lab6) -> None:
    red, h1 = _host_on_red(lab6)
    probe = memoryview(h1.udp6("2001:db8:1::1", dport=33434))[14:]
    error = icmp6.error(red, h1.ifp, probe, 1, 4, lab6.now)  # port unreachable
    assert error is not None
    packet = dpkt.ip6.IP6(error)
    assert (packet.src, packet.dst) == (a6("2001:db8:1::1"), a6("2001:db8:1::10"))
    assert (packet.data.type, packet.data.code) == (1, 4)
    assert bytes(packet.data)[8:] == bytes(probe)
    assert h1.take() == []


def test_error_to_a_multicast_destination_is_not_built(lab6) -> None:
    red, h1 = _host_on_red(lab6)
    probe = memoryview(h1.udp6("ff02::1"))[14:]
    assert icmp6.error(red, h1.ifp, probe, 1, 4, lab6.now) is None
    assert red.inet6.icmp.suppressed == 1
