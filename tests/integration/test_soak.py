"""A 2-minute slice of bench/soak.py: mixed traffic, reloads, vnet churn, scrapes, captures.

The soak runs as its own program (its daemon, namespaces and clean-up are
its own) with ``--no-write``; its JSON summary must show no traceback in the
daemon's log, the daemon alive, a bounded longest forwarding pause, and
every load having run (the control-plane ones without a failure).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from harness import python

pytestmark = pytest.mark.integration

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"
MAX_PAUSE = 3.0
"""Seconds without a ping answer the slice tolerates (a reload or a scan, on a shared machine)."""


@pytest.mark.timeout(420)
def test_a_two_minute_soak_logs_no_traceback_and_keeps_forwarding(tmp_path: Path) -> None:
    summary_file = tmp_path / "soak.json"
    cmd = [*python(str(SOAK)), "--minutes", "2", "--reload-every", "20", "--no-write",
           "--max-pause", str(MAX_PAUSE), "--json", str(summary_file)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=400, check=False)
    assert summary_file.exists(), f"exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr}"
    summary = json.loads(summary_file.read_text())
    assert summary["tracebacks"] == 0, out.stderr[-5000:]
    assert summary["daemon_alive"]
    assert summary["longest_pause_s"] <= MAX_PAUSE, summary
    assert summary["ping_answered"] >= summary["ping_sent"] * 0.8, summary
    activities = summary["activities"]
    for name in ("tcp (iperf3 20 s)", "udp flood (iperf3 -u 20 s)", "arp scan", "nd scan",
                 "socks (curl)", "reload", "vnet churn (vrouterctl)", "epair create (API)",
                 "metrics scrape", "capture (200 frames)"):  # fmt: skip
        assert activities.get(name, {}).get("done", 0) >= 1, (name, activities)
    for name in ("reload", "vnet churn (vrouterctl)", "epair create (API)"):
        assert activities[name]["failed"] == 0, (name, activities[name])
    assert summary["fds"]["end"] <= summary["fds"]["start"] + 8, summary["fds"]
    assert out.returncode == 0, out.stdout[-3000:]
