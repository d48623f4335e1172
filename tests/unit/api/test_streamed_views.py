"""Views of any size: a long view is written a slice per loop pass, as one JSON line."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vrouter.api.server import ControlServer
from vrouter.daemon.config import parse
from vrouter.daemon.ops import Ops
from vrouter.io.driver import Driver
from vrouter.route.fib import Route
from vrouter.stack import new_tree

ROUTES = 20000


async def _lab(tmp_path: Path) -> tuple[ControlServer, str]:
    tree = new_tree()
    ops = Ops(tree, Driver(asyncio.get_running_loop()))
    ops.create_vnet("red")
    base = int(ipaddress.IPv4Address("198.18.0.0"))
    for k in range(ROUTES):
        prefix = ipaddress.IPv4Network((base + (k << 3), 29))
        ops.add_route("red", prefix, "blackhole", None, None)
    config = parse('[daemon]\ncontrol_socket = "/run/x.sock"\n', "t.toml")
    host = SimpleNamespace(tree=tree, ops=ops, driver=ops.driver, config=config,
                           lock=asyncio.Lock(), spec=None)
    server = ControlServer(host)  # type: ignore[arg-type]
    path = str(tmp_path / "c.sock")
    await server.start(path)
    return server, path


async def _ask(path: str, op: str, **args: Any) -> Any:
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 30)
    writer.write(json.dumps({"op": op, "args": args}).encode() + b"\n")
    line = await reader.readline()
    writer.close()
    return json.loads(line)


def test_a_long_view_streams_while_the_loop_keeps_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes = 0
    seen: set[int] = set()  # loop passes in which routes were described
    describe = Route.describe

    def counted(route: Route, state: str | None = None) -> dict[str, object]:
        seen.add(passes)
        return describe(route, state)

    monkeypatch.setattr(Route, "describe", counted)

    async def scenario() -> None:
        nonlocal passes
        server, path = await _lab(tmp_path)

        async def ticker() -> None:
            nonlocal passes
            while True:
                passes += 1
                await asyncio.sleep(0)

        beat = asyncio.create_task(ticker())
        try:
            reply = await _ask(path, "route.show", vnet="red")
        finally:
            beat.cancel()
            await server.close()
        assert reply["ok"] is True
        assert len(reply["result"]) == ROUTES
        assert reply["result"][0]["prefix"].endswith("/29")
        assert len(seen) >= 20, "the routes were described across loop passes, a slice each"

    asyncio.run(scenario())


def test_route_show_filters_by_prefix_family_and_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        server, path = await _lab(tmp_path)
        try:
            within = await _ask(path, "route.show", vnet="red", prefix="198.18.0.0/24")
            limited = await _ask(path, "route.show", vnet="red", limit=3)
            v6 = await _ask(path, "route.show", vnet="red", family="inet6")
            clash = await _ask(path, "route.show", vnet="red", family="inet6",
                               prefix="198.18.0.0/24")
            bad = await _ask(path, "route.show", vnet="red", prefix="198.18.0.0/33")
            nope = await _ask(path, "route.show", vnet="red", source="nope")
            rip = await _ask(path, "route.show", vnet="red", source="rip")
        finally:
            await server.close()
        assert [r["prefix"] for r in within["result"]][:2] == ["198.18.0.0/29", "198.18.0.8/29"]
        assert len(within["result"]) == 32
        assert len(limited["result"]) == 3
        assert v6["result"] == []
        assert clash["ok"] is False and "is not of family inet6" in clash["error"]
        assert bad["ok"] is False and "bad prefix '198.18.0.0/33'" in bad["error"]
        assert nope["ok"] is False and "no route source 'nope' (known: " in nope["error"]
        assert rip["ok"] is True and rip["result"] == [], "a known source with no routes"

    asyncio.run(scenario())
