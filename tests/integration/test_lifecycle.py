"""Start-up, shutdown and crash recovery leave nothing behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest
from harness import Vrouterd, links, netns_list, run, vrouterd

pytestmark = pytest.mark.integration


def _ours(daemon: Vrouterd) -> tuple[set[str], set[str]]:
    return (
        {n for n in netns_list() if n.startswith(daemon.prefix)},
        {n for n in links() if n.startswith(daemon.prefix)},
    )


def test_sigterm_removes_every_tap_and_namespace(fresh_daemon: Vrouterd) -> None:
    fresh_daemon.start()
    namespaces, _ = _ours(fresh_daemon)
    assert namespaces == {fresh_daemon.ns(h) for h in ("h1", "h2", "h3", "h4")}
    # The TAPs live inside the host namespaces.
    fresh_daemon.exec("h1", "ip", "link", "show", fresh_daemon.tap("r"))
    assert fresh_daemon.stop(signal.SIGTERM) == 0
    assert _ours(fresh_daemon) == (set(), set())
    assert not Path(fresh_daemon.socket).exists()
    assert "removed netns" in fresh_daemon.logtext()


def test_under_the_journal_lines_carry_priorities_and_no_time(fresh_daemon: Vrouterd) -> None:
    fresh_daemon.log.touch()
    st = fresh_daemon.log.stat()  # stderr is the journal's stream: systemd names it so
    fresh_daemon.start(env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    fresh_daemon.config.write_text(fresh_daemon.config.read_text() + "\n[vnets.red\n")
    assert fresh_daemon.ctl("reload").returncode == 1
    assert fresh_daemon.stop() == 0
    lines = fresh_daemon.logtext().splitlines()
    assert all(re.match(r"<[2-7]>", line) for line in lines), lines
    assert not [line for line in lines if re.search(r"\d{4}-\d\d-\d\d", line)]  # no time
    assert [line for line in lines if re.match(r"<6>INFO vrouter\.daemon: vrouterd .* ready", line)]
    failed = [i for i, line in enumerate(lines) if line.startswith("<3>ERROR") and "reload" in line]
    assert failed, lines
    assert lines[failed[0] + 1].startswith("<3>")  # the error's second line: the TOML problem


def test_json_log_lines(fresh_daemon: Vrouterd) -> None:
    fresh_daemon.start("--log-format", "json")
    assert fresh_daemon.stop() == 0
    entries = [json.loads(line) for line in fresh_daemon.logtext().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert [e for e in entries if e["level"] == "info" and e["message"].startswith("vrouterd ")]
    assert entries[-1]["message"] == "stopped"


def test_sigint_also_cleans_up(fresh_daemon: Vrouterd) -> None:
    fresh_daemon.start()
    assert fresh_daemon.stop(signal.SIGINT) == 0
    assert _ours(fresh_daemon) == (set(), set())


def test_restart_after_crash_removes_leftovers(fresh_daemon: Vrouterd) -> None:
    fresh_daemon.start()
    fresh_daemon.stop(signal.SIGKILL)
    namespaces, _ = _ours(fresh_daemon)
    assert len(namespaces) == 4, "a killed daemon cannot clean up; the next start must"
    fresh_daemon.start()
    assert "left by a previous run" in fresh_daemon.logtext()
    result = fresh_daemon.exec("h1", "ping", "-c", "1", "-W", "2", "198.51.100.2", check=False)
    assert "1 received" in result.stdout
    assert fresh_daemon.stop() == 0
    assert _ours(fresh_daemon) == (set(), set())


def test_failed_start_leaves_nothing_half_created(fresh_daemon: Vrouterd) -> None:
    # A namespace that is not the daemon's blocks the third host: the daemon
    # must refuse to start, and undo the two hosts it had already made.
    squatter = fresh_daemon.ns("h3")
    run("ip", "netns", "add", squatter)
    try:
        with pytest.raises(AssertionError, match="exited 1"):
            fresh_daemon.start()
        assert "already exists and was not created by this vrouterd" in fresh_daemon.logtext()
        namespaces, taps = _ours(fresh_daemon)
        assert namespaces == {squatter}
        assert taps == set()
    finally:
        run("ip", "netns", "del", squatter, check=False)


def test_check_validates_only(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[vnets.red.interfaces.ep0]\ntype = "epair"\npeer = "blue:ep0"\n'
        'addresses = ["192.0.2.1/33"]\n'
    )
    result = subprocess.run(
        vrouterd("--check", "-c", str(bad)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert f"{bad}: vnets.red.interfaces.ep0.addresses[0]:" in result.stderr
    assert f"{bad}: vnets.red.interfaces.ep0.peer:" in result.stderr
    good = subprocess.run(
        vrouterd("--check", "-c", "configs/demo.toml"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert good.returncode == 0, good.stderr
    assert "OK (3 vnets, 6 interfaces)" in good.stdout
