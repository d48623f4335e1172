"""TCP in vnets: the subsystem glue, against a dpkt station and between two vnets."""

from __future__ import annotations

import errno
import ipaddress
import random
from typing import Any

import pytest

from vrouter.link import offload
from vrouter.transport.tcp import stack as tcp_stack
from vrouter.transport.tcp.conn import Connection, State, TcpError, TcpOptions
from vrouter.transport.tcp.events import Acceptable, Connected, Event, Readable
from vrouter.transport.tcp.output import TSO_MAX
from vrouter.transport.tcp.segment import ACK, PSH, RST, SYN, Options, build, parse, verify
from vrouter.transport.tcp.stack import TcpStack, state_of
from vrouter.wire.checksum import pseudo_header_sum
from vrouter.wire.ipv4 import check


def _load(lab: Any) -> None:
    """TCP is a built-in subsystem: it is loaded already (load it if a test unloaded it)."""
    if "tcp" not in lab.tree.registry.names():
        lab.tree.registry.load(tcp_stack.SUBSYSTEM, list(lab.tree))


def _host_setup(lab: Any) -> tuple[Any, Any, TcpStack, list[Event]]:
    _load(lab)
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    h1.learn_router(lab.now)
    lab.settle()
    tcp = state_of(red)
    events: list[Event] = []
    tcp.on_event = events.append
    return red, h1, tcp, events


def _tcp_frames(h1: Any) -> list[tuple[Any, bytes]]:
    out = []
    for frame in h1.take_ip():
        ip = frame.data
        if ip.p == 6:
            seg, payload = parse(bytes(ip.data))
            out.append((seg, bytes(payload)))
    return out


def _send_tcp(h1: Any, lab: Any, raw: bytes) -> None:
    h1.send(h1.frame(h1.packet("192.0.2.1", 6, raw)), lab.now)
    lab.settle()


ROUTER = bytes([192, 0, 2, 1])
HOST = bytes([192, 0, 2, 10])


def test_subsystem_replaces_and_restores_the_closed_port_handler(lab: Any) -> None:
    red = lab.vnet("red")
    lab.tree.registry.unload("tcp", list(lab.tree))
    before = red.inet.protocols[6]
    _load(lab)
    tcp = state_of(red)  # created when first asked for
    assert red.inet.protocols[6] == tcp.input4
    assert red.inet6.protocols[6] == tcp.input6
    lab.tree.registry.unload("tcp", list(lab.tree))
    assert red.inet.protocols[6] is before
    assert "net.inet.tcp.msl" not in lab.tree.registry.sysctl().knobs


def test_sysctl_knobs_reach_the_table(lab: Any) -> None:
    _load(lab)
    red = lab.vnet("red")
    knob = lab.tree.registry.sysctl().knobs["net.inet.tcp.syn_queue_limit"]
    knob.set(red, 7)
    assert state_of(red).table.config.syn_queue_limit == 7


def test_a_station_opens_a_connection_to_a_vnet_listener(lab: Any) -> None:
    red, h1, tcp, events = _host_setup(lab)
    listener = tcp.listen(4, b"", 8080)
    opts = Options(mss=1400, wscale=2, sack_permitted=True).emit()
    _send_tcp(h1, lab, build(HOST, ROUTER, 40000, 8080, 7000, 0, SYN, 65535, opts))
    [(synack, _)] = _tcp_frames(h1)
    assert synack.flags == SYN | ACK and synack.ack == 7001 and synack.options.mss == 1460
    _send_tcp(h1, lab, build(HOST, ROUTER, 40000, 8080, 7001, synack.seq + 1, ACK, 1000))
    assert [type(e) for e in events] == [Acceptable]
    conn = tcp.accept(listener)
    assert conn is not None and conn.state == State.ESTABLISHED
    _send_tcp(
        h1, lab, build(HOST, ROUTER, 40000, 8080, 7001, synack.seq + 1, ACK | PSH, 1000, b"", b"hi")
    )
    assert [type(e) for e in events[1:]] == [Readable] and conn.recv() == b"hi"
    conn.send(b"hello")
    tcp.flush(lab.now)
    lab.settle()
    [(data, payload)] = _tcp_frames(h1)
    assert payload == b"hello" and data.ack == 7003
    assert red.tcp.stats.accepts == 1  # type: ignore[attr-defined]


def test_closed_port_gets_a_reset_through_the_vnet(lab: Any) -> None:
    _red, h1, tcp, _ = _host_setup(lab)
    _send_tcp(h1, lab, build(HOST, ROUTER, 40000, 9, 7000, 0, SYN, 65535))
    [(rst, _)] = _tcp_frames(h1)
    assert rst.flags == RST | ACK and rst.ack == 7001
    assert tcp.stats.noport == 1


def test_connect_from_a_vnet_retransmits_its_syn_on_the_vnet_timers(lab: Any) -> None:
    red, h1, tcp, events = _host_setup(lab)
    conn = tcp.connect(HOST, 80, lab.now)
    lab.settle()
    [(syn, _)] = _tcp_frames(h1)
    assert syn.flags == SYN and conn.local_addr == ROUTER
    assert red.timers.next_deadline() == pytest.approx(lab.now + 1.0)
    lab.advance(1.0)
    [(again, _)] = _tcp_frames(h1)
    assert again.seq == syn.seq
    _send_tcp(h1, lab, build(HOST, ROUTER, 80, conn.local_port, 500, syn.seq + 1, SYN | ACK, 900))
    assert conn.state == State.ESTABLISHED and [type(e) for e in events] == [Connected]


def test_connect_and_listen_errors(lab: Any) -> None:
    _, _, tcp, _ = _host_setup(lab)
    with pytest.raises(TcpError) as info:
        tcp.connect(bytes([203, 0, 113, 1]), 80, lab.now)
    assert info.value.errno == errno.ENETUNREACH
    with pytest.raises(TcpError) as info:
        tcp.connect(HOST, 80, lab.now, src=bytes([192, 0, 2, 99]))
    assert info.value.errno == errno.EADDRNOTAVAIL
    with pytest.raises(TcpError) as info:
        tcp.listen(4, bytes([192, 0, 2, 99]), 80)
    assert info.value.errno == errno.EADDRNOTAVAIL
    assert tcp.listen(4, ROUTER, 80).addr == ROUTER


def _pump(lab: Any, until: Any, app: Any, limit: int = 100_000) -> None:
    for _ in range(limit):
        app()
        lab.settle()
        if until():
            return
        deadlines = [d for v in lab.tree if (d := v.timers.next_deadline()) is not None]
        step = min(deadlines) - lab.now if deadlines else 0.001
        lab.advance(max(min(step, 0.05), 0.0005))
    raise AssertionError("no progress")


@pytest.mark.parametrize("family", [4, 6])
def test_two_vnets_move_half_a_megabyte_over_an_epair(lab6: Any, family: int) -> None:
    _load(lab6)
    red = lab6.vnet("red")
    blue = lab6.vnet("blue")
    lab6.epair6(
        red,
        "e0",
        ("192.0.2.1/24", "2001:db8::1/64"),
        blue,
        "e0",
        ("192.0.2.2/24", "2001:db8::2/64"),
    )
    lab6.finish_dad()
    server_addr = "192.0.2.2" if family == 4 else "2001:db8::2"
    listener = state_of(blue).listen(family, b"", 80)
    client = state_of(red).connect(ipaddress.ip_address(server_addr).packed, 80, lab6.now)
    data = random.Random(3).randbytes(512 * 1024)
    got = bytearray()
    box: list[Connection] = []
    st = {"sent": 0}

    def app() -> None:
        if not box and (conn := state_of(blue).accept(listener)) is not None:
            box.append(conn)
        if client.state == State.ESTABLISHED and st["sent"] < len(data):
            st["sent"] += client.send(data[st["sent"] : st["sent"] + 65536])
            if st["sent"] == len(data):
                client.close()
        state_of(red).flush(lab6.now)
        if box:
            got.extend(box[0].recv())
            if box[0].at_eof and box[0].state == State.CLOSE_WAIT:
                box[0].close()
            state_of(blue).flush(lab6.now)

    _pump(lab6, lambda: bool(box) and box[0].state == State.CLOSED, app)
    assert bytes(got) == data
    assert client.state == State.TIME_WAIT
    assert state_of(red).stats.sndrexmitpack == 0
    assert not state_of(blue).table.conns


def test_detach_forgets_every_connection(lab: Any) -> None:
    _red, _h1, tcp, _ = _host_setup(lab)
    tcp.connect(HOST, 80, lab.now)
    tcp.listen(4, b"", 81)
    lab.tree.registry.unload("tcp", list(lab.tree))
    assert not tcp.table.conns and not tcp.table.listeners


@pytest.mark.parametrize("family", [4, 6])
def test_a_vnet_connects_to_itself_without_recursing(lab6: Any, family: int) -> None:
    """Local delivery is synchronous: segments to our own address must queue, not nest."""
    _load(lab6)
    red = lab6.vnet("red")
    lab6.iface6(red, "e0", ("192.0.2.1/24", "2001:db8::1/64"))
    lab6.bring_up(red.link.interfaces["e0"])
    lab6.finish_dad()
    addr = ipaddress.ip_address("192.0.2.1" if family == 4 else "2001:db8::1").packed
    tcp = state_of(red)
    tcp.table.config.defaults = TcpOptions(rcvbuf=8 << 20, sndbuf=8 << 20)  # long bursts
    listener = tcp.listen(family, b"", 80)
    client = tcp.connect(addr, 80, lab6.now)
    server = tcp.accept(listener)
    assert server is not None and client.state == State.ESTABLISHED
    data = random.Random(5).randbytes(4 * 1024 * 1024)
    got = bytearray()
    sent_ = 0
    while len(got) < len(data):
        if sent_ < len(data):
            sent_ += client.send(data[sent_ : sent_ + 65536])
        tcp.flush(lab6.now)
        got += server.recv()
        tcp.flush(lab6.now)
    assert bytes(got) == data
    assert tcp.stats.rcvoopack == 0 and tcp.stats.sndrexmitpack == 0  # in order, no loss


def _established_to_station(
    lab: Any, offload: bool, tso: bool = True
) -> tuple[TcpStack, Connection, list[Any]]:
    """A connection from a station accepted by the vnet; every frame object sent is kept."""
    red, h1, tcp, _ = _host_setup(lab)
    h1.ifp.offload = offload
    lab.tree.registry.sysctl().knobs["net.inet.tcp.tso"].set(red, tso)
    listener = tcp.listen(4, b"", 8080)
    _send_tcp(h1, lab, build(HOST, ROUTER, 40000, 8080, 7000, 0, SYN, 65535,
                             Options(mss=1460).emit()))  # fmt: skip
    [(synack, _)] = _tcp_frames(h1)
    _send_tcp(h1, lab, build(HOST, ROUTER, 40000, 8080, 7001, synack.seq + 1, ACK, 65535))
    conn = tcp.accept(listener)
    assert conn is not None
    frames: list[Any] = []
    h1.ifp.transmit = frames.append
    return tcp, conn, frames


def test_tso_sends_one_super_segment_that_cuts_into_checksummed_segments(lab: Any) -> None:
    tcp, conn, frames = _established_to_station(lab, offload=True)
    assert conn.tso_size == TSO_MAX
    data = random.Random(7).randbytes(20000)
    conn.send(data)
    tcp.flush(lab.now)
    [frame] = frames  # the initial window, 10 x 1460 bytes, in one frame
    vhdr = offload.vhdr_of(frame)
    assert vhdr is not None and vhdr.is_gso
    assert vhdr == offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_TCPV4, 14 + 20 + 20,
                                     1460, 14 + 20, 16)  # fmt: skip
    # The checksum field holds the pseudo-header sum; completing it gives a valid segment.
    ip_len = len(frame) - 14
    tcp_part = bytes(frame[34:])
    pseudo = pseudo_header_sum(ROUTER, HOST, 6, len(tcp_part))
    assert int.from_bytes(tcp_part[16:18], "big") == pseudo
    assert (frame[16] << 8 | frame[17]) == ip_len
    whole = offload.complete_checksum(frame, vhdr)
    assert verify(ROUTER, HOST, bytes(whole[34:]))
    # What the host's TSO makes of it: 10 full segments, each with valid checksums.
    pieces = offload.segment(frame, vhdr)
    assert [len(p) - 54 for p in pieces] == [1460] * 10
    payload = b""
    for i, piece in enumerate(pieces):
        assert check(memoryview(piece)[14:]) == (20, len(piece) - 14)  # header checksum
        assert verify(ROUTER, HOST, bytes(piece[34:]))
        seg, body = parse(bytes(piece[34:]))
        assert seg.seq == conn.iss + 1 + 1460 * i
        assert seg.flags == ACK  # no PSH: more data follows beyond the window
        payload += bytes(body)
    assert payload == data[:14600]
    assert tcp.stats.sndpack == 10 and tcp.stats.sndbyte == 14600


def test_tso_super_segments_are_cut_in_software_where_the_interface_takes_no_offloads(
    lab: Any,
) -> None:
    tcp, conn, frames = _established_to_station(lab, offload=False)
    assert conn.tso_size == 0  # the route's interface takes no offloads
    conn.tso_size = TSO_MAX  # say the route changed under the connection
    conn.send(bytes(5000))
    tcp.flush(lab.now)
    assert [len(f) - 54 for f in frames] == [1460, 1460, 1460, 620]
    for frame in frames:
        assert offload.vhdr_of(frame) is None and verify(ROUTER, HOST, bytes(frame[34:]))


def test_tso_knob_turns_super_segments_off(lab: Any) -> None:
    tcp, conn, frames = _established_to_station(lab, offload=True, tso=False)
    assert conn.tso_size == 0
    conn.send(bytes(5000))
    tcp.flush(lab.now)
    assert [len(f) - 54 for f in frames] == [1460, 1460, 1460]  # Nagle holds the 620 bytes
    assert all(offload.vhdr_of(f) is None for f in frames)


def test_a_super_frame_from_the_host_is_one_segment_to_the_connection(lab: Any) -> None:
    tcp, conn, frames = _established_to_station(lab, offload=True)
    h1 = lab.hosts[-1]
    data = random.Random(9).randbytes(3 * 1448)
    raw = bytearray(build(HOST, ROUTER, 40000, 8080, 7001, conn.snd_nxt, ACK | PSH, 65535,
                          b"", data))  # fmt: skip
    raw[16:18] = pseudo_header_sum(HOST, ROUTER, 6, len(raw)).to_bytes(2, "big")  # partial
    frame = h1.frame(h1.packet("192.0.2.1", 6, bytes(raw)))
    vhdr = offload.VirtioHdr(offload.F_NEEDS_CSUM, offload.GSO_TCPV4, 54, 1448, 34, 16)
    rcvpack = tcp.stats.rcvpack
    h1.send(offload.tag(frame, vhdr), lab.now)
    lab.settle()
    assert conn.recv() == data  # not cut, checksum not recomputed
    assert tcp.stats.rcvpack == rcvpack + 1 and tcp.stats.rcvbadsum == 0
    [ack] = [parse(bytes(f[34:]))[0] for f in frames]  # at once: more than two segments
    assert ack.ack == 7001 + len(data) and ack.flags == ACK
