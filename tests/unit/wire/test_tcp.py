"""TCP header parsing and the closed-port reset (RFC 9293 3.10.7.1), checked with dpkt."""

from __future__ import annotations

import dpkt
import pytest

from vrouter.wire import tcp
from vrouter.wire.errors import IntegrityError

A = bytes([192, 0, 2, 2])
B = bytes([192, 0, 2, 1])


def _segment(flags: int, seq: int = 1000, ack: int = 0, payload: bytes = b"") -> bytes:
    return tcp.build(A, B, 40000, 80, seq, ack, flags, window=64240, payload=payload)


def test_build_is_a_valid_segment_for_dpkt() -> None:
    raw = _segment(tcp.SYN, seq=0x12345678, payload=b"hello")
    seg = dpkt.tcp.TCP(raw)
    assert (seg.sport, seg.dport, seg.seq, seg.flags, seg.win) == (40000, 80, 0x12345678, 2, 64240)
    assert seg.data == b"hello"
    assert tcp.verify(A, B, raw)
    assert not tcp.verify(A, bytes([192, 0, 2, 3]), raw)


def test_parse_fields_and_segment_length() -> None:
    header = tcp.TcpHeader.parse(_segment(tcp.SYN | tcp.FIN, payload=b"abc"))
    assert header.header_len == 20 and header.payload_len == 3
    assert header.seg_len == 5


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00" * 19, "tcp_tooshort"),
        (b"\x00" * 12 + b"\x40" + b"\x00" * 7, "tcp_badoff"),
        (b"\x00" * 12 + b"\xf0" + b"\x00" * 7, "tcp_badoff"),
    ],
)
def test_parse_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(IntegrityError) as info:
        tcp.TcpHeader.parse(raw)
    assert info.value.reason == reason


def test_reset_for_syn_acknowledges_it() -> None:
    syn = tcp.TcpHeader.parse(_segment(tcp.SYN, seq=5000))
    reply = tcp.reset_for(B, A, syn)
    assert reply is not None
    seg = dpkt.tcp.TCP(reply)
    assert seg.flags == dpkt.tcp.TH_RST | dpkt.tcp.TH_ACK
    assert (seg.seq, seg.ack) == (0, 5001)
    assert (seg.sport, seg.dport) == (80, 40000)
    assert tcp.verify(B, A, reply)


def test_reset_for_ack_takes_its_sequence_from_the_ack() -> None:
    segment = tcp.TcpHeader.parse(_segment(tcp.ACK | tcp.PSH, seq=7, ack=0xFFFFFFF0, payload=b"x"))
    reply = tcp.reset_for(B, A, segment)
    assert reply is not None
    seg = dpkt.tcp.TCP(reply)
    assert seg.flags == dpkt.tcp.TH_RST
    assert seg.seq == 0xFFFFFFF0


def test_no_reset_for_a_reset() -> None:
    assert tcp.reset_for(B, A, tcp.TcpHeader.parse(_segment(tcp.RST))) is None


def test_header_sums_a_payload_in_pieces_it_does_not_copy() -> None:
    payload = bytes(range(251)) * 9  # odd-length pieces below
    pieces = [memoryview(payload)[:1001], memoryview(payload)[1001:1500], payload[1500:]]
    head = tcp.header(A, B, 40000, 80, 7, 9, tcp.ACK, 1000, b"", pieces)
    assert head + payload == tcp.build(A, B, 40000, 80, 7, 9, tcp.ACK, 1000, b"", payload)
    assert tcp.verify(A, B, head + payload)
    partial = tcp.header(A, B, 40000, 80, 7, 9, tcp.ACK, 1000, b"", pieces, partial=True)
    pseudo = tcp.pseudo_header_sum(A, B, tcp.PROTO, len(head) + len(payload))
    assert int.from_bytes(partial[16:18], "big") == pseudo  # the device sums the rest
