"""SACK: the receiver's reassembly queue and blocks (RFC 2018), the sender's scoreboard."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tcp_testlib import ISS, Script, passive, plain

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.conn import Connection
from vrouter.transport.tcp.sack import ReassemblyQueue, Scoreboard
from vrouter.transport.tcp.segment import ACK, Options

MSS = 1000


def test_queue_merges_and_hands_back_contiguous_data() -> None:
    q = ReassemblyQueue()
    q.insert(100, 200, b"c" * 50)
    q.insert(100, 150, b"b" * 50)  # adjacent below: merges
    q.insert(100, 300, b"e" * 10)
    assert q.ranges() == [(150, 250), (300, 310)] and q.size == 110
    assert q.pop(100) is None
    q.insert(100, 240, b"X" * 70)  # overlaps the end of one, bridges to the next
    assert q.ranges() == [(150, 310)]
    assert q.pop(150) == b"b" * 50 + b"c" * 50 + b"X" * 50 + b"e" * 10
    assert not q and q.size == 0


def test_queue_pop_discards_what_rcv_nxt_passed() -> None:
    q = ReassemblyQueue()
    q.insert(0, 10, b"0123456789")
    q.insert(0, 30, b"abc")
    assert q.pop(15) == b"56789"  # RCV.NXT reached into the block
    assert q.pop(40) is None and not q


def test_queue_across_sequence_wrap() -> None:
    q = ReassemblyQueue()
    base = seq.MASK - 5
    q.insert(base, seq.add(base, 10), b"y" * 10)
    q.insert(base, seq.add(base, 3), b"x" * 7)
    assert q.pop(seq.add(base, 3)) == b"x" * 7 + b"y" * 10


def test_sack_blocks_first_is_the_latest_then_the_recent() -> None:
    q = ReassemblyQueue()
    for start in (100, 300, 500):
        q.insert(0, start, b"x" * 50)
    assert q.sack_blocks(0, 4) == [(500, 550), (300, 350), (100, 150)]
    q.insert(0, 350, b"x" * 10)  # grows the 300 block, now reported first
    assert q.sack_blocks(0, 3) == [(300, 360), (500, 550), (100, 150)]
    assert q.sack_blocks(0, 2) == [(300, 360), (500, 550)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 300)), max_size=30))
def test_queue_matches_a_model(pieces: list[tuple[int, int]]) -> None:
    """Whatever the order, the queue holds exactly the union of what was inserted."""
    stream = bytes(i % 251 for i in range(2400))
    rcv_nxt = seq.MASK - 1000  # across the wrap
    q = ReassemblyQueue()
    have = set()
    for off, n in pieces:
        q.insert(rcv_nxt, seq.add(rcv_nxt, off + 1), stream[off + 1 : off + 1 + n])
        have.update(range(off + 1, min(off + 1 + n, len(stream))))
    assert q.size == len(have)
    for start, end in q.ranges():
        s, e = seq.sub(start, rcv_nxt), seq.sub(end, rcv_nxt)
        assert all(i in have for i in range(s, e))
        assert s - 1 not in have and e not in have
    q.insert(rcv_nxt, rcv_nxt, stream[:1])
    got = q.pop(rcv_nxt)
    assert got is not None
    run = 0
    while run in have or run == 0:
        run += 1
    assert bytes(got) == stream[:run]


def test_scoreboard_records_prunes_and_ignores_bogus_blocks() -> None:
    sb = Scoreboard()
    una, smax = 1000, 11_000
    assert sb.update(((3000, 4000), (6000, 7000)), una, smax) == 2000
    assert sb.update(((3500, 4500),), una, smax) == 500  # overlaps: only the new part
    assert sb.update(((500, 900), (10_000, 12_000), (5000, 5000)), una, smax) == 0
    assert sb.ranges() == [(3000, 4500), (6000, 7000)] and sb.sacked == 2500
    sb.prune(3500)
    assert sb.ranges() == [(3500, 4500), (6000, 7000)] and sb.sacked == 2000
    sb.prune(7000)
    assert not sb and sb.sacked == 0


def test_scoreboard_loss_detection_holes_and_pipe() -> None:
    sb = Scoreboard()
    una, smax = 0, 10 * MSS
    # Segment 0 lost; 1, 2 SACKed: not enough (needs > 2*SMSS above, or 3 blocks).
    sb.update(((MSS, 3 * MSS),), una, smax)
    assert sb.lost_below(una, MSS) == una
    sb.update(((3 * MSS, 4 * MSS),), una, smax)  # 3 segments above: segment 0 is lost
    assert sb.lost_below(una, MSS) == MSS
    assert sb.next_hole(una, una, sb.lost_below(una, MSS)) == (0, MSS)
    # pipe: 10 out - 3 SACKed - 1 lost = 6; after resending it, 7.
    assert sb.pipe(una, smax, una, MSS) == 6 * MSS
    assert sb.pipe(una, smax, MSS, MSS) == 7 * MSS
    # Three discontiguous blocks make everything below the third-highest lost.
    sb.clear()
    sb.update(((2 * MSS, 2 * MSS + 10), (5 * MSS, 5 * MSS + 10), (8 * MSS, 8 * MSS + 10)), 0, smax)
    assert sb.lost_below(0, MSS) == 2 * MSS
    assert sb.next_hole(0, 2 * MSS, 8 * MSS) == (2 * MSS + 10, 5 * MSS)
    assert sb.is_sacked(0, 5 * MSS + 5) and not sb.is_sacked(0, 5 * MSS + 10)


def _sack_sender() -> tuple[Connection, Script]:
    conn, script, _ = passive(
        plain(sack=True, nodelay=True, sndbuf=1 << 20), Options(mss=1460, sack_permitted=True)
    )
    script.send(ACK)
    return conn, script


def test_sack_recovery_resends_only_the_holes() -> None:
    conn, script = _sack_sender()
    m = conn.mss
    una = ISS + 1
    conn.send(b"x" * (10 * m))
    assert len(script.flush()) == 10

    # Segments 0 and 4 are lost; the others arrive and are SACKed.
    def sack(*blocks: tuple[int, int]) -> list:
        opts = Options(sack=tuple((una + a * m, una + b * m) for a, b in blocks))
        return script.send(ACK, ack=una, options=opts)

    assert sack((1, 2)) == []
    assert sack((1, 3)) == []
    out = sack((1, 4))  # 3 SACKed segments above 0: it is lost (RFC 6675 IsLost)
    assert [(s.seq - una) // m for s in out] == [0]
    assert conn.cc.in_recovery and conn.cc.cwnd == conn.cc.ssthresh == 5 * m
    out = sack((1, 4), (5, 6))
    out += sack((1, 4), (5, 7))
    out += sack((1, 4), (5, 8))  # now segment 4 has 3 SACKed above it
    assert 4 in [(s.seq - una) // m for s in out]
    assert conn.stats.sndrexmitpack == 2  # never a SACKed segment
    script.send(ACK, ack=una + 10 * m)
    assert not conn.cc.in_recovery


def test_a_lost_retransmission_is_resent_without_waiting_for_the_timer() -> None:
    conn, script = _sack_sender()
    m = conn.mss
    una = ISS + 1
    conn.send(b"x" * (40 * m))
    assert len(script.flush()) == 10

    def sack(hi: int) -> list[int]:
        out = script.send(ACK, ack=una, options=Options(sack=((una + m, una + hi * m),)))
        return [(s.seq - una) // m for s in out]

    assert sack(2) == [10] and sack(3) == [11]  # limited transmit
    assert sack(4) == [0]  # fast retransmit, SND.MAX is then at segment 12
    assert sack(12) == [12, 13, 14, 15, 16]
    # Segments 12..15, sent after the retransmission, arrive; segment 0 still does not.
    assert sack(16)[0] == 0
    assert conn.stats.rexmit_lost == 1 and conn.stats.rexmttimeo == 0
