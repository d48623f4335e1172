"""Tests for vrouter.api.client: requests sent together come back in order."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from vrouter.api.client import PIPELINE, ControlClient
from vrouter.api.protocol import ApiError, encode


@pytest.fixture
def echo_socket(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A control socket that answers each request line in turn: ``bad`` is refused,
    anything else returns its arguments; the ops it saw are listed."""
    path = str(tmp_path / "control.sock")
    seen: list[str] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(10)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            for line in lines:
                request = json.loads(line)
                seen.append(request["op"])
                if request["op"] == "bad":
                    reply = {"ok": False, "error": "refused here", "errno": "EINVAL"}
                else:
                    reply = {"ok": True, "result": request["args"]}
                conn.sendall(encode(reply))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, seen
    thread.join(timeout=10)
    listener.close()


def test_calls_returns_every_result_in_order(echo_socket: tuple[str, list[str]]) -> None:
    path, seen = echo_socket
    with ControlClient(path, timeout=10) as client:
        results = client.calls([(f"op{i}", {"n": i}) for i in range(PIPELINE)])
        assert client.call("after", n=-1) == {"n": -1}  # the stream is still in step
    assert results == [{"n": i} for i in range(PIPELINE)]
    assert seen == [*(f"op{i}" for i in range(PIPELINE)), "after"]


def test_calls_reads_every_reply_then_raises_the_first_refusal(
    echo_socket: tuple[str, list[str]],
) -> None:
    path, seen = echo_socket
    with ControlClient(path, timeout=10) as client:
        with pytest.raises(ApiError, match="refused here"):
            client.calls([("first", {}), ("bad", {}), ("last", {})])
        assert client.call("next") == {}  # no reply of the batch was left unread
    assert seen == ["first", "bad", "last", "next"]
