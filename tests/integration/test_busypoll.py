"""Busy-polling (``[daemon] busy_poll``) is bounded: sparse traffic makes it back off, so
a ping every 10 ms costs a few polls, not one per frame; the ping still gets through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd

pytestmark = pytest.mark.integration

PINGS = 100


def test_busy_polling_backs_off_when_it_finds_nothing(tmp_path: Path) -> None:
    settings = 'log_level = "info"\nbusy_poll = 1000\n'
    template = DEMO_LIKE.replace('log_level = "debug"\n', settings, 1)
    daemon = Vrouterd(tmp_path, template)
    try:
        daemon.start()
        daemon.exec("h1", "ping", "-c", "1", "-W", "5", "198.51.100.2", timeout=10)
        before = daemon.call("status")["busy_poll"]
        pinged = daemon.exec(
            "h1", "ping", "-n", "-c", str(PINGS), "-i", "0.01", "-W", "1", "198.51.100.2",
            timeout=30,
        )  # fmt: skip
        after = daemon.call("status")["busy_poll"]
        shown = daemon.ctl("status").stdout
    finally:
        daemon.close()
    assert len(re.findall(r"time=", pinged.stdout)) == PINGS
    polls = after["polls"] - before["polls"]
    # Each ping is two TAP batches (request, reply) and no frame comes within 1 ms of
    # the last: without the back-off every batch would poll (200 polls, 0.2 s of CPU).
    assert 0 < polls < 2 * PINGS / 8, after
    assert re.search(r"busy_poll: \d+ polls, \d+ found a frame", shown), shown
