"""The outer headers a tunnel_gso VXLAN interface writes before a TCP super-frame, and
those it checks and strips from what the kernel redirects to its TAP."""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import types

import pytest

from vrouter.io import vxtunnel
from vrouter.io.vxtunnel import (
    GSO_UDP_L4,
    HEADER,
    HEADER_LEN,
    OUTER_LEN,
    OUTER_LEN6,
    outer_headers,
    unwrap,
)
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


# -- receiving: what the kernel hands the TAP from a VTEP ---------------------------------


def _as_read(local: bytes, remote: bytes, frame: bytes, vhdr: VirtioHdr) -> bytes:
    """What the TAP reads of ``frame`` (offload header ``vhdr``) sent by VTEP ``remote`` to
    ``local`` as one tunnel super-frame: the kernel's header, then the outer packet."""
    headers = outer_headers(remote, local, 4789, wire.header(42), frame, vhdr)
    assert headers is not None
    gso, outer = headers
    ethertype = b"\x08\x00" if len(local) == 4 else b"\x86\xdd"
    return gso + bytes(12) + ethertype + outer + frame


def test_a_tunnel_super_frame_read_whole_yields_the_inner_one_with_a_plain_header() -> None:
    frame = _super_frame(46 * 1398)
    read = _as_read(LOCAL, REMOTE, frame, VHDR)
    result = unwrap(read, LOCAL, 4789)
    assert result == (HEADER_LEN + OUTER_LEN - 8, "198.51.100.2", VHDR)
    start = result[0]  # type: ignore[index]
    assert read[start : start + 8] == wire.header(42) and read[start + 8 :] == frame


def test_over_ipv6_the_tunnel_super_frame_yields_the_same() -> None:
    frame = _super_frame(46 * 1398)
    result = unwrap(_as_read(LOCAL6, REMOTE6, frame, VHDR), LOCAL6, 4789)
    assert result == (HEADER_LEN + OUTER_LEN6 - 8, "2001:db8:42::2", VHDR)


def _plain_read(frame: bytes, udp_sum: bool, flags: int = 0, start: int = 0) -> bytes:
    """A single outer IPv4 datagram from REMOTE to LOCAL as the TAP reads it."""
    udp_len = 8 + 8 + len(frame)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, REMOTE, LOCAL)
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    payload = wire.header(42) + frame
    udp = struct.pack("!HHHH", 4789, 4789, udp_len, 0)
    if udp_sum:
        total = checksum(udp + payload, pseudo_header_sum(REMOTE, LOCAL, 17, udp_len))
        udp = udp[:6] + (total or 0xFFFF).to_bytes(2, "big")
    head = HEADER.pack(flags, 0, 0, 0, start, 16 if start else 0, 0, 0, 0, 0, 0, 0)
    return head + bytes(12) + b"\x08\x00" + ip + udp + payload


def test_a_plain_datagram_is_passed_on_with_its_udp_checksum_checked() -> None:
    frame = _super_frame(100)
    for udp_sum in (False, True):  # zero (none, IPv4) or a right one
        assert unwrap(_plain_read(frame, udp_sum), LOCAL, 4789) == (
            HEADER_LEN + OUTER_LEN - 8, "198.51.100.2", None
        )  # fmt: skip
    bad = bytearray(_plain_read(frame, True))
    bad[-1] ^= 1
    assert unwrap(bytes(bad), LOCAL, 4789) == "bad UDP checksum"


def test_a_datagram_with_a_partial_inner_checksum_keeps_it() -> None:
    frame = _super_frame(100)
    inner_tcp = OUTER_LEN + 34
    read = _plain_read(frame, False, F_NEEDS_CSUM, inner_tcp)
    assert unwrap(read, LOCAL, 4789) == (
        HEADER_LEN + OUTER_LEN - 8, "198.51.100.2", VirtioHdr(F_NEEDS_CSUM, 0, 0, 0, 34, 16)
    )  # fmt: skip
    # Only the outer UDP checksum partial: the inner frame is complete.
    read = _plain_read(frame, False, F_NEEDS_CSUM, 14 + 20)
    assert unwrap(read, LOCAL, 4789) == (HEADER_LEN + OUTER_LEN - 8, "198.51.100.2", None)


def test_what_is_not_vxlan_to_local_and_port_is_ignored_uncounted() -> None:
    read = _plain_read(_super_frame(100), False)
    assert unwrap(read, socket.inet_aton("198.51.100.9"), 4789) == ""
    assert unwrap(read, LOCAL, 4790) == ""
    assert unwrap(read[:20], LOCAL, 4789) == ""  # not even an Ethernet header
    arp = read[:HEADER_LEN] + bytes(12) + b"\x08\x06" + read[HEADER_LEN + 14 :]
    assert unwrap(arp, LOCAL, 4789) == ""
    fragment = bytearray(read)
    fragment[HEADER_LEN + 14 + 6] |= 0x20  # more fragments
    assert unwrap(bytes(fragment), LOCAL, 4789) == ""


def test_malformed_outer_headers_are_dropped_with_a_reason() -> None:
    read = _plain_read(_super_frame(100), True)
    ip = HEADER_LEN + 14
    spoilt = bytearray(read)
    spoilt[ip + 8] -= 1  # the TTL: the header checksum no longer matches
    assert unwrap(bytes(spoilt), LOCAL, 4789) == "bad IPv4 checksum"
    assert unwrap(read[:-1], LOCAL, 4789) == "bad length"
    assert unwrap(read[: HEADER_LEN + OUTER_LEN - 1], LOCAL, 4789) == "truncated"
    udp_gso = HEADER.pack(F_NEEDS_CSUM, 5 | 0x20, 0, 1400, OUTER_LEN + 34, 6, 0, 0, 0, 0, 34, 64)
    assert unwrap(udp_gso + read[HEADER_LEN:], LOCAL, 4789) == "unsupported offload"


def test_a_train_the_kernel_joined_is_passed_on_with_its_datagram_size() -> None:
    frame = _super_frame(1398)
    size = 8 + len(frame)
    payload = (wire.header(42) + frame) * 3
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, REMOTE, LOCAL)
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    udp = struct.pack("!HHHH", 4789, 4789, udp_len, 0)
    head = HEADER.pack(F_NEEDS_CSUM, GSO_UDP_L4, 14 + 20 + 8, size, 14 + 20, 6, 0, 0, 0, 0, 0, 0)
    read = head + bytes(12) + b"\x08\x00" + ip + udp + payload
    assert unwrap(read, LOCAL, 4789) == (
        HEADER_LEN + OUTER_LEN - 8, "198.51.100.2", VirtioHdr(0, GSO_UDP_L4, 0, size, 0, 0)
    )  # fmt: skip
    tiny = HEADER.pack(F_NEEDS_CSUM, GSO_UDP_L4, 14 + 20 + 8, 8, 14 + 20, 6, 0, 0, 0, 0, 0, 0)
    assert unwrap(tiny + read[HEADER_LEN:], LOCAL, 4789) == "unsupported offload"


def test_the_inner_header_length_is_the_frames_not_the_kernels_hint() -> None:
    # The kernel's hdr_len is only a hint (the length of the packet's linear part):
    # shorter than the outer headers for a packet held in pages, the whole packet for
    # one held linear.  The inner header says what the inner frame's headers are.
    frame = _super_frame(46 * 1398)
    read = _as_read(LOCAL, REMOTE, frame, VHDR)
    for hint in (0, 20, len(read) - HEADER_LEN):
        head = bytearray(read[:HEADER_LEN])
        head[2:4] = hint.to_bytes(2, "little")
        result = unwrap(bytes(head) + read[HEADER_LEN:], LOCAL, 4789)
        assert result == (HEADER_LEN + OUTER_LEN - 8, "198.51.100.2", VHDR)
        VHDR.emit()  # packs: a header the data path can write out


def test_a_super_frame_whose_inner_tcp_header_is_cut_off_is_dropped() -> None:
    frame = _super_frame(0)[: 14 + 20 + 10]  # the TCP header cut after 10 bytes
    read = _as_read(LOCAL, REMOTE, frame + bytes(22), VHDR)
    cut = read[:-22]
    # lengths as the outer headers say for the shorter packet
    ip = HEADER_LEN + 14
    spoilt = bytearray(cut)
    spoilt[ip + 2 : ip + 4] = (len(cut) - ip).to_bytes(2, "big")
    spoilt[ip + 10 : ip + 12] = b"\x00\x00"
    spoilt[ip + 10 : ip + 12] = checksum(spoilt[ip : ip + 20]).to_bytes(2, "big")
    spoilt[ip + 24 : ip + 26] = (len(cut) - ip - 20).to_bytes(2, "big")
    assert unwrap(bytes(spoilt), LOCAL, 4789) == "truncated"


def test_tc_missing_or_hanging_is_a_complaint_not_an_exception(monkeypatch) -> None:
    # Without tc (or with one that does not answer) the interface keeps the socket path
    # with the reason, and nothing else: no exception leaves these helpers.
    def missing(args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", args[0])

    def hanging(args, **kwargs):
        raise subprocess.TimeoutExpired(args, kwargs["timeout"])

    for run in (missing, hanging):
        monkeypatch.setattr(vxtunnel.subprocess, "run", run)
        assert vxtunnel._tc("filter", "add") != ""
        assert vxtunnel._sweep("vrdu") == set()
        with pytest.raises(OSError):  # the interface's caller takes it: socket only
            vxtunnel.holder("198.51.100.1")


def test_a_failed_read_of_the_tunnel_tap_is_counted_an_empty_one_is_not() -> None:
    failed: list[OSError] = []
    drained: list[bool] = []
    empty_r, empty_w = os.pipe()
    os.set_blocking(empty_r, False)
    broken = os.open("/", os.O_RDONLY)  # reading a directory fails with EISDIR
    try:
        for fd in (empty_r, broken):
            tap = types.SimpleNamespace(
                fd=fd, _local=LOCAL, _port=4789, receive=None, malformed=None,
                failed=failed.append, drained=lambda: drained.append(True),
            )  # fmt: skip
            vxtunnel.TunnelTap._drain(tap)  # type: ignore[arg-type]
    finally:
        for fd in (empty_r, empty_w, broken):
            os.close(fd)
    assert [err.errno for err in failed] == [errno.EISDIR]  # no frames waiting: not a failure
    assert drained == [True, True]
