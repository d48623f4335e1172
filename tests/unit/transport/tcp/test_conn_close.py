"""Closing: FIN in every state, half-close, simultaneous close, TIME-WAIT, orphans."""

from __future__ import annotations

import errno

import pytest
from tcp_testlib import (
    IRS,
    ISS,
    T0,
    A,
    B,
    Script,
    active,
    established,
    events,
    passive,
    plain,
    sent,
)

from vrouter.transport.tcp.conn import Connection, State, TcpError
from vrouter.transport.tcp.segment import ACK, FIN, PSH, RST, SYN


def test_active_close_through_fin_wait_and_time_wait() -> None:
    conn, script = established()
    conn.close()
    [fin] = script.flush()
    assert conn.state == State.FIN_WAIT_1
    assert fin.is_(FIN | ACK) and fin.seq == ISS + 1
    assert script.send(ACK, ack=ISS + 2) == []
    assert conn.state == State.FIN_WAIT_2 and conn.fin_acked
    [ack] = script.send(FIN | ACK, ack=ISS + 2)
    assert conn.state == State.TIME_WAIT
    assert ack.is_(ACK) and ack.ack == IRS + 2
    assert script.events() == ["PeerClosed"]
    assert conn.poll_at() == script.now + 2 * conn.options.msl
    script.advance(2 * conn.options.msl)
    assert conn.state == State.CLOSED and script.events() == ["Closed"]


def test_fin_and_ack_of_our_fin_in_one_segment() -> None:
    conn, script = established()
    conn.shutdown_write()
    script.flush()
    script.send(FIN | ACK, ack=ISS + 2)
    assert conn.state == State.TIME_WAIT


def test_passive_close_through_close_wait_and_last_ack() -> None:
    conn, script = established()
    script.send(ACK | PSH, b"bye")
    [ack] = script.send(FIN | ACK)
    assert ack.ack == IRS + 1 + 3 + 1  # the FIN is acknowledged at once
    assert conn.state == State.CLOSE_WAIT and conn.fin_received
    assert script.events() == ["PeerClosed"]
    assert not conn.at_eof and conn.recv() == b"bye" and conn.at_eof
    conn.send(b"reply")  # half-closed: we may still send
    conn.close()
    [fin] = script.flush()
    assert fin.is_(FIN | ACK | PSH) or fin.is_(FIN | ACK)
    assert fin.payload == b"reply" and conn.state == State.LAST_ACK
    script.send(ACK, ack=ISS + 1 + 5 + 1)
    assert conn.state == State.CLOSED and script.events() == ["Closed"]


def test_simultaneous_close_goes_through_closing() -> None:
    a = Connection.open_active((A, 1111), (B, 2222), T0, plain(), iss=100)
    b_syn = sent(a.output(T0))[0]
    b = Connection.open_passive((B, 2222), (A, 1111), b_syn.seg, T0, plain(), iss=300)
    [synack] = sent(b.output(T0))
    [ack] = sent(a.receive(synack.seg, b"", T0))
    b.receive(ack.seg, b"", T0)
    a.close()
    b.close()
    [fin_a] = sent(a.output(T0))
    [fin_b] = sent(b.output(T0))
    assert a.state == b.state == State.FIN_WAIT_1
    [ack_a] = sent(a.receive(fin_b.seg, b"", T0))
    [ack_b] = sent(b.receive(fin_a.seg, b"", T0))
    assert a.state == b.state == State.CLOSING
    a.receive(ack_b.seg, b"", T0)
    b.receive(ack_a.seg, b"", T0)
    assert a.state == b.state == State.TIME_WAIT


def test_fin_follows_queued_data() -> None:
    conn, script = established()
    conn.send(b"a" * 3000)
    conn.shutdown_write()
    out = script.flush()
    assert [len(s.payload) for s in out] == [1460, 1460, 80]
    assert out[-1].flags & FIN and not out[0].flags & FIN
    with pytest.raises(TcpError) as info:
        conn.send(b"more")
    assert info.value.errno == errno.EPIPE


def test_half_close_keeps_receiving() -> None:
    conn, script = established()
    conn.shutdown_write()
    script.flush()
    script.send(ACK, ack=ISS + 2)
    assert conn.state == State.FIN_WAIT_2
    script.send(ACK, b"x" * 100, ack=ISS + 2)
    assert conn.recv() == b"x" * 100
    assert conn.poll_at() is not None  # the delayed ACK, but no FIN-WAIT-2 timeout
    script.until_timer()
    assert conn.state == State.FIN_WAIT_2 and conn.poll_at() is None


def test_time_wait_acknowledges_a_retransmitted_fin_and_restarts() -> None:
    conn, script = established()
    conn.close()
    script.flush()
    script.send(FIN | ACK, ack=ISS + 2)
    script.now += 10
    [ack] = script.send(FIN | ACK, seq_no=IRS + 1, ack=ISS + 2)
    assert ack.is_(ACK) and ack.ack == IRS + 2
    assert conn.poll_at() == script.now + 2 * conn.options.msl


def test_close_with_unread_data_resets() -> None:
    conn, script = established()
    script.send(ACK, b"unread")
    conn.close()
    [rst] = script.flush()
    assert rst.is_(RST) and rst.seq == ISS + 1
    assert conn.state == State.CLOSED and conn.stats.aborted == 1


def test_data_after_close_is_answered_with_a_reset() -> None:
    conn, script = established()
    conn.close()
    script.flush()
    [rst] = script.send(ACK, b"late", ack=ISS + 2)
    assert rst.is_(RST) and conn.state == State.CLOSED
    assert conn.stats.rcvafterclose == 1


def test_orphan_in_fin_wait_2_times_out() -> None:
    conn, script = established(plain(fin_wait2_timeout=30.0))
    conn.close()
    script.flush()
    script.send(ACK, ack=ISS + 2)
    assert conn.state == State.FIN_WAIT_2
    assert conn.poll_at() == script.now + 30.0
    script.until_timer()
    assert conn.state == State.CLOSED and conn.stats.finwait2_drops == 1


def test_fin_in_syn_received_goes_to_close_wait() -> None:
    conn, script, _ = passive()
    script.send(FIN | ACK, ack=ISS + 1)
    assert conn.state == State.CLOSE_WAIT
    assert script.events() == ["Connected", "PeerClosed"]


def test_out_of_order_fin_waits_for_the_hole() -> None:
    conn, script = established()
    script.send(FIN | ACK, b"world", seq_no=IRS + 6, advance=False)
    assert conn.state == State.ESTABLISHED and not conn.fin_received
    [ack] = script.send(ACK, b"hello")
    assert conn.state == State.CLOSE_WAIT and ack.ack == IRS + 1 + 10 + 1
    assert conn.recv() == b"helloworld" and conn.at_eof


def test_last_ack_resends_its_fin() -> None:
    conn, script = established()
    script.send(FIN | ACK)
    conn.close()
    script.flush()
    assert conn.state == State.LAST_ACK
    [fin] = script.until_timer()
    assert fin.is_(FIN | ACK) and fin.seq == ISS + 1
    assert conn.stats.sndrexmitpack == 1


def test_shutdown_in_syn_sent_sends_the_fin_after_the_handshake() -> None:
    conn, _ = active()
    conn.send(b"hi")
    conn.shutdown_write()
    script = Script(conn)
    out = script.send(SYN | ACK, seq_no=IRS, ack=ISS + 1)
    assert conn.state == State.FIN_WAIT_1
    assert len(out) == 1 and out[0].payload == b"hi" and out[0].flags & FIN


def test_close_in_syn_sent_just_forgets() -> None:
    conn, _ = active()
    conn.close()
    out = conn.output(T0)
    assert conn.state == State.CLOSED and events(out) == ["Closed"] and sent(out) == []


def test_abort_sends_a_reset_and_closes() -> None:
    conn, script = established()
    conn.abort()
    [rst] = script.flush()
    assert rst.is_(RST) and rst.seq == ISS + 1
    assert script.events() == ["Closed"]
    with pytest.raises(TcpError):
        conn.send(b"x")


def test_segments_to_a_closed_connection_get_resets() -> None:
    conn, script = established()
    conn.abort()
    script.flush()
    [rst] = script.send(ACK, b"x", ack=ISS + 9)
    assert rst.is_(RST) and rst.seq == ISS + 9
    [rst] = script.send(SYN, seq_no=77)
    assert rst.is_(RST | ACK) and rst.ack == 78
    assert script.send(RST, seq_no=1) == []
