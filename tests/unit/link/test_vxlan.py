"""Tests for vrouter.link.vxlan and vrouter.wire.vxlan: encapsulation, learning, BUM, drops."""

from __future__ import annotations

import ipaddress

import dpkt
import pytest

from vrouter.inet import ipv4
from vrouter.io import vxtunnel
from vrouter.link import bridge as bridge_
from vrouter.link import gro
from vrouter.link import vxlan as vxlan_
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import (
    F_NEEDS_CSUM,
    GSO_TCPV4,
    VirtioHdr,
    resolve,
    segment,
    tag,
    vhdr_of,
)
from vrouter.link.tso import Train
from vrouter.wire import ipv4 as ip_wire
from vrouter.wire import vxlan as wire
from vrouter.wire.checksum import ones_sum

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
MAC_R = bytes.fromhex("0200000000f1")
BCAST = b"\xff" * 6
LOCAL = ipaddress.ip_address("198.51.100.1")
REMOTE_1 = "198.51.100.2"
REMOTE_2 = "198.51.100.3"


def frame(dst: bytes, src: bytes, size: int = 60) -> bytes:
    return dst + src + b"\x88\xb5" + b"\x00" * (size - 14)


def encap(inner: bytes, vni: int = 42) -> bytes:
    return wire.header(vni) + inner


@pytest.fixture
def seg(lab):
    """A vnet with bridge br0 over test port p1 and vxlan vx42 (two static remotes)."""
    vnet = lab.vnet("l2")
    host = lab.host(vnet, "p1", None, None)
    vxif = Ifnet(vnet, "vx42", "vxlan", lab.mac(), 1450)
    vnet.link.add(vxif)
    cfg = vxlan_.VxlanConfigured(
        42, LOCAL, remotes=(ipaddress.ip_address(REMOTE_1), ipaddress.ip_address(REMOTE_2))
    )
    vx = vxlan_.create(vxif, cfg)
    sent: list[tuple[str, bytes]] = []
    vx.send = lambda address, frames: sent.extend((address, vx.header + bytes(f)) for f in frames)
    vxif.up = True
    brif = Ifnet(vnet, "br0", "bridge", lab.mac(), 1450)
    vnet.link.add(brif)
    br = bridge_.create(brif)
    br.add_port(host.ifp)
    br.add_port(vxif)
    brif.up = True
    host.take_raw()
    return vnet, vx, host, sent


def test_the_header_carries_the_i_flag_and_the_vni() -> None:
    assert wire.header(42) == bytes.fromhex("0800000000002a00")
    assert wire.parse(encap(frame(BCAST, MAC_A))) == 42
    assert (wire.OVERHEAD_V4, wire.OVERHEAD_V6) == (50, 70)
    with pytest.raises(ValueError):
        wire.header(1 << 24)


def test_bum_is_replicated_to_every_remote(seg, lab) -> None:
    _, vx, host, sent = seg
    host.send(frame(BCAST, MAC_A), lab.now)
    assert sent == [
        (REMOTE_1, encap(frame(BCAST, MAC_A))),
        (REMOTE_2, encap(frame(BCAST, MAC_A))),
    ]
    assert vx.stats.flooded == 1


def test_a_learnt_mac_goes_to_its_vtep_only(seg, lab) -> None:
    vnet, vx, host, sent = seg
    vx.input(encap(frame(BCAST, MAC_R)), REMOTE_2, lab.now)
    assert host.take_raw() == [frame(BCAST, MAC_R)]  # bridged to the port
    sent.clear()
    host.send(frame(MAC_R, MAC_A), lab.now)
    assert sent == [(REMOTE_2, encap(frame(MAC_R, MAC_A)))]
    view = vx.describe()
    assert [v["address"] for v in view["vteps"]] == [REMOTE_1, REMOTE_2]  # type: ignore[index]
    macs = {v["address"]: v["macs"] for v in view["vteps"]}  # type: ignore[union-attr]
    assert [m["mac"] for m in macs[REMOTE_2]] == ["02:00:00:00:00:f1"]
    assert vnet.link.bridge.fdb_entries == 3  # A and R in the bridge, R in the vxlan


def test_a_mac_learnt_from_an_unknown_vtep_adds_it(seg, lab) -> None:
    _, vx, host, sent = seg
    vx.input(encap(frame(MAC_A, MAC_R)), "198.51.100.9", lab.now)
    assert "198.51.100.9" in vx.vteps and not vx.vteps["198.51.100.9"].static
    host.send(frame(MAC_R, MAC_A), lab.now)
    assert sent[-1][0] == "198.51.100.9"


def test_learnt_macs_age_out_and_unicast_floods_again(seg, lab) -> None:
    vnet, vx, host, sent = seg
    vx.input(encap(frame(BCAST, MAC_R)), "198.51.100.9", lab.now)
    lab.advance(vnet.link.bridge.ageing_time + 1)
    lab.run_timers()
    assert vx.macs == {} and "198.51.100.9" not in vx.vteps
    assert vx.stats.aged == 1
    sent.clear()
    host.send(frame(MAC_R, MAC_A), lab.now)
    assert [a for a, _ in sent] == [REMOTE_1, REMOTE_2]


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (wire.header(42)[:6], "vxlan_truncated"),
        (encap(frame(BCAST, MAC_R))[:20], "vxlan_truncated"),
        (b"\x00" + encap(frame(BCAST, MAC_R))[1:], "vxlan_bad_flags"),
        (encap(frame(BCAST, MAC_R), vni=43), "vxlan_unknown_vni"),
    ],
)
def test_malformed_datagrams_are_dropped_and_counted(seg, lab, datagram, reason) -> None:
    _, vx, host, _ = seg
    vx.input(datagram, REMOTE_1, lab.now)
    assert host.take_raw() == []
    assert vx.ifnet.counters.rx_drops[reason] == 1
    assert vx.macs == {}


def test_too_big_for_the_underlay_is_dropped_and_counted(seg, lab) -> None:
    _, vx, _, sent = seg
    vx.set_underlay_mtu(1400)
    assert vx.ifnet.mtu == 1350
    vx.transmit(frame(BCAST, MAC_A, 1400 - 36 + 1))
    assert sent == []
    assert vx.ifnet.counters.tx_drops["vxlan_too_big"] == 1
    vx.transmit(frame(BCAST, MAC_A, 1400 - 36))
    assert len(sent) == 2


def test_a_tcp_super_frame_leaves_in_segments_as_one_train(seg, lab) -> None:
    _, vx, _, _ = seg
    batches: list[tuple[str, Train]] = []
    vx.send_train = lambda address, train: batches.append((address, train))
    ip_len = 20 + 20 + 4000
    ip = (
        bytes.fromhex("4500") + ip_len.to_bytes(2, "big") + bytes.fromhex("00004000400600 00")
        + bytes([198, 51, 100, 10, 198, 51, 100, 11])
    )  # fmt: skip
    tcp = bytes(12) + bytes([0x50, 0x18]) + bytes(6)
    big = frame(MAC_B, MAC_A, 14)[:12] + b"\x08\x00" + ip + tcp + bytes(4000)
    vhdr = VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 54, 1400, 34, 16)
    vx.transmit(tag(big, vhdr))
    assert [a for a, _ in batches] == [REMOTE_1, REMOTE_2]
    train = batches[0][1]
    data = bytes(train.data)
    datagrams = [data[i : i + train.size] for i in range(0, len(data), train.size)]
    assert [len(d) for d in datagrams] == [8 + 1454, 8 + 1454, 8 + 14 + 40 + 1200]
    assert train.size == 8 + 1454
    assert datagrams == [encap(bytes(s)) for s in segment(big, vhdr)]


def test_a_device_without_trains_gets_the_segments_frame_by_frame(seg, lab) -> None:
    _, vx, _, sent = seg  # the fixture's device only sends frames (as a vnet's UDP does)
    ip_len = 20 + 20 + 3000
    ip = (
        bytes.fromhex("4500") + ip_len.to_bytes(2, "big") + bytes.fromhex("00004000400600 00")
        + bytes([198, 51, 100, 10, 198, 51, 100, 11])
    )  # fmt: skip
    big = MAC_R + MAC_A + b"\x08\x00" + ip + bytes(12) + bytes([0x50, 0x18]) + bytes(6)
    big += bytes(range(256)) * 11 + bytes(184)
    vhdr = VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 54, 1400, 34, 16)
    vx.transmit(tag(big, vhdr))
    segments = [encap(bytes(s)) for s in segment(big, vhdr)]
    assert sent == [(REMOTE_1, d) for d in segments] + [(REMOTE_2, d) for d in segments]


def test_destroy_frees_the_table_and_the_timer(seg, lab) -> None:
    vnet, vx, _, _ = seg
    vx.input(encap(frame(BCAST, MAC_R)), REMOTE_1, lab.now)
    before = vnet.link.bridge.fdb_entries
    vxlan_.destroy(vx.ifnet)
    assert vnet.link.bridge.fdb_entries == before - 1
    assert vnet.link.vxlans == {}
    assert vx._sweep is None
    with pytest.raises(OSError):
        vx.ifnet.transmit(frame(BCAST, MAC_A))


def test_one_vni_per_local_address_and_port(seg, lab) -> None:
    vnet, _, _, _ = seg
    other = Ifnet(vnet, "vx43", "vxlan", lab.mac(), 1450)
    vnet.link.add(other)
    with pytest.raises(vxlan_.VxlanError, match="one VNI per local address and port"):
        vxlan_.create(other, vxlan_.VxlanConfigured(43, LOCAL))


def _tcp(seq: int, payload: bytes, flags: int = 0x10, ts: bytes = b"\x00" * 10) -> bytes:
    """An IPv4 TCP segment 198.51.100.10:1000 -> .11:2000 with a timestamp option."""
    tcp = dpkt.tcp.TCP(sport=1000, dport=2000, seq=seq, ack=7, flags=flags, win=500, off=8,
                       opts=b"\x01\x01\x08\x0a" + ts[:8], data=payload)  # fmt: skip
    ip = dpkt.ip.IP(src=bytes([198, 51, 100, 10]), dst=bytes([198, 51, 100, 11]), p=6, ttl=64,
                    df=1, data=tcp)  # fmt: skip
    ip.len = len(bytes(ip))
    return MAC_B + MAC_A + b"\x08\x00" + bytes(ip)


def test_one_flows_segments_are_joined_into_a_checked_super_frame() -> None:
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(4)]
    segs.append(_tcp(4100, b"\x09" * 300, flags=0x18))  # short, PSH: the end
    other = _tcp(9000, b"x" * 1000, ts=b"\x01" * 10)  # another timestamp: not merged
    (joined, alone) = gro.coalesce([*segs, other])
    assert alone == other
    vhdr = joined.vhdr  # type: ignore[union-attr]
    assert vhdr.gso_type == GSO_TCPV4 and vhdr.gso_size == 1000 and vhdr.hdr_len == 14 + 20 + 32
    pieces = resolve(joined, vhdr)
    assert [bytes(dpkt.ethernet.Ethernet(p).data.data.data) for p in pieces] == [
        bytes(dpkt.ethernet.Ethernet(s).data.data.data) for s in segs
    ]
    for piece in pieces:
        ip = dpkt.ip.IP(bytes(piece[14:]))
        assert ip.sum == dpkt.ip.IP(bytes(ip)).sum  # header checksum right
        tcp_bytes = bytes(piece[34:])
        pseudo = ones_sum(bytes(piece[26:34]), 6 + len(tcp_bytes))
        assert ones_sum(tcp_bytes, pseudo) == 0xFFFF


def test_a_bad_checksum_or_a_gap_is_never_merged() -> None:
    a, b, c = (_tcp(100 + i * 1000, b"a" * 1000) for i in range(3))
    bad = bytearray(b)
    bad[-1] ^= 0xFF
    assert gro.coalesce([a, bytes(bad), c]) == [a, bytes(bad), c]
    gap = _tcp(5000, b"a" * 1000)
    assert gro.coalesce([a, gap]) == [a, gap]
    assert gro.coalesce([ARP := frame(BCAST, MAC_A), a]) == [ARP, a]
    moved = MAC_R + b[6:]  # the flow's next segment, to another MAC
    assert gro.coalesce([a, moved]) == [a, moved]


def test_a_gro_read_of_one_flow_is_joined_and_bridged(seg, lab) -> None:
    _, vx, host, _ = seg
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(5)]
    segs.append(_tcp(5100, b"\x09" * 300, flags=0x18))
    data = b"".join(encap(s) for s in segs)
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append  # keeps the offload header the port gets
    vx.input_train(data, 8 + len(segs[0]), REMOTE_1, lab.now)
    assert delivered == []  # held: the next read may continue it
    vx.release(lab.now)
    [joined] = delivered
    pieces = resolve(joined, vhdr_of(joined))  # type: ignore[arg-type]
    assert [bytes(dpkt.ethernet.Ethernet(p).data.data) for p in pieces] == [
        bytes(dpkt.ethernet.Ethernet(s).data.data) for s in segs
    ]  # TCP headers (checksums) and payloads as sent
    assert vx.vteps[REMOTE_1].rx_packets == 6 and vx.vteps[REMOTE_1].rx_bytes == len(data)
    assert (vx.stats.batches, vx.stats.coalesced) == (1, 6)
    assert vx.macs[MAC_A].vtep.address == REMOTE_1


def test_a_gro_read_for_another_vni_is_dropped_datagram_by_datagram(seg, lab) -> None:
    _, vx, host, _ = seg
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(4)]
    data = b"".join(encap(s, vni=43) for s in segs)
    vx.input_train(data, 8 + len(segs[0]), REMOTE_1, lab.now)
    assert host.take_raw() == []
    assert vx.ifnet.counters.rx_drops["vxlan_unknown_vni"] == 4


def test_consecutive_reads_of_one_flow_leave_as_one_super_frame(seg, lab) -> None:
    _, vx, host, _ = seg
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(9)]
    first, second, third = segs[:3], segs[3:6], segs[6:]
    size = 8 + len(segs[0])
    vx.input_train(b"".join(encap(s) for s in first), size, REMOTE_1, lab.now)
    vx.input_train(b"".join(encap(s) for s in second), size, REMOTE_1, lab.now)
    assert delivered == []
    vx.input(encap(frame(MAC_B, MAC_A)), REMOTE_1, lab.now)  # anything else: passed on first
    vx.input_train(b"".join(encap(s) for s in third), size, REMOTE_1, lab.now)
    vx.release(lab.now)
    assert [len(f) for f in delivered] == [14 + 20 + 32 + 6000, 60, 14 + 20 + 32 + 3000]
    pieces = [p for f in (delivered[0], delivered[2]) for p in resolve(f, vhdr_of(f))]  # type: ignore[arg-type]
    assert [bytes(dpkt.ethernet.Ethernet(p).data.data) for p in pieces] == [
        bytes(dpkt.ethernet.Ethernet(s).data.data) for s in segs
    ]


def test_a_read_that_does_not_continue_the_held_one_is_not_joined(seg, lab) -> None:
    _, vx, host, _ = seg
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append
    size = 8 + len(_tcp(0, bytes(1000)))
    vx.input_train(b"".join(encap(_tcp(100 + i * 1000, b"a" * 1000)) for i in range(3)), size,
                   REMOTE_1, lab.now)  # fmt: skip
    vx.input_train(b"".join(encap(_tcp(9100 + i * 1000, b"b" * 1000)) for i in range(3)), size,
                   REMOTE_1, lab.now)  # fmt: skip  (a gap before it)
    vx.release(lab.now)
    assert [len(f) for f in delivered] == [14 + 20 + 32 + 3000] * 2


def _tcp_of(frame: bytes | bytearray) -> bytes:
    """The TCP segment (header with its checksum, payload) of an IPv4 frame."""
    return bytes(dpkt.ethernet.Ethernet(bytes(frame)).data.data)


def _spoil(segment: bytes) -> bytes:
    """The segment with one payload byte changed in flight (its checksum now wrong)."""
    bad = bytearray(segment)
    bad[-10] ^= 0x04
    return bytes(bad)


def test_a_corrupted_segment_in_a_read_is_never_joined_and_order_is_kept(seg, lab) -> None:
    _, vx, host, _ = seg
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(9)]
    sent = [*segs[:4], _spoil(segs[4]), *segs[5:]]
    vx.input_train(b"".join(encap(s) for s in sent), 8 + len(segs[0]), REMOTE_1, lab.now)
    vx.release(lab.now)
    # the good ones before and after it joined, the bad one alone and unchanged: the
    # receiving host finds its checksum wrong and drops it (and counts it)
    assert [len(f) for f in delivered] == [14 + 20 + 32 + 4000, len(segs[4]), 14 + 20 + 32 + 4000]
    assert bytes(delivered[1]) == _spoil(segs[4])
    pieces = [p for f in (delivered[0], delivered[2]) for p in resolve(f, vhdr_of(f))]  # type: ignore[arg-type]
    assert [_tcp_of(p) for p in pieces] == [_tcp_of(s) for s in segs[:4] + segs[5:]]
    assert vx.vteps[REMOTE_1].rx_packets == 9


def test_a_corrupted_segment_in_a_read_that_continues_the_held_one_ends_it(seg, lab) -> None:
    _, vx, host, _ = seg
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(6)]
    size = 8 + len(segs[0])
    vx.input_train(b"".join(encap(s) for s in segs[:3]), size, REMOTE_1, lab.now)
    second = [segs[3], _spoil(segs[4]), segs[5]]
    vx.input_train(b"".join(encap(s) for s in second), size, REMOTE_1, lab.now)
    vx.release(lab.now)
    assert [len(f) for f in delivered] == [14 + 20 + 32 + 3000, *(len(s) for s in second)]
    assert [bytes(f) for f in delivered[1:]] == second
    pieces = resolve(delivered[0], vhdr_of(delivered[0]))  # type: ignore[arg-type]
    assert [_tcp_of(p) for p in pieces] == [_tcp_of(s) for s in segs[:3]]


def test_a_read_for_another_mac_is_not_appended_to_the_held_one(seg, lab) -> None:
    _, vx, host, _ = seg
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(6)]
    size = 8 + len(segs[0])
    vx.input_train(b"".join(encap(s) for s in segs[:3]), size, REMOTE_1, lab.now)
    moved = [MAC_R + s[6:] for s in segs[3:]]  # the same flow to another MAC
    vx.input_train(b"".join(encap(s) for s in moved), size, REMOTE_1, lab.now)
    vx.release(lab.now)
    assert [len(f) for f in delivered] == [14 + 20 + 32 + 3000] * 2
    assert bytes(delivered[1][:6]) == MAC_R


def _bridge_of(vnet) -> bridge_.Bridge:
    return vnet.link.bridge.bridges["br0"]


def test_a_static_entry_sends_one_mac_to_its_vtep_and_never_ages_or_moves(seg, lab) -> None:
    vnet, vx, host, sent = seg
    br = _bridge_of(vnet)
    br.add_static(MAC_R, "vx42", dst="198.51.100.9")  # a VTEP not among the remotes
    host.send(frame(MAC_R, MAC_A), lab.now)
    assert sent == [("198.51.100.9", encap(frame(MAC_R, MAC_A)))]
    vx.input(encap(frame(BCAST, MAC_R)), REMOTE_1, lab.now)  # seen elsewhere: not moved
    lab.advance(vnet.link.bridge.ageing_time + 1)
    lab.run_timers()
    sent.clear()
    host.send(frame(MAC_R, MAC_A), lab.now)
    assert sent == [("198.51.100.9", encap(frame(MAC_R, MAC_A)))]
    (vtep,) = [v for v in vx.describe()["vteps"] if v["address"] == "198.51.100.9"]  # type: ignore[union-attr]
    assert vtep["macs"] == [
        {"mac": "02:00:00:00:00:f1", "static": True, "age": None, "expires": None}
    ]
    (entry,) = [e for e in br.entries() if e.mac == MAC_R]
    assert entry.static and entry.dst == "198.51.100.9" and entry.port.ifnet is vx.ifnet


def test_removing_a_static_entry_or_its_port_frees_both_tables(seg, lab) -> None:
    vnet, vx, host, sent = seg
    br = _bridge_of(vnet)
    before = vnet.link.bridge.fdb_entries
    br.add_static(MAC_R, "vx42", dst="198.51.100.9")
    assert vnet.link.bridge.fdb_entries == before + 2
    br.remove_static(MAC_R, "vx42")
    assert vnet.link.bridge.fdb_entries == before
    assert MAC_R not in vx.macs and "198.51.100.9" not in vx.vteps
    host.send(frame(MAC_R, MAC_A), lab.now)
    assert [a for a, _ in sent] == [REMOTE_1, REMOTE_2]  # unknown again: flooded
    learnt = vnet.link.bridge.fdb_entries  # MAC_A, behind p1
    br.add_static(MAC_R, "vx42", dst="198.51.100.9")
    br.remove_port("vx42")
    assert MAC_R not in vx.macs and vnet.link.bridge.fdb_entries == learnt
    with pytest.raises(bridge_.BridgeError, match="no static entry"):
        br.remove_static(MAC_R, host.ifp.name)


@pytest.mark.parametrize(
    ("port", "dst", "message"),
    [
        ("p1", "198.51.100.9", "not a vxlan interface"),
        ("vx42", "2001:db8::9", "not a remote unicast address"),
        ("vx42", "198.51.100.1", "not a remote unicast address"),
        ("vx42", "239.1.1.1", "not a remote unicast address"),
        ("vx42", "nonsense", "not an IP address"),
    ],
)
def test_a_bad_dst_is_refused_and_nothing_is_added(seg, lab, port, dst, message) -> None:
    vnet, vx, host, _ = seg
    br = _bridge_of(vnet)
    before = vnet.link.bridge.fdb_entries
    name = host.ifp.name if port == "p1" else port
    with pytest.raises(bridge_.BridgeError, match=message):
        br.add_static(MAC_R, name, dst=dst)
    assert vnet.link.bridge.fdb_entries == before and MAC_R not in vx.macs


def test_too_big_for_the_underlay_is_answered_with_icmp_from_the_bridge(seg, lab) -> None:
    vnet, vx, host, sent = seg
    br = _bridge_of(vnet)
    ipv4.add_address(vnet, br.ifnet, ipaddress.IPv4Interface("192.0.2.1/24"), lab.now)
    ipv4.set_up(vnet, br.ifnet, lab.now)
    host.take_raw()
    vx.set_underlay_mtu(1400)  # inner MTU 1350
    vx.input(encap(frame(BCAST, MAC_R)), REMOTE_2, lab.now)
    host.take_raw()
    sent.clear()
    src = ipaddress.IPv4Address("192.0.2.10").packed
    dst = ipaddress.IPv4Address("192.0.2.20").packed
    # 1352 bytes of IP: within the port's MTU slack for a tag, over the underlay's.
    packet = ip_wire.build(src, dst, 17, bytes(1352 - 20), df=True)
    host.send(MAC_R + MAC_A + b"\x08\x00" + packet, lab.now)
    assert sent == []
    assert vx.ifnet.counters.tx_drops["vxlan_too_big"] == 1
    (reply,) = host.take()
    assert reply.dst == MAC_A and reply.data.dst == src
    assert (reply.data.data.type, reply.data.data.code) == (3, 4)
    assert int.from_bytes(bytes(reply.data.data)[6:8], "big") == 1350


def _tcp_super_frame(payload: int) -> bytes:
    ip_len = 20 + 20 + payload
    ip = (
        bytes.fromhex("4500") + ip_len.to_bytes(2, "big") + bytes.fromhex("00004000400600 00")
        + bytes([198, 51, 100, 10, 198, 51, 100, 11])
    )  # fmt: skip
    tcp = bytes(12) + bytes([0x50, 0x18]) + bytes(6)
    return MAC_B + MAC_A + b"\x08\x00" + ip + tcp + bytes(payload)


def test_with_tunnel_gso_a_super_frame_goes_whole_to_each_vtep(seg, lab) -> None:
    _, vx, _, _ = seg
    whole: list[tuple[str, int, int]] = []
    trains: list[str] = []
    vx.send_train = lambda address, train: trains.append(address)
    vx.send_super = lambda address, frame, vhdr: whole.append(
        (address, len(frame), vhdr.gso_size)
    ) or True
    big = _tcp_super_frame(4000)
    vx.transmit(tag(big, VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 54, 1400, 34, 16)))
    assert whole == [(REMOTE_1, len(big), 1400), (REMOTE_2, len(big), 1400)]
    assert trains == [] and vx.stats.whole == 2
    # counted as the 3 datagrams each that leave the kernel
    assert [v.tx_packets for v in vx.vteps.values()] == [3, 3]


def test_a_super_frame_the_tunnel_refuses_is_cut_here(seg, lab) -> None:
    _, vx, _, _ = seg
    trains: list[str] = []
    vx.send_train = lambda address, train: trains.append(address)
    vx.send_super = lambda address, frame, vhdr: False
    vx.transmit(tag(_tcp_super_frame(4000), VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 54, 1400, 34, 16)))
    assert trains == [REMOTE_1, REMOTE_2] and vx.stats.whole == 0


def test_a_super_frame_whose_segments_exceed_the_underlay_is_refused(seg, lab) -> None:
    _, vx, _, _ = seg
    vx.send_super = lambda address, frame, vhdr: pytest.fail("sent")
    vx.send_train = lambda address, train: pytest.fail("sent")
    vx.transmit(tag(_tcp_super_frame(4000), VirtioHdr(F_NEEDS_CSUM, GSO_TCPV4, 54, 1450, 34, 16)))
    assert vx.ifnet.counters.tx_drops["vxlan_too_big"] == 1


def _tunnel_read(frame: bytes | bytearray, vhdr: VirtioHdr) -> bytes:
    """What the tunnel TAP reads of ``frame`` sent whole by VTEP REMOTE_1 to LOCAL."""
    remote, local = ipaddress.ip_address(REMOTE_1).packed, LOCAL.packed
    headers = vxtunnel.outer_headers(remote, local, 4789, wire.header(42), frame, vhdr)
    assert headers is not None
    return headers[0] + bytes(12) + b"\x08\x00" + headers[1] + bytes(frame)


def test_a_super_frame_received_whole_is_bridged_whole_and_counted(seg, lab) -> None:
    _, vx, host, _ = seg
    delivered: list[bytes | bytearray] = []
    host.ifp.transmit = delivered.append
    segs = [_tcp(100 + i * 1000, bytes([i]) * 1000) for i in range(6)]
    (joined,) = gro.coalesce(segs)
    read = _tunnel_read(joined, vhdr_of(joined))  # type: ignore[arg-type]
    found = vxtunnel.unwrap(read, LOCAL.packed, 4789)
    assert not isinstance(found, str)
    vx.input_whole(read, *found, lab.now)
    [passed] = delivered
    assert passed == joined and vhdr_of(passed) == vhdr_of(joined)
    pieces = resolve(passed, vhdr_of(passed))  # type: ignore[arg-type]
    assert [_tcp_of(p) for p in pieces] == [_tcp_of(s) for s in segs]
    assert (vx.stats.received_whole, vx.stats.received_tunnel) == (1, 1)
    assert vx.macs[MAC_A].vtep.address == REMOTE_1
    # A plain frame the same way: passed on as it is, not a super-frame.
    plain = _tcp(9000, b"x" * 10)
    read = _tunnel_read(plain, VirtioHdr(0, 0, 0, 0, 0, 0))
    start = vxtunnel.HEADER_LEN + vxtunnel.OUTER_LEN - 8
    vx.input_whole(read, start, REMOTE_1, None, lab.now)
    assert delivered[1] == plain and vhdr_of(delivered[1]) is None
    assert (vx.stats.received_whole, vx.stats.received_tunnel) == (1, 2)


def test_a_read_of_the_tunnel_tap_for_another_vni_is_dropped(seg, lab) -> None:
    _, vx, host, _ = seg
    plain = _tcp(9000, b"x" * 10)
    read = bytearray(_tunnel_read(plain, VirtioHdr(0, 0, 0, 0, 0, 0)))
    start = vxtunnel.HEADER_LEN + vxtunnel.OUTER_LEN - 8
    read[start : start + 8] = wire.header(43)
    vx.input_whole(bytes(read), start, REMOTE_1, None, lab.now)
    assert host.take_raw() == []
    assert vx.ifnet.counters.rx_drops["vxlan_unknown_vni"] == 1
    assert vx.stats.received_tunnel == 0
