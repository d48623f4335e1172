"""Views of a big table: ``vrouterctl route show`` of a million routes, against ``ip route show``.

A control server (the daemon's, :class:`vrouter.api.server.ControlServer`)
runs in this process over a vnet holding ``--routes`` IPv4 routes (/29s
from 198.18.0.0/15 upwards, blackholes: the FIB is what is measured, not
neighbours).  The real ``vrouterctl route show`` is timed against it, with
its output going to /dev/null (both the JSON and the table), while a
ticker on the server's loop records the longest pause (what forwarding
would see).  As root, the kernel does the same job in a network namespace
of its own: the same routes (``ip -batch``), then ``ip route show``.

    sudo .venv/bin/python bench/views.py                 # 1,000,000 routes
    .venv/bin/python bench/views.py --routes 100000 --no-write

Writes the ``views`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from report import loadavg, machine, write_section

from vrouter.api.server import ControlServer
from vrouter.daemon.config import parse
from vrouter.daemon.ops import Ops
from vrouter.io.driver import Driver
from vrouter.route.fib import BLACKHOLE, Route
from vrouter.stack import new_tree

BASE = int(ipaddress.IPv4Address("198.18.0.0"))


def prefixes(count: int) -> list[ipaddress.IPv4Network]:
    """Return ``count`` distinct /29s upwards from 198.18.0.0 (past 198.19 for a million)."""
    return [ipaddress.IPv4Network((BASE + (k << 3), 29)) for k in range(count)]


class Server:
    """A control server on its own thread and loop, over one vnet with many routes."""

    def __init__(self, count: int, path: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.path = path
        self.pauses: list[float] = []
        self.started = threading.Event()
        tree = new_tree()
        ops = Ops(tree, Driver(self.loop))
        vnet = ops.create_vnet("red")
        began = time.perf_counter()
        fib = vnet.route.fib
        for prefix in prefixes(count):
            fib.add(Route(prefix, BLACKHOLE))
        self.load_s = time.perf_counter() - began
        config = parse('[daemon]\ncontrol_socket = "/run/vrouter-bench.sock"\n', "bench.toml")
        host = SimpleNamespace(
            tree=tree, ops=ops, driver=ops.driver, config=config, lock=asyncio.Lock(), spec=None
        )
        self.server = ControlServer(host)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.started.wait(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start(self.path))
        self.loop.call_soon(self.started.set)
        self.loop.create_task(self._tick())
        self.loop.run_forever()

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.pauses.append(now - last)
            last = now

    def longest_pause(self) -> float:
        return max(self.pauses, default=0.0)

    def stop(self) -> None:
        async def close() -> None:
            await self.server.close()
            self.loop.stop()

        for task in asyncio.all_tasks(self.loop):
            self.loop.call_soon_threadsafe(task.cancel)
        asyncio.run_coroutine_threadsafe(close(), self.loop)
        self.thread.join(10)


def time_vrouterctl(path: str, *extra: str) -> tuple[float, int]:
    """Return (seconds, bytes written) of ``vrouterctl route show red`` with ``extra`` options."""
    cmd = [sys.executable, "-m", "vrouter.cli.vrouterctl", "--socket", path, *extra,
           "route", "show", "red"]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, check=True, timeout=900)
    return time.perf_counter() - began, len(done.stdout)


def time_kernel(count: int) -> tuple[float, float, int] | None:
    """Return (load s, show s, bytes) for ``ip route show`` of the same routes in a netns."""
    if os.geteuid() != 0:
        return None
    ns = f"vr-views-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as batch:
            for prefix in prefixes(count):
                batch.write(f"route add blackhole {prefix}\n")
        began = time.perf_counter()
        subprocess.run(["ip", "-n", ns, "-batch", batch.name], check=True, timeout=900)
        load = time.perf_counter() - began
        os.unlink(batch.name)
        began = time.perf_counter()
        done = subprocess.run(["ip", "-n", ns, "route", "show"], capture_output=True,
                              check=True, timeout=900)  # fmt: skip
        return load, time.perf_counter() - began, len(done.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="vrouter-views-") as tmp:
        server = Server(args.routes, str(Path(tmp) / "control.sock"))
        try:
            table_s, table_bytes = time_vrouterctl(server.path)
            table_pause = server.longest_pause()
            server.pauses.clear()
            json_s, json_bytes = time_vrouterctl(server.path, "--json")
            json_pause = server.longest_pause()
        finally:
            server.stop()
    kernel = time_kernel(args.routes)
    rows = [
        "| measure | vrouter | Linux kernel |",
        "|---|---|---|",
        f"| {args.routes:,} routes loaded | {server.load_s:.1f} s (Fib.add in-process) | "
        + (f"{kernel[0]:.1f} s (`ip -batch`) |" if kernel else "not run (needs root) |"),
        f"| `route show`, table | {table_s:.1f} s, {table_bytes / 1e6:.0f} MB | "
        + (f"{kernel[1]:.1f} s, {kernel[2] / 1e6:.0f} MB (`ip route show`) |" if kernel else "|"),
        f"| `route show --json` | {json_s:.1f} s, {json_bytes / 1e6:.0f} MB | |",
        f"| longest pause of the server's loop during the view | {table_pause * 1000:.0f} ms "
        f"(table), {json_pause * 1000:.0f} ms (JSON) | |",
    ]
    text = "\n".join(
        [
            "## Views of a big table (`bench/views.py`)",
            "",
            f"`vrouterctl route show` of {args.routes:,} IPv4 routes from a control server "
            "in the bench process (the daemon's `ControlServer`), output to a pipe, against "
            "`ip route show` of the same routes in a network namespace. The reply streams "
            "512 routes per loop pass; the longest pause is what a vnet's forwarding on the "
            "same loop would wait.",
            "",
            *machine(),
            f"- load average at the end: {loadavg()}",
            "",
            *rows,
            "",
        ]
    )
    print(text)
    if not args.no_write:
        write_section("views", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
