"""Data transfer: reassembly, SACK blocks, delayed ACKs, Nagle, windows, probes, keepalive."""

from __future__ import annotations

import errno

import pytest
from tcp_testlib import IRS, ISS, T0, Script, established, passive, plain, sent

from vrouter.transport.tcp.conn import Connection, State
from vrouter.transport.tcp.events import Transmit
from vrouter.transport.tcp.output import TSO_MAX
from vrouter.transport.tcp.segment import ACK, PSH, Options


def _sack_conn(**kw: object) -> tuple[Connection, Script]:
    conn, script, _ = passive(plain(sack=True, **kw), Options(mss=1460, sack_permitted=True))
    script.send(ACK)
    assert conn.sack_enabled
    return conn, script


def test_out_of_order_data_is_reassembled_and_sacked() -> None:
    conn, script = _sack_conn()
    base = IRS + 1
    [dup] = script.send(ACK, b"B" * 100, seq_no=base + 100)
    assert dup.ack == base and dup.options.sack == ((base + 100, base + 200),)
    [dup] = script.send(ACK, b"D" * 100, seq_no=base + 300)
    assert dup.options.sack == ((base + 300, base + 400), (base + 100, base + 200))
    assert conn.readable == 0 and conn.stats.rcvoopack == 2
    # Filling the first hole delivers A+B and ACKs at once; C's hole remains.
    [ack] = script.send(ACK, b"A" * 100, seq_no=base)
    assert ack.ack == base + 200 and ack.options.sack == ((base + 300, base + 400),)
    [ack] = script.send(ACK, b"C" * 100, seq_no=base + 200)
    assert ack.ack == base + 400 and ack.options.sack == ()
    assert conn.recv() == b"A" * 100 + b"B" * 100 + b"C" * 100 + b"D" * 100


def test_sack_blocks_report_the_latest_first_and_merge() -> None:
    _conn, script = _sack_conn()
    base = IRS + 1
    for start in (1000, 3000, 5000, 7000):
        script.send(ACK, b"x" * 100, seq_no=base + start)
    [ack] = script.send(ACK, b"x" * 100, seq_no=base + 3100)  # extends the 3000 block
    assert ack.options.sack == (
        (base + 3000, base + 3200),
        (base + 7000, base + 7100),
        (base + 5000, base + 5100),
        (base + 1000, base + 1100),
    )


def test_duplicates_and_overlaps_are_trimmed() -> None:
    conn, script = established()
    script.send(ACK | PSH, b"hello")
    [ack] = script.send(ACK, b"hello", seq_no=IRS + 1)  # a full duplicate: ACK at once
    assert ack.ack == IRS + 6 and conn.stats.rcvduppack == 1
    script.send(ACK, b"lo world", seq_no=IRS + 4)  # overlaps 2 bytes
    assert conn.recv() == b"hello world"
    assert conn.stats.rcvpartduppack == 1


def test_data_beyond_the_window_is_trimmed() -> None:
    conn, script = established(plain(rcvbuf=1000))
    script.send(ACK, b"x" * 1400)
    assert conn.readable == 1000 and conn.stats.rcvbyteafterwin == 400


def test_delayed_ack_every_second_full_segment_or_after_the_timer() -> None:
    conn, script = established()
    assert script.send(ACK, b"a" * 1460) == []
    assert conn.poll_at() == script.now + conn.options.delack
    [ack] = script.send(ACK, b"b" * 1460)
    assert ack.ack == IRS + 1 + 2920
    assert conn.poll_at() is None
    assert script.send(ACK, b"c" * 10) == []
    script.now += 0.01
    assert script.advance(0.0) == []  # not yet
    [ack] = script.advance(conn.options.delack)
    assert ack.ack == IRS + 1 + 2930 and conn.stats.delack == 1


def test_ack_piggybacks_on_data() -> None:
    conn, script = established()
    script.send(ACK, b"request")
    conn.send(b"response")
    [seg] = script.flush()
    assert seg.payload == b"response" and seg.ack == IRS + 8
    assert conn.poll_at() == script.now + conn.rtt.rto  # delack gone, RTO armed


def test_nagle_holds_small_segments_while_data_is_unacknowledged() -> None:
    conn, script = established()
    conn.send(b"a")
    [first] = script.flush()
    assert first.payload == b"a"
    conn.send(b"b")
    conn.send(b"c")
    assert script.flush() == []
    [second] = script.send(ACK, ack=ISS + 2)
    assert second.payload == b"bc"


def test_nodelay_sends_small_segments_at_once() -> None:
    conn, script = established(plain(nodelay=True))
    conn.send(b"a")
    script.flush()
    conn.send(b"b")
    [seg] = script.flush()
    assert seg.payload == b"b" and seg.seq == ISS + 2


def test_full_segments_go_despite_nagle() -> None:
    conn, script = established()
    conn.send(b"a")
    script.flush()
    conn.send(b"x" * 3000)
    out = script.flush()
    assert [len(s.payload) for s in out] == [1460, 1460]  # 80 bytes wait for an ACK


def test_slow_reader_closes_the_window_and_reading_opens_it() -> None:
    conn, script = established(plain(rcvbuf=8192))
    for _ in range(5):
        script.send(ACK, b"x" * 1460)
    assert script.send(ACK, b"x" * 892) == []  # the ACK is delayed
    [ack] = script.advance(conn.options.delack)
    assert ack.window == 0 and conn.readable == 8192
    assert conn.stats.sndzerowin == 1
    # A segment into the closed window is not taken, only acknowledged.
    [ack] = script.send(ACK, b"y", advance=False)
    assert ack.window == 0 and conn.readable == 8192 and conn.stats.rcvwinprobe == 1
    conn.recv(1000)
    assert script.flush() == []  # less than an MSS: receiver SWS avoidance
    conn.recv(3000)
    [update] = script.flush()
    assert update.window == 4000 and conn.stats.sndwinup == 1
    # The window never shrinks: reading nothing more keeps the right edge.
    script.send(ACK, b"z" * 1460)
    [ack] = script.send(ACK, b"z" * 1460)
    assert ack.window == 4000 - 2920


def test_window_scaled_receive_buffer() -> None:
    _conn, script, [synack] = passive(
        plain(window_scaling=True, rcvbuf=1 << 20), Options(mss=1460, wscale=7)
    )
    assert synack.window == 65535 and synack.options.wscale == 7  # room for 4 MiB
    script.send(ACK, b"x" * 1460)
    [ack] = script.send(ACK, b"x" * 1460)
    assert ack.window == ((1 << 20) - 2920) >> 7


def test_send_buffer_back_pressure_and_writable_event() -> None:
    conn, script = established(plain(sndbuf=4096))
    assert conn.send(b"x" * 10000) == 4096
    assert conn.send(b"more") == 0 and conn.writable == 0
    script.flush()
    script.send(ACK, ack=ISS + 1 + 1460)
    assert script.events() == []  # 1460 free: not yet half the buffer
    script.send(ACK, ack=ISS + 1 + 2920)
    assert "Writable" in script.events()
    assert conn.writable == 2920


def test_peer_window_update_rules() -> None:
    conn, script = established(window=1000)
    assert conn.snd_wnd == 1000
    script.send(ACK, window=5000)
    assert conn.snd_wnd == 5000
    # An older segment (SND.WL1 > SEG.SEQ) does not change the window.
    script.send(ACK, seq_no=IRS, window=10, advance=False)
    assert conn.snd_wnd == 5000


def test_zero_window_persist_probes_back_off_then_data_flows() -> None:
    conn, script = established(window=0)
    conn.send(b"x" * 100)
    assert script.flush() == []
    start = script.now
    probes = []
    for _ in range(3):
        [probe] = script.until_timer()
        probes.append(script.now - start)
        assert probe.seq == ISS + 1 and probe.payload == b"x"
        script.send(ACK, ack=ISS + 1, window=0)  # the probe byte was refused
    assert probes == pytest.approx([0.2, 0.6, 1.4])  # 0.2, 0.4, 0.8 apart (RTO-based backoff)
    assert conn.stats.sndprobe == 3 and conn.state == State.ESTABLISHED
    out = script.send(ACK, ack=ISS + 1, window=65535)
    assert [(s.seq, len(s.payload)) for s in out] == [(ISS + 1, 100)]


def test_zero_window_probe_accepted_when_the_window_reopened_silently() -> None:
    conn, script = established(window=0)
    conn.send(b"abc")
    script.flush()
    script.until_timer()
    out = script.send(ACK, ack=ISS + 2, window=1000)  # took the probe byte
    assert [(s.seq, s.payload) for s in out] == [(ISS + 2, b"bc")]


def test_tiny_window_is_filled_by_the_persist_override() -> None:
    conn, script = established(window=65535)
    script.send(ACK, window=10)
    conn.send(b"x" * 100)
    assert script.flush() == []  # silly window avoidance
    [seg] = script.until_timer()
    assert len(seg.payload) == 10


def test_keepalive_probes_and_drop() -> None:
    conn, script = established(plain(keepalive=True, keepidle=100.0, keepintvl=10.0, keepcnt=2))
    script.flush()
    assert conn.poll_at() == script.now + 100.0
    [probe] = script.until_timer()
    assert probe.seq == ISS and probe.payload == b"" and probe.ack == IRS + 1
    script.send(ACK)  # answered: idle again
    assert conn.poll_at() == script.now + 100.0
    script.until_timer()
    script.until_timer()
    [rst] = script.until_timer()
    assert rst.flags & 0x04 and conn.state == State.CLOSED
    assert conn.error == errno.ETIMEDOUT and conn.stats.keepdrops == 1
    assert conn.stats.keepprobe == 3


def test_paws_drops_old_timestamps_and_timestamps_must_be_present() -> None:
    conn, script, _ = passive(plain(timestamps=True), Options(mss=1460, ts=(100, 0)))
    script.send(ACK, options=Options(ts=(101, 1)))
    assert conn.ts_enabled and conn.ts_recent == 101
    script.send(ACK, b"new", options=Options(ts=(200, 1)))
    assert conn.ts_recent == 200 and conn.readable == 3
    [ack] = script.send(ACK, b"old", options=Options(ts=(150, 1)), advance=False)
    assert conn.readable == 3 and conn.stats.paws_drops == 1
    assert ack.options.ts is not None and ack.options.ts[1] == 200
    assert script.send(ACK, b"none", advance=False) == []
    assert conn.stats.ts_missing == 1 and conn.readable == 3


def test_tsval_never_goes_back_when_the_callers_time_does() -> None:
    # A batch of received frames is processed with the time the batch began, while
    # the program's calls in between use a later time: the peer's PAWS test would
    # drop a segment whose TSval went back (RFC 7323 5.4).
    conn, script, _ = passive(plain(timestamps=True, nodelay=True), Options(mss=1460, ts=(100, 0)))
    script.send(ACK, options=Options(ts=(101, 1)))
    conn.send(b"a" * 100)
    [first] = sent(conn.output(T0 + 0.010))
    conn.send(b"b" * 100)
    [second] = sent(conn.output(T0 + 0.002))  # an older "now"
    assert first.options.ts is not None and second.options.ts is not None
    assert second.options.ts[0] == first.options.ts[0]
    # And the RTT sample taken with the older time is not negative.
    script.now = T0 + 0.002
    script.send(ACK, ack=ISS + 201, options=Options(ts=(102, second.options.ts[0])))
    assert conn.rtt.srtt is not None and conn.rtt.srtt >= 0


def test_timestamps_give_rtt_samples() -> None:
    conn, script, _ = passive(plain(timestamps=True), Options(mss=1460, ts=(100, 0)))
    script.send(ACK, options=Options(ts=(101, 1)))
    conn.send(b"x" * 100)
    [seg] = script.flush()
    assert seg.options.ts is not None
    samples = conn.rtt.samples
    script.now += 0.05
    script.send(ACK, ack=ISS + 101, options=Options(ts=(102, seg.options.ts[0])))
    assert conn.rtt.samples == samples + 1
    assert conn.rtt.srtt is not None and abs(conn.rtt.srtt - 0.05 * 1 / 8) < 0.01


def test_tso_sends_full_segments_in_one_super_segment_and_nagle_keeps_the_tail() -> None:
    conn, script = established(plain(mss=1000))
    conn.tso_size = TSO_MAX
    conn.send(b"x" * 12500)
    [first] = script.flush()
    [out] = script.out
    assert isinstance(out, Transmit) and out.gso_size == 1000
    assert len(first.payload) == 10000 and not first.flags & PSH  # the initial window
    # Half acknowledged: the window slides (and grows) by full segments; the 500-byte
    # tail waits, as one small segment would, while data is unacknowledged.
    more = script.send(ACK, ack=ISS + 1 + 5000)
    assert [len(s.payload) % 1000 for s in more] == [0] * len(more) and more
    assert conn.unsent == 500
    # Everything acknowledged: the tail goes (alone, no super-segment for it).
    [tail] = script.send(ACK, ack=conn.snd_max)
    assert len(tail.payload) == 500 and tail.flags & PSH
    assert [o.gso_size for o in script.out if isinstance(o, Transmit)] == [0]


def test_tso_takes_the_tail_along_when_the_connection_is_idle() -> None:
    conn, script = established(plain(mss=1000))
    conn.tso_size = TSO_MAX
    conn.send(b"y" * 2500)
    [seg] = script.flush()
    assert len(seg.payload) == 2500 and seg.flags & PSH
    [out] = script.out
    assert isinstance(out, Transmit) and out.gso_size == 1000
    assert conn.stats.sndpack == 3


def test_retransmissions_are_never_super_segments() -> None:
    conn, script = established(plain(mss=1000))
    conn.tso_size = TSO_MAX
    conn.send(b"z" * 4000)
    script.flush()
    resent = script.until_timer()  # RTO: go back to SND.UNA
    assert [len(s.payload) for s in resent] == [1000]
    assert all(o.gso_size == 0 for o in script.out if isinstance(o, Transmit))
