"""UDP and raw sockets in a vnet, sans-IO: delivery, binding, options, sending."""

from __future__ import annotations

import errno

import dpkt
import pytest

from vrouter.inet import ipv4
from vrouter.transport import sockets
from vrouter.transport.message import CTRL, DATA, ERROR, REPLY, TO, Message, control


def _setup(lab):
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    h1.learn_router(lab.now)
    lab.settle()
    return red, h1


def _udp_socket(vnet, port: int, address: str | None = None) -> tuple[sockets.Socket, list]:
    got: list[Message] = []
    sock = sockets.open_socket(vnet, 4, sockets.UDP)
    sock.deliver = lambda data: got.append(Message.parse(data)) or True
    sock.privileged = True
    sockets.bind(sock, address, port)
    return sock, got


def test_datagram_reaches_the_bound_socket_with_its_arrival_info(lab) -> None:
    red, h1 = _setup(lab)
    _sock, got = _udp_socket(red, 9999)
    h1.send(h1.udp("192.0.2.1", sport=4000, dport=9999, payload=b"hi"), lab.now)
    [m] = got
    assert (m.kind, m.payload, m.sport, m.dport) == (DATA, b"hi", 4000, 9999)
    assert m.src == h1.ip and m.dst == bytes([192, 0, 2, 1])
    assert m.ifindex == h1.ifp.index and m.ttl == 64
    assert red.transport.stats.udp_delivered == 1
    assert h1.take_ip() == []  # no port unreachable


def test_most_specific_socket_wins_and_closing_frees_the_port(lab) -> None:
    red, h1 = _setup(lab)
    wild, wild_got = _udp_socket(red, 53)
    exact, exact_got = _udp_socket(red, 53, "192.0.2.1")
    h1.send(h1.udp("192.0.2.1", dport=53, payload=b"q"), lab.now)
    assert len(exact_got) == 1 and wild_got == []
    sockets.close(exact)
    h1.send(h1.udp("192.0.2.1", dport=53, payload=b"q"), lab.now)
    assert len(wild_got) == 1
    sockets.close(wild)
    assert (4, 53) not in red.transport.udp
    h1.send(h1.udp("192.0.2.1", dport=53, payload=b"q"), lab.now)
    lab.settle()
    [err] = h1.take_ip()
    assert (err.data.data.type, err.data.data.code) == (3, 3)


def test_bind_errors_and_ephemeral_ports(lab) -> None:
    red, _ = _setup(lab)
    _udp_socket(red, 7000)
    with pytest.raises(sockets.SocketError) as info:
        _udp_socket(red, 7000)
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(sockets.SocketError) as info:
        _udp_socket(red, 7001, "198.51.100.9")
    assert info.value.errno == errno.EADDRNOTAVAIL
    a, _ = _udp_socket(red, 0)
    b, _ = _udp_socket(red, 0)
    assert 49152 <= a.port < b.port <= 65535
    unprivileged = sockets.open_socket(red, 4, sockets.UDP)
    with pytest.raises(sockets.SocketError) as info:
        sockets.bind(unprivileged, None, 520)
    assert info.value.errno == errno.EACCES


def test_connected_socket_only_hears_its_peer(lab) -> None:
    red, h1 = _setup(lab)
    sock, got = _udp_socket(red, 6000)
    sockets.connect(sock, "192.0.2.99", 5000)
    h1.send(h1.udp("192.0.2.1", sport=5000, dport=6000), lab.now)
    assert got == []


def test_multicast_needs_a_membership_on_the_arrival_interface(lab) -> None:
    red, h1 = _setup(lab)
    sock, got = _udp_socket(red, 520)
    frame = h1.udp("224.0.0.9", dport=520, payload=b"rip", dst_mac=b"\x01\x00\x5e\x00\x00\x09")
    h1.send(frame, lab.now)
    assert got == []
    sockets.request(sock, {"op": "join", "group": "224.0.0.9", "interface": "eth0"})
    h1.send(frame, lab.now)
    assert [m.payload for m in got] == [b"rip"]


def test_sending_unicast_and_multicast(lab) -> None:
    red, h1 = _setup(lab)
    sock, _ = _udp_socket(red, 520)
    out = Message(DATA, 4, 0, TO, 0, 520, 0, b"", h1.ip, b"to h1")
    sockets.send(sock, out, lab.now)
    [frame] = h1.take_ip()
    udp = frame.data.data
    assert (udp.sport, udp.dport, udp.data) == (520, 520, b"to h1")
    assert frame.data.src == bytes([192, 0, 2, 1])
    group = Message(DATA, 4, 0, TO, 0, 520, 0, b"", bytes([224, 0, 0, 9]), b"all")
    with pytest.raises(sockets.SocketError, match="multicast needs"):
        sockets.send(sock, group, lab.now)
    sockets.request(sock, {"op": "setsockopt", "name": "multicast_if", "value": "eth0"})
    sockets.send(sock, group, lab.now)
    [group_frame] = h1.take()
    assert group_frame.dst == b"\x01\x00\x5e\x00\x00\x09" and group_frame.data.ttl == 1


def test_raw_socket_sees_its_protocol_and_keeps_the_original_handler(lab) -> None:
    red, h1 = _setup(lab)
    got: list[Message] = []
    raw = sockets.open_socket(red, 4, sockets.RAW, 1)  # ICMP: the vnet still answers pings
    raw.deliver = lambda data: got.append(Message.parse(data)) or True
    h1.send(h1.ping("192.0.2.1"), lab.now)
    lab.settle()
    assert len(got) == 1 and got[0].payload[0] == 8  # the echo request itself
    [reply] = h1.take_ip()
    assert reply.data.data.type == dpkt.icmp.ICMP_ECHOREPLY
    sockets.close(raw)
    assert red.inet.protocols[1] is ipv4.icmp_input


def test_control_requests_answer_on_the_socket(lab) -> None:
    red, _ = _setup(lab)
    sent: list[Message] = []
    sock = sockets.open_socket(red, 4, sockets.UDP)
    sock.deliver = lambda data: sent.append(Message.parse(data)) or True
    sockets.handle(sock, control(CTRL, {"op": "bind", "address": "0.0.0.0", "port": 0}), lab.now)
    sockets.handle(sock, control(CTRL, {"op": "setsockopt", "name": "ttl", "value": 300}), lab.now)
    sockets.handle(sock, Message(DATA, payload=b"nowhere").emit(), lab.now)
    first, second, third = sent
    assert first.kind == REPLY and first.json()["ok"] and first.json()["port"] >= 49152
    assert second.kind == REPLY and not second.json()["ok"] and "ttl" in second.json()["error"]
    assert third.kind == ERROR and third.json()["errno"] == errno.EDESTADDRREQ
