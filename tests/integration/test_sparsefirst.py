"""Small frames first (``[daemon] sparse_first``): a ping through two vnets during a TCP
stream waits behind less of the stream's super-frames than with every queue in order."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd, iperf3_server

pytestmark = pytest.mark.integration

ROUNDS = 2


def _daemon(tmp_path: Path, settings: str) -> Vrouterd:
    template = DEMO_LIKE.replace('log_level = "debug"\n', f'log_level = "warning"\n{settings}\n', 1)
    return Vrouterd(tmp_path, template)


def _loaded_ping(daemon: Vrouterd) -> tuple[float, dict[str, object]]:
    """Return the p50 RTT (ms) of 60 pings h1 -> h2 during a 3 s iperf3 stream h1 -> h2,
    and the stream's report."""
    with iperf3_server(daemon):
        stream = subprocess.Popen(
            ["ip", "netns", "exec", daemon.ns("h1"), "iperf3", "-c", "198.51.100.2", "-t", "3",
             "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        try:
            time.sleep(0.8)
            pinged = daemon.exec(
                "h1", "ping", "-n", "-c", "60", "-i", "0.02", "-W", "1", "198.51.100.2",
                timeout=30, check=False,
            )  # fmt: skip
            out, _ = stream.communicate(timeout=30)
        finally:
            stream.kill()
            stream.wait(10)
    rtts = [float(t) for t in re.findall(r"time=([\d.]+) ms", pinged.stdout)]
    assert len(rtts) >= 50, pinged.stdout
    report: dict[str, object] = json.loads(out)
    return statistics.median(rtts), report


def test_a_ping_under_a_tcp_stream_waits_less_with_small_frames_first(tmp_path: Path) -> None:
    sparse = _daemon(tmp_path, "")
    fifo = _daemon(tmp_path, "sparse_first = false")
    got: dict[str, list[float]] = {"sparse": [], "fifo": []}
    try:
        for daemon in (sparse, fifo):
            daemon.start()
            daemon.exec("h1", "ping", "-c", "1", "-W", "5", "198.51.100.2", timeout=10)
        for _ in range(ROUNDS):
            for name, daemon in (("sparse", sparse), ("fifo", fifo)):
                p50, report = _loaded_ping(daemon)
                end = report["end"]
                assert isinstance(end, dict)
                assert end["sum_received"]["bytes"] > 10_000_000, end  # the stream ran
                got[name].append(p50)
    finally:
        sparse.close()
        fifo.close()
    assert statistics.mean(got["sparse"]) < statistics.mean(got["fifo"]), got
