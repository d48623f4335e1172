"""Tests for vrouter.link.ether (input, demux, containment) and vrouter.link.ifnet."""

from __future__ import annotations

import logging

import dpkt
import pytest

from vrouter.core import tables
from vrouter.link import ether
from vrouter.link.ifnet import Ifnet
from vrouter.link.state import LinkError

OTHER_MAC = b"\x02\x00\x00\x00\x99\x99"
STATION = b"\x02\x00\x00\x00\x00\x42"
TEST_ETHERTYPE = 0x88B5  # IEEE 802 local experimental


def eth(dst: bytes, ethertype: int, payload: bytes = b"\x00" * 46, src: bytes = STATION) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=dst, src=src, type=ethertype, data=payload))


@pytest.fixture
def port(lab):
    """An up interface with a recording handler for TEST_ETHERTYPE."""
    vnet = lab.vnet("r")
    ifp = lab.iface(vnet, "eth0", up=False)
    sent: list[bytes] = []
    ifp.transmit = sent.append
    ifp.up = True
    seen: list[tuple[Ifnet, bytes, float]] = []
    vnet.link.ethertypes = tables.put(
        vnet.link.ethertypes, TEST_ETHERTYPE, lambda i, f, now: seen.append((i, f, now))
    )
    return ifp, seen, sent


def test_rx_counters_count_every_frame_valid_or_not(port, lab) -> None:
    ifp, seen, _ = port
    frames = [
        eth(ifp.mac, TEST_ETHERTYPE),
        eth(OTHER_MAC, TEST_ETHERTYPE),
        b"\x00" * 9,
        eth(ifp.mac, 0x88CC, b"\x01" * 100),
    ]
    for frame in frames:
        ether.input(ifp, frame, lab.now)
    c = ifp.counters
    assert c.rx_packets == 4
    assert c.rx_bytes == sum(len(f) for f in frames)
    assert len(seen) == 1
    assert dict(c.rx_drops) == {"not_for_us": 1, "eth_truncated": 1, "unknown_ethertype": 1}
    assert c.rx_errors == 1  # only the truncated one was malformed


@pytest.mark.parametrize(
    "dst",
    [b"\xff" * 6, b"\x01\x00\x5e\x00\x00\x01", b"\x33\x33\x00\x00\x00\x01", "own"],
)
def test_frames_for_us_broadcast_and_multicast_reach_the_handler(port, lab, dst) -> None:
    ifp, seen, _ = port
    frame = eth(ifp.mac if dst == "own" else dst, TEST_ETHERTYPE, b"hello" + b"\x00" * 41)
    ether.input(ifp, frame, lab.now)
    assert seen == [(ifp, frame, lab.now)]
    assert ifp.counters.rx_drops == {}


@pytest.mark.parametrize("dst", [OTHER_MAC, b"\x00\x00\x00\x00\x00\x00"])
def test_unicast_to_another_station_is_not_for_us(port, lab, dst) -> None:
    ifp, seen, _ = port
    ether.input(ifp, eth(dst, TEST_ETHERTYPE), lab.now)
    assert seen == []
    assert ifp.counters.rx_drops == {"not_for_us": 1}
    assert ifp.counters.rx_errors == 0


@pytest.mark.parametrize("ethertype", [0x88CC, 0x8100, 0x0000, 0xFFFF])
def test_unknown_ethertype_is_counted(port, lab, ethertype: int) -> None:
    ifp, seen, _ = port
    ether.input(ifp, eth(ifp.mac, ethertype), lab.now)
    assert seen == []
    assert ifp.counters.rx_drops == {"unknown_ethertype": 1}


@pytest.mark.parametrize("length", [0, 1, 13])
def test_truncated_frame_is_a_malformed_drop(port, lab, length: int) -> None:
    ifp, seen, _ = port
    ether.input(ifp, eth(ifp.mac, TEST_ETHERTYPE)[:length], lab.now)
    assert seen == []
    assert ifp.counters.rx_drops == {"eth_truncated": 1}
    assert ifp.counters.rx_errors == 1


def test_header_only_frame_reaches_the_handler(port, lab) -> None:
    ifp, seen, _ = port
    frame = eth(ifp.mac, TEST_ETHERTYPE, b"")
    assert len(frame) == 14
    ether.input(ifp, frame, lab.now)
    assert len(seen) == 1


def test_down_interface_counts_link_down_both_ways(port, lab) -> None:
    ifp, seen, sent = port
    ifp.up = False
    ether.input(ifp, eth(ifp.mac, TEST_ETHERTYPE), lab.now)
    assert seen == []
    assert ifp.counters.rx_drops == {"link_down": 1}
    assert ifp.counters.rx_packets == 1
    ifp.output(eth(STATION, TEST_ETHERTYPE, src=ifp.mac))
    assert sent == []
    assert ifp.counters.tx_drops == {"link_down": 1}
    assert ifp.counters.tx_packets == 0


def test_ethertype_table_is_per_vnet(port, lab) -> None:
    _, seen, _ = port
    other = lab.vnet("other")
    ifq = lab.iface(other, "eth0", up=False)
    ifq.transmit = lambda frame: None
    ifq.up = True
    ether.input(ifq, eth(ifq.mac, TEST_ETHERTYPE), lab.now)
    assert seen == []
    assert ifq.counters.rx_drops == {"unknown_ethertype": 1}


def test_builtin_ethertypes_are_ipv4_arp_8021q_and_ipv6(lab) -> None:
    vnet = lab.vnet("r")
    assert sorted(vnet.link.ethertypes) == [0x0800, 0x0806, 0x8100, 0x86DD]


def test_exception_in_a_handler_is_contained_by_receive(port, lab, caplog) -> None:
    ifp, _, _ = port

    def broken(i, frame, now):
        raise RuntimeError("handler bug")

    ifp.vnet.link.ethertypes = tables.put(ifp.vnet.link.ethertypes, TEST_ETHERTYPE, broken)
    frame = eth(ifp.mac, TEST_ETHERTYPE)
    with caplog.at_level(logging.ERROR, logger="vrouter.link"):
        ether.receive(ifp, frame, lab.now)  # must not raise
    assert ifp.counters.rx_drops == {"internal_error": 1}
    assert ifp.counters.rx_errors == 1
    assert ifp.counters.rx_packets == 1
    assert any("r" in r.getMessage() and "eth0" in r.getMessage() for r in caplog.records)
    # ``input`` itself lets the bug through, so a test would see it.
    with pytest.raises(RuntimeError, match="handler bug"):
        ether.input(ifp, frame, lab.now)


def test_receive_behaves_like_input_for_good_frames(port, lab) -> None:
    ifp, seen, _ = port
    ether.receive(ifp, eth(ifp.mac, TEST_ETHERTYPE), lab.now)
    ether.receive(ifp, eth(OTHER_MAC, TEST_ETHERTYPE), lab.now)
    assert len(seen) == 1
    assert ifp.counters.rx_drops == {"not_for_us": 1}


# --- Ifnet output and bookkeeping ---------------------------------------------------


def test_output_counts_sent_frames(port) -> None:
    ifp, _, sent = port
    frames = [eth(STATION, TEST_ETHERTYPE, b"a" * n, src=ifp.mac) for n in (46, 100, 1500)]
    for frame in frames:
        ifp.output(frame)
    assert sent == frames
    assert ifp.counters.tx_packets == 3
    assert ifp.counters.tx_bytes == sum(len(f) for f in frames)
    assert ifp.counters.tx_errors == 0


def test_device_failure_counts_a_tx_error(port) -> None:
    ifp, _, _ = port

    def failing(frame):
        raise OSError("EIO")

    ifp.transmit = failing
    ifp.output(b"\x00" * 60)
    assert ifp.counters.tx_errors == 1
    assert ifp.counters.tx_packets == 0
    assert ifp.counters.tx_bytes == 0


def test_interface_without_device_counts_a_tx_error(lab) -> None:
    vnet = lab.vnet("r")
    ifp = Ifnet(vnet, "eth9", "test", OTHER_MAC)
    ifp.up = True
    ifp.output(b"\x00" * 60)
    assert ifp.counters.tx_errors == 1


def test_interfaces_get_increasing_indexes_and_unique_names(lab) -> None:
    vnet = lab.vnet("r")
    a = lab.iface(vnet, "eth0")
    b = lab.iface(vnet, "eth1")
    assert (a.index, b.index) == (1, 2)
    assert vnet.link.get("eth1") is b
    with pytest.raises(LinkError, match="already has an interface 'eth0'"):
        vnet.link.add(Ifnet(vnet, "eth0", "test", OTHER_MAC))
    with pytest.raises(LinkError, match="no interface 'eth7'"):
        vnet.link.get("eth7")
    # Indexes are per vnet.
    other = lab.vnet("other")
    assert lab.iface(other, "eth0").index == 1


def test_describe_reports_counters_and_addresses(lab) -> None:
    vnet = lab.vnet("r")
    host = lab.host(vnet, "eth0", "192.0.2.1/24", "192.0.2.10")
    ether.input(host.ifp, eth(OTHER_MAC, 0x0800), lab.now)
    info = host.ifp.describe()
    assert info["name"] == "eth0"
    assert info["mac"] == host.ifp.mac.hex(":")
    assert info["up"] is True
    assert info["addresses"] == ["192.0.2.1/24"]
    counters = info["counters"]
    assert counters["rx_packets"] == 1
    assert counters["rx_drops"] == {"not_for_us": 1}
    assert counters["tx_packets"] == 1  # the gratuitous ARP of set_up
