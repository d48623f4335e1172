"""Tests for vrouter.daemon.systemd: sd_notify datagrams as a real listener receives them."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vrouter.daemon import systemd


class Listener:
    """An AF_UNIX datagram socket standing in for the service manager's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2)

    def receive(self) -> list[str]:
        """Return the next datagram's assignments (waiting at most 2 s)."""
        return self.sock.recv(4096).decode().split("\n")

    def pending(self) -> list[list[str]]:
        """Return every datagram already queued, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode().split("\n"))
        except BlockingIOError:
            return out
        finally:
            self.sock.settimeout(2)


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """A listener on a socket file, named by $NOTIFY_SOCKET."""
    path = str(tmp_path / "notify.sock")
    listener = Listener(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        yield listener
    finally:
        listener.sock.close()


@pytest.fixture
def abstract_listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """A listener on an abstract socket, named ``@name`` by $NOTIFY_SOCKET."""
    name = f"vrouter-test-{os.getpid()}-{time.monotonic_ns()}"
    listener = Listener("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        yield listener
    finally:
        listener.sock.close()


# Notifications.


def test_ready_with_status(listener: Listener) -> None:
    assert systemd.ready("2 vnets, 3 interfaces")
    assert listener.receive() == ["READY=1", "STATUS=2 vnets, 3 interfaces"]


def test_ready_without_status(listener: Listener) -> None:
    assert systemd.ready()
    assert listener.receive() == ["READY=1"]


def test_abstract_socket(abstract_listener: Listener) -> None:
    assert systemd.ready("up")
    assert abstract_listener.receive() == ["READY=1", "STATUS=up"]


def test_reloading_carries_monotonic_usec(listener: Listener) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert systemd.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    message = listener.receive()
    assert message[0] == "RELOADING=1"
    assert len(message) == 2
    key, value = message[1].split("=")
    assert key == "MONOTONIC_USEC"
    assert value.isdigit()
    assert before <= int(value) <= after


def test_reloading_with_status(listener: Listener) -> None:
    assert systemd.reloading("reloading")
    message = listener.receive()
    assert message[0] == "RELOADING=1"
    assert message[1].startswith("MONOTONIC_USEC=")
    assert message[2:] == ["STATUS=reloading"]


def test_stopping(listener: Listener) -> None:
    assert systemd.stopping()
    assert systemd.stopping("shutting down")
    assert listener.receive() == ["STOPPING=1"]
    assert listener.receive() == ["STOPPING=1", "STATUS=shutting down"]


def test_status_is_one_line(listener: Listener) -> None:
    assert systemd.status("start-up failed:\nno such file\r\nor directory")
    assert listener.receive() == ["STATUS=start-up failed: no such file or directory"]


def test_watchdog(listener: Listener) -> None:
    assert systemd.watchdog()
    assert listener.receive() == ["WATCHDOG=1"]


def test_one_datagram_per_call(listener: Listener) -> None:
    systemd.ready("a")
    systemd.watchdog()
    systemd.stopping()
    assert listener.pending() == [["READY=1", "STATUS=a"], ["WATCHDOG=1"], ["STOPPING=1"]]


def test_env_mapping_overrides_environment(tmp_path: Path) -> None:
    other = Listener(str(tmp_path / "other.sock"))
    try:
        assert systemd.notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "other.sock")})
        assert other.receive() == ["READY=1"]
    finally:
        other.sock.close()


# Without a manager.


def test_noop_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not systemd.ready("x")
    assert not systemd.reloading()
    assert not systemd.stopping()
    assert not systemd.status("x")
    assert not systemd.watchdog()


def test_empty_notify_socket_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert not systemd.ready()


def test_unsupported_address_is_ignored(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    with caplog.at_level(logging.WARNING, logger="vrouter.systemd"):
        assert not systemd.ready()
    assert "unsupported address" in caplog.text


def test_unreachable_socket_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    with caplog.at_level(logging.WARNING, logger="vrouter.systemd"):
        assert not systemd.ready("x")
    assert "sd_notify READY, STATUS" in caplog.text


# sd_watchdog_enabled(3).


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "1"}, 0.0000005),
        ({}, None),
        ({"WATCHDOG_USEC": ""}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "30s"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], interval: float | None) -> None:
    assert systemd.watchdog_interval(env) == interval


def test_watchdog_pid_must_be_ours() -> None:
    ours = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert systemd.watchdog_interval(ours) == 1.0
    parent = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getppid())}
    assert systemd.watchdog_interval(parent) is None
    garbage = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "self"}
    assert systemd.watchdog_interval(garbage) is None


def test_watchdog_interval_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 2.0


# Keep-alives from the event loop.


def test_watchdog_pings_from_the_loop(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")  # ping every 50 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    async def run() -> int:
        dog = systemd.Watchdog.start(asyncio.get_running_loop())
        assert dog is not None
        assert dog.interval == 0.05
        await asyncio.sleep(0.32)
        dog.cancel()
        sent = dog.sent
        await asyncio.sleep(0.15)
        assert dog.sent == sent, "cancel() stops the pings"
        return sent

    sent = asyncio.run(run())
    # One at start, then one per interval: 0.32 s holds seven, fewer on a busy machine.
    assert 3 <= sent <= 8
    assert listener.pending() == [["WATCHDOG=1"]] * sent


def test_watchdog_stops_while_the_loop_is_stuck(
    listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "100000")

    async def run() -> tuple[int, int]:
        dog = systemd.Watchdog.start(asyncio.get_running_loop())
        assert dog is not None
        await asyncio.sleep(0.01)
        before = dog.sent
        time.sleep(0.3)  # the loop does not turn: no keep-alive may go out
        during = dog.sent - before
        dog.cancel()
        return before, during

    before, during = asyncio.run(run())
    assert before == 1
    assert during == 0


def test_watchdog_disabled_without_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)

    async def run() -> systemd.Watchdog | None:
        return systemd.Watchdog.start(asyncio.get_running_loop())

    assert asyncio.run(run()) is None
