"""RST and SYN validation (RFC 5961) in every state, and ACK validation."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from tcp_testlib import IRS, ISS, Script, active, established, passive

from vrouter.transport.tcp.conn import Connection, State
from vrouter.transport.tcp.segment import ACK, FIN, RST, SYN


def _syn_received() -> tuple[Connection, Script]:
    conn, script, _ = passive()
    return conn, script


def _fin_wait_1() -> tuple[Connection, Script]:
    conn, script = established()
    conn.close()
    script.flush()
    return conn, script


def _fin_wait_2() -> tuple[Connection, Script]:
    conn, script = _fin_wait_1()
    script.send(ACK, ack=ISS + 2)
    return conn, script


def _close_wait() -> tuple[Connection, Script]:
    conn, script = established()
    script.send(FIN | ACK)
    return conn, script


def _closing() -> tuple[Connection, Script]:
    conn, script = _fin_wait_1()
    script.send(FIN | ACK, ack=ISS + 1)
    return conn, script


def _last_ack() -> tuple[Connection, Script]:
    conn, script = _close_wait()
    conn.close()
    script.flush()
    return conn, script


def _time_wait() -> tuple[Connection, Script]:
    conn, script = _fin_wait_2()
    script.send(FIN | ACK, ack=ISS + 2)
    return conn, script


STATES: dict[State, tuple[Callable[[], tuple[Connection, Script]], int]] = {
    State.SYN_RECEIVED: (_syn_received, errno.ECONNRESET),
    State.ESTABLISHED: (established, errno.ECONNRESET),
    State.FIN_WAIT_1: (_fin_wait_1, errno.ECONNRESET),
    State.FIN_WAIT_2: (_fin_wait_2, errno.ECONNRESET),
    State.CLOSE_WAIT: (_close_wait, errno.ECONNRESET),
    State.CLOSING: (_closing, 0),
    State.LAST_ACK: (_last_ack, 0),
    State.TIME_WAIT: (_time_wait, 0),
}


@pytest.mark.parametrize("state", list(STATES), ids=lambda s: s.name)
def test_exact_rst_resets(state: State) -> None:
    make, error = STATES[state]
    conn, script = make()
    assert conn.state == state
    assert script.send(RST, seq_no=conn.rcv_nxt) == []
    assert conn.state == State.CLOSED
    assert conn.error == error
    assert script.events() == (["Reset", "Closed"] if error else ["Closed"])
    assert conn.poll_at() is None


@pytest.mark.parametrize("state", list(STATES), ids=lambda s: s.name)
def test_in_window_rst_gets_a_challenge_ack(state: State) -> None:
    make, _ = STATES[state]
    conn, script = make()
    [challenge] = script.send(RST, seq_no=conn.rcv_nxt + 10)
    assert challenge.is_(ACK)
    assert (challenge.seq, challenge.ack) == (conn.snd_max, conn.rcv_nxt)
    assert conn.state == state and conn.stats.challenge_ack == 1


@pytest.mark.parametrize("state", list(STATES), ids=lambda s: s.name)
def test_out_of_window_rst_is_dropped(state: State) -> None:
    make, _ = STATES[state]
    conn, script = make()
    assert script.send(RST, seq_no=conn.rcv_nxt + 200_000) == []
    assert script.send(RST, seq_no=conn.rcv_nxt - 1) == []
    assert conn.state == state and conn.stats.rst_ignored == 2


@pytest.mark.parametrize(
    "state", [s for s in STATES if s != State.SYN_RECEIVED], ids=lambda s: s.name
)
def test_syn_in_a_synchronized_state_gets_a_challenge_ack(state: State) -> None:
    """RFC 5961 4.2: whatever its sequence number."""
    make, _ = STATES[state]
    conn, script = make()
    for seq_no in (conn.rcv_nxt, conn.rcv_nxt + 1000, 12345):
        out = script.send(SYN, seq_no=seq_no)
        assert len(out) == 1 and out[0].is_(ACK) and out[0].ack == conn.rcv_nxt
    assert conn.state == state


def test_challenge_acks_are_rate_limited() -> None:
    conn, script = established()
    allowed = iter([True, False, True])
    conn.challenge_allowed = lambda now: next(allowed)
    assert len(script.send(RST, seq_no=IRS + 10)) == 1
    assert script.send(RST, seq_no=IRS + 10) == []
    assert len(script.send(RST, seq_no=IRS + 10)) == 1
    assert conn.stats.challenge_ack == 2 and conn.stats.challenge_ack_limited == 1


def test_rst_with_data_and_ack_bits_uses_the_sequence_number_only() -> None:
    conn, script = established()
    script.send(RST | ACK, seq_no=conn.rcv_nxt, ack=999_999)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNRESET


def test_ack_of_unsent_data_is_acknowledged_and_dropped() -> None:
    conn, script = established()
    [ack] = script.send(ACK, b"data", ack=ISS + 500)
    assert ack.ack == IRS + 1  # the data was not taken
    assert conn.readable == 0 and conn.stats.rcvacktoomuch == 1


def test_ack_older_than_the_window_gets_a_challenge_ack() -> None:
    """RFC 5961 5.2: SEG.ACK < SND.UNA - MAX.SND.WND."""
    conn, script = established()
    [challenge] = script.send(ACK, b"data", ack=ISS - 70_000)
    assert challenge.is_(ACK) and conn.readable == 0
    assert conn.stats.challenge_ack == 1


def test_segment_without_ack_is_dropped() -> None:
    conn, script = established()
    assert script.send(0, b"no ack bit") == []
    assert conn.readable == 0 and conn.stats.rcvnoack == 1


def test_rst_to_a_simultaneous_open_is_refused() -> None:
    conn, _ = active()
    script = Script(conn)
    script.send(SYN, seq_no=IRS)
    assert conn.state == State.SYN_RECEIVED
    script.send(RST, seq_no=IRS + 1)
    assert conn.state == State.CLOSED and conn.error == errno.ECONNREFUSED
