"""RFC 6298 retransmission timeout: the computation, backoff, Karn's rule, giving up."""

from __future__ import annotations

import errno

import pytest
from tcp_testlib import ISS, established, plain

from vrouter.transport.tcp.conn import State
from vrouter.transport.tcp.rto import RttEstimator
from vrouter.transport.tcp.segment import ACK, RST


def test_initial_rto_is_one_second() -> None:
    assert RttEstimator().rto == 1.0


def test_first_and_second_samples_follow_rfc_6298() -> None:
    est = RttEstimator()
    est.sample(0.5)  # 2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR)
    assert est.srtt == 0.5 and est.rttvar == 0.25 and est.rto == pytest.approx(1.5)
    est.sample(1.0)  # 2.3: RTTVAR first (with the old SRTT), then SRTT
    assert est.rttvar == pytest.approx(0.75 * 0.25 + 0.25 * 0.5)
    assert est.srtt == pytest.approx(0.875 * 0.5 + 0.125 * 1.0)
    assert est.rto == pytest.approx(0.5625 + 4 * 0.3125)


def test_rto_is_bounded_below_and_above() -> None:
    est = RttEstimator()
    est.sample(0.01)
    assert est.rto == 1.0  # 2.4: rounded up to min_rto
    est = RttEstimator(min_rto=0.2)
    est.sample(0.01)
    assert est.rto == pytest.approx(0.2)
    est = RttEstimator()
    est.sample(100.0)
    assert est.rto == 60.0  # 2.5: a maximum of at least 60 s


def test_clock_granularity_bounds_the_variance_term() -> None:
    est = RttEstimator(min_rto=0.0, granularity=0.1)
    for _ in range(200):
        est.sample(0.3)  # RTTVAR decays towards 0; G takes over
    assert est.rto == pytest.approx(0.4, abs=1e-3)


def test_backoff_doubles_up_to_the_max_and_a_sample_ends_it() -> None:
    est = RttEstimator()
    est.sample(0.5)
    values = []
    for _ in range(8):
        est.on_timeout()
        values.append(est.rto)
    assert values == [3.0, 6.0, 12.0, 24.0, 48.0, 60.0, 60.0, 60.0]
    est.sample(0.5)
    assert est.backoff == 0 and est.rto < 2.0


def test_retransmission_timer_backs_off_and_gives_up() -> None:
    conn, script = established(plain(max_retries=4))
    conn.send(b"data")
    [first] = script.flush()
    start = script.now
    times = []
    while conn.state == State.ESTABLISHED:
        out = script.until_timer()
        times.append(round(script.now - start, 6))
        if conn.state == State.ESTABLISHED:
            [again] = out
            assert (again.seq, again.payload) == (first.seq, b"data")
    # The handshake's sample (0 s) makes RTO = min_rto = 0.2 s, doubled each time.
    assert times == [0.2, 0.6, 1.4, 3.0, 6.2]
    [rst] = [s for s in out if s.flags & RST]
    assert conn.error == errno.ETIMEDOUT
    assert conn.stats.rexmttimeo == 5 and conn.stats.sndrexmitpack == 4
    assert rst.seq == ISS + 1 + 4


def test_karns_rule_ignores_the_ack_of_a_retransmitted_segment() -> None:
    conn, script = established()
    samples = conn.rtt.samples
    conn.send(b"a" * 100)
    script.flush()
    script.until_timer()  # retransmitted
    assert conn.rtt.backoff == 1
    script.now += 3.0
    script.send(ACK, ack=ISS + 101)  # ambiguous: no sample, the backoff stays
    assert conn.rtt.samples == samples and conn.rtt.backoff == 1
    backed_off = conn.rtt.rto
    # The next segment, sent once and acknowledged, is timed.
    conn.send(b"b" * 100)
    script.flush()
    script.now += 0.05
    script.send(ACK, ack=ISS + 201)
    assert conn.rtt.samples == samples + 1 and conn.rtt.backoff == 0
    assert conn.rtt.rto < backed_off


def test_one_segment_is_timed_at_a_time() -> None:
    conn, script = established(plain(nodelay=True))
    samples = conn.rtt.samples
    conn.send(b"a" * 10)
    script.flush()
    script.now += 0.01
    conn.send(b"b" * 10)
    script.flush()
    script.now += 0.09
    script.send(ACK, ack=ISS + 11)
    assert conn.rtt.samples == samples + 1
    assert conn.rtt.srtt == pytest.approx(0.0 * 7 / 8 + 0.1 / 8)
    script.send(ACK, ack=ISS + 21)  # the second was not timed
    assert conn.rtt.samples == samples + 1


def test_timer_restarts_on_new_acks_and_stops_when_all_is_acked() -> None:
    conn, script = established()
    conn.send(b"x" * 2920)
    script.flush()
    script.now += 0.1
    script.send(ACK, ack=ISS + 1461)
    assert conn.poll_at() == pytest.approx(script.now + conn.rtt.rto)
    script.send(ACK, ack=ISS + 2921)
    assert conn.poll_at() is None
