"""The per-vnet table: demultiplexing, listeners, backlog, SYN queue, TIME-WAIT, ISNs, ports."""

from __future__ import annotations

import errno

import pytest
from tcp_testlib import T0, A, B, Net, Path, sent

from vrouter.transport.tcp.conn import State, TcpError, TcpOptions
from vrouter.transport.tcp.events import Output, Transmit
from vrouter.transport.tcp.segment import ACK, PSH, RST, SYN, Options, build, parse, syn_options
from vrouter.transport.tcp.table import TableConfig, TcpTable

C = bytes([198, 51, 100, 7])
"""A third host (TEST-NET-2), the SYN flooder."""


def _exchange(a: TcpTable, b: TcpTable, outs: list[Output], now: float = T0) -> None:
    """Deliver segments back and forth between a and b until nothing moves."""
    queue = [(x, a) for x in outs]
    for _ in range(1000):
        if not queue:
            return
        item, src = queue.pop(0)
        if isinstance(item, Transmit):
            dst = b if src is a else a
            queue += [(x, dst) for x in dst.input(item.src, item.dst, item.data, now)]
    raise AssertionError("no quiescence")


def _syn(src: bytes, dst: bytes, sport: int, dport: int = 80, seq_no: int = 1) -> bytes:
    return build(
        src, dst, sport, dport, seq_no, 0, SYN, 65535, syn_options(1460, None, False, None)
    )


def test_connect_listen_accept() -> None:
    a, b = TcpTable(), TcpTable()
    listener = b.listen(4, b"", 80, backlog=4)
    conn = a.connect(A, (B, 80), T0)
    assert 49152 <= conn.local_port < 65536
    [syn] = a.output(T0)
    assert isinstance(syn, Transmit)
    outs = b.input(syn.src, syn.dst, syn.data, T0)
    assert b.half_open == 1 and len(listener.syn_queue) == 1
    assert b.accept(listener) is None
    queue = [(x, b) for x in outs]
    events_b: list[str] = []
    while queue:
        item, src = queue.pop(0)
        if isinstance(item, Transmit):
            dst = a if src is b else b
            queue += [(x, dst) for x in dst.input(item.src, item.dst, item.data, T0)]
        elif src is b:
            events_b.append(type(item).__name__)
    assert events_b == ["Acceptable"]  # the table speaks for an unaccepted connection
    assert b.half_open == 0 and len(listener.accept_queue) == 1
    server = b.accept(listener)
    assert server is not None and server.state == State.ESTABLISHED
    assert server.local_port == 80 and server.remote_port == conn.local_port
    assert b.stats.accepts == 1 and a.stats.connects == 1 == a.stats.connattempt


def test_no_listener_answers_with_reset_but_never_to_broadcast() -> None:
    t = TcpTable()
    [rst] = t.input(B, A, _syn(B, A, 1234), T0)
    assert isinstance(rst, Transmit)
    seg, _ = parse(rst.data)
    assert seg.flags == RST | ACK and seg.ack == 2 and (rst.src, rst.dst) == (A, B)
    assert t.stats.noport == 1
    assert t.input(B, A, _syn(B, A, 1234), T0, unicast=False) == []
    assert t.input(B, A, build(B, A, 1, 80, 1, 2, RST, 0), T0) == []


def test_ack_to_a_listener_gets_a_reset() -> None:
    t = TcpTable()
    t.listen(4, b"", 80)
    [rst] = sent(t.input(B, A, build(B, A, 1234, 80, 10, 777, ACK, 100), T0))
    assert rst.flags == RST and rst.seq == 777


def test_bad_segments_are_counted_and_dropped() -> None:
    t = TcpTable()
    t.listen(4, b"", 80)
    raw = bytearray(_syn(B, A, 1234))
    raw[-1] ^= 0xFF
    assert t.input(B, A, bytes(raw), T0) == []
    assert t.input(B, A, b"\x00" * 10, T0) == []
    assert t.input(B, A, b"\x00" * 12 + b"\xf0" + b"\x00" * 7, T0) == []
    assert (t.stats.rcvbadsum, t.stats.rcvshort, t.stats.rcvbadoff) == (1, 1, 1)
    assert t.half_open == 0


def test_exact_address_listener_wins_over_the_wildcard() -> None:
    t = TcpTable()
    any_ = t.listen(4, b"", 80)
    exact = t.listen(4, A, 80)
    t.input(B, A, _syn(B, A, 1000), T0)
    t.input(B, bytes([192, 0, 2, 9]), _syn(B, bytes([192, 0, 2, 9]), 1001), T0)
    assert len(exact.syn_queue) == 1 and len(any_.syn_queue) == 1
    with pytest.raises(TcpError) as info:
        t.listen(4, A, 80)
    assert info.value.errno == errno.EADDRINUSE
    with pytest.raises(TcpError):
        t.listen(4, A, 0)


def test_syn_flood_fills_the_half_open_queue_not_memory() -> None:
    t = TcpTable(TableConfig(syn_queue_limit=50))
    listener = t.listen(4, b"", 80, backlog=1000)
    for port in range(1000, 1200):
        t.input(C, A, _syn(C, A, port), T0)
    assert t.half_open == 50 == len(t.conns) and len(listener.syn_queue) == 50
    assert t.stats.syn_queue_overflows == 150
    # Half-open connections give up after their SYN-ACK retries; the queue drains.
    now = T0
    while t.poll_at() is not None:
        now = t.poll_at() or now
        t.on_timer(now)
    assert t.half_open == 0 and not t.conns and not listener.syn_queue
    assert t.stats.synack_drops == 50


def test_established_transfer_survives_a_syn_flood() -> None:
    a = TcpTable()
    b = TcpTable(TableConfig(syn_queue_limit=16))
    listener = b.listen(4, b"", 80)
    net = Net(a, b, Path(), Path())
    client = a.connect(A, (B, 80), net.now)
    net.flush()
    net.run(lambda: bool(listener.accept_queue))
    server = b.accept(listener)
    assert server is not None
    data = bytes(range(256)) * 4096  # 1 MiB
    got = bytearray()
    state = {"pos": 0, "flood": 1000}

    def app() -> None:
        if state["pos"] < len(data):
            state["pos"] += client.send(data[state["pos"] : state["pos"] + 65536])
        got.extend(server.recv())
        for _ in range(20):  # the flood: 20 spoofed SYNs per step
            if state["flood"] < 60000:
                state["flood"] += 1
                b.input(C, B, _syn(C, B, state["flood"]), net.now)

    net.run(lambda: len(got) == len(data), app=app)
    assert bytes(got) == data
    assert b.half_open == 16 and b.stats.syn_queue_overflows > 300


def test_listen_backlog_bounds_the_accept_queue() -> None:
    t = TcpTable()
    listener = t.listen(4, b"", 80, backlog=2)
    synacks = [
        sent(t.input(B, A, _syn(B, A, port, seq_no=100), T0))[0] for port in (1000, 1001, 1002)
    ]
    for port, synack in zip((1000, 1001, 1002), synacks, strict=True):
        t.input(B, A, build(B, A, port, 80, 101, synack.seq + 1, ACK, 1000), T0)
    assert len(listener.accept_queue) == 2
    # The third handshake's ACK was dropped: it stays half-open until there is room.
    assert t.half_open == 1 and t.stats.listen_overflows == 1
    # New SYNs are dropped while the queue is full.
    assert t.input(B, A, _syn(B, A, 2000), T0) == []
    assert t.stats.listen_overflows == 2
    assert t.accept(listener) is not None
    third = next(c for c in t.conns.values() if c.remote_port == 1002)
    t.input(B, A, build(B, A, 1002, 80, 101, third.iss + 1, ACK, 1000), T0)
    assert len(listener.accept_queue) == 2 and t.half_open == 0


def test_backlog_is_capped() -> None:
    t = TcpTable(TableConfig(max_backlog=8))
    assert t.listen(4, b"", 80, backlog=10**6).backlog == 8


def test_closing_a_listener_resets_what_it_did_not_hand_out() -> None:
    t = TcpTable()
    listener = t.listen(4, b"", 80)
    [synack] = sent(t.input(B, A, _syn(B, A, 1000, seq_no=100), T0))
    t.input(B, A, build(B, A, 1000, 80, 101, synack.seq + 1, ACK, 1000), T0)
    t.input(B, A, _syn(B, A, 1001), T0)
    resets = sent(t.close_listener(listener, T0))
    assert len(resets) == 2 and all(s.flags & RST for s in resets)
    assert not t.conns and t.half_open == 0 and not t.listeners


def _closed_pair(a: TcpTable, b: TcpTable, now: float) -> None:
    """Open a connection from a to b and close it from a first (a ends in TIME-WAIT)."""
    listener = (
        b.listen(4, b"", 80) if (4, b"", 80) not in b.listeners else b.listeners[(4, b"", 80)]
    )
    conn = a.connect(A, (B, 80), now)
    _exchange(a, b, a.output(now), now)
    server = b.accept(listener)
    assert server is not None
    conn.close()
    _exchange(a, b, a.output(now), now)
    server.close()
    _exchange(b, a, b.output(now), now)
    assert conn.state == State.TIME_WAIT


def test_time_wait_expires_after_two_msl() -> None:
    a = TcpTable(TableConfig(defaults=TcpOptions(msl=5.0)))
    b = TcpTable()
    _closed_pair(a, b, T0)
    assert len(a.time_wait) == 1 and not a.conns and not b.conns
    assert a.poll_at() == T0 + 10.0
    a.on_timer(T0 + 10.0)
    assert not a.time_wait and a.stats.tw_expired == 1 and a.poll_at() is None


def test_time_wait_table_is_bounded() -> None:
    a = TcpTable(TableConfig(time_wait_limit=2))
    b = TcpTable()
    for i in range(3):
        _closed_pair(a, b, T0 + i)
    assert len(a.time_wait) == 2 and a.stats.tw_evicted == 1
    oldest = min(c.local_port for c in a.time_wait.values())
    assert all(c.state == State.TIME_WAIT for c in a.time_wait.values())
    assert oldest  # the two newest remain


def test_time_wait_answers_old_segments_and_yields_to_a_newer_syn() -> None:
    a = TcpTable()
    b = TcpTable()
    b.listen(4, b"", 80)
    # b closes first here, so b holds the TIME-WAIT.
    conn = a.connect(A, (B, 80), T0)
    _exchange(a, b, a.output(T0))
    server = b.accept(b.listeners[(4, b"", 80)])
    assert server is not None
    server.close()
    _exchange(b, a, b.output(T0))
    conn.close()
    _exchange(a, b, a.output(T0))
    assert server.state == State.TIME_WAIT and len(b.time_wait) == 1

    # An old SYN (an older timestamp) is answered from TIME-WAIT by an ACK.
    def syn(seq_no: int, tsval: int) -> bytes:
        opts = syn_options(1460, None, False, (tsval, 0))
        return build(A, B, conn.local_port, 80, seq_no, 0, SYN, 65535, opts)

    recent = server.ts_recent
    out = sent(b.input(A, B, syn(conn.iss, recent - 5), T0))
    assert len(out) == 1 and out[0].flags == ACK
    # A newer one ends TIME-WAIT and opens a new connection (RFC 6191).
    newer = (conn.snd_max + 100_000) & 0xFFFFFFFF
    [synack] = sent(b.input(A, B, syn(newer, recent + 5), T0))
    assert synack.flags == SYN | ACK and synack.ack == newer + 1
    assert b.stats.tw_recycled == 1 and not b.time_wait


def test_isn_is_keyed_per_tuple_and_advances_with_time() -> None:
    t = TcpTable(secret=b"k" * 32)
    same = TcpTable(secret=b"k" * 32)
    other = TcpTable(secret=b"x" * 32)
    i1 = t.isn(A, 1000, B, 80, T0)
    assert i1 == same.isn(A, 1000, B, 80, T0)
    assert i1 != other.isn(A, 1000, B, 80, T0)
    assert i1 != t.isn(A, 1001, B, 80, T0)
    assert (t.isn(A, 1000, B, 80, T0 + 1.0) - i1) % 2**32 == 250_000  # a 4 µs clock


def test_ephemeral_ports_are_distinct_and_run_out() -> None:
    t = TcpTable(TableConfig(ephemeral=range(50000, 50004)))
    ports = {t.connect(A, (B, 80), T0).local_port for _ in range(4)}
    assert ports == set(range(50000, 50004))
    with pytest.raises(TcpError) as info:
        t.connect(A, (B, 80), T0)
    assert info.value.errno == errno.EADDRNOTAVAIL and t.stats.port_exhausted == 1
    other = t.connect(A, (B, 81), T0)  # another destination: the ports are free for it
    with pytest.raises(TcpError) as info:
        t.connect(A, (B, 81), T0, local_port=other.local_port)
    assert info.value.errno == errno.EADDRINUSE


def test_challenge_acks_are_limited_per_vnet() -> None:
    t = TcpTable(TableConfig(challenge_ack_limit=2))
    assert [t._challenge_allowed(T0) for _ in range(3)] == [True, True, False]
    assert t._challenge_allowed(T0 + 1.0)


def test_clear_resets_everything() -> None:
    a, b = TcpTable(), TcpTable()
    b.listen(4, b"", 80)
    conn = a.connect(A, (B, 80), T0)
    _exchange(a, b, a.output(T0))
    out = sent(a.clear(T0))
    assert len(out) == 1 and out[0].flags & RST
    assert conn.state == State.CLOSED and not a.conns and a.poll_at() is None


def _fill_syn_queue(t: TcpTable, n: int) -> None:
    for port in range(1000, 1000 + n):
        t.input(C, A, _syn(C, A, port), T0)


def test_syn_cookies_open_connections_beyond_a_full_syn_queue() -> None:
    t = TcpTable(TableConfig(syn_queue_limit=2))
    listener = t.listen(4, b"", 80)
    _fill_syn_queue(t, 2)
    opts = Options(mss=1460, wscale=7, sack_permitted=True, ts=(5, 0)).emit()
    syn = build(B, A, 5555, 80, 9000, 0, SYN, 65535, opts)
    [synack] = sent(t.input(B, A, syn, T0))
    assert synack.flags == SYN | ACK and synack.ack == 9001
    assert synack.options.mss == 1460 and synack.options.wscale == 7
    assert synack.options.sack_permitted and synack.options.ts is None  # no room for TS
    assert t.half_open == 2 and t.stats.syncookies_sent == 1 and len(t.conns) == 2
    ack = build(B, A, 5555, 80, 9001, synack.seq + 1, ACK | PSH, 100, b"", b"GET /")
    out = t.input(B, A, ack, T0 + 1.0)
    assert [type(x).__name__ for x in out if not isinstance(x, Transmit)] == ["Acceptable"]
    conn = t.accept(listener)
    assert conn is not None and conn.state == State.ESTABLISHED and conn.recv() == b"GET /"
    assert conn.snd_wscale == 7 and conn.sack_enabled and not conn.ts_enabled
    assert conn.snd_wnd == 100 << 7 and conn.peer_mss == 1460
    assert t.stats.syncookies_recv == 1


def test_bad_or_stale_cookies_get_a_reset() -> None:
    t = TcpTable(TableConfig(syn_queue_limit=1))
    t.listen(4, b"", 80)
    _fill_syn_queue(t, 1)
    [synack] = sent(t.input(B, A, _syn(B, A, 5555, seq_no=9000), T0))
    [rst] = sent(t.input(B, A, build(B, A, 5555, 80, 9001, synack.seq + 2, ACK, 100), T0))
    assert rst.flags == RST and t.stats.syncookies_failed == 1
    # Good for this period and the next, not later.
    late = build(B, A, 5555, 80, 9001, synack.seq + 1, ACK, 100)
    [rst] = sent(t.input(B, A, late, T0 + 200.0))
    assert rst.flags == RST
    assert t.stats.syncookies_recv == 0


def test_without_syn_cookies_the_flood_is_just_dropped() -> None:
    t = TcpTable(TableConfig(syn_queue_limit=1, syncookies=False))
    t.listen(4, b"", 80)
    _fill_syn_queue(t, 1)
    assert t.input(B, A, _syn(B, A, 5555), T0) == []
    assert t.stats.syncookies_sent == 0 and t.stats.syn_queue_overflows == 1


def test_stray_acks_get_resets_when_no_cookie_was_sent() -> None:
    t = TcpTable()
    t.listen(4, b"", 80)
    [rst] = sent(t.input(B, A, build(B, A, 5555, 80, 1, 2, ACK, 100), T0))
    assert rst.flags == RST and t.stats.syncookies_failed == 0
