"""Control requests the fuzzer (tests/fuzzlab.py) found answered with an internal error.

Each test holds the literal request line and checks it gets an error reply
that names what is wrong, and no traceback in the log.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from vrouter.api.server import ControlServer
from vrouter.daemon.ops import Ops
from vrouter.io.driver import Driver
from vrouter.stack import new_tree


def _answer(line: bytes, tree: Any = None) -> dict[str, Any]:
    loop = asyncio.new_event_loop()
    try:
        if tree is None:
            tree = new_tree()
            tree.create("red")
        host = SimpleNamespace(
            tree=tree, ops=Ops(tree, Driver(loop)), lock=asyncio.Lock(), endpoints=set(),
            streams=set(), spec=None,
        )  # fmt: skip
        reply, passing = loop.run_until_complete(ControlServer(host).answer(line))  # type: ignore[arg-type]
        assert passing is None
        return reply
    finally:
        loop.close()


def test_an_integer_argument_too_large_for_a_float_is_refused_by_its_range(
    caplog: pytest.LogCaptureFixture,
) -> None:
    big = b"1" + b"0" * 400
    line = b'{"op": "tcp.listen", "args": {"vnet": "red", "port": 8080, "backlog": -' + big + b"}}"
    with caplog.at_level(logging.ERROR):
        reply = _answer(line)
    assert reply == {"ok": False, "error": "'backlog' must be 1..65535"}
    assert not [r for r in caplog.records if r.exc_info]
    reply = _answer(
        b'{"op": "epair.create", "args": {"a": "red:x", "b": "red:y", "mtu": ' + big + b"}}"
    )
    assert not reply["ok"] and reply["error"].endswith("is not in 68..65535"), reply


def test_socket_requests_after_their_module_is_unloaded_are_refused_with_eprotonosupport(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tree = new_tree()
    tree.create("red")
    for name in ("tcp", "transport"):
        line = b'{"op": "module.unload", "args": {"name": "%s"}}' % name.encode()
        assert _answer(line, tree)["ok"]
    with caplog.at_level(logging.ERROR):
        listen = _answer(
            b'{"op": "tcp.listen", "args": {"vnet": "red", "family": "inet", "address": null, '
            b'"port": 8080, "backlog": 1}}',
            tree,
        )
        connect = _answer(
            b'{"op": "tcp.connect", "args": {"vnet": "red", "family": "inet", '
            b'"address": "192.0.2.5", "port": 80}}',
            tree,
        )
        udp = _answer(b'{"op": "socket.open", "args": {"vnet": "red", "type": "udp"}}', tree)
    for reply, missing in ((listen, "tcp"), (connect, "tcp"), (udp, "transport")):
        assert reply == {
            "ok": False,
            "error": f"vnet red: subsystem {missing} is not loaded",
            "errno": "EPROTONOSUPPORT",
        }
    assert not [r for r in caplog.records if r.exc_info]
