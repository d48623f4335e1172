"""Header prediction: the short way for pure ACKs and in-order data changes exactly what
the full path changes.

Each case takes a connection, copies it, hands the same segment to the copy
with prediction and to the copy without, and compares what they sent (every
segment, decoded), the events, and every variable of the connection (buffers,
congestion and RTT state, timers, counters but the two that count prediction).
Each case also says which way the segment must go, so a prediction that never
happens fails too.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from enum import Enum
from typing import Any

import pytest
from tcp_testlib import LPORT, RPORT, T0, Path, established, events, passive, plain, sent, transfer

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.conn import Connection, State, TcpOptions
from vrouter.transport.tcp.segment import ACK, FIN, PSH, RST, SYN, URG, Options, Segment

SKIP = {"on_dirty", "challenge_allowed", "listener", "user", "predict"}
PREDICTION_COUNTERS = {"predack", "preddat"}


def snapshot(obj: Any, seen: int = 0) -> Any:
    """Return ``obj`` as plain, comparable data (objects by their attributes)."""
    assert seen < 12, "too deep"
    if obj is None or isinstance(obj, bool | int | float | str | Enum):
        return obj
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if isinstance(obj, list | tuple | deque):
        return [snapshot(item, seen + 1) for item in obj]
    if isinstance(obj, dict):
        return {repr(k): snapshot(v, seen + 1) for k, v in obj.items()}
    if isinstance(obj, set | frozenset):
        return sorted(repr(item) for item in obj)
    if type(obj).__module__.endswith(".events"):
        return type(obj).__name__  # an event names its connection: not followed
    names = set(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        slots = getattr(cls, "__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    out = {}
    for name in sorted(names - SKIP):
        if name.startswith("__") or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        if callable(value) and not isinstance(value, type):
            continue
        if name in PREDICTION_COUNTERS:
            continue
        out[name] = snapshot(value, seen + 1)
    return out


def predicted(conn: Connection) -> int:
    return conn.stats.predack + conn.stats.preddat


def compare(conn: Connection, seg: Segment, payload: bytes, now: float) -> tuple[bool, Connection]:
    """Give ``seg`` to a copy of ``conn`` with prediction and to one without; check that
    both did the same; return whether the first predicted, and that copy."""
    fast = copy.deepcopy(conn)
    full = copy.deepcopy(conn)
    full.predict = False
    before = predicted(fast)
    out_fast = fast.receive(seg, payload, now)
    out_full = full.receive(seg, payload, now)
    assert predicted(full) == before
    assert sent(out_fast) == sent(out_full)
    assert events(out_fast) == events(out_full)
    assert snapshot(fast) == snapshot(full)
    assert fast.poll_at() == full.poll_at()
    return predicted(fast) > before, fast


def peer_seg(
    conn: Connection,
    flags: int = ACK,
    *,
    seq_no: int | None = None,
    ack: int | None = None,
    window: int = 65535,
    options: Options = Options(),  # noqa: B008 (a tuple)
) -> Segment:
    return Segment(
        RPORT,
        LPORT,
        conn.rcv_nxt if seq_no is None else seq_no,
        conn.snd_una if ack is None else ack,
        flags,
        window,
        options,
    )


def sender(options: TcpOptions | None = None) -> Connection:
    """An ESTABLISHED connection with 20,000 bytes queued and its first flight out."""
    conn, script = established(options or plain())
    conn.send(b"x" * 20000)
    assert sent(script.conn.output(T0 + 0.01))
    assert conn.snd_max != conn.snd_una
    return conn


def receiver(options: TcpOptions | None = None) -> Connection:
    conn, _ = established(options or plain())
    return conn


NOW = T0 + 0.05


# --- pure ACKs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("advance by one segment", True),
        ("advance to SND.MAX", True),
        ("advance, window grows", True),
        ("advance, window shrinks", True),
        ("advance, window closes", True),
        ("advance, PSH", True),
        ("duplicate ACK", False),
        ("window update alone", False),
        ("old ACK", False),
        ("ACK beyond SND.MAX", False),
        ("FIN", False),
        ("RST", False),
        ("SYN", False),
        ("URG", False),
        ("sequence ahead", False),
        ("sequence behind", False),
    ],
)
def test_pure_acks_take_the_way_they_should_and_change_the_same(name: str, way: bool) -> None:
    conn = sender()
    una, top, nxt = conn.snd_una, conn.snd_max, conn.rcv_nxt
    kw: dict[str, Any] = {
        "advance by one segment": {"ack": seq.add(una, conn.mss)},
        "advance to SND.MAX": {"ack": top},
        "advance, window grows": {"ack": top, "window": 65535 - 1},
        "advance, window shrinks": {"ack": seq.add(una, conn.mss), "window": 3000},
        "advance, window closes": {"ack": top, "window": 0},
        "advance, PSH": {"ack": top, "flags": ACK | PSH},
        "duplicate ACK": {},
        "window update alone": {"window": 30000},
        "old ACK": {"ack": seq.sub(una, 1)},
        "ACK beyond SND.MAX": {"ack": seq.add(top, 1)},
        "FIN": {"ack": top, "flags": ACK | FIN},
        "RST": {"ack": top, "flags": ACK | RST},
        "SYN": {"ack": top, "flags": ACK | SYN},
        "URG": {"ack": top, "flags": ACK | URG},
        "sequence ahead": {"ack": top, "seq_no": seq.add(nxt, 10)},
        "sequence behind": {"ack": top, "seq_no": seq.sub(nxt, 10)},
    }[name]
    took, after = compare(conn, peer_seg(conn, **kw), b"", NOW)
    assert took is way
    if way:
        assert after.snd_una == kw["ack"]


# --- data -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("in order", True),
        ("in order, PSH", True),
        ("in order, full segment", True),
        ("in order, window changes", True),
        ("in order, fills the window", True),
        ("beyond the window", False),
        ("out of order", False),
        ("duplicate", False),
        ("with FIN", False),
        ("ACK beyond SND.MAX", False),
    ],
)
def test_data_takes_the_way_it_should_and_changes_the_same(name: str, way: bool) -> None:
    conn = receiver(plain(rcvbuf=8192))
    nxt = conn.rcv_nxt
    room = seq.diff(conn.rcv_adv, nxt)
    payload, kw = {
        "in order": (b"a" * 100, {}),
        "in order, PSH": (b"a" * 100, {"flags": ACK | PSH}),
        "in order, full segment": (b"a" * 1460, {}),
        "in order, window changes": (b"a" * 100, {"window": 1000}),
        "in order, fills the window": (b"a" * room, {}),
        "beyond the window": (b"a" * (room + 1), {}),
        "out of order": (b"a" * 100, {"seq_no": seq.add(nxt, 100)}),
        "duplicate": (b"a" * 100, {"seq_no": seq.sub(nxt, 100)}),
        "with FIN": (b"a" * 100, {"flags": ACK | FIN}),
        "ACK beyond SND.MAX": (b"a" * 100, {"ack": seq.add(conn.snd_max, 1)}),
    }[name]
    took, after = compare(conn, peer_seg(conn, **kw), payload, NOW)
    assert took is way
    if way:
        assert after.readable == len(payload)


def test_data_while_a_hole_waits_takes_the_full_path() -> None:
    conn = receiver()
    nxt = conn.rcv_nxt
    conn.receive(peer_seg(conn, seq_no=seq.add(nxt, 100)), b"b" * 100, NOW)
    assert conn._reass
    took, after = compare(conn, peer_seg(conn), b"a" * 100, NOW)  # fills the hole
    assert not took and after.readable == 200
    took, after = compare(after, peer_seg(after), b"c" * 100, NOW)  # then the short way
    assert took and after.readable == 300


def test_zero_receive_window_leaves_data_to_the_full_path() -> None:
    conn = receiver(plain(rcvbuf=4096))
    for _ in range(10):
        room = seq.diff(conn.rcv_adv, conn.rcv_nxt)
        if room <= 0:
            break
        conn.receive(peer_seg(conn), b"z" * min(room, 1460), NOW)
    assert seq.diff(conn.rcv_adv, conn.rcv_nxt) == 0
    took, after = compare(conn, peer_seg(conn), b"y" * 10, NOW)  # a zero-window probe
    assert not took and after.stats.rcvwinprobe == 1


def test_data_that_also_acknowledges_takes_the_short_way() -> None:
    conn = sender()
    took, after = compare(conn, peer_seg(conn, ack=conn.snd_max), b"r" * 500, NOW)
    assert took and after.readable == 500 and after.snd_una == conn.snd_max


def test_every_second_segment_is_acknowledged_at_once_either_way() -> None:
    conn = receiver()
    took, conn = compare(conn, peer_seg(conn), b"a" * 1460, NOW)
    assert took and conn._delack_at is not None
    took, conn = compare(conn, peer_seg(conn), b"a" * 1460, NOW)
    assert took and conn._delack_at is None and conn.stats.sndacks == 1
    assert conn.last_ack_sent == conn.rcv_nxt


# --- options and the connection's situation ----------------------------------------------------


def _ts_conn(data: bool) -> tuple[Connection, int]:
    opts = TcpOptions(sack=True, timestamps=True, window_scaling=True)
    conn, script, _ = passive(opts, Options(mss=1460, wscale=7, sack_permitted=True, ts=(100, 0)))
    script.send(ACK, options=Options(ts=(101, conn._ts_last or 0)))
    assert conn.ts_enabled and conn.sack_enabled and conn.state == State.ESTABLISHED
    if data:
        conn.send(b"t" * 30000)
        conn.output(T0 + 0.01)
    return conn, 101


@pytest.mark.parametrize(
    ("name", "way"),
    [
        ("timestamps, ACK", True),
        ("timestamps, data", True),
        ("same TSval", True),
        ("TSval older (PAWS)", False),
        ("no timestamps", False),
        ("SACK blocks", False),
    ],
)
def test_timestamps_and_sack(name: str, way: bool) -> None:
    conn, tsval = _ts_conn(data=True)
    echo = conn._ts_last or 0
    top = conn.snd_max
    sack_block = ((seq.add(conn.snd_una, 2000), seq.add(conn.snd_una, 3000)),)
    payload, kw = {
        "timestamps, ACK": (b"", {"ack": top, "options": Options(ts=(tsval + 5, echo))}),
        "timestamps, data": (b"d" * 300, {"options": Options(ts=(tsval + 5, echo))}),
        "same TSval": (b"", {"ack": top, "options": Options(ts=(tsval, echo))}),
        "TSval older (PAWS)": (b"", {"ack": top, "options": Options(ts=(tsval - 5, echo))}),
        "no timestamps": (b"", {"ack": top}),
        "SACK blocks": (
            b"",
            {
                "ack": seq.add(conn.snd_una, 1000),
                "options": Options(sack=sack_block, ts=(tsval + 5, echo)),
            },
        ),
    }[name]
    took, after = compare(conn, peer_seg(conn, window=1000, **kw), payload, NOW)
    assert took is way
    if way:
        assert after.ts_recent == kw["options"].ts[0]


def test_persist_recovery_and_our_fin_leave_acks_to_the_full_path() -> None:
    # Zero window: the sender probes; the ACK that opens it goes the full way.
    conn = sender()
    conn.receive(peer_seg(conn, ack=conn.snd_max, window=0), b"", NOW)
    conn.on_timer(conn.poll_at() or NOW)
    assert conn._persist
    took, _ = compare(conn, peer_seg(conn, ack=conn.snd_una, window=65535), b"", NOW + 1)
    assert not took
    # Our FIN out (FIN-WAIT-1): not ESTABLISHED.
    conn = sender()
    conn.shutdown_write()
    conn.output(NOW)
    took, _ = compare(conn, peer_seg(conn, ack=seq.add(conn.snd_una, 100)), b"", NOW)
    assert not took
    # Fast recovery (NewReno): three duplicate ACKs, then a partial ACK, which resends.
    conn = sender()
    for _ in range(3):
        conn.receive(peer_seg(conn), b"", NOW)
    assert conn.cc.in_recovery
    took, after = compare(conn, peer_seg(conn, ack=seq.add(conn.snd_una, conn.mss)), b"", NOW)
    assert took and after.stats.partialacks == 1


def test_random_segments_change_the_same_either_way() -> None:
    """Segments near the connection's state, of every kind, one after another."""
    rng = random.Random(7)
    conn, tsval = _ts_conn(data=True)
    now = NOW
    took_count = 0
    for _ in range(600):
        if conn.state != State.ESTABLISHED:
            conn, tsval = _ts_conn(data=True)
        now += rng.choice((0.0, 0.001, 0.01))
        una, top, nxt = conn.snd_una, conn.snd_max, conn.rcv_nxt
        ahead = seq.add(una, min(rng.randrange(1, 3000), seq.sub(top, una)))
        ack = rng.choice((una, una, top, top, ahead, ahead, seq.sub(una, 1), seq.add(top, 1)))
        seq_no = rng.choice((nxt,) * 8 + (seq.add(nxt, 50), seq.sub(nxt, 50)))
        flags = rng.choice((ACK,) * 6 + (ACK | PSH, ACK | FIN, ACK | RST, ACK | SYN, ACK | URG))
        window = rng.choice((0, 100, 700, 1000, 1000, 1000, 512))
        plen = rng.choice((0, 0, 1, 100, 1448, 4000))
        tsval = (tsval + rng.choice((0, 1, 1, 5))) & seq.MASK
        ts = rng.choice(((tsval, conn._ts_last or 0),) * 10 + ((tsval - 3, 0), None))
        sack = ()
        if rng.random() < 0.1:
            sack = ((seq.add(una, 1000), seq.add(una, 2000)),)
        seg = Segment(RPORT, LPORT, seq_no, ack, flags, window, Options(sack=sack, ts=ts))
        took, conn = compare(conn, seg, bytes(rng.getrandbits(8) for _ in range(plen)), now)
        took_count += took
        if rng.random() < 0.3:
            conn.recv(rng.choice((100, 10000)))
        if rng.random() < 0.3 and conn.writable:
            conn.send(b"m" * rng.choice((10, 3000)))
        if rng.random() < 0.3:
            conn.output(now)
        if rng.random() < 0.1 and conn.poll_at() is not None:
            now = max(now, conn.poll_at() or now)
            conn.on_timer(now)
    assert took_count >= 80


@pytest.mark.parametrize(
    "path",
    [Path(delay=0.01, rate=2e6, queue=30000), Path(delay=0.005, loss=0.03, reorder=0.05)],
    ids=["bottleneck", "loss"],
)
def test_transfers_are_the_same_with_and_without_prediction(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = random.Random(3).randbytes(300_000)
    results = []
    for on in (True, False):
        monkeypatch.setattr(Connection, "predict", on)
        result = transfer(data, path=copy.copy(path), reply=b"r" * 50_000, seed=5)
        assert result.received == data and result.echoed == b"r" * 50_000
        stats = [snapshot(table.stats) for table in (result.a, result.b)]
        predicted_ = sum(
            table.stats.predack + table.stats.preddat for table in (result.a, result.b)
        )
        results.append((result.finished, stats, result.net.ab.sent, result.net.ba.sent, predicted_))
    (fin1, stats1, ab1, ba1, pred1), (fin2, stats2, ab2, ba2, pred2) = results
    assert (fin1, stats1, ab1, ba1) == (fin2, stats2, ab2, ba2)
    assert pred1 > 100 and pred2 == 0
