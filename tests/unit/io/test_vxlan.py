"""Tests for vrouter.io.vxlan: real UDP sockets on loopback, batched sends, GRO reads, close."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from vrouter.io.vxlan import VxlanDevice
from vrouter.link import vxlan as vxlan_
from vrouter.link.ifnet import Ifnet
from vrouter.link.tso import Train
from vrouter.stack import new_tree
from vrouter.wire import vxlan as wire

LOCAL = "127.0.0.1"
PEER = "127.0.0.2"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOCAL, 0))
        port: int = probe.getsockname()[1]
        return port


def _vxlan(port: int) -> vxlan_.Vxlan:
    vnet = new_tree().create("lab")
    ifp = Ifnet(vnet, "vx42", "vxlan", bytes.fromhex("02005e000001"), 1450)
    vnet.link.add(ifp)
    cfg = vxlan_.VxlanConfigured(
        42, ipaddress.ip_address(LOCAL), port, (ipaddress.ip_address(PEER),)
    )
    return vxlan_.create(ifp, cfg)


def _frame(n: int, size: int) -> bytes:
    return b"\xff" * 6 + bytes.fromhex("0200000000aa") + b"\x88\xb5" + bytes([n]) * (size - 14)


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_a_batch_leaves_as_one_datagram_per_frame(loop) -> None:
    port = _free_port()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind((PEER, port))
    peer.settimeout(2)
    vx = _vxlan(port)
    device = VxlanDevice(vx, loop)
    try:
        frames = [_frame(1, 1000), _frame(2, 1000), _frame(3, 1000), _frame(4, 300)]
        vx.send(PEER, frames[:2])
        vx.send(PEER, frames[2:])
        loop.run_until_complete(asyncio.sleep(0))  # the batch's end: one flush
        got = [peer.recvfrom(65536) for _ in frames]
        assert [data for data, _ in got] == [wire.header(42) + f for f in frames]
        assert {source for _, source in got} == {(LOCAL, port)}
        # one UDP_SEGMENT send: three of 1000 bytes and the shorter one closing the run
        assert (vx.stats.small_sends, vx.stats.small_datagrams) == (1, 4)
    finally:
        device.close()
        peer.close()


def test_datagrams_received_reach_the_interface_and_close_frees_the_socket(loop) -> None:
    port = _free_port()
    vx = _vxlan(port)
    seen: list[tuple[bytes, str]] = []
    vx.input = lambda datagram, source, now: seen.append((bytes(datagram), source))  # type: ignore[method-assign]
    device = VxlanDevice(vx, loop)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind((PEER, 0))
    try:
        datagrams = [wire.header(42) + _frame(n, 500) for n in range(5)]
        for datagram in datagrams:
            sender.sendto(datagram, (LOCAL, port))
        for _ in range(50):
            loop.run_until_complete(asyncio.sleep(0.01))
            if len(seen) == len(datagrams):
                break
        assert seen == [(d, PEER) for d in datagrams]
    finally:
        sender.close()
        device.close()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind((LOCAL, port))  # the port is free again
    with pytest.raises(OSError):
        vx.send(PEER, [_frame(1, 100)])


def test_super_frames_leave_as_their_datagrams_in_order(loop) -> None:
    """Two 46-datagram trains, more than one UDP_SEGMENT send each (43 a send), then a
    frame queued after them: every datagram arrives once, in order."""
    port = _free_port()
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    peer.bind((PEER, port))
    peer.settimeout(2)
    vx = _vxlan(port)
    device = VxlanDevice(vx, loop)
    size = 1472
    trains = [[bytes([t, n]) * (size // 2) for n in range(46)] for t in range(2)]
    try:
        for train in trains:
            vx.send_train(PEER, Train(b"".join(train), size, len(train)))
        vx.send(PEER, [_frame(9, 100)])
        loop.run_until_complete(asyncio.sleep(0))
        got = [peer.recvfrom(65536)[0] for _ in range(93)]
        assert got == [*trains[0], *trains[1], wire.header(42) + _frame(9, 100)]
    finally:
        device.close()
        peer.close()


class _RefusingTunnel:
    name = "vxgso0"

    def send(self, address: str, frame: bytes | bytearray, vhdr: object) -> bool:
        raise OSError(105, "No buffer space available")

    def close(self) -> None:
        pass


def test_a_super_frame_the_kernel_refuses_on_the_tunnel_is_counted_and_shown(loop) -> None:
    vx = _vxlan(_free_port())
    device = VxlanDevice(vx, loop)
    try:
        device.tunnel = _RefusingTunnel()  # type: ignore[assignment]
        assert not device.send_super(PEER, _frame(1, 4000), None)  # type: ignore[arg-type]
        assert not device.send_super(PEER, _frame(2, 4000), None)  # type: ignore[arg-type]
        shown = vx.describe()
        assert shown["stats"]["tunnel_refused"] == 2  # type: ignore[index]
        assert shown["tunnel_error"] == "[Errno 105] No buffer space available"
    finally:
        device.close()
    assert vx.tunnel_error == ""
