"""The outer headers a tunnel_gso VXLAN interface writes before a TCP super-frame."""

from __future__ import annotations

import socket
import struct

from vrouter.io.vxtunnel import HEADER, HEADER_LEN, OUTER_LEN, OUTER_LEN6, outer_headers
from vrouter.link.offload import F_NEEDS_CSUM, GSO_TCPV4, VirtioHdr
from vrouter.wire import vxlan as wire
from vrouter.wire.checksum import checksum, pseudo_header_sum

LOCAL = socket.inet_aton("198.51.100.1")
REMOTE = socket.inet_aton("198.51.100.2")
LOCAL6 = socket.inet_pton(socket.AF_INET6, "2001:db8:42::1")
REMOTE6 = socket.inet_pton(socket.AF_INET6, "2001:db8:42::2")
VHDR = VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 66, 1398, 34, 16)


def _super_frame(payload: int) -> bytes:
    ip_len = 20 + 32 + payload
    ip = bytes.fromhex("4500") + ip_len.to_bytes(2, "big") + bytes.fromhex("000040004006 0000")
    ip += bytes([192, 0, 2, 11, 192, 0, 2, 20])
    tcp = bytes(12) + bytes([0x80, 0x10]) + bytes(18)  # 32-byte header (timestamps)
    return bytes(12) + b"\x08\x00" + ip + tcp + bytes(payload)


def test_the_header_asks_the_kernel_to_segment_inside_the_tunnel() -> None:
    frame = _super_frame(46 * 1398)
    headers = outer_headers(LOCAL, REMOTE, 4789, wire.header(42), frame, VHDR)
    assert headers is not None
    gso, outer = headers
    assert len(gso) == HEADER_LEN == 24
    fields = HEADER.unpack(gso)
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = fields[:6]
    assert (flags, gso_type, gso_size, csum_offset) == (F_NEEDS_CSUM, 0x21, 1398, 16)
    # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8, then the inner frame's own offsets
    assert (csum_start, hdr_len) == (OUTER_LEN + 34, OUTER_LEN + 66)
    assert fields[-2:] == (14 + 20, OUTER_LEN + 14)  # outer UDP, inner IP
    ip, udp, vxlan = outer[:20], outer[20:28], outer[28:]
    assert checksum(ip) == 0 and ip[9] == 17 and ip[6] & 0x40  # valid, UDP, DF
    assert struct.unpack("!H", ip[2:4])[0] == 20 + 8 + 8 + len(frame)
    assert ip[12:16] == LOCAL and ip[16:20] == socket.inet_aton("198.51.100.2")
    assert struct.unpack("!HHHH", udp) == (4789, 4789, 8 + 8 + len(frame), 0)
    assert vxlan == wire.header(42)


def test_a_frame_too_long_or_tagged_is_left_to_the_socket() -> None:
    frame = _super_frame(65535 - 20 - 32)
    assert outer_headers(LOCAL, REMOTE, 4789, wire.header(42), frame, VHDR) is None
    plain = _super_frame(4000)
    tagged = plain[:12] + b"\x81\x00\x00\x0a" + plain[12:]
    assert outer_headers(LOCAL, REMOTE, 4789, wire.header(42), tagged, VHDR) is None


def test_over_ipv6_the_kernel_finishes_the_outer_udp_checksum_of_each_segment() -> None:
    frame = _super_frame(46 * 1398)
    headers = outer_headers(LOCAL6, REMOTE6, 4789, wire.header(42), frame, VHDR)
    assert headers is not None
    gso, outer = headers
    fields = HEADER.unpack(gso)
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = fields[:6]
    # NEEDS_CSUM | UDP_TUNNEL_CSUM; TCPV4 inside UDP_TUNNEL_IPV6
    assert (flags, gso_type, gso_size, csum_offset) == (0x09, 0x41, 1398, 16)
    assert OUTER_LEN6 == 14 + 40 + 8 + 8
    assert (csum_start, hdr_len) == (OUTER_LEN6 + 34, OUTER_LEN6 + 66)
    assert fields[-2:] == (14 + 40, OUTER_LEN6 + 14)  # outer UDP, inner IP
    ip, udp, vxlan = outer[:40], outer[40:48], outer[48:]
    assert ip[0] >> 4 == 6 and ip[6] == 17 and ip[7] == 64  # IPv6, UDP, hop limit
    udp_len = 8 + 8 + len(frame)
    assert struct.unpack("!H", ip[4:6])[0] == udp_len
    assert ip[8:24] == LOCAL6 and ip[24:40] == REMOTE6
    sport, dport, length, check = struct.unpack("!HHHH", udp)
    assert (sport, dport, length) == (4789, 4789, udp_len)
    # The pseudo-header's sum, uncomplemented (a partial checksum): what the kernel
    # completes sums over the datagram with it to a valid checksum.
    assert check == pseudo_header_sum(LOCAL6, REMOTE6, 17, udp_len)
    finished = checksum(udp + vxlan + frame)
    datagram = udp[:6] + finished.to_bytes(2, "big") + vxlan + frame
    assert checksum(datagram, pseudo_header_sum(LOCAL6, REMOTE6, 17, udp_len)) == 0
    assert vxlan == wire.header(42)


def test_over_ipv6_the_payload_length_bounds_a_super_frame() -> None:
    fits = _super_frame(65535 - 16 - 14 - 20 - 32)
    assert outer_headers(LOCAL6, REMOTE6, 4789, wire.header(42), fits, VHDR) is not None
    over = _super_frame(65535 - 16 - 14 - 20 - 32 + 1)
    assert outer_headers(LOCAL6, REMOTE6, 4789, wire.header(42), over, VHDR) is None
