"""Opening connections: active, passive and simultaneous open, options, MSS clamping."""

from __future__ import annotations

import errno

import pytest
from tcp_testlib import (
    A6,
    B6,
    IRS,
    ISS,
    LPORT,
    RPORT,
    T0,
    A,
    B,
    Script,
    active,
    events,
    passive,
    plain,
    sent,
)

from vrouter.transport.tcp.conn import Connection, State, TcpOptions
from vrouter.transport.tcp.segment import ACK, RST, SYN, Options, Segment


def test_active_open_three_way_handshake() -> None:
    conn, syn = active()
    assert conn.state == State.SYN_SENT
    assert syn.is_(SYN) and syn.seq == ISS and syn.options == Options(mss=1460)
    assert conn.poll_at() == T0 + 1.0  # RFC 6298 2.1: initial RTO 1 s
    script = Script(conn)
    [ack] = script.send(SYN | ACK, seq_no=IRS, ack=ISS + 1, options=Options(mss=1400))
    assert conn.state == State.ESTABLISHED
    assert ack.is_(ACK) and (ack.seq, ack.ack) == (ISS + 1, IRS + 1)
    assert script.events() == ["Connected"]
    assert conn.peer_mss == 1400 and conn.mss == 1400
    assert conn.stats.connattempt == 1 and conn.stats.connects == 1
    assert conn.poll_at() is None  # nothing outstanding, nothing to time


def test_passive_open_three_way_handshake_with_data_on_the_ack() -> None:
    conn, script, [synack] = passive()
    assert conn.state == State.SYN_RECEIVED
    assert synack.is_(SYN | ACK) and (synack.seq, synack.ack) == (ISS, IRS + 1)
    assert synack.options == Options(mss=1460)  # the SYN offered nothing else
    out = script.send(ACK | 0x08, b"GET / HTTP/1.0\r\n\r\n")
    assert conn.state == State.ESTABLISHED
    assert script.events() == ["Connected", "Readable"]
    assert conn.recv() == b"GET / HTTP/1.0\r\n\r\n"
    assert out == []  # the ACK of the data is delayed
    assert conn.poll_at() == T0 + conn.options.delack


def test_window_scale_timestamps_and_sack_negotiated_on_active_open() -> None:
    conn, syn = active(TcpOptions())
    opts = syn.options
    assert opts.mss == 1460 and opts.wscale == 7 and opts.sack_permitted
    assert opts.ts is not None and opts.ts[1] == 0
    script = Script(conn)
    peer = Options(mss=1460, wscale=2, sack_permitted=True, ts=(777, opts.ts[0]))
    [ack] = script.send(SYN | ACK, seq_no=IRS, ack=ISS + 1, options=peer, window=1000)
    assert conn.ts_enabled and conn.sack_enabled and conn.ws_enabled
    assert (conn.snd_wscale, conn.rcv_wscale) == (2, 7)
    assert conn.snd_wnd == 1000  # the SYN-ACK's window is never scaled (RFC 7323 2.2)
    assert ack.options.ts is not None and ack.options.ts[1] == 777
    assert ack.window == conn.options.rcvbuf >> 7
    assert conn.mss == 1460 - 12  # timestamps take 12 bytes of every segment
    # Later windows are scaled.
    script.send(ACK, window=1000, options=Options(ts=(778, ack.options.ts[0])))
    assert conn.snd_wnd == 4000


def test_nothing_negotiated_when_the_syn_ack_has_no_options() -> None:
    conn, _ = active(TcpOptions())
    Script(conn).send(SYN | ACK, seq_no=IRS, ack=ISS + 1)
    assert not (conn.ts_enabled or conn.sack_enabled or conn.ws_enabled)
    assert (conn.snd_wscale, conn.rcv_wscale) == (0, 0)
    assert conn.peer_mss == 536  # RFC 9293 3.7.1 default
    conn6 = Connection.open_active((A6, LPORT), (B6, RPORT), T0, TcpOptions(), iss=ISS)
    conn6.output(T0)
    Script(conn6).send(SYN | ACK, seq_no=IRS, ack=ISS + 1)
    assert conn6.peer_mss == 1220  # IPv6 minimum MTU less headers


def test_passive_open_answers_only_the_options_offered() -> None:
    syn_opts = Options(mss=1460, wscale=3, sack_permitted=True, ts=(1, 0))
    conn, _, [synack] = passive(TcpOptions(), syn_opts)
    o = synack.options
    assert o.wscale == 7 and o.sack_permitted and o.ts is not None and o.ts[1] == 1
    assert synack.window == 65535
    assert conn.snd_wscale == 3
    conn, _, [synack] = passive(TcpOptions(), Options(mss=1460, ts=(1, 0)))
    assert synack.options.wscale is None and not synack.options.sack_permitted
    assert conn.rcv_wscale == 0 and conn.ts_enabled
    conn, _, [synack] = passive(TcpOptions(timestamps=False, window_scaling=False), syn_opts)
    assert synack.options.ts is None and synack.options.wscale is None
    assert synack.options.sack_permitted


def test_mss_is_clamped_to_the_interface_mtu_and_the_option() -> None:
    _, syn = active(mtu=1400)
    assert syn.options.mss == 1360
    conn6 = Connection.open_active((A6, LPORT), (B6, RPORT), T0, plain(), iss=ISS, mtu=1500)
    [syn6] = sent(conn6.output(T0))
    assert syn6.options.mss == 1440
    _, syn = active(plain(mss=1000), mtu=9000)
    assert syn.options.mss == 1000
    # Segments never exceed the smaller of ours and the peer's.
    conn, syn = active(mtu=1400)
    Script(conn).send(SYN | ACK, seq_no=IRS, ack=ISS + 1, options=Options(mss=9000))
    assert conn.mss == 1360
    conn.options.nodelay = True
    conn.send(b"x" * 5000)
    sizes = [len(s.payload) for s in sent(conn.output(T0))]
    assert sizes == [1360, 1360, 1360, 920]


def test_simultaneous_open() -> None:
    """RFC 9293 figure 8: both sides send SYN, both get SYN, then SYN-ACKs cross."""
    a = Connection.open_active((A, 1111), (B, 2222), T0, plain(), iss=100)
    b = Connection.open_active((B, 2222), (A, 1111), T0, plain(), iss=300)
    [syn_a] = sent(a.output(T0))
    [syn_b] = sent(b.output(T0))
    [synack_a] = sent(a.receive(syn_b.seg, b"", T0))
    [synack_b] = sent(b.receive(syn_a.seg, b"", T0))
    assert a.state == b.state == State.SYN_RECEIVED
    assert synack_a.is_(SYN | ACK) and (synack_a.seq, synack_a.ack) == (100, 301)
    assert synack_b.is_(SYN | ACK) and (synack_b.seq, synack_b.ack) == (300, 101)
    out_a = a.receive(synack_b.seg, b"", T0)
    out_b = b.receive(synack_a.seg, b"", T0)
    assert a.state == b.state == State.ESTABLISHED
    assert events(out_a) == events(out_b) == ["Connected"]
    # Data flows both ways afterwards.
    a.send(b"ping")
    [data] = sent(a.output(T0))
    b.receive(data.seg, data.payload, T0)
    assert b.recv() == b"ping"


def test_syn_sent_rejects_a_bad_ack_with_a_reset() -> None:
    conn, _ = active()
    script = Script(conn)
    [rst] = script.send(SYN | ACK, seq_no=IRS, ack=ISS + 7)
    assert rst.is_(RST) and rst.seq == ISS + 7
    assert conn.state == State.SYN_SENT
    # A RST with an unacceptable ACK, or without ACK, is ignored.
    assert script.send(RST | ACK, seq_no=0, ack=ISS + 7) == []
    assert script.send(RST, seq_no=0) == []
    assert conn.state == State.SYN_SENT


def test_connection_refused() -> None:
    conn, _ = active()
    script = Script(conn)
    assert script.send(RST | ACK, seq_no=0, ack=ISS + 1) == []
    assert conn.state == State.CLOSED and conn.error == errno.ECONNREFUSED
    assert script.events() == ["Reset", "Closed"]
    assert conn.stats.refused == 1


def test_syn_retransmission_backs_off_then_times_out() -> None:
    conn, _ = active(plain(syn_retries=3))
    script = Script(conn)
    times = []
    while conn.state == State.SYN_SENT:
        out = script.until_timer()
        times.append(script.now - T0)
        if conn.state == State.SYN_SENT:
            [syn] = out
            assert syn.is_(SYN) and syn.seq == ISS
    assert times == [1.0, 3.0, 7.0, 15.0]  # 1 + 2 + 4 + 8 (RFC 6298 5.5)
    assert conn.error == errno.ETIMEDOUT and script.events() == ["Reset", "Closed"]


def test_syn_timeout_makes_rto_three_seconds_once_connected() -> None:
    """RFC 6298 5.7."""
    conn, _ = active()
    script = Script(conn)
    script.until_timer()  # the SYN is resent
    script.send(SYN | ACK, seq_no=IRS, ack=ISS + 1)
    assert conn.state == State.ESTABLISHED
    assert conn.rtt.rto == 3.0


def test_syn_received_resends_syn_ack_for_a_duplicate_syn_and_resets_bad_acks() -> None:
    conn, script, _ = passive()
    script.now += 1.0
    [again] = script.send(SYN, seq_no=IRS)
    assert again.is_(SYN | ACK) and again.seq == ISS
    [rst] = script.send(ACK, ack=ISS + 50)
    assert rst.is_(RST) and rst.seq == ISS + 50
    assert conn.state == State.SYN_RECEIVED
    script.send(ACK, ack=ISS + 1)
    assert conn.state == State.ESTABLISHED


def test_syn_ack_retries_are_bounded() -> None:
    conn, script, _ = passive(plain(synack_retries=2))
    resent = [script.until_timer() for _ in range(2)]
    assert all(s.is_(SYN | ACK) for [s] in resent)
    script.until_timer()
    assert conn.state == State.CLOSED and conn.error == errno.ETIMEDOUT


def test_a_syn_with_data_is_taken_after_the_handshake_not_before() -> None:
    conn, _syn = active()
    script = Script(conn)
    script.send(SYN | ACK, b"early", seq_no=IRS, ack=ISS + 1)
    assert conn.state == State.ESTABLISHED and conn.recv() == b"early"


def test_ipv4_and_ipv6_need_matching_families() -> None:
    with pytest.raises(ValueError):
        Connection((A, 1), (B6, 2))
    seg = Segment(RPORT, LPORT, IRS, 0, SYN, 65535)
    conn = Connection.open_passive((A6, LPORT), (B6, RPORT), seg, T0, plain(), iss=ISS)
    [synack] = sent(conn.output(T0))
    assert synack.options.mss == 1440
