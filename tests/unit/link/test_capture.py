"""Tests for vrouter.link.capture: taps, libpcap filters run by the kernel, pcap, summaries.

The filter tests go through a real AF_UNIX SOCK_SEQPACKET pair: they check
that Linux runs socket filters on Unix datagrams (``sk_filter`` in
``unix_dgram_sendmsg``) and that :func:`relocate` keeps libpcap's meaning
once our header precedes the frame.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import struct
import time
from types import SimpleNamespace

import dpkt
import pytest

from vrouter.api.passing import PassFd
from vrouter.api.server import ControlServer
from vrouter.link import capture, ether
from vrouter.link.capture import (
    HEADER_LEN,
    Capture,
    FilterError,
    PcapWriter,
    Record,
    compile_filter,
    decode_record,
    relocate,
    socket_pair,
    summarize,
)
from vrouter.link.ifnet import Ifnet

STATION = b"\x02\x00\x00\x00\x00\x42"
H1 = bytes([192, 0, 2, 2])
R1 = bytes([192, 0, 2, 1])
T0 = 1_700_000_000_123_456_789
"""A wall-clock time in ns (the tap's injected clock)."""


def ip_frame(dst_mac: bytes, l4: object, proto: int, src: bytes = H1, dst: bytes = R1) -> bytes:
    ip = dpkt.ip.IP(src=src, dst=dst, p=proto, ttl=64, id=7, data=l4)
    return bytes(dpkt.ethernet.Ethernet(dst=dst_mac, src=STATION, type=0x0800, data=ip))


def icmp_echo(dst_mac: bytes, request: bool = True, seq: int = 1, size: int = 56) -> bytes:
    echo = dpkt.icmp.ICMP.Echo(id=0x1234, seq=seq, data=b"p" * size)
    return ip_frame(dst_mac, dpkt.icmp.ICMP(type=8 if request else 0, data=echo), 1)


def udp(dst_mac: bytes, payload: bytes = b"hello") -> bytes:
    datagram = dpkt.udp.UDP(sport=40000, dport=9, data=payload)
    datagram.ulen = 8 + len(payload)
    return ip_frame(dst_mac, datagram, 17)


def tcp(dst_mac: bytes, flags: int) -> bytes:
    segment = dpkt.tcp.TCP(sport=40000, dport=80, seq=1000, ack=0, flags=flags, win=512)
    return ip_frame(dst_mac, segment, 6)


class Reader:
    """The reader's end of a capture pair, read without blocking."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def records(self) -> list[Record]:
        out = []
        while True:
            try:
                data = self.sock.recv(HEADER_LEN + capture.SNAPLEN_MAX, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            out.append(decode_record(data))


@pytest.fixture
def port(lab):
    """An up interface whose device records what it transmits."""
    vnet = lab.vnet("r")
    ifp = lab.iface(vnet, "eth0", up=False)
    sent: list[bytes] = []
    ifp.transmit = sent.append
    ifp.up = True
    return ifp, sent


@pytest.fixture
def pairs():
    """Make capture socket pairs; close them all afterwards."""
    made: list[socket.socket] = []

    def make(expression: str = "", snaplen: int = capture.SNAPLEN_MAX, **kw):
        end, reader = socket_pair(compile_filter(expression, snaplen), **kw)
        made.extend((end, reader))
        return end, Reader(reader)

    yield make
    for sock in made:
        sock.close()


def tap_on(ifp: Ifnet, end: socket.socket, **kw) -> Capture:
    tap = Capture(ifp, capture.sender(end), clock=lambda: T0, **kw)
    tap.attach()
    return tap


# --- pcap -------------------------------------------------------------------------


def test_pcap_writer_output_reads_back_with_dpkt() -> None:
    out = io.BytesIO()
    writer = PcapWriter(out, snaplen=64)
    frames = [icmp_echo(b"\xff" * 6), udp(b"\xff" * 6, b"x" * 200), b"\x01" * 14]
    for n, frame in enumerate(frames):
        writer.write(T0 + n * 1_500_000_000, frame)
    writer.write(T0, frames[0][:20], orig_len=1514)  # already cut by the daemon
    out.seek(0)
    reader = dpkt.pcap.Reader(out)
    assert reader.datalink() == dpkt.pcap.DLT_EN10MB
    assert reader.snaplen == 64
    got = list(reader)
    assert [round(ts, 6) for ts, _ in got] == [
        1_700_000_000.123456,
        1_700_000_001.623456,
        1_700_000_003.123456,
        1_700_000_000.123456,
    ]
    assert [data for _, data in got] == [frames[0][:64], frames[1][:64], frames[2], frames[0][:20]]
    # dpkt's Reader hides the record header's original length: check it by hand.
    raw = out.getvalue()
    at = 24
    wire = []
    for _ in got:
        _, _, incl, orig = struct.unpack_from("=IIII", raw, at)
        wire.append(orig)
        at += 16 + incl
    assert wire == [len(frames[0]), len(frames[1]), 14, 1514]
    assert at == len(raw)


# --- compiling and relocating filters ----------------------------------------------


def test_compile_filter_returns_libpcaps_program() -> None:
    program = compile_filter("icmp", 262144)
    # ldh [12]; jeq #0x800; ldb [23]; jeq #1; ret #262144; ret #0
    assert program == [
        (0x28, 0, 0, 12),
        (0x15, 0, 3, 0x0800),
        (0x30, 0, 0, 23),
        (0x15, 0, 1, 1),
        (0x06, 0, 0, 262144),
        (0x06, 0, 0, 0),
    ]
    assert compile_filter("icmp", 96)[-2] == (0x06, 0, 0, 96)


def test_empty_filter_accepts_everything_without_libpcap() -> None:
    capture._libpcap.cache_clear()
    assert compile_filter("", 1500) == [(0x06, 0, 0, 1500)]
    assert compile_filter("   ") == [(0x06, 0, 0, capture.SNAPLEN_MAX)]
    assert capture._libpcap.cache_info().currsize == 0


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("bogus ((", "syntax error"),
        ("tcp port eighty", "eighty"),
        ("ip broadcast", "netmask not known"),
        ("icmp and", "syntax error"),
    ],
)
def test_bad_expression_gives_libpcaps_message(expression, message) -> None:
    with pytest.raises(FilterError, match=message) as err:
        compile_filter(expression)
    assert repr(expression) in str(err.value)


def test_bad_snaplen_and_non_ascii_are_refused() -> None:
    with pytest.raises(FilterError, match="snap length"):
        compile_filter("icmp", 0)
    with pytest.raises(FilterError, match="snap length"):
        compile_filter("", capture.SNAPLEN_MAX + 1)
    with pytest.raises(FilterError, match="ASCII"):
        compile_filter("host café")


def test_relocate_moves_loads_and_rets_and_reaims_jumps() -> None:
    program = compile_filter("greater 100 and tcp[13] & 2 != 0 or len < 70")
    moved = relocate(program, 20)
    lengths = [i for i, insn in enumerate(program) if insn[0] == 0x80]
    assert len(moved) == len(program) + len(lengths)
    for insn, new in zip(
        [x for x in program if x[0] in (0x28, 0x30, 0xB1, 0x50)],
        [x for x in moved if x[0] in (0x28, 0x30, 0xB1, 0x50)],
        strict=True,
    ):
        assert new[3] == insn[3] + 20
    assert {k for code, _, _, k in moved if code == 0x06} == {0, capture.SNAPLEN_MAX + 20}
    for i in lengths:
        assert moved[i + lengths.index(i) + 1] == (0x14, 0, 0, 20)  # sub #20


def test_relocate_reaims_a_jump_over_an_inserted_instruction() -> None:
    program = [
        (0x15, 0, 2, 7),  # jeq #7, 0, +2 -> over ld len to ret #0
        (0x80, 0, 0, 0),  # ld len
        (0x06, 0, 0, 100),
        (0x06, 0, 0, 0),
        (0x05, 0, 0, 0),  # (unreached) ja +0
        (0x06, 0, 0, 0),
    ]
    assert relocate(program, 16) == [
        (0x15, 0, 3, 7),
        (0x80, 0, 0, 0),
        (0x14, 0, 0, 16),
        (0x06, 0, 0, 116),
        (0x06, 0, 0, 0),
        (0x05, 0, 0, 0),
        (0x06, 0, 0, 0),
    ]


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ([(0x81, 0, 0, 0), (0x06, 0, 0, 1)], "ldx len"),
        ([(0x16, 0, 0, 0)], "computed length"),
        ([(0x30, 0, 0, 0xFFFFF000 + 4), (0x06, 0, 0, 1)], "ancillary"),
    ],
)
def test_relocate_refuses_what_it_cannot_move(program, message) -> None:
    with pytest.raises(FilterError, match=message):
        relocate(program)


# --- the kernel runs the filter on the Unix socket --------------------------------


def test_kernel_filters_unix_seqpacket_datagrams(port, pairs) -> None:
    ifp, _ = port
    end, reader = pairs("icmp")
    tap = tap_on(ifp, end)
    ether.input(ifp, udp(ifp.mac), 0.0)
    ether.input(ifp, icmp_echo(ifp.mac), 0.0)
    ifp.output(udp(STATION))
    ifp.output(icmp_echo(STATION, request=False))
    got = reader.records()
    assert [(r.outbound, dpkt.ethernet.Ethernet(r.frame).data.p) for r in got] == [
        (False, 1),
        (True, 1),
    ]
    assert tap.sent == 4  # the kernel discarded two, silently
    assert tap.dropped == 0


@pytest.mark.parametrize(
    ("expression", "accepted"),
    [
        ("greater 100", ["udp-200"]),
        ("less 100", ["udp-5", "syn", "ack"]),
        ("tcp[tcpflags] & tcp-syn != 0", ["syn"]),
        ("udp and udp[8:4] = 0x68656c6c", ["udp-5"]),
        ("ether src 02:00:00:00:00:42 and not tcp", ["udp-5", "udp-200"]),
        ("", ["udp-5", "udp-200", "syn", "ack"]),
    ],
)
def test_relocated_filters_keep_libpcaps_meaning(port, pairs, expression, accepted) -> None:
    ifp, _ = port
    end, reader = pairs(expression)
    tap_on(ifp, end)
    frames = {
        "udp-5": udp(ifp.mac),
        "udp-200": udp(ifp.mac, b"z" * 200),
        "syn": tcp(ifp.mac, dpkt.tcp.TH_SYN),
        "ack": tcp(ifp.mac, dpkt.tcp.TH_ACK),
    }
    for frame in frames.values():
        ether.input(ifp, frame, 0.0)
    names = {frame: name for name, frame in frames.items()}
    assert [names[r.frame] for r in reader.records()] == accepted


def test_snaplen_is_applied_by_the_kernel_and_orig_len_kept(port, pairs) -> None:
    ifp, _ = port
    end, reader = pairs("udp", snaplen=60)
    tap_on(ifp, end)
    frame = udp(ifp.mac, b"q" * 300)
    ether.input(ifp, frame, 0.0)
    (record,) = reader.records()
    assert record.frame == frame[:60]
    assert record.orig_len == len(frame)
    assert record.timestamp_ns == T0
    assert not record.outbound


# --- taps on the interface ----------------------------------------------------------


def test_no_capture_no_call(port, monkeypatch) -> None:
    ifp, sent = port

    def boom(self, frame, outbound):
        raise AssertionError("captures shown a frame without a capture")

    monkeypatch.setattr(Ifnet, "show_captures", boom)
    assert ifp.captures == []
    ether.input(ifp, icmp_echo(ifp.mac), 0.0)
    ifp.output(icmp_echo(STATION))
    assert len(sent) == 1
    assert ifp.counters.rx_packets == 1


def test_taps_see_received_frames_before_any_drop(port) -> None:
    ifp, _ = port
    seen: list[tuple[bytes, bool]] = []
    ifp.captures.append(lambda frame, outbound: seen.append((bytes(frame), outbound)))
    other = icmp_echo(b"\x02\x00\x00\x00\x99\x99")  # not for us
    short = b"\x00" * 9
    ether.input(ifp, other, 0.0)
    ether.input(ifp, short, 0.0)
    ifp.up = False
    ether.input(ifp, other, 0.0)  # link down
    ifp.output(other)  # not sent: not shown
    assert seen == [(other, False), (short, False), (other, False)]
    assert dict(ifp.counters.rx_drops) == {"not_for_us": 1, "eth_truncated": 1, "link_down": 1}


@pytest.mark.parametrize(
    ("direction", "expected"), [("in", [False]), ("out", [True]), ("both", [False, True])]
)
def test_direction_selects_frames(port, pairs, direction, expected) -> None:
    ifp, _ = port
    end, reader = pairs()
    tap_on(ifp, end, inbound=direction != "out", outbound=direction != "in")
    ether.input(ifp, icmp_echo(ifp.mac), 0.0)
    ifp.output(icmp_echo(STATION, request=False))
    assert [r.outbound for r in reader.records()] == expected


def test_several_captures_on_one_interface(port, pairs) -> None:
    ifp, _ = port
    end_icmp, icmp_reader = pairs("icmp")
    end_udp, udp_reader = pairs("udp")
    tap_on(ifp, end_icmp)
    tap_on(ifp, end_udp)
    ether.input(ifp, icmp_echo(ifp.mac), 0.0)
    ether.input(ifp, udp(ifp.mac), 0.0)
    assert len(icmp_reader.records()) == 1
    assert len(udp_reader.records()) == 1
    assert len(ifp.captures) == 2


def test_full_socket_drops_and_counts_without_slowing_forwarding(port, pairs) -> None:
    ifp, sent = port
    end, reader = pairs(sndbuf=4096)
    tap = tap_on(ifp, end)
    frame = udp(STATION, b"f" * 1000)
    for _ in range(100):
        ifp.output(frame)
    assert len(sent) == 100  # every frame went out
    assert ifp.counters.tx_packets == 100
    assert tap.dropped > 0
    assert tap.sent + tap.dropped == 100
    got = reader.records()
    assert len(got) == tap.sent
    ifp.output(frame)  # room again: the next record carries the drop count
    (last,) = reader.records()
    assert last.dropped == tap.dropped


def test_closed_reader_detaches_the_tap(port, pairs) -> None:
    ifp, sent = port
    end, reader = pairs()
    closed: list[Capture] = []
    tap = tap_on(ifp, end, on_close=closed.append)
    other_end, other_reader = pairs()
    other = tap_on(ifp, other_end)
    reader.sock.close()
    ifp.output(udp(STATION))
    assert closed == [tap]
    assert ifp.captures == [other]
    assert not tap.attached
    ifp.output(udp(STATION))
    assert closed == [tap]  # on_close runs once
    assert len(sent) == 2
    assert len(other_reader.records()) == 2
    assert other.sent == 2


def test_other_send_errors_lose_the_frame_only(port) -> None:
    ifp, sent = port

    def refuse(buffers):
        raise OSError(90, "Message too long")

    tap = Capture(ifp, refuse)
    tap.attach()
    ifp.output(udp(STATION))
    assert tap.attached
    assert tap.dropped == 1
    assert len(sent) == 1


# --- records and summaries -----------------------------------------------------------


def test_decode_record_round_trip() -> None:
    frame = icmp_echo(STATION)
    datagram = capture.HEADER.pack(T0, 1514, 3, True) + frame
    assert decode_record(datagram) == Record(T0, 1514, 3, True, frame)
    with pytest.raises(ValueError, match="shorter"):
        decode_record(b"\x00" * 5)


def line(frame: bytes, outbound: bool = False) -> str:
    text = summarize(Record(T0, len(frame), 0, outbound, frame))
    stamp, rest = text.split(" ", 1)
    assert stamp.endswith(".123456")
    return rest


def test_summaries_read_like_tcpdump() -> None:
    mac = b"\x02\x00\x00\x00\x00\x01"
    assert line(icmp_echo(mac)) == (
        "In  IP 192.0.2.2 > 192.0.2.1: ICMP echo request, id 4660, seq 1, length 64"
    )
    assert line(icmp_echo(mac, request=False, seq=2), outbound=True) == (
        "Out IP 192.0.2.2 > 192.0.2.1: ICMP echo reply, id 4660, seq 2, length 64"
    )
    assert line(udp(mac)) == "In  IP 192.0.2.2.40000 > 192.0.2.1.9: UDP, length 5"
    assert line(tcp(mac, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)) == (
        "In  IP 192.0.2.2.40000 > 192.0.2.1.80: Flags [S.], seq 1000, ack 0, win 512, length 0"
    )
    arp = dpkt.arp.ARP(op=1, sha=STATION, spa=H1, tha=b"\x00" * 6, tpa=R1)
    frame = bytes(dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=STATION, type=0x0806, data=arp))
    assert line(frame) == "In  ARP, Request who-has 192.0.2.1 tell 192.0.2.2, length 28"
    echo6 = dpkt.icmp6.ICMP6(type=128, data=dpkt.icmp6.ICMP6.Echo(id=5, seq=9, data=b"x" * 8))
    ip6 = dpkt.ip6.IP6(
        src=socket.inet_pton(socket.AF_INET6, "2001:db8:1::2"),
        dst=socket.inet_pton(socket.AF_INET6, "2001:db8:1::1"),
        nxt=58,
        hlim=64,
        data=echo6,
    )
    ip6.plen = len(bytes(echo6))
    frame = bytes(dpkt.ethernet.Ethernet(dst=mac, src=STATION, type=0x86DD, data=ip6))
    assert line(frame) == (
        "In  IP6 2001:db8:1::2 > 2001:db8:1::1: ICMP6, echo request, id 5, seq 9, length 16"
    )
    fragment = dpkt.ip.IP(src=H1, dst=R1, p=17, id=7, data=b"x" * 100)
    fragment.offset = 1480
    frame = bytes(dpkt.ethernet.Ethernet(dst=mac, src=STATION, type=0x0800, data=fragment))
    assert line(frame) == "In  IP 192.0.2.2 > 192.0.2.1: ip-proto-17 (frag 7), length 120"
    lldp = bytes(dpkt.ethernet.Ethernet(dst=mac, src=STATION, type=0x88CC, data=b"\x00" * 46))
    assert line(lldp) == "In  ethertype 0x88cc, length 60"
    assert line(b"\x01\x02\x03") == "In  truncated frame, length 3"


# --- the control server's side: a capture's life ---------------------------------


def request(**args: object) -> bytes:
    return json.dumps({"op": "capture", "args": args}).encode() + b"\n"


def test_server_refuses_bad_requests_with_the_reason(lab) -> None:
    lab.iface(lab.vnet("r"), "eth0")
    server = ControlServer(SimpleNamespace(tree=lab.tree))
    cases = {
        "syntax error": request(vnet="r", interface="eth0", filter="bogus (("),
        "no interface 'eth9'": request(vnet="r", interface="eth9"),
        "no vnet": request(vnet="x", interface="eth0"),
        "'snaplen' must be 1..": request(vnet="r", interface="eth0", snaplen=0),
        "'direction' must be": request(vnet="r", interface="eth0", direction="sideways"),
        "'filter' must be a string": request(vnet="r", interface="eth0", filter=["icmp"]),
    }
    for message, line in cases.items():
        reply, passing = asyncio.run(server.answer(line))
        assert passing is None
        assert not reply["ok"]
        assert message in reply["error"]
    assert lab.tree.get("r").link.get("eth0").captures == []


def test_server_ends_captures_when_the_vnet_goes_or_the_reader_closes(lab) -> None:
    vnet = lab.vnet("r")
    ifp = lab.iface(vnet, "eth0")
    ifp.transmit = lambda frame: None

    async def start(server: ControlServer, expression: str) -> tuple[socket.socket, object]:
        line = request(vnet="r", interface="eth0", filter=expression)
        reply, passing = await server.answer(line)
        assert reply["ok"], reply
        assert isinstance(passing, PassFd)
        reader = passing.sock  # what the client would receive
        passing.passed(server)
        return reader, passing

    async def scenario() -> None:
        server = ControlServer(SimpleNamespace(tree=lab.tree))
        first, first_capture = await start(server, "icmp")
        second, _ = await start(server, "")
        assert len(ifp.captures) == 2
        ether.input(ifp, icmp_echo(ifp.mac), lab.now)
        assert len(Reader(first).records()) == 1

        second.close()  # the reader goes: its end turns readable, the server ends it
        deadline = time.monotonic() + 5
        while len(server.captures) > 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert server.captures == {first_capture}
        assert len(ifp.captures) == 1

        server._sweep_captures()  # interface still there: nothing ends
        assert server.captures == {first_capture}
        lab.tree.destroy("r")
        server._sweep_captures()
        assert server.captures == set()
        assert ifp.captures == []
        assert first.recv(100) == b""  # the reader sees the end
        first.close()
        await server.close()

    asyncio.run(scenario())
