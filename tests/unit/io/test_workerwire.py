"""Tests for vrouter.io.workerwire: records on a stream, batching, offload headers, a bad stream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from vrouter.io import workerwire
from vrouter.link import offload
from vrouter.link.ifnet import Ifnet
from vrouter.stack import new_tree

HDR = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_TCPV4, 54, 1448, 34, 16)


def _frame(n: int, size: int = 60) -> bytes:
    return n.to_bytes(4, "big") + bytes(size - 4)


def test_records_round_trip_and_a_partial_record_waits() -> None:
    big = offload.tag(_frame(2, 9000), HDR)
    data = workerwire.encode(_frame(1)) + workerwire.encode(big) + workerwire.encode(_frame(3))
    frames, used, bad = workerwire.decode(data[:-10])
    assert bad is None
    assert [bytes(f[:4]) for f in frames] == [_frame(1)[:4], _frame(2)[:4]]
    assert offload.vhdr_of(frames[0]) is None
    assert offload.vhdr_of(frames[1]) == HDR and bytes(frames[1]) == bytes(big)
    rest, more, _ = workerwire.decode(data[used:])
    assert [bytes(f) for f in rest] == [_frame(3)] and used + more == len(data)


@pytest.mark.parametrize("length", [0, offload.HEADER_LEN, workerwire.MAX_RECORD + 1])
def test_a_record_no_worker_writes_is_refused(length: int) -> None:
    good = workerwire.encode(_frame(1))
    frames, used, bad = workerwire.decode(good + workerwire.LENGTH.pack(length) + bytes(20))
    assert [bytes(f) for f in frames] == [_frame(1)] and used == len(good)
    assert bad == f"record of {length} bytes"


def _end(sock: socket.socket, loop: asyncio.AbstractEventLoop) -> tuple[Ifnet, list[bytes]]:
    vnet = new_tree().create("v")
    ifp = Ifnet(vnet, "ep0", "epair", b"\x02\0\0\0\0\1")
    vnet.link.add(ifp)
    ifp.up = True
    got: list[bytes] = []

    def receive(ifnet: Ifnet, frame: bytes | bytearray, now: float) -> None:
        got.append(bytes(frame))

    workerwire.WireDevice(ifp, sock, loop, receive)
    return ifp, got


async def _until(check: Callable[[], bool]) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def test_frames_cross_in_order_both_ways_and_a_lost_peer_unplugs() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        one, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        a, got_a = _end(one, loop)
        b, got_b = _end(other, loop)
        for n in range(2000):  # more than one read's worth, so records straddle reads
            a.output(_frame(n, 1514))
        b.output(_frame(7))
        await _until(lambda: len(got_b) == 2000 and len(got_a) == 1)
        assert [int.from_bytes(f[:4], "big") for f in got_b] == list(range(2000))
        assert got_a == [_frame(7)]
        assert a.counters.tx_packets == 2000
        other.close()  # the other worker is gone
        await asyncio.sleep(0.05)
        a.output(_frame(9))
        await asyncio.sleep(0.05)
        a.output(_frame(10))
        assert a.counters.tx_errors >= 1

    asyncio.run(main())


def test_garbage_on_the_stream_is_counted_and_closes_the_wire() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        one, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        b, got_b = _end(other, loop)
        one.sendall(workerwire.encode(_frame(1)) + b"\xff\xff\xff\xff" + bytes(40))
        await _until(lambda: b.counters.rx_errors == 1)
        assert got_b == [_frame(1)]
        b.output(_frame(2))
        assert b.counters.tx_errors == 1
        one.close()

    asyncio.run(main())
