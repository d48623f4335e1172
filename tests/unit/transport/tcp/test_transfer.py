"""Two connections back to back (h11/aioquic style): megabytes through loss and reordering.

The client and server are whole :class:`TcpTable` objects joined by a
simulated path (delay, bottleneck rate, drop-tail queue, random loss and
reordering) on a fake clock; every run checks that the bytes arrive intact
and in order, that both sides close, and that TIME-WAIT drains.
"""

from __future__ import annotations

import random

import pytest
from tcp_testlib import Path, transfer

from vrouter.transport.tcp.conn import TcpOptions

MB = 1 << 20


def _data(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def _msl(**kw: object) -> TcpOptions:
    return TcpOptions(msl=1.0, **kw)  # type: ignore[arg-type]


def test_clean_path_4mb() -> None:
    data = _data(4 * MB)
    result = transfer(data, options=_msl())
    assert result.received == data
    assert result.a.stats.sndrexmitpack == 0
    assert result.a.stats.sndbyte == len(data)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_loss_both_ways_with_sack(seed: int) -> None:
    data = _data(3 * MB, seed)
    path = Path(delay=0.01, loss=0.02)
    result = transfer(data, path=path, back=Path(delay=0.01, loss=0.02), options=_msl(), seed=seed)
    assert result.received == data
    stats = result.a.stats
    assert stats.fastrexmit > 0 and stats.sack_rexmits + stats.fastrexmit > 0
    assert result.net.ab.dropped > 0 and result.net.ba.dropped > 0


def test_loss_and_reordering_with_newreno_only() -> None:
    data = _data(2 * MB)
    path = Path(delay=0.005, loss=0.03, reorder=0.2, jitter=0.006)
    opts = _msl(sack=False, timestamps=False)
    result = transfer(data, path=path, options=opts, seed=5)
    assert result.received == data
    assert result.a.stats.partialacks > 0 and result.a.stats.fastrexmit > 0
    assert result.b.stats.rcvoopack > 0


def test_heavy_loss_still_completes() -> None:
    data = _data(MB)
    result = transfer(data, path=Path(delay=0.002, loss=0.15), options=_msl(), seed=11)
    assert result.received == data
    assert result.a.stats.rexmttimeo > 0


def test_bottleneck_queue_drops_are_congestion() -> None:
    data = _data(4 * MB)
    path = Path(delay=0.01, rate=5e6, queue=30_000)
    result = transfer(data, path=path, back=Path(delay=0.01), options=_msl())
    assert result.received == data
    assert result.net.ab.queue_drops > 0
    assert result.finished < 1.5 * (len(data) / 5e6)  # two thirds of the bottleneck rate


def test_slow_reader_bounds_memory_and_still_completes() -> None:
    data = _data(MB)
    opts = _msl(rcvbuf=64 * 1024)
    result = transfer(data, options=opts, read_chunk=3000, read_every=0.01, path=Path(delay=0.002))
    assert result.received == data
    assert result.max_held <= 64 * 1024
    assert result.b.stats.sndzerowin > 0  # the reader's window closed, and opened again


def test_both_directions_at_once_through_loss() -> None:
    data = _data(MB, 1)
    reply = _data(MB, 2)
    path = Path(delay=0.005, loss=0.02)
    result = transfer(data, reply=reply, path=path, back=Path(delay=0.005, loss=0.02))
    assert result.received == data and result.echoed == reply


def test_no_window_scaling_small_mss_path() -> None:
    data = _data(MB // 2)
    opts = _msl(window_scaling=False, mss=536)
    result = transfer(data, options=opts, path=Path(delay=0.001, loss=0.01))
    assert result.received == data


def test_sequence_numbers_and_timestamps_wrap_around() -> None:
    """Both ISNs 1 MB below 2**32 and timestamp clocks about to wrap, with loss (SACK)."""
    data = _data(3 * MB)
    result = transfer(
        data,
        path=Path(delay=0.005, loss=0.02),
        options=_msl(),
        isn=2**32 - MB,
        ts_offset=2**32 - int(1000.0 * 1000) - 500,
        seed=4,
    )
    assert result.received == data
    stats = result.a.stats
    assert stats.sack_rexmits + stats.fastrexmit > 0 and result.b.stats.paws_drops == 0
