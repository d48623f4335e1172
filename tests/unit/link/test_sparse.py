"""Tests for vrouter.link.sparse: flow keys of frames, and the bulk queue's flow counts."""

from __future__ import annotations

import pytest

from vrouter.link.sparse import BulkQueue, flow_key

MACS = b"\x02\0\0\0\0\2" + b"\x02\0\0\0\0\1"


def ipv4(proto: int, src: int, dst: int, sport: int, dport: int, ihl: int = 5) -> bytes:
    """An Ethernet frame with an IPv4 header of ``ihl`` words and the first 4 bytes after it."""
    header = bytes([0x40 | ihl, 0]) + bytes(7) + bytes([proto]) + bytes(2)
    header += bytes([192, 0, 2, src]) + bytes([198, 51, 100, dst]) + bytes(4 * (ihl - 5))
    return MACS + b"\x08\x00" + header + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


def ipv6(nh: int, sport: int) -> bytes:
    header = b"\x60" + bytes(5) + bytes([nh, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
    return MACS + b"\x86\xdd" + header + sport.to_bytes(2, "big") + b"\x00\x50"


def test_a_flow_is_its_protocol_addresses_and_ports() -> None:
    a = flow_key(ipv4(6, 2, 2, 40000, 5201))
    assert flow_key(ipv4(6, 2, 2, 40000, 5201) + bytes(100)) == a  # the payload does not count
    for other in (
        ipv4(17, 2, 2, 40000, 5201),
        ipv4(6, 3, 2, 40000, 5201),
        ipv4(6, 2, 3, 40000, 5201),
        ipv4(6, 2, 2, 40001, 5201),
        ipv4(6, 2, 2, 40000, 5202),
    ):
        assert flow_key(other) != a


def test_ipv4_ports_are_read_after_the_options() -> None:
    assert flow_key(ipv4(6, 2, 2, 1, 2, ihl=6)) == flow_key(ipv4(6, 2, 2, 1, 2))
    assert flow_key(ipv4(6, 2, 2, 1, 2, ihl=6)) != flow_key(ipv4(6, 2, 2, 1, 3, ihl=6))


def test_ipv6_flows_and_other_frames() -> None:
    assert flow_key(ipv6(6, 1)) == flow_key(ipv6(6, 1))
    assert flow_key(ipv6(6, 1)) != flow_key(ipv6(6, 2))
    assert flow_key(ipv6(6, 1)) != flow_key(ipv6(17, 1))
    arp = MACS + b"\x08\x06" + bytes(28)
    assert flow_key(arp) == MACS + b"\x08\x06"
    assert flow_key(b"\xff" * 4) == b"\xff" * 4  # a runt is a flow of its own, no error
    for cut in range(14, 58):  # a truncated IP header is a flow too, no error
        assert flow_key(ipv4(6, 2, 2, 1, 2)[:cut]) == flow_key(ipv4(6, 2, 2, 1, 2)[:cut])
        assert flow_key(ipv6(6, 1)[:cut]) == flow_key(ipv6(6, 1)[:cut])


def test_the_key_is_read_at_an_offset_and_from_a_bytearray() -> None:
    frame = ipv4(6, 2, 2, 1, 2)
    assert flow_key(bytes(10) + frame, 10) == flow_key(bytearray(frame)) == flow_key(frame)


def test_the_queue_counts_what_each_flow_holds() -> None:
    q: BulkQueue[str] = BulkQueue()
    assert not q and not q.holds(b"a")
    q.push(b"a", "a1")
    q.push(b"b", "b1")
    q.push(b"a", "a2")
    assert len(q) == 3 and q.holds(b"a") and q.holds(b"b")
    assert q.first() == "a1"
    assert q.pop() == "a1"
    assert q.holds(b"a")  # a2 still waits
    assert q.pop() == "b1"
    assert not q.holds(b"b")
    assert q.pop() == "a2"
    assert not q.holds(b"a") and len(q) == 0
    with pytest.raises(IndexError):
        q.pop()
    q.push(b"c", "c1")
    q.clear()
    assert not q and not q.holds(b"c")
