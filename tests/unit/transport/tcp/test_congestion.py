"""NewReno congestion control: the window's evolution, alone and inside a connection."""

from __future__ import annotations

from tcp_testlib import ISS, Script, established, plain, sent

from vrouter.transport.tcp.congestion import NewReno, initial_window
from vrouter.transport.tcp.conn import Connection
from vrouter.transport.tcp.segment import ACK

MSS = 1460


def test_initial_window_rfc_6928() -> None:
    assert initial_window(1460) == 14600
    assert initial_window(536) == 5360
    assert initial_window(4000) == 14600
    assert initial_window(9000) == 18000
    assert NewReno(smss=1460).cwnd == 14600


def test_slow_start_grows_by_acked_bytes_up_to_two_segments() -> None:
    cc = NewReno(smss=MSS)
    cc.on_ack(0, 2 * MSS, 0)
    assert cc.cwnd == 14600 + 2 * MSS
    cc.on_ack(0, 5 * MSS, 0)  # a stretch ACK: at most L = 2 SMSS (RFC 3465)
    assert cc.cwnd == 14600 + 4 * MSS
    cc.on_ack(0, 100, 0)
    assert cc.cwnd == 14600 + 4 * MSS + 100


def test_congestion_avoidance_adds_one_segment_per_window() -> None:
    cc = NewReno(smss=MSS, cwnd=10 * MSS, ssthresh=5 * MSS)
    for _ in range(9):
        cc.on_ack(0, MSS, 0)
    assert cc.cwnd == 10 * MSS
    cc.on_ack(0, MSS, 0)
    assert cc.cwnd == 11 * MSS and cc.bytes_acked == 0


def test_fast_retransmit_and_newreno_recovery() -> None:
    cc = NewReno(smss=MSS, cwnd=20 * MSS)
    una, snd_max = 1000, 1000 + 20 * MSS
    flight = snd_max - una
    assert not cc.on_dupack(una, snd_max, flight)
    assert cc.limited_transmit() == MSS
    assert not cc.on_dupack(una, snd_max, flight)
    assert cc.limited_transmit() == 2 * MSS
    assert cc.on_dupack(una, snd_max, flight)  # the third: fast retransmit
    assert cc.in_recovery and cc.ssthresh == 10 * MSS and cc.cwnd == 13 * MSS
    assert cc.recover == snd_max - 1 and cc.limited_transmit() == 0
    assert not cc.on_dupack(una, snd_max, flight)
    assert cc.cwnd == 14 * MSS  # inflation
    # A partial ACK of 3 segments: deflate by 3 segments, add one back.
    assert cc.on_ack(una + 3 * MSS, 3 * MSS, snd_max - una - 3 * MSS)
    assert cc.in_recovery and cc.cwnd == 12 * MSS and cc.partial_acks == 1
    # The full ACK ends recovery: cwnd = min(ssthresh, FlightSize + SMSS).
    assert not cc.on_ack(snd_max, snd_max - una - 3 * MSS, 0)
    assert not cc.in_recovery and cc.cwnd == 2 * MSS  # max(FlightSize, SMSS) + SMSS


def test_full_ack_with_data_in_flight_deflates_to_ssthresh() -> None:
    cc = NewReno(smss=MSS, cwnd=20 * MSS)
    for _ in range(3):
        cc.on_dupack(1000, 1000 + 20 * MSS, 20 * MSS)
    cc.on_ack(1000 + 20 * MSS, 20 * MSS, 15 * MSS)  # new data went out meanwhile
    assert cc.cwnd == 10 * MSS == cc.ssthresh


def test_no_second_fast_retransmit_for_acks_below_recover() -> None:
    """RFC 6582 3.2 step 2: after a timeout, duplicate ACKs below recover do not re-enter."""
    cc = NewReno(smss=MSS, cwnd=20 * MSS)
    cc.on_timeout(snd_max=50_000, flight=20 * MSS, first=True)
    assert cc.cwnd == MSS and cc.ssthresh == 10 * MSS and cc.recover == 49_999
    for _ in range(5):
        assert not cc.on_dupack(30_000, 50_000, 20_000)
    assert not cc.in_recovery
    assert cc.on_dupack(50_001, 60_000, 9_999)  # beyond recover: this one counts
    assert cc.in_recovery


def test_timeout_halves_once() -> None:
    cc = NewReno(smss=MSS, cwnd=40 * MSS)
    cc.on_timeout(100_000, 40 * MSS, first=True)
    cc.on_timeout(100_000, 40 * MSS, first=False)
    assert cc.ssthresh == 20 * MSS and cc.cwnd == MSS


def test_sack_recovery_does_not_inflate() -> None:
    cc = NewReno(smss=MSS, cwnd=20 * MSS, sack=True)
    for _ in range(3):
        cc.on_dupack(1000, 1000 + 20 * MSS, 20 * MSS)
    assert cc.cwnd == cc.ssthresh == 10 * MSS
    cc.on_dupack(1000, 1000 + 20 * MSS, 20 * MSS)
    assert cc.cwnd == 10 * MSS
    cc.on_ack(1000 + MSS, MSS, 19 * MSS)
    assert cc.cwnd == 10 * MSS


def test_idle_restart_falls_back_to_the_initial_window() -> None:
    cc = NewReno(smss=MSS, cwnd=50 * MSS)
    cc.after_idle()
    assert cc.cwnd == 14600


# --- inside a connection ---------------------------------------------------------------------


def _sender(**kw: object) -> tuple[Connection, Script]:
    conn, script = established(plain(nodelay=True, sndbuf=1 << 20, **kw), window=65535)
    script.send(ACK, window=65535)
    return conn, script


def test_connection_slow_start_sends_the_initial_window_then_grows() -> None:
    conn, script = _sender()
    conn.send(b"x" * (40 * MSS))
    out = script.flush()
    assert len(out) == 10 and conn.cc.cwnd == 14600
    out = script.send(ACK, ack=ISS + 1 + 2 * MSS)
    assert len(out) == 4  # two acknowledged, two more from growth
    assert conn.cc.cwnd == 14600 + 2 * MSS


def test_connection_fast_retransmit_on_three_dupacks_and_partial_acks() -> None:
    conn, script = _sender()
    conn.send(b"x" * (10 * MSS))
    first = script.flush()
    assert len(first) == 10
    una = ISS + 1
    script.send(ACK, ack=una + MSS)  # segment 2 lost, 3.. arrive
    una += MSS
    limited = script.send(ACK, ack=una)
    assert limited == [] and conn.stats.rcvdupack == 1  # nothing new to send
    script.send(ACK, ack=una)
    [resent] = script.send(ACK, ack=una)
    assert (resent.seq, len(resent.payload)) == (una, MSS)
    assert conn.cc.in_recovery and conn.stats.fastrexmit == 1
    flight = 9 * MSS
    assert conn.cc.ssthresh == flight // 2 and conn.cc.cwnd == flight // 2 + 3 * MSS
    # Partial ACK (segment 5 also lost): retransmit it at once.
    [hole] = script.send(ACK, ack=una + 3 * MSS)
    assert hole.seq == una + 3 * MSS and conn.stats.partialacks == 1
    # Full ACK: recovery over.
    script.send(ACK, ack=ISS + 1 + 10 * MSS)
    assert not conn.cc.in_recovery
    assert conn.cc.cwnd == min(conn.cc.ssthresh, MSS + MSS)


def test_connection_limited_transmit_sends_new_data_on_early_dupacks() -> None:
    conn, script = _sender()
    conn.send(b"x" * (12 * MSS))
    assert len(script.flush()) == 10
    [new1] = script.send(ACK, ack=ISS + 1)
    [new2] = script.send(ACK, ack=ISS + 1)
    assert new1.seq == ISS + 1 + 10 * MSS and new2.seq == ISS + 1 + 11 * MSS
    assert conn.stats.limited_transmit == 2


def test_connection_timeout_collapses_the_window_and_goes_back_n() -> None:
    conn, script = _sender()
    conn.send(b"x" * (10 * MSS))
    script.flush()
    [again] = script.until_timer()
    assert again.seq == ISS + 1 and len(again.payload) == MSS
    assert conn.cc.cwnd == MSS and conn.cc.ssthresh == 5 * MSS
    out = script.send(ACK, ack=ISS + 1 + MSS)
    assert [s.seq for s in out] == [ISS + 1 + MSS, ISS + 1 + 2 * MSS]
    assert conn.stats.sndrexmitpack == 3


def test_sent_helper_sees_no_events_only_segments() -> None:
    conn, script = _sender()
    conn.send(b"abc")
    assert [s.payload for s in sent(conn.output(script.now))] == [b"abc"]
