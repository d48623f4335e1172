"""Offloads: virtio-net headers, partial checksums, TCP super-frames cut into segments."""

from __future__ import annotations

import ipaddress

import dpkt
import pytest

from vrouter.link import offload
from vrouter.link.ifnet import Ifnet
from vrouter.stack import new_tree
from vrouter.wire.checksum import checksum, ones_sum, pseudo_header_sum

H1 = ipaddress.ip_address("192.0.2.2").packed
H2 = ipaddress.ip_address("198.51.100.2").packed
H1_6 = ipaddress.ip_address("2001:db8:1::2").packed
H2_6 = ipaddress.ip_address("2001:db8:2::2").packed
MAC_A = b"\x02\x00\x00\x00\x00\x01"
MAC_B = b"\x02\x00\x00\x00\x00\x02"


def _partial(ip_src: bytes, ip_dst: bytes, proto: int, l4: bytearray, field: int) -> None:
    """Put the pseudo-header sum in the checksum field, as the host's stack does."""
    l4[field : field + 2] = b"\0\0"
    l4[field : field + 2] = ones_sum(
        b"", pseudo_header_sum(ip_src, ip_dst, proto, len(l4))
    ).to_bytes(2, "big")


def _tcp_superframe(v6: bool, payload: bytes, flags: int) -> tuple[bytes, offload.VirtioHdr]:
    seg = dpkt.tcp.TCP(
        sport=40000, dport=5201, seq=1_000_000, ack=7, flags=flags, win=512, data=payload
    )
    seg.off = 5
    raw = bytearray(bytes(seg))
    src, dst = (H1_6, H2_6) if v6 else (H1, H2)
    _partial(src, dst, 6, raw, 16)
    if v6:
        ip = bytes(dpkt.ip6.IP6(src=src, dst=dst, nxt=6, hlim=64, plen=len(raw), data=b""))[:40]
        ip += bytes(raw)
        ethertype, csum_start = 0x86DD, 14 + 40
    else:
        hdr = dpkt.ip.IP(src=src, dst=dst, p=6, ttl=64, id=0x1000, len=20 + len(raw), data=b"")
        hdr.df = 1
        ip = bytes(hdr)[:20] + bytes(raw)
        ethertype, csum_start = 0x0800, 14 + 20
    frame = MAC_B + MAC_A + ethertype.to_bytes(2, "big") + ip
    gso = offload.GSO_TCPV6 if v6 else offload.GSO_TCPV4
    return frame, offload.VirtioHdr(
        offload.F_NEEDS_CSUM, gso, csum_start + 20, 1448, csum_start, 16
    )


def test_header_round_trip() -> None:
    hdr = offload.VirtioHdr(1, 4, 74, 1428, 54, 16)
    assert offload.VirtioHdr.parse(hdr.emit()) == hdr
    assert len(hdr.emit()) == offload.HEADER_LEN == 10
    assert hdr.is_gso and not offload.VirtioHdr(1, 0, 0, 0, 34, 6).is_gso
    assert offload.VirtioHdr(1, offload.GSO_TCPV4 | offload.GSO_ECN, 0, 0, 0, 0).is_gso


@pytest.mark.parametrize("v6", [False, True], ids=["tcp4", "tcp6"])
def test_superframe_is_cut_into_valid_segments(v6: bool) -> None:
    payload = bytes(range(256)) * 20  # 5120 bytes: 3 full segments and a short one
    frame, hdr = _tcp_superframe(v6, payload, dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH | dpkt.tcp.TH_FIN)
    assert offload.segment_length(frame, hdr) == (40 if v6 else 20) + 20 + 1448
    pieces = offload.resolve(frame, hdr)
    assert len(pieces) == 4
    got = b""
    for i, piece in enumerate(pieces):
        eth = dpkt.ethernet.Ethernet(bytes(piece))
        ip = eth.data
        seg = ip.data
        assert isinstance(seg, dpkt.tcp.TCP)
        assert seg.seq == 1_000_000 + i * 1448
        last = i == len(pieces) - 1
        assert bool(seg.flags & dpkt.tcp.TH_PUSH) is last
        assert bool(seg.flags & dpkt.tcp.TH_FIN) is last
        assert seg.flags & dpkt.tcp.TH_ACK
        tcp_bytes = bytes(piece[(54 if not v6 else 74) - 20 :])
        src, dst = (H1_6, H2_6) if v6 else (H1, H2)
        assert checksum(tcp_bytes, pseudo_header_sum(src, dst, 6, len(tcp_bytes))) == 0
        if v6:
            assert ip.plen == len(tcp_bytes)
        else:
            assert ip.len == 20 + len(tcp_bytes)
            assert ip.id == 0x1000 + i
            assert checksum(bytes(piece[14:34])) == 0
        assert len(piece) - 14 <= (40 if v6 else 20) + 20 + 1448
        got += bytes(seg.data)
    assert got == payload


def test_partial_udp_checksum_is_completed() -> None:
    udp = dpkt.udp.UDP(sport=40000, dport=33434, data=b"traceroute probe")
    udp.ulen = len(udp)
    raw = bytearray(bytes(udp))
    _partial(H1, H2, 17, raw, 6)
    ip = dpkt.ip.IP(src=H1, dst=H2, p=17, ttl=1, len=20 + len(raw), data=b"")
    frame = MAC_B + MAC_A + b"\x08\x00" + bytes(ip)[:20] + bytes(raw)
    [done] = offload.resolve(frame, offload.VirtioHdr(offload.F_NEEDS_CSUM, 0, 0, 0, 34, 6))
    assert checksum(bytes(done[34:]), pseudo_header_sum(H1, H2, 17, len(raw))) == 0
    assert bytes(done[:40]) == frame[:40]  # only the checksum changed


def _ifnet(offload_on: bool) -> tuple[Ifnet, list[bytes | bytearray]]:
    tree = new_tree()
    vnet = tree.create("v")
    ifp = Ifnet(vnet, "t0", "tap", MAC_A)
    vnet.link.add(ifp)
    sent: list[bytes | bytearray] = []
    ifp.transmit = sent.append
    ifp.offload = offload_on
    ifp.up = True
    return ifp, sent


def test_an_interface_that_takes_offloads_gets_the_superframe_whole() -> None:
    frame, hdr = _tcp_superframe(False, b"x" * 4000, dpkt.tcp.TH_ACK)
    ifp, sent = _ifnet(True)
    ifp.output(offload.tag(frame, hdr))
    [out] = sent
    assert offload.vhdr_of(out) == hdr and bytes(out) == frame
    assert ifp.counters.tx_packets == 1


def test_an_interface_without_offloads_gets_segments() -> None:
    frame, hdr = _tcp_superframe(False, b"x" * 4000, dpkt.tcp.TH_ACK)
    ifp, sent = _ifnet(False)
    ifp.output(offload.tag(frame, hdr))
    assert len(sent) == 3
    assert all(offload.vhdr_of(f) is None and len(f) <= 1514 for f in sent)
    assert ifp.counters.tx_packets == 3


def test_carry_keeps_the_header_on_a_writable_copy() -> None:
    frame, hdr = _tcp_superframe(False, b"y" * 3000, dpkt.tcp.TH_ACK)
    tagged = offload.tag(frame + b"\0\0\0\0", hdr)  # Ethernet padding beyond the IP length
    buf = offload.carry(tagged, len(frame) - 14)
    buf[22] -= 1  # a router decrements the TTL in place
    assert offload.vhdr_of(buf) == hdr
    assert len(buf) == len(frame) and buf[22] == 63


def test_a_frame_without_offload_work_arrives_as_plain_bytes() -> None:
    frame = bytes(range(60))
    got = offload.received(offload.NO_HEADER + frame)
    assert got.__class__ is bytes and got == frame
    assert offload.header_bytes(got) == offload.NO_HEADER


def test_received_header_bytes_leave_as_they_came(monkeypatch: pytest.MonkeyPatch) -> None:
    # Read, trimmed by a router and written out: the header is never parsed.
    monkeypatch.setattr(offload.VirtioHdr, "parse", None)
    raw = bytes([offload.F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 6, 0])
    frame = bytes(range(60))
    got = offload.received(raw + frame + b"\0\0")  # Ethernet padding beyond the IP length
    assert isinstance(got, offload.OffloadBuffer) and bytes(got) == frame + b"\0\0"
    trimmed = offload.carry(got, len(frame) - 14)
    assert bytes(trimmed) == frame
    assert offload.header_bytes(got) == offload.header_bytes(trimmed) == raw
    monkeypatch.undo()
    assert trimmed.vhdr == offload.VirtioHdr(offload.F_NEEDS_CSUM, 0, 0, 0, 34, 6)


def test_setting_the_header_replaces_the_bytes() -> None:
    got = offload.received(bytes([offload.F_NEEDS_CSUM]) + bytes(9) + bytes(60))
    assert isinstance(got, offload.OffloadBuffer)
    moved = offload.VirtioHdr(offload.F_NEEDS_CSUM, 0, 0, 0, 38, 6)
    got.vhdr = moved
    assert got.vhdr == moved
    assert offload.header_bytes(got) == moved.emit()
