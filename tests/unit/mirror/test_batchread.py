"""vrouter.mirror.batchread: many datagrams in one system call, notifications joined, a
dump's batch or a malformed datagram on its own."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from vrouter.mirror import batchread
from vrouter.mirror import rtnetlink as rt


def _message(n: int, size: int = 60) -> bytes:
    """A netlink message of ``size`` bytes (its length says so), numbered ``n``."""
    return struct.pack("=IHHII", size, rt.RTM_NEWROUTE, 0, n, 0) + bytes(size - 16)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, kernel:
        ours.setblocking(False)
        kernel.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        yield ours, kernel


def test_notifications_come_joined_a_batch_at_a_time(pair) -> None:  # type: ignore[no-untyped-def]
    ours, kernel = pair
    reader = batchread.reader(ours, 4096)
    assert reader is not None
    sent = [_message(n) for n in range(batchread.BATCH + 5)]
    for data in sent:
        kernel.send(data)
    [first], count = reader.read()
    assert bytes(first) == b"".join(sent[: batchread.BATCH]) and count == batchread.BATCH
    [rest], count = reader.read()
    assert bytes(rest) == b"".join(sent[batchread.BATCH :]) and count == 5
    with pytest.raises(BlockingIOError):
        reader.read()


def test_a_dump_batch_and_a_malformed_datagram_stay_on_their_own(pair) -> None:  # type: ignore[no-untyped-def]
    ours, kernel = pair
    reader = batchread.reader(ours, 4096)
    assert reader is not None
    dump = _message(10) + _message(11, 32)
    cut = _message(12)[:30]  # says 60 bytes
    odd = struct.pack("=IHHII", 18, 0, 0, 13, 0) + b"xy"  # 18 bytes: not padded
    sent = [_message(1), _message(2), dump, _message(3), cut, odd, _message(4), _message(5)]
    for data in sent:
        kernel.send(data)
    items, count = reader.read()
    assert [bytes(item) for item in items] == [
        sent[0] + sent[1], dump, sent[3], cut, odd, sent[6] + sent[7]
    ]  # fmt: skip
    assert count == len(sent)


def test_a_datagram_longer_than_the_size_is_cut_as_recv_cuts_it(pair) -> None:  # type: ignore[no-untyped-def]
    ours, kernel = pair
    reader = batchread.reader(ours, 64)
    assert reader is not None
    kernel.send(_message(1, 100))
    [item], _ = reader.read()
    assert bytes(item) == _message(1, 100)[:64]
    assert [type(m) for m in rt.parse(item)] == [rt.Malformed]


def test_a_closed_socket_is_told_as_recv_tells_it() -> None:
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader = batchread.reader(ours, 4096)
    assert reader is not None
    kernel.close()
    ours.close()
    with pytest.raises(OSError):
        reader.read()
