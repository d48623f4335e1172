"""The send and receive buffers: bytes by sequence number, acknowledgment, reads, compaction."""

from __future__ import annotations

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.buffers import COMPACT_AFTER, ReceiveBuffer, SendBuffer


def test_send_buffer_starts_empty_at_its_sequence_number() -> None:
    sb = SendBuffer(1001)
    assert len(sb) == 0
    assert sb.end() == 1001


def _held(sb: SendBuffer) -> bytes:
    return b"".join(sb.pieces(0, len(sb)))


def test_send_buffer_end_follows_what_is_queued() -> None:
    sb = SendBuffer(1001)
    sb.append(b"hello")
    sb.append(memoryview(b" world"))
    assert len(sb) == 11
    assert sb.end() == 1012
    assert _held(sb) == b"hello world"


def test_acknowledge_drops_bytes_from_the_front() -> None:
    sb = SendBuffer(1001)
    sb.append(b"abcdefgh")
    sb.acknowledge(1004)
    assert len(sb) == 5
    assert sb.seq == 1004
    assert _held(sb) == b"defgh"
    assert sb.end() == 1009


def test_acknowledge_of_everything_empties_the_buffer() -> None:
    sb = SendBuffer(1001)
    sb.append(b"abc")
    sb.acknowledge(1004)
    assert len(sb) == 0 and sb.head == 0 and not sb.chunks
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
    assert _held(sb) == b"d"
    assert sb.end() == 2


def test_big_writes_are_kept_without_a_copy_and_segments_are_views_of_them() -> None:
    sb = SendBuffer(0)
    first, second = bytes(range(256)) * 100, bytes(30000)
    sb.append(first)
    sb.append(memoryview(second)[1000:])  # a view of bytes: immutable, kept as it is
    assert sb.chunks[0] is first and sb.chunks[1].obj is second  # type: ignore[union-attr]
    whole = first + second[1000:]
    pieces = sb.pieces(25000, 2000)  # across the two chunks
    assert [len(p) for p in pieces] == [600, 1400]
    assert b"".join(pieces) == whole[25000:27000]
    assert all(isinstance(p, memoryview) for p in pieces)
    sb.acknowledge(25600)  # the first chunk goes; the views taken stay valid
    assert len(sb.chunks) == 1 and sb.head == 0
    assert b"".join(pieces) == whole[25000:27000]
    assert b"".join(sb.pieces(0, 10)) == whole[25600:25610]


def test_a_mutable_buffer_is_copied_so_the_program_may_reuse_it() -> None:
    sb = SendBuffer(0)
    buf = bytearray(b"x" * 20000)
    sb.append(buf)
    buf[:] = b"y" * 20000
    assert _held(sb) == b"x" * 20000


def test_small_writes_are_merged_into_one_chunk() -> None:
    sb = SendBuffer(0)
    for i in range(1000):
        sb.append(bytes((i & 0xFF,)))
    assert len(sb.chunks) == 1 and len(sb) == 1000
    sb.acknowledge(10)
    sb.append(b"tail")
    assert _held(sb) == bytes(i & 0xFF for i in range(10, 1000)) + b"tail"
    assert len(sb.chunks) == 1


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
