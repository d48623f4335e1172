"""Tail loss probes (RFC 8985 7): the last segment again before the RTO, and what follows."""

from __future__ import annotations

import pytest
from tcp_testlib import ISS, Script, passive, plain

from vrouter.transport.tcp.conn import Connection
from vrouter.transport.tcp.segment import ACK, Options

RTT = 0.01


def _sender(**kw: object) -> tuple[Connection, Script, int]:
    """An established SACK connection with an RTT sample of 10 ms; return it, its peer, SND.UNA."""
    syn = Options(mss=1460, sack_permitted=kw.pop("peer_sack", True))  # type: ignore[arg-type]
    conn, script, _ = passive(plain(sack=True, nodelay=True, **kw), syn)
    script.now += RTT
    script.send(ACK)  # the SYN-ACK's round trip
    conn.send(b"t")
    script.flush()
    script.now += RTT
    script.send(ACK, ack=ISS + 2)  # the timed segment: SRTT = 10 ms
    assert conn.rtt.srtt == pytest.approx(RTT)
    return conn, script, ISS + 2


def test_a_silent_tail_gets_a_probe_of_the_last_segment_before_the_rto() -> None:
    conn, script, una = _sender()
    m = conn.mss
    conn.send(b"x" * (10 * m))
    assert len(script.flush()) == 10
    sent_at = script.now
    [probe] = script.until_timer()
    assert script.now - sent_at == pytest.approx(2 * RTT)  # 2*SRTT, before the RTO
    assert (probe.seq, len(probe.payload)) == (una + 9 * m, m)
    assert conn.stats.tailprobes == 1 and conn.stats.rexmttimeo == 0
    [again] = script.until_timer()  # unanswered: the RTO comes next, not a second probe
    assert again.seq == una and conn.stats.tailprobes == 1 and conn.stats.rexmttimeo == 1


def test_a_probe_that_repaired_a_loss_halves_the_window_once_acks_go_beyond_it() -> None:
    conn, script, una = _sender()
    m = conn.mss
    conn.send(b"x" * (10 * m))
    script.flush()
    cwnd = conn.cc.cwnd
    script.until_timer()
    script.send(ACK, ack=una + 10 * m)  # up to the probe: could be the original's late ACK
    assert conn.stats.tailprobe_recoveries == 0 and conn.cc.cwnd >= cwnd
    conn.send(b"y" * m)
    script.flush()
    script.send(ACK, ack=una + 11 * m)  # beyond it, and no D-SACK came: the probe filled a hole
    assert conn.stats.tailprobe_recoveries == 1
    assert conn.cc.ssthresh == 5 * m and conn.cc.cwnd == min(cwnd, 5 * m)


def test_a_pure_duplicate_ack_at_the_probe_means_both_arrived() -> None:
    conn, script, una = _sender()
    m = conn.mss
    conn.send(b"x" * (10 * m))
    script.flush()
    script.until_timer()
    script.send(ACK, ack=una + 10 * m)
    script.send(ACK, ack=una + 10 * m)  # the probe's own ACK: a duplicate
    conn.send(b"y" * m)
    script.flush()
    script.send(ACK, ack=una + 11 * m)
    assert conn.stats.tailprobe_recoveries == 0 and conn.stats.tailprobes == 1


def test_a_probe_answered_with_a_dsack_was_not_needed() -> None:
    conn, script, una = _sender()
    m = conn.mss
    conn.send(b"x" * (10 * m))
    script.flush()
    cwnd = conn.cc.cwnd
    script.until_timer()
    dsack = Options(sack=((una + 9 * m, una + 10 * m),))  # below the ACK: a duplicate (RFC 2883)
    script.send(ACK, ack=una + 10 * m, options=dsack)
    assert conn.stats.tailprobe_recoveries == 0 and conn.cc.cwnd >= cwnd


def test_a_probe_sacked_beyond_a_hole_leaves_the_hole_to_recovery() -> None:
    conn, script, una = _sender()
    m = conn.mss
    conn.send(b"x" * (10 * m))
    script.flush()
    script.until_timer()  # the probe
    script.send(ACK, ack=una + 5 * m, options=Options(sack=((una + 9 * m, una + 10 * m),)))
    assert conn.stats.tailprobe_recoveries == 0  # not answered yet: SND.MAX not covered
    assert conn.poll_at() is not None


def test_a_fin_tail_is_probed_and_fast_recovery_ends_the_episode() -> None:
    conn, script, una = _sender()
    m = conn.mss
    conn.send(b"x" * (4 * m))
    conn.close()
    out = script.flush()
    assert out[-1].flags & 0x01  # FIN on the last segment
    [probe] = script.until_timer()
    assert probe.flags & 0x01 and probe.seq == una + 3 * m  # the last segment, FIN and all
    conn, script, una = _sender()
    conn.send(b"x" * (10 * m))
    script.flush()
    script.until_timer()  # a probe
    blocks = [(una + 9 * m, una + 10 * m), (una + 6 * m, una + 9 * m)]
    for end in (1, 2, 3):  # three duplicates with SACK: fast recovery starts
        script.send(ACK, ack=una, options=Options(sack=tuple(blocks[: min(end, 2)])))
    assert conn.cc.in_recovery and conn._tlp_high is None


def test_no_probe_without_sack_with_one_segment_out_or_when_turned_off() -> None:
    for kw in ({"peer_sack": False}, {"tail_probe": False}):
        conn, script, una = _sender(**kw)
        conn.send(b"x" * (10 * conn.mss))
        script.flush()
        [again] = script.until_timer()
        assert again.seq == una and conn.stats.tailprobes == 0 and conn.stats.rexmttimeo == 1
    conn, script, una = _sender()
    conn.send(b"y" * 100)
    script.flush()
    [again] = script.until_timer()  # 2*SRTT + 200 ms of a delayed ACK is later than the RTO
    assert again.seq == una and conn.stats.tailprobes == 0 and conn.stats.rexmttimeo == 1
