"""The send and receive buffers: bytes by sequence number, acknowledgment, reads, compaction."""

from __future__ import annotations

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.buffers import COMPACT_AFTER, ReceiveBuffer, SendBuffer


def test_send_buffer_starts_empty_at_its_sequence_number() -> None:
    sb = SendBuffer(1001)
    assert len(sb) == 0
    assert sb.end() == 1001


def test_send_buffer_end_follows_what_is_queued() -> None:
    sb = SendBuffer(1001)
    sb.append(b"hello")
    sb.append(memoryview(b" world"))
    assert len(sb) == 11
    assert sb.end() == 1012
    assert bytes(sb.data[sb.head :]) == b"hello world"


def test_acknowledge_drops_bytes_from_the_front() -> None:
    sb = SendBuffer(1001)
    sb.append(b"abcdefgh")
    sb.acknowledge(1004)
    assert len(sb) == 5
    assert sb.seq == 1004
    assert bytes(sb.data[sb.head :]) == b"defgh"
    assert sb.end() == 1009


def test_acknowledge_of_everything_empties_the_buffer() -> None:
    sb = SendBuffer(1001)
    sb.append(b"abc")
    sb.acknowledge(1004)
    assert len(sb) == 0 and sb.head == 0 and sb.data == b""
    assert sb.seq == 1004


def test_acknowledge_ignores_old_acks_and_stops_at_the_data() -> None:
    sb = SendBuffer(1001)
    sb.append(b"abc")
    sb.acknowledge(1000)  # before the buffer (our SYN)
    assert len(sb) == 3 and sb.seq == 1001
    sb.acknowledge(1005)  # beyond the data: a FIN's sequence number
    assert len(sb) == 0 and sb.seq == 1004


def test_acknowledge_across_the_wrap() -> None:
    start = seq.MASK - 1
    sb = SendBuffer(start)
    sb.append(b"abcd")
    sb.acknowledge(seq.add(start, 3))
    assert sb.seq == 1
    assert bytes(sb.data[sb.head :]) == b"d"
    assert sb.end() == 2


def test_send_buffer_moves_its_head_and_compacts_late() -> None:
    sb = SendBuffer(0)
    sb.append(bytes(4 * COMPACT_AFTER))
    sb.acknowledge(1000)
    assert sb.head == 1000 and len(sb.data) == 4 * COMPACT_AFTER  # nothing moved
    sb.acknowledge(2 * COMPACT_AFTER + 1)  # past 64 KiB and half the queue: cut off
    assert sb.head == 0
    assert len(sb.data) == len(sb) == 2 * COMPACT_AFTER - 1


def test_send_buffer_clear_keeps_the_sequence_number() -> None:
    sb = SendBuffer(1001)
    sb.append(b"abc")
    sb.acknowledge(1002)
    sb.clear()
    assert len(sb) == 0 and sb.seq == 1002 and sb.end() == 1002


def test_receive_buffer_reads_in_order() -> None:
    rb = ReceiveBuffer()
    assert len(rb) == 0 and rb.read(10) == b""
    rb.append(b"hello ")
    rb.append(memoryview(b"world"))
    assert len(rb) == 11
    assert rb.read(5) == b"hello"
    assert len(rb) == 6
    assert rb.read(100) == b" world"
    assert len(rb) == 0 and rb.head == 0 and rb.data == b""


def test_receive_buffer_read_of_nothing() -> None:
    rb = ReceiveBuffer()
    rb.append(b"abc")
    assert rb.read(0) == b""
    assert rb.read(-1) == b""
    assert len(rb) == 3


def test_receive_buffer_returns_bytes_not_a_view() -> None:
    rb = ReceiveBuffer()
    rb.append(b"abcdef")
    got = rb.read(3)
    assert type(got) is bytes
    rb.append(b"more")  # the buffer can still grow: no view of it is left open
    assert rb.read(100) == b"defmore"


def test_receive_buffer_compacts_late() -> None:
    rb = ReceiveBuffer()
    rb.append(bytes(4 * COMPACT_AFTER))
    rb.read(COMPACT_AFTER + 1)
    assert rb.head == COMPACT_AFTER + 1  # past 64 KiB but not half: nothing moved
    rb.read(COMPACT_AFTER)
    assert rb.head == 0
    assert len(rb.data) == len(rb) == 2 * COMPACT_AFTER - 1
