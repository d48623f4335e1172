"""TCP against segments captured from Linux (``capture_linux.sh``, kernel 6.x, veth, no offload).

For IPv4 and IPv6: a client connects to port 8080, sends "hello", the
server answers "world" and shuts down, both close; then a SYN to the closed
port 8081 and the kernel's RST.  ``C`` rows come from the client
(192.0.2.2 / 2001:db8::2), ``S`` rows from the server (.1 / ::1).
"""

from __future__ import annotations

import pytest
from tcp_testlib import T0, sent

from vrouter.transport.tcp.conn import Connection, State, TcpOptions
from vrouter.transport.tcp.segment import ACK, FIN, PSH, RST, SYN, Options, emit, parse, verify
from vrouter.transport.tcp.table import TcpTable
from vrouter.wire import tcp as wire_tcp

CLIENT4 = bytes([192, 0, 2, 2])
SERVER4 = bytes([192, 0, 2, 1])
CLIENT6 = bytes.fromhex("20010db8000000000000000000000002")
SERVER6 = bytes.fromhex("20010db8000000000000000000000001")

V4 = [
    ("C", "b49e1f90cc76d8cf00000000a002faf00ff10000020405b40402080aefbd4fe4000000000103030a"),
    ("S", "1f90b49e83e9e995cc76d8d0a012fe8880170000020405b40402080a8df090c0efbd4fe40103030a"),
    ("C", "b49e1f90cc76d8d083e9e9968010003fad3000000101080aefbd4fe48df090c0"),
    ("C", "b49e1f90cc76d8d083e9e9968018003f695100000101080aefbd4fe48df090c068656c6c6f"),
    ("S", "1f90b49e83e9e996cc76d8d580100040ad2a00000101080a8df090c0efbd4fe4"),
    ("S", "1f90b49e83e9e996cc76d8d5801800405f4000000101080a8df090c1efbd4fe4776f726c64"),
    ("C", "b49e1f90cc76d8d583e9e99b8010003fad2400000101080aefbd4fe58df090c1"),
    ("S", "1f90b49e83e9e99bcc76d8d580110040ad2200000101080a8df090c1efbd4fe5"),
    ("C", "b49e1f90cc76d8d583e9e99c8011003fad2200000101080aefbd4fe58df090c1"),
    ("S", "1f90b49e83e9e99ccc76d8d680100040ad2100000101080a8df090c1efbd4fe5"),
    ("C", "b6601f914bffb7ad00000000a002faf0eaca0000020405b40402080abd8a4714000000000103030a"),
    ("S", "1f91b660000000004bffb7ae50140000522d0000"),
]
V6 = [
    ("C", "be9e1f909c8f8f0b00000000a002fd20dee00000020405a00402080a34f7d1d9000000000103030a"),
    ("S", "1f90be9e6a8866919c8f8f0ca012fb0463e60000020405a00402080a5b2650c534f7d1d90103030a"),
    ("C", "be9e1f909c8f8f0c6a886692801000408d6600000101080a34f7d1d95b2650c5"),
    ("C", "be9e1f909c8f8f0c6a88669280180040498700000101080a34f7d1d95b2650c568656c6c6f"),
    ("S", "1f90be9e6a8866929c8f8f118010003f8d6200000101080a5b2650c534f7d1d9"),
    ("S", "1f90be9e6a8866929c8f8f118018003f3f7900000101080a5b2650c534f7d1d9776f726c64"),
    ("C", "be9e1f909c8f8f116a886697801000408d5c00000101080a34f7d1d95b2650c5"),
    ("S", "1f90be9e6a8866979c8f8f118011003f8d5c00000101080a5b2650c534f7d1d9"),
    ("C", "be9e1f909c8f8f116a886698801100408d5a00000101080a34f7d1d95b2650c5"),
    ("S", "1f90be9e6a8866989c8f8f128010003f8d5b00000101080a5b2650c534f7d1d9"),
    ("C", "deca1f91c8f6299200000000a002fd20008c0000020405a00402080a6e618fa9000000000103030a"),
    ("S", "1f91deca00000000c8f629935014000063760000"),
]

CASES = [(V4, CLIENT4, SERVER4), (V6, CLIENT6, SERVER6)]
IDS = ["ipv4", "ipv6"]


def _addrs(who: str, client: bytes, server: bytes) -> tuple[bytes, bytes]:
    return (client, server) if who == "C" else (server, client)


@pytest.mark.parametrize(("rows", "client", "server"), CASES, ids=IDS)
def test_every_captured_segment_verifies_parses_and_reemits_byte_for_byte(
    rows: list[tuple[str, str]], client: bytes, server: bytes
) -> None:
    for who, text in rows:
        raw = bytes.fromhex(text)
        src, dst = _addrs(who, client, server)
        assert verify(src, dst, raw)
        seg, payload = parse(raw)
        assert emit(src, dst, seg, payload) == raw  # our option layouts are Linux's


@pytest.mark.parametrize(("rows", "client", "server"), CASES, ids=IDS)
def test_linux_syn_options(rows: list[tuple[str, str]], client: bytes, server: bytes) -> None:
    syn, _ = parse(bytes.fromhex(rows[0][1]))
    synack, _ = parse(bytes.fromhex(rows[1][1]))
    mss = 1460 if len(client) == 4 else 1440
    assert syn.flags == SYN and synack.flags == SYN | ACK
    for opts in (syn.options, synack.options):
        assert opts.mss == mss and opts.wscale == 10 and opts.sack_permitted
        assert opts.ts is not None
    assert syn.options.ts is not None and syn.options.ts[1] == 0
    assert synack.options.ts is not None and synack.options.ts[1] == syn.options.ts[0]
    data, _ = parse(bytes.fromhex(rows[2][1]))
    assert data.options == Options(ts=data.options.ts)  # NOP NOP TS only


@pytest.mark.parametrize(("rows", "client", "server"), CASES, ids=IDS)
def test_closed_port_reset_matches_linux(
    rows: list[tuple[str, str]], client: bytes, server: bytes
) -> None:
    syn_raw = bytes.fromhex(rows[-2][1])
    table = TcpTable()
    [rst] = table.input(client, server, syn_raw, T0)
    assert rst.data == bytes.fromhex(rows[-1][1])
    assert wire_tcp.reset_for(server, client, wire_tcp.TcpHeader.parse(syn_raw)) == rst.data


@pytest.mark.parametrize(("rows", "client", "server"), CASES, ids=IDS)
def test_replaying_the_linux_client_against_our_server(
    rows: list[tuple[str, str]], client: bytes, server: bytes
) -> None:
    """Our server, given Linux's ISN and timestamp clock, answers as Linux's did."""
    segs = [parse(bytes.fromhex(text)) for _, text in rows]
    (syn, _), (lsynack, _) = segs[0], segs[1]
    assert lsynack.options.ts is not None
    conn = Connection.open_passive(
        (server, 8080),
        (client, syn.sport),
        syn,
        T0,
        TcpOptions(),
        iss=lsynack.seq,
        ts_offset=lsynack.options.ts[0] - int(T0 * 1000),
    )
    [synack] = sent(conn.output(T0))
    assert (synack.seq, synack.ack, synack.flags) == (lsynack.seq, lsynack.ack, SYN | ACK)
    assert synack.options.ts == lsynack.options.ts
    assert synack.options.mss == lsynack.options.mss and synack.options.sack_permitted
    assert conn.snd_wscale == 10 and conn.ts_enabled and conn.sack_enabled
    # The client's ACK and "hello".
    for seg, payload in segs[2:4]:
        conn.receive(seg, payload, T0)
    assert conn.state == State.ESTABLISHED and conn.recv() == b"hello"
    assert conn.snd_wnd == segs[3][0].window << 10
    # "world" and our FIN: where Linux's were.
    conn.send(b"world")
    conn.shutdown_write()
    [data] = sent(conn.output(T0))
    linux_data = segs[5][0]
    assert (data.seq, data.ack, data.payload) == (linux_data.seq, linux_data.ack, b"world")
    assert data.flags == ACK | PSH | FIN
    # The client acknowledges the data, then sends its FIN with the ACK of ours.
    conn.receive(*segs[6], T0)
    assert conn.state == State.FIN_WAIT_1
    out = conn.receive(*segs[8], T0)
    assert conn.state == State.TIME_WAIT
    [last] = sent(out)
    linux_last = segs[9][0]
    assert (last.seq, last.ack, last.flags) == (linux_last.seq, linux_last.ack, ACK)


@pytest.mark.parametrize(("rows", "client", "server"), CASES, ids=IDS)
def test_replaying_the_linux_server_against_our_client(
    rows: list[tuple[str, str]], client: bytes, server: bytes
) -> None:
    segs = [parse(bytes.fromhex(text)) for _, text in rows]
    lsyn = segs[0][0]
    assert lsyn.options.ts is not None
    conn = Connection.open_active(
        (client, lsyn.sport),
        (server, 8080),
        T0,
        TcpOptions(),
        iss=lsyn.seq,
        ts_offset=lsyn.options.ts[0] - int(T0 * 1000),
    )
    [syn] = sent(conn.output(T0))
    assert syn.seq == lsyn.seq and syn.options.ts == lsyn.options.ts
    assert syn.options.mss == lsyn.options.mss
    [ack] = sent(conn.receive(*segs[1], T0))
    assert conn.state == State.ESTABLISHED
    assert (ack.seq, ack.ack) == (segs[2][0].seq, segs[2][0].ack)
    assert ack.options.ts == segs[2][0].options.ts
    conn.send(b"hello")
    [hello] = sent(conn.output(T0))
    assert (hello.seq, hello.ack, hello.payload) == (segs[3][0].seq, segs[3][0].ack, b"hello")
    conn.receive(*segs[4], T0)
    conn.receive(*segs[5], T0)
    assert conn.recv() == b"world"
    conn.receive(*segs[7], T0)  # the server's FIN
    assert conn.state == State.CLOSE_WAIT and conn.at_eof
    conn.close()
    out = sent(conn.output(T0))
    fin = out[-1]
    assert fin.flags & FIN and (fin.seq, fin.ack) == (segs[8][0].seq, segs[8][0].ack)
    conn.receive(*segs[9], T0)
    assert conn.state == State.CLOSED
    assert not any(s.flags & RST for s in out)
