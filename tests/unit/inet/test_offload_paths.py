"""Offload frames through a router: kept whole where they fit, finished where they end."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import dpkt

from vrouter.inet import ipv4
from vrouter.link import offload
from vrouter.route import state as route_state
from vrouter.wire import ipv4 as ip_wire
from vrouter.wire import tcp as tcp_wire
from vrouter.wire.checksum import ones_sum, pseudo_header_sum


def _router(lab):  # red: h1 on eth0, h2 on eth1
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    h2 = lab.host(red, "eth1", "198.51.100.1/24", "198.51.100.10")
    for host in (h1, h2):
        host.learn_router(lab.now)
    lab.settle()
    out: list[bytes | bytearray] = []
    h2.ifp.transmit = out.append
    return red, h1, h2, out


def _superframe(h1, dst: bytes, payload: bytes, gso_size: int) -> offload.OffloadBuffer:
    seg = dpkt.tcp.TCP(sport=40000, dport=5201, seq=5, ack=9, flags=dpkt.tcp.TH_ACK, data=payload)
    raw = bytearray(bytes(seg))
    raw[16:18] = b"\0\0"
    raw[16:18] = ones_sum(b"", pseudo_header_sum(h1.ip, dst, 6, len(raw))).to_bytes(2, "big")
    ip = dpkt.ip.IP(src=h1.ip, dst=dst, p=6, ttl=64, data=bytes(raw))
    ip.df = 1
    frame = h1.ifp.mac + h1.mac + b"\x08\x00" + bytes(ip)
    hdr = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_TCPV4, 54, gso_size, 34, 16)
    return offload.tag(frame, hdr)


def test_superframe_is_forwarded_whole_with_its_header(lab) -> None:
    red, h1, h2, out = _router(lab)
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1448), lab.now)
    lab.settle()
    [frame] = out
    hdr = offload.vhdr_of(frame)
    assert hdr is not None and hdr.gso_size == 1448
    assert frame[22] == 63  # TTL decremented in the super-frame itself
    assert len(frame) == 14 + 20 + 20 + 20000
    assert red.inet.stats.forward == 1


def test_superframe_whose_segments_do_not_fit_gets_needfrag(lab) -> None:
    _red, h1, h2, out = _router(lab)
    h2.ifp.mtu = 1280
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1448), lab.now)
    lab.settle()
    assert out == []
    [reply] = h1.take_ip()
    icmp = reply.data.data
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_UNREACH, dpkt.icmp.ICMP_UNREACH_NEEDFRAG)
    assert icmp.data.mtu == 1280


def test_superframe_whose_segments_fit_a_smaller_mtu_passes(lab) -> None:
    _red, h1, h2, out = _router(lab)
    h2.ifp.mtu = 1280
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1240), lab.now)
    lab.settle()
    [frame] = out
    assert offload.vhdr_of(frame) is not None


def _not_the_full_path(*args: object) -> None:
    raise AssertionError("the fast path should have forwarded this super-frame")


def test_superframe_takes_the_fast_path_and_sends_what_the_full_path_sends(
    lab, monkeypatch
) -> None:
    red, h1, h2, out = _router(lab)
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1448), lab.now)  # fills the cache
    monkeypatch.setattr(ipv4, "_forward", _not_the_full_path)
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1448), lab.now)
    lab.settle()
    slow, fast = out
    assert fast == slow and offload.header_bytes(fast) == offload.header_bytes(slow)
    assert offload.vhdr_of(fast).gso_size == 1448
    assert red.inet.stats.forward == 2


def test_superframe_too_big_for_the_mtu_leaves_the_fast_path_for_needfrag(lab) -> None:
    _red, h1, h2, out = _router(lab)
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1448), lab.now)  # fills the cache
    h2.ifp.mtu = 1280
    h1.send(_superframe(h1, h2.ip, b"z" * 20000, 1448), lab.now)
    lab.settle()
    assert len(out) == 1
    [reply] = h1.take_ip()
    assert reply.data.data.type == dpkt.icmp.ICMP_UNREACH and reply.data.data.data.mtu == 1280


def test_udp_superframe_is_left_to_the_full_path(lab, monkeypatch) -> None:
    _red, h1, h2, out = _router(lab)
    h1.send(_superframe(h1, h2.ip, b"z" * 2000, 1448), lab.now)  # fills the cache
    frame = _superframe(h1, h2.ip, b"z" * 2000, 1448)
    frame.vhdr = frame.vhdr._replace(gso_type=offload.GSO_UDP)
    taken: list[object] = []
    monkeypatch.setattr(ipv4, "_forward", lambda *args: taken.append(args))
    h1.send(frame, lab.now)
    assert len(taken) == 1 and len(out) == 1


def test_partial_checksum_udp_to_the_router_is_answered(lab) -> None:
    _red, h1, _h2, _out = _router(lab)
    udp = dpkt.udp.UDP(sport=40000, dport=33434, data=b"probe")
    udp.ulen = len(udp)
    raw = bytearray(bytes(udp))
    raw[6:8] = ones_sum(
        b"", pseudo_header_sum(h1.ip, IPv4Address("192.0.2.1").packed, 17, len(raw))
    ).to_bytes(2, "big")
    ip = dpkt.ip.IP(src=h1.ip, dst=IPv4Address("192.0.2.1").packed, p=17, ttl=64, data=bytes(raw))
    frame = h1.ifp.mac + h1.mac + b"\x08\x00" + bytes(ip)
    h1.send(offload.tag(frame, offload.VirtioHdr(offload.F_NEEDS_CSUM, 0, 0, 0, 34, 6)), lab.now)
    lab.settle()
    [reply] = h1.take_ip()
    assert (reply.data.data.type, reply.data.data.code) == (3, 3)  # port unreachable
    assert "udp_badsum" not in h1.ifp.counters.rx_drops


def test_superframe_to_the_router_is_taken_whole_and_answered_with_one_reset(lab) -> None:
    red, h1, _h2, _out = _router(lab)
    route_state.add_static(red, IPv4Network("203.0.113.0/24"), via=IPv4Address("198.51.100.10"))
    h1.send(_superframe(h1, IPv4Address("192.0.2.1").packed, b"q" * 3000, 1448), lab.now)
    lab.settle()
    resets = [p for p in h1.take_ip() if isinstance(p.data.data, dpkt.tcp.TCP)]
    # TCP takes a super-frame from the host whole, as one segment: one reset answers it.
    assert len(resets) == 1
    assert all(r.data.data.flags & dpkt.tcp.TH_RST for r in resets)


def test_own_superframe_leaves_whole_and_the_filter_sees_its_header(lab) -> None:
    red, _h1, h2, out = _router(lab)
    seen: list[object] = []

    def pfil(ifp, packet, direction, now) -> bool:  # NAT reads the header this way
        seen.append(offload.vhdr_of(packet.obj))
        return True

    red.inet.pfil = pfil
    src = IPv4Address("198.51.100.1").packed
    payload = b"q" * 4000
    tcp = tcp_wire.header(src, h2.ip, 8080, 40000, 1, 2, tcp_wire.ACK, 500, b"",
                          (payload,), partial=True)  # fmt: skip
    vhdr = offload.tcp_super_header(True, 20, 20, 1000)
    frame = offload.OffloadBuffer(14)
    frame += ip_wire.header(src, h2.ip, 6, len(tcp) + len(payload), df=True) + tcp + payload
    assert ipv4.output_frame(red, frame, lab.now, vhdr)
    assert seen == [vhdr]
    [sent] = out
    assert sent is frame and offload.vhdr_of(sent) == vhdr  # not copied, not cut
    assert sent[:6] == h2.mac and sent[54:] == payload


def _own_packet(src: bytes, dst: bytes) -> bytearray:
    frame = bytearray(14)
    frame += ip_wire.build(src, dst, 17, b"\x9c\x40\x00\x07\x00\x0c\x00\x00abcd", df=True)
    return frame


def test_own_packets_use_the_destination_cache_and_follow_the_neighbour(lab) -> None:
    red, _h1, h2, out = _router(lab)
    src = IPv4Address("198.51.100.1").packed
    for _ in range(2):
        assert ipv4.output_frame(red, _own_packet(src, h2.ip), lab.now)
    assert [bytes(frame[:6]) for frame in out] == [h2.mac, h2.mac]
    dest = red.inet.dests.entries[h2.ip]
    assert dest.neighbour is not None and dest.header[:6] == h2.mac
    # The neighbour goes away: the next packet waits for ARP, as without the cache.
    entry = dest.neighbour
    red.inet.arp.remove(entry, lab.now)
    out.clear()
    assert ipv4.output_frame(red, _own_packet(src, h2.ip), lab.now)
    assert out and all(bytes(frame[12:14]) == b"\x08\x06" for frame in out)  # a request only
    fresh = red.inet.arp.entries[("eth1", h2.ip)]
    assert fresh is not entry and len(fresh.hold) == 1  # held until the answer


def test_own_packets_follow_a_route_change(lab) -> None:
    red, h1, h2, out = _router(lab)
    src = IPv4Address("192.0.2.1").packed
    far = IPv4Address("203.0.113.5").packed
    sent_h1: list[bytes | bytearray] = []
    h1.ifp.transmit = sent_h1.append
    route_state.add_static(red, IPv4Network("203.0.113.0/24"), via=IPv4Address(h2.ip))
    assert ipv4.output_frame(red, _own_packet(src, far), lab.now)
    assert out and out[-1][:6] == h2.mac and not sent_h1
    route_state.add_static(red, IPv4Network("203.0.113.0/25"), via=IPv4Address(h1.ip))
    assert ipv4.output_frame(red, _own_packet(src, far), lab.now)
    assert sent_h1 and sent_h1[-1][:6] == h1.mac
