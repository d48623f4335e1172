#!/usr/bin/env python3
"""Scale benchmark: many vnets in one daemon, vnet churn at run time, one huge FIB.

  (a) idle memory per vnet: vrouterd started on a generated config of
      ``--vnets`` vnets (default 100,000) in pairs joined by epairs, each end
      with an IPv4 /30 and an IPv6 /64 (plus its link-local address); RSS
      (/proc/PID/status VmRSS) against a daemon with an empty config, and
      against 1,000- and 10,000-vnet daemons for the marginal cost; start-up
      time (target: 100,000 vnets at <= 16 KiB each, started in < 30 s).  Then
      the same vnets are built in-process under tracemalloc to find where the
      memory per vnet goes.
  (b) churn: ``--churn`` vnets (default 10,000) created and destroyed at run
      time through the control API (``vnet.create``, ``epair.create``,
      ``address.add``, ``vnet.destroy``) over one connection, ``--cycles``
      times, with the daemon's RSS before, between and after; plus the same
      cycle in-process under tracemalloc to tell a leak from allocator slack
      (target: 10,000 created and destroyed in < 5 s, memory back at its
      baseline).
  (c) one FIB with ``--v4`` IPv4 routes (default 1,000,000) and ``--v6`` IPv6
      routes (default 200,000): load time, lookups per second, memory, route
      churn, for vrouter's Fib (with its DIR-24-8 index for IPv4, and
      without) and the alternatives of bench/lpm.py.

No TAP or namespace is created (epairs have no kernel device), so it needs no
root.  Daemons run on generated configs in a temporary directory and are
stopped in ``finally`` blocks.  Results go to the "scale" section of
bench/RESULTS.md.

Usage:  .venv/bin/python bench/scale.py [--vnets 100000] [--churn 10000] [--cycles 3]
                               [--v4 1000000] [--v6 200000] [--parts a,b,c]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import linecache
import math
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import lpm
from forwarding import CLK_TCK, BenchError, Daemon
from report import loadavg, machine, write_section

from vrouter.api.client import PIPELINE, ControlClient

EMPTY = """\
[daemon]
control_socket = "@DIR@/control.sock"
state_dir = "@DIR@/state"
log_level = "warning"
"""
PAIR = """
[vnets.{a}.interfaces.ep0]
type = "epair"
peer = "{b}:ep0"
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[vnets.{b}.interfaces.ep0]
type = "epair"
peer = "{a}:ep0"
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]
"""
KIB = 1024
IDLE_KIB = 16
"""Target: idle memory per vnet, KiB (issue 17)."""
START_S = 30
"""Target: seconds to start the daemon with ``--vnets`` vnets."""
CHURN_S = 5
"""Target: seconds to create and destroy ``--churn`` vnets through the control API."""


def vnets_config(count: int) -> str:
    """Return a config of ``count`` vnets (even) joined in pairs by epairs."""
    parts = [EMPTY]
    for i in range(0, count, 2):
        parts.append(PAIR.format(a=f"s{i:05d}", b=f"s{i + 1:05d}"))
    return "".join(parts)


def rss_kib(pid: int) -> int:
    """Return VmRSS of ``pid`` in KiB."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) if match else 0


def settle(daemon: Daemon, minimum: float = 3.0, limit: float = 60.0) -> float:
    """Wait until the daemon has used no CPU for a second (DAD and such done); return s waited."""
    t0 = time.monotonic()
    time.sleep(minimum)
    last = daemon.cpu_ticks()
    quiet = 0
    while time.monotonic() - t0 < limit and quiet < 2:
        time.sleep(0.5)
        now = daemon.cpu_ticks()
        quiet = quiet + 1 if now == last else 0
        last = now
    return time.monotonic() - t0


# --------------------------------------------------------------------------- (a)


@dataclass
class Idle:
    vnets: int
    startup_s: float
    check_s: float
    startup_cpu_s: float
    rss_kib: int
    settle_s: float
    reported_vnets: int


@dataclass
class PartA:
    base_rss_kib: int = 0
    runs: list[Idle] = field(default_factory=list)
    traced_vnets: int = 0
    traced_bytes: int = 0
    top_lines: list[tuple[str, int, int]] = field(default_factory=list)  # (where, bytes, count)
    top_files: list[tuple[str, int]] = field(default_factory=list)


def start_daemon(workdir: Path, name: str, config: str, timeout: float = 600) -> Daemon:
    daemon = Daemon(workdir, name, config)
    daemon.start(timeout=timeout)
    return daemon


def idle_daemon(workdir: Path, vnets: int, daemons: list[Daemon]) -> Idle:
    """Start a daemon with ``vnets`` vnets, measure start-up and idle RSS, stop it."""
    config = vnets_config(vnets)
    name = f"idle{vnets}"
    daemon = Daemon(workdir, name, config)
    daemons.append(daemon)
    t0 = time.monotonic()
    check = subprocess.run(
        [sys.executable, "-m", "vrouter.daemon.main", "--check", "-c", str(daemon.config)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    check_s = time.monotonic() - t0
    if check.returncode != 0:
        raise BenchError(f"generated config refused: {check.stdout}{check.stderr}")
    t0 = time.monotonic()
    daemon.start(timeout=600)
    startup = time.monotonic() - t0
    cpu = daemon.cpu_ticks() / CLK_TCK
    waited = settle(daemon)
    status = daemon.call("status")
    assert isinstance(status, dict)
    rss = rss_kib(daemon.pid)
    daemon.stop()
    return Idle(vnets, startup, check_s, cpu, rss, waited, int(status.get("vnets", -1)))


def traced_build(vnets: int) -> tuple[int, list[tuple[str, int, int]], list[tuple[str, int]]]:
    """Build ``vnets`` vnets in-process as the daemon does, under tracemalloc.

    Return the bytes still allocated after a 3-second idle run of the loop,
    the top allocation sites and the top files.
    """
    import uvloop

    from vrouter.daemon.build import bring_up, build
    from vrouter.daemon.config import load
    from vrouter.io.driver import Driver

    with tempfile.TemporaryDirectory(prefix="vrouter-scale-trace-") as tmp:
        path = Path(tmp) / "vrouter.toml"
        path.write_text(vnets_config(vnets).replace("@DIR@", tmp))
        loop = uvloop.new_event_loop()
        try:
            gc.collect()
            tracemalloc.start(4)
            before = tracemalloc.take_snapshot()
            config = load(str(path))  # the daemon keeps its config
            driver = Driver(loop)
            built = build(config, driver.now())
            for vnet in built.tree:
                driver.attach_vnet(vnet)
            for a, b in built.epairs:
                driver.add_epair(a, b)
            for vcfg in config.vnets:
                bring_up(built.tree.get(vcfg.name), list(vcfg.interfaces), driver.now())
            loop.run_until_complete(asyncio.sleep(3))  # DAD, announcements, epair pumps
            gc.collect()
            after = tracemalloc.take_snapshot()
            tracemalloc.stop()
            keep = (config, built, driver)
            total, top, top_files = top_sites(before, after, 15)
            del keep
        finally:
            loop.close()
    return total, top, top_files


def _where(filename: str, lineno: int) -> str:
    marker = "/vrouter/"
    if marker in filename:
        filename = "vrouter/" + filename.rsplit(marker, 1)[1]
    elif "/lib/python" in filename:
        filename = "stdlib " + filename.rsplit("/", 1)[1]
    return f"{filename}:{lineno}" if lineno else filename


def _label(frames: list[tracemalloc.Frame]) -> str:
    """Name an allocation by its most recent frame, a dataclass ``__init__`` by its caller.

    Markdown for a table cell: ``where`` (and the source line).
    """
    frame = frames[-1]
    suffix = ""
    if frame.filename == "<string>" and len(frames) > 1:  # a generated __init__
        frame, suffix = frames[-2], " (in a dataclass `__init__`)"
    code = linecache.getline(frame.filename, frame.lineno).strip().replace("|", "\\|")
    if len(code) > 70:
        code = code[:67] + "..."
    where = _where(frame.filename, frame.lineno)
    return f"`{where}`{suffix}" + (f": `{code}`" if code else "")


def top_sites(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, limit: int
) -> tuple[int, list[tuple[str, int, int]], list[tuple[str, int]]]:
    """Return bytes gained, the top allocation sites and the top files between snapshots."""
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    before, after = before.filter_traces(filters), after.filter_traces(filters)
    sites: dict[str, list[int]] = {}
    files: dict[str, int] = {}
    total = 0
    for diff in after.compare_to(before, "traceback"):
        if not diff.size_diff and not diff.count_diff:
            continue
        label = _label(list(diff.traceback))
        entry = sites.setdefault(label, [0, 0])
        entry[0] += diff.size_diff
        entry[1] += diff.count_diff
        file = label.split(":", 1)[0].strip("`")
        files[file] = files.get(file, 0) + diff.size_diff
        total += diff.size_diff
    top = sorted(((k, v[0], v[1]) for k, v in sites.items()), key=lambda x: -x[1])[:limit]
    top_files = sorted(files.items(), key=lambda x: -x[1])[:10]
    return total, top, top_files


def part_a(workdir: Path, args: argparse.Namespace, daemons: list[Daemon]) -> PartA:
    result = PartA()
    base = start_daemon(workdir, "idle-empty", EMPTY)
    daemons.append(base)
    settle(base)
    result.base_rss_kib = rss_kib(base.pid)
    base.stop()
    print(f"(a) empty daemon: RSS {result.base_rss_kib / KIB:.1f} MiB", flush=True)
    sizes = sorted({min(1000, args.vnets), min(10_000, args.vnets), args.vnets})
    for n in sizes:
        idle = idle_daemon(workdir, n, daemons)
        result.runs.append(idle)
        per = (idle.rss_kib - result.base_rss_kib) / idle.vnets
        print(f"(a) {n:,} vnets: ready in {idle.startup_s:.1f} s ({idle.check_s:.1f} s --check), "
              f"RSS {idle.rss_kib / KIB:.1f} MiB, {per:.1f} KiB per vnet", flush=True)  # fmt: skip
    result.traced_vnets = min(args.vnets, args.trace_vnets)
    print(f"(a) tracemalloc over {result.traced_vnets:,} vnets built in-process ...", flush=True)
    result.traced_bytes, result.top_lines, result.top_files = traced_build(result.traced_vnets)
    print(f"(a) traced {result.traced_bytes / result.traced_vnets / KIB:.1f} KiB per vnet")
    return result


# --------------------------------------------------------------------------- (b)


@dataclass
class Cycle:
    create_s: float
    destroy_s: float
    calls: int
    rss_before: int
    rss_created: int
    rss_after: int


@dataclass
class PartB:
    base_rss_kib: int = 0
    cycles: list[Cycle] = field(default_factory=list)
    inproc_s: list[float] = field(default_factory=list)
    leaked_bytes: int = 0
    leak_top: list[tuple[str, int, int]] = field(default_factory=list)


def churn_names(count: int) -> list[tuple[str, str]]:
    return [(f"c{i:04d}a", f"c{i:04d}b") for i in range(count // 2)]


def pipelined(client: ControlClient, requests: list[tuple[str, dict[str, object]]]) -> int:
    """Send ``requests`` in order, ``PIPELINE`` at a time (each answered before the next
    is read by the daemon, so later ones may use earlier ones); return how many."""
    for i in range(0, len(requests), PIPELINE):
        client.calls(requests[i : i + PIPELINE])
    return len(requests)


def api_cycle(daemon: Daemon, count: int) -> Cycle:
    """Create ``count`` vnets in epair-joined pairs with addresses, then destroy them."""
    rss_before = rss_kib(daemon.pid)
    pairs = churn_names(count)
    calls = 0
    creating = [
        request
        for a, b in pairs
        for request in (
            ("vnet.create", {"name": a}),
            ("vnet.create", {"name": b}),
            ("epair.create", {"a": f"{a}:ep0", "b": f"{b}:ep0"}),
            ("address.add", {"vnet": a, "interface": "ep0", "address": "203.0.113.1/30"}),
            ("address.add", {"vnet": b, "interface": "ep0", "address": "203.0.113.2/30"}),
        )
    ]
    destroying = [("vnet.destroy", {"name": name}) for pair in pairs for name in pair]
    with ControlClient(daemon.socket, timeout=60) as client:
        t0 = time.monotonic()
        calls += pipelined(client, creating)
        create_s = time.monotonic() - t0
        rss_created = rss_kib(daemon.pid)
        t0 = time.monotonic()
        calls += pipelined(client, destroying)
        destroy_s = time.monotonic() - t0
        left = client.call("status")
    assert isinstance(left, dict)
    if left.get("vnets") != 1:
        raise BenchError(f"after destroying, the daemon still has {left.get('vnets')} vnets")
    settle(daemon, minimum=1.0)
    return Cycle(create_s, destroy_s, calls, rss_before, rss_created, rss_kib(daemon.pid))


def inproc_cycles(count: int, cycles: int) -> tuple[list[float], int, list[tuple[str, int, int]]]:
    """Run the same churn through ``Ops`` in-process; return times, bytes leaked, sites."""
    import uvloop

    from vrouter.daemon.ops import Ops, interface_config
    from vrouter.io.driver import Driver
    from vrouter.stack import new_tree

    loop = uvloop.new_event_loop()
    try:
        tree = new_tree()
        ops = Ops(tree, Driver(loop), None)
        ip1 = ipaddress.ip_interface("203.0.113.1/30")
        ip2 = ipaddress.ip_interface("203.0.113.2/30")

        async def cycle() -> float:
            pairs = churn_names(count)
            t0 = time.perf_counter()
            for a, b in pairs:
                ops.create_vnet(a)
                ops.create_vnet(b)
                ops.create_epair(
                    a, interface_config("ep0", "epair", peer=(b, "ep0")),
                    b, interface_config("ep0", "epair", peer=(a, "ep0")),
                )  # fmt: skip
                ops.add_address(a, "ep0", ip1)
                ops.add_address(b, "ep0", ip2)
            await asyncio.sleep(0)
            for a, b in pairs:
                await ops.destroy_vnet(a)
                await ops.destroy_vnet(b)
            took = time.perf_counter() - t0
            await asyncio.sleep(0.1)  # callbacks the cycle scheduled run
            return took

        times = [loop.run_until_complete(cycle()) for _ in range(cycles)]
        # Steady state: what one more cycle leaves allocated after an earlier traced one
        # (the first traced cycle also grows dicts and caches once).
        gc.collect()
        tracemalloc.start(4)
        loop.run_until_complete(cycle())
        gc.collect()
        # CPython's type attribute cache keeps up to 4096 attribute-name strings alive;
        # clear it so that bounded cache does not read as a leak.
        sys._clear_type_cache()
        before = tracemalloc.take_snapshot()
        loop.run_until_complete(cycle())
        gc.collect()
        sys._clear_type_cache()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        leaked, top, _ = top_sites(before, after, 8)
        top = [t for t in top if t[1]]
    finally:
        loop.close()
    return times, leaked, top


def part_b(workdir: Path, args: argparse.Namespace, daemons: list[Daemon]) -> PartB:
    result = PartB()
    daemon = start_daemon(workdir, "churn", EMPTY)
    daemons.append(daemon)
    settle(daemon)
    result.base_rss_kib = rss_kib(daemon.pid)
    for i in range(args.cycles):
        cycle = api_cycle(daemon, args.churn)
        result.cycles.append(cycle)
        print(f"(b) cycle {i + 1}: create {cycle.create_s:.2f} s, destroy {cycle.destroy_s:.2f} s "
              f"({cycle.calls} calls); RSS {cycle.rss_before / KIB:.1f} -> "
              f"{cycle.rss_created / KIB:.1f} -> {cycle.rss_after / KIB:.1f} MiB",
              flush=True)  # fmt: skip
    daemon.stop()
    result.inproc_s, result.leaked_bytes, result.leak_top = inproc_cycles(args.churn, args.cycles)
    print(f"(b) in-process: {', '.join(f'{t:.2f}' for t in result.inproc_s)} s per cycle; "
          f"{result.leaked_bytes / KIB:.1f} KiB still allocated after a further cycle")  # fmt: skip
    return result


# --------------------------------------------------------------------------- report


def _verdict(ok: bool, text: str) -> str:
    return f"**met** ({text})" if ok else f"**missed** ({text})"


def render(
    args: argparse.Namespace,
    a: PartA | None,
    b: PartB | None,
    c: list[dict] | None,
    host: list[str],
    loads: tuple[str, str],
) -> str:
    out = [
        "## Scale",
        "",
        f"`.venv/bin/python bench/scale.py --vnets {args.vnets} --churn {args.churn} --cycles "
        f"{args.cycles} --v4 {args.v4} --v6 {args.v6}` (see bench/README.md).",
        "",
        "### Machine",
        "",
        *host,
        f"- Load average (1/5/15 min) at start: {loads[0]}; at end: {loads[1]}",
        "",
    ]
    targets = ["| target | measured | verdict |", "|---|---:|---|"]
    if a is not None:
        big = a.runs[-1]
        per_vnet = (big.rss_kib - a.base_rss_kib) / big.vnets
        targets.append(
            f"| {big.vnets:,} vnets: <= {IDLE_KIB} KiB idle memory each | {per_vnet:.1f} KiB "
            f"| {_verdict(per_vnet <= IDLE_KIB, f'{per_vnet / IDLE_KIB:.2f} x the limit')} |"
        )
        targets.append(
            f"| {big.vnets:,} vnets started in < {START_S} s (to the control socket answering) "
            f"| {big.startup_s:.1f} s "
            f"| {_verdict(big.startup_s < START_S, f'{big.startup_s / START_S:.2f} x the limit')} |"
        )
        out += [
            "### (a) Idle memory per vnet",
            "",
            "Each vnet has one interface, an end of an epair to the other vnet of its pair, "
            "with 203.0.113.1/30 or .2/30 and 2001:db8:ff::1/64 or ::2/64 (plus an EUI-64 "
            "link-local address); log level warning. RSS is read once the daemon has used no "
            "CPU for a second (DAD and announcements over). Per vnet = (RSS - RSS of a daemon "
            f"with an empty config, {a.base_rss_kib / KIB:.1f} MiB) / vnets; marginal = the "
            "slope between the two sizes.",
            "",
            "| vnets | vnets reported | start-up s (to control socket answering) "
            "| `--check` alone s (parse + validate, a separate run) | daemon CPU s at start-up "
            "| RSS MiB | per vnet KiB | marginal KiB per vnet |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        prev: Idle | None = None
        for r in a.runs:
            per = (r.rss_kib - a.base_rss_kib) / r.vnets
            marginal = (
                f"{(r.rss_kib - prev.rss_kib) / (r.vnets - prev.vnets):.1f}"
                if prev is not None and r.vnets > prev.vnets
                else ""
            )
            out.append(
                f"| {r.vnets:,} | {r.reported_vnets:,} | {r.startup_s:.1f} | {r.check_s:.1f} "
                f"| {r.startup_cpu_s:.1f} | {r.rss_kib / KIB:.1f} | {per:.1f} | {marginal} |"
            )
            prev = r
        per_traced = a.traced_bytes / a.traced_vnets
        out += [
            "",
            f"Where it goes: the same vnets built in-process (`vrouter.daemon.build`, the "
            f"driver, `bring_up`, 3 s of the loop) for {a.traced_vnets:,} vnets under "
            f"tracemalloc: {per_traced / KIB:.1f} KiB per vnet of live Python allocations "
            "(RSS per vnet above also holds allocator slack and the config parse's garbage "
            "that pymalloc does not give back). Largest sites, bytes per vnet:",
            "",
            "| allocation site | bytes per vnet | objects per vnet |",
            "|---|---:|---:|",
        ]
        for where, size, count in a.top_lines:
            out.append(f"| {where} | {size / a.traced_vnets:,.0f} "
                       f"| {count / a.traced_vnets:.1f} |")  # fmt: skip
        out += ["", "By file:", "", "| file | bytes per vnet |", "|---|---:|"]
        for where, size in a.top_files:
            out.append(f"| `{where}` | {size / a.traced_vnets:,.0f} |")
        out.append("")
    if b is not None:
        totals = [cy.create_s + cy.destroy_s for cy in b.cycles]
        best = statistics.median(totals)
        targets.append(
            f"| {args.churn:,} vnets created + destroyed in < {CHURN_S} s (control API, median "
            f"of {len(totals)}) | {best:.2f} s "
            f"| {_verdict(best < CHURN_S, f'{best / CHURN_S:.2f} x the limit')} |"
        )
        last = b.cycles[-1]
        kept = last.rss_after - b.base_rss_kib
        steady = last.rss_after - (b.cycles[-2].rss_after if len(b.cycles) > 1 else last.rss_before)
        targets.append(
            f"| live allocations back at their baseline after a churn cycle (tracemalloc, "
            f"in-process) | {b.leaked_bytes / KIB:.1f} KiB left by a cycle of {args.churn:,} "
            f"| {_verdict(b.leaked_bytes <= 16 * KIB, 'nothing leaks')} |"
        )
        targets.append(
            f"| RSS back at its baseline after churn | {kept / KIB:+.1f} MiB from the empty "
            f"daemon after the last cycle ({steady / KIB:+.1f} MiB over that cycle) "
            f"| {_verdict(kept <= KIB, 'the allocator keeps its high-water mark')} |"
        )
        out += [
            "### (b) Creating and destroying vnets at run time",
            "",
            f"A daemon with an empty config; per cycle, over one control connection, "
            f"{PIPELINE} requests sent at a time (`ControlClient.calls`; the daemon still "
            "answers them one after the other): "
            f"`vnet.create` x {args.churn}, `epair.create` x {args.churn // 2} (pairs), "
            f"`address.add` x {args.churn} (203.0.113.1/30, .2/30), then `vnet.destroy` x "
            f"{args.churn}. Baseline RSS {b.base_rss_kib / KIB:.1f} MiB.",
            "",
            "| cycle | create s | destroy s | total s | calls/s | RSS before MiB "
            "| RSS with vnets MiB | RSS after destroy MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, cy in enumerate(b.cycles):
            total = cy.create_s + cy.destroy_s
            out.append(
                f"| {i + 1} | {cy.create_s:.2f} | {cy.destroy_s:.2f} | {total:.2f} "
                f"| {cy.calls / total:,.0f} | {cy.rss_before / KIB:.1f} "
                f"| {cy.rss_created / KIB:.1f} | {cy.rss_after / KIB:.1f} |"
            )
        growth = (last.rss_after - b.cycles[0].rss_after) / KIB
        out += [
            "",
            f"RSS after the last cycle is {(last.rss_after - b.base_rss_kib) / KIB:+.1f} MiB "
            f"from the baseline and {growth:+.1f} MiB from after the first cycle. The same "
            f"cycle through `vrouter.daemon.ops.Ops` in-process (no API, no JSON): "
            f"{', '.join(f'{t:.2f}' for t in b.inproc_s)} s; after those cycles one more under "
            f"tracemalloc, after a first traced one, leaves {b.leaked_bytes / KIB:.1f} KiB more "
            f"allocated ({b.leaked_bytes / args.churn:.0f} bytes per vnet created and "
            "destroyed): the leak per cycle, if any (CPython's type attribute cache is "
            "cleared before both snapshots: it holds up to 4096 attribute-name strings, "
            "which would otherwise show as a leak of any code that makes names per call).",
        ]
        if b.leak_top:
            out += ["", "| still allocated after the cycle | bytes | objects |", "|---|---:|---:|"]
            out += [f"| {w} | {s:,} | {n} |" for w, s, n in b.leak_top]
        out.append("")
    if c is not None:
        lines, notes = lpm.table(c)
        fib4 = next((r for r in c if r.get("impl") == "fib" and r["family"] == 4
                     and "load_s" in r), None)  # fmt: skip
        if fib4 is not None:
            load = fib4["load_s"] + fib4["route_objects_s"]
            rate = statistics.median(fib4["random_rates"])
            targets.append(
                f"| {fib4['routes']:,} IPv4 routes loaded in < 3 s (Fib, Route objects made "
                f"included) | {load:.2f} s | {_verdict(load < 3, f'{load / 3:.2f} x the limit')} |"
            )
            mib = lpm.total_mib(fib4)
            targets.append(
                f"| {fib4['routes']:,} IPv4 routes in <= 200 MiB (RSS growth, Route objects "
                f"included) | {mib:.0f} MiB "
                f"| {_verdict(mib <= 200, f'{mib / 200:.2f} x the limit')} |"
            )
            for family, target in ((4, 3e6), (6, 1e6)):
                row = next((r for r in c if r.get("impl") == "fib" and r["family"] == family
                            and "random_rates" in r), None)  # fmt: skip
                if row is None:
                    continue
                rate = statistics.median(row.get("nhop_random_rates") or row["random_rates"])
                routes = statistics.median(row["random_rates"])
                kind = "DIR-24-8" if family == 4 else "top-32-bit"
                index = f"with its {kind} index" if row.get("indexed") else "dicts only"
                targets.append(
                    f"| >= {target / 1e6:.0f}M IPv{family} lookups/s on cache misses (Fib "
                    f"{index}, random destinations, one call each of `lookup_nhop`, the "
                    f"data path's) | {rate / 1e6:.2f} M/s (`lookup` to the route: "
                    f"{routes / 1e6:.2f} M/s) "
                    f"| {_verdict(rate >= target, f'{rate / target:.2f} x the target')} |"
                )
            if "delete_us" in fib4:
                targets.append(
                    f"| route churn at {fib4['routes']:,} IPv4 routes (no limit set) "
                    f"| delete {fib4['delete_us']:.1f} us, add {fib4['add_us']:.1f} us per "
                    f"route; default route {fib4['default_add_ms']:.0f} ms | recorded |"
                )
        winners = []
        for family in (4, 6):
            done = [r for r in c if r["family"] == family and "random_rates" in r]
            if done:
                best = max(done, key=lambda r: statistics.median(r["random_rates"]))
                small = min(done, key=lambda r: r["rss_kib"])
                fast_load = min(done, key=lambda r: r["load_s"])
                winners.append(
                    f"- IPv{family}: fastest lookups **{best['impl']}** "
                    f"({statistics.median(best['random_rates']) / 1e6:.2f} M/s on random "
                    f"destinations); fastest load **{fast_load['impl']}** "
                    f"({fast_load['load_s']:.2f} s); least memory **{small['impl']}** "
                    f"(+{small['rss_kib'] / KIB:.0f} MiB RSS)."
                )
        out += [
            "### (c) One FIB with many routes",
            "",
            f"Random prefixes with a full-table length mix (IPv4 mostly /24, IPv6 mostly /48; "
            f"seed {lpm.SEED}) plus a default route, each a `vrouter.route.fib.Route` made "
            "from the integers (`Route.of`; building those is the '+ Route objects' column, "
            "the same for every structure but `fib`, which makes them as it loads them, a "
            "generator into `Fib.add_many`, as a table loader does: its load and RSS growth "
            "include them). Each structure in a fresh process: load = inserting "
            f"them all; lookups = {lpm.LOOKUPS:,} packed destinations, {lpm.REPEATS} passes "
            "(min/median/max), uniformly random (most fall through to the default route: "
            "the worst case for Fib, every length probed) and inside random installed "
            "prefixes; RSS growth over the load (C structures included); tracemalloc = "
            "Python-allocator bytes of the structure (a C extension's own malloc is not "
            "seen there). 'answers = Fib' compares a digest of the routes found for "
            f"{lpm.DIGEST_SAMPLE:,} destinations of each kind. `fib` is vrouter's Fib as the "
            f"daemon loads a table (`add_many`: an IPv4 table of {lpm.fib_module.INDEX_AT:,} "
            "routes or more builds its DIR-24-8 index once, after the last route, inside "
            "'load'; a single `add` patches it); `fibdict` the same Fib with the index "
            "turned off, the dicts probed longest first; `dir248` the bulk-built prototype "
            "of the same structure.",
            "",
            *lines,
            "",
            f"Route churn at full size, in the same process after the lookups: "
            f"{lpm.CHURN:,} random installed routes deleted, then added back (per route); "
            "the default route deleted and added back, and 10.0.0.0/8 deleted and added "
            "back (added and deleted if it is not there; best of 3); RSS change over all of it.",
            "",
            *lpm.churn_table(c),
            "",
            *winners,
            *[f"- {n}" for n in notes],
            "",
        ]
    return "\n".join([*out, "### Targets", "", *targets, ""])


# --------------------------------------------------------------------------- (d)

SCRAPE_COUNTS = "1,100,1000,10000"
SCRAPES = 10
PING_INTERVAL = "0.01"
IDLE_PINGS = 300
H1_ADDR, H2_ADDR = "192.0.2.2", "198.51.100.2"


def scrape_config(count: int, prefix: str, port: int, workers: int = 1) -> str:
    """Return a config of ``count`` vnets with the exporter on 127.0.0.1:``port``.

    One vnet, ``core``, forwards between two TAP hosts (``prefix`` h1 and h2,
    192.0.2.0/24 and 198.51.100.0/24); the others are pairs joined by epairs
    as in (a), plus a lone vnet when the count is even.  With workers, each
    pair is pinned to one worker (no wire between them) and ``core`` to 0.
    """
    head = EMPTY + f'metrics = "127.0.0.1:{port}"\n'
    if workers > 1:
        head += f"workers = {workers}\n"
    parts = [
        head,
        f"""
[vnets.core]
forwarding = true
{"worker = 0" if workers > 1 else ""}

[vnets.core.interfaces.{prefix}a]
type = "tap"
addresses = ["192.0.2.1/24"]
host = {{ netns = "{prefix}h1", addresses = ["{H1_ADDR}/24"], gateway = "192.0.2.1" }}

[vnets.core.interfaces.{prefix}b]
type = "tap"
addresses = ["198.51.100.1/24"]
host = {{ netns = "{prefix}h2", addresses = ["{H2_ADDR}/24"], gateway = "198.51.100.1" }}
""",
    ]
    others = count - 1
    for i in range(0, others - others % 2, 2):
        a, b = f"s{i:05d}", f"s{i + 1:05d}"
        if workers > 1:
            k = (i // 2) % workers
            parts.append(f"\n[vnets.{a}]\nworker = {k}\n\n[vnets.{b}]\nworker = {k}\n")
        parts.append(PAIR.format(a=a, b=b))
    if others % 2:
        parts.append(f"\n[vnets.lone]\n{'worker = 0' if workers > 1 else ''}\n")
    return "".join(parts)


@dataclass
class ScrapeRun:
    vnets: int
    workers: int
    startup_s: float
    plain_s: list[float] = field(default_factory=list)
    gzip_s: list[float] = field(default_factory=list)
    plain_bytes: int = 0
    gzip_bytes: int = 0
    idle_rtts: list[float] = field(default_factory=list)
    idle_lost: int = 0
    busy_rtts: list[float] = field(default_factory=list)
    busy_sent: int = 0
    busy_lost: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds per scrape, by process (``daemon``, or ``front`` and ``worker N``)."""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_scrape(port: int, gzip: bool) -> tuple[float, int]:
    """GET /metrics; return (seconds until the whole body arrived, body bytes)."""
    import urllib.request

    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    t0 = time.monotonic()
    with urllib.request.urlopen(request, timeout=300) as reply:
        body = reply.read()
        if gzip and reply.headers.get("Content-Encoding") != "gzip":
            raise BenchError("the exporter did not answer with gzip")
    return time.monotonic() - t0, len(body)


PING_LINE = re.compile(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms")


def ping_rtts(output: str) -> tuple[list[float], int, int]:
    """Return (RTTs in ms, requests up to the last answered one, of those unanswered)."""
    seen = {int(s): float(t) for s, t in PING_LINE.findall(output)}
    if not seen:
        return [], 0, 0
    sent = max(seen)
    return list(seen.values()), sent, sent - len(seen)


def ns_ping(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, "ping", "-n", "-W", "1", *args]


def process_cpu(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def scrape_once(workdir: Path, count: int, workers: int, daemons: list[Daemon]) -> ScrapeRun:
    """Start a daemon of ``count`` vnets, ping through ``core`` idle and during scrapes."""
    import os

    prefix = f"b{os.getpid() % 100000}"
    if any(n.startswith(prefix) for n in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=True
    ).stdout.split()):  # fmt: skip
        raise BenchError(f"namespaces named {prefix}* exist already")
    port = free_port()
    config = scrape_config(count, prefix, port, workers)
    daemon = Daemon(workdir, f"scrape{count}w{workers}", config)
    daemons.append(daemon)
    t0 = time.monotonic()
    daemon.start(timeout=900)
    run = ScrapeRun(count, workers, time.monotonic() - t0)
    try:
        settle(daemon, limit=120)
        h1 = f"{prefix}h1"
        deadline = time.monotonic() + 30
        while subprocess.run(ns_ping(h1, "-c", "1", H2_ADDR), capture_output=True,
                             timeout=10, check=False).returncode:  # fmt: skip
            if time.monotonic() > deadline:
                raise BenchError(f"{H2_ADDR} not reachable through vnet core")
            time.sleep(0.2)
        idle = subprocess.run(
            ns_ping(h1, "-c", str(IDLE_PINGS), "-i", PING_INTERVAL, H2_ADDR),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        run.idle_rtts, _, run.idle_lost = ping_rtts(idle.stdout)
        pids = {"daemon" if workers == 1 else "front": daemon.pid}
        if workers > 1:
            status = daemon.call("status")
            assert isinstance(status, dict)
            for worker in status.get("workers", []):
                pids[f"worker {worker['index']}"] = int(worker["pid"])
        cpu_before = {name: process_cpu(pid) for name, pid in pids.items()}
        ping = subprocess.Popen(
            ns_ping(h1, "-i", PING_INTERVAL, "-w", "900", H2_ADDR),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            time.sleep(0.5)
            for i in range(SCRAPES):
                gzip = i % 2 == 1
                seconds, size = http_scrape(port, gzip)
                if gzip:
                    run.gzip_s.append(seconds)
                    run.gzip_bytes = size
                else:
                    run.plain_s.append(seconds)
                    run.plain_bytes = size
            time.sleep(0.5)
        finally:
            ping.send_signal(signal.SIGINT)
            out, _ = ping.communicate(timeout=30)
        run.busy_rtts, run.busy_sent, run.busy_lost = ping_rtts(out)
        run.cpu_s = {
            name: (process_cpu(pid) - cpu_before[name]) / SCRAPES for name, pid in pids.items()
        }
    finally:
        daemon.stop(timeout=120)
    return run


def part_d(workdir: Path, args: argparse.Namespace, daemons: list[Daemon]) -> list[ScrapeRun]:
    runs = []
    counts = [int(c) for c in args.scrape_vnets.split(",") if c.strip()]
    for count in counts:
        print(f"(d) {count} vnets: scrapes and pings", flush=True)
        runs.append(scrape_once(workdir, count, 1, daemons))
        print(f"    {_scrape_line(runs[-1])}", flush=True)
    if args.scrape_workers > 1:
        count = max(counts)
        print(f"(d) {count} vnets, {args.scrape_workers} workers", flush=True)
        runs.append(scrape_once(workdir, count, args.scrape_workers, daemons))
        print(f"    {_scrape_line(runs[-1])}", flush=True)
    return runs


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _scrape_line(r: ScrapeRun) -> str:
    cells = _scrape_cells(r)
    return ", ".join(cells[1:])


def _scrape_cells(r: ScrapeRun) -> list[str]:
    idle_p50 = _p(r.idle_rtts, 0.5) if r.idle_rtts else float("nan")
    busy_max = max(r.busy_rtts) if r.busy_rtts else float("nan")
    cpu = ", ".join(f"{name} {seconds:.2f}" for name, seconds in r.cpu_s.items())
    return [
        f"{r.vnets:,}" + (f" ({r.workers} workers)" if r.workers > 1 else ""),
        f"{statistics.median(r.plain_s):.2f} s (max {max(r.plain_s):.2f})",
        f"{statistics.median(r.gzip_s):.2f} s (max {max(r.gzip_s):.2f})",
        f"{r.plain_bytes / 2**20:.2f} MiB",
        f"{r.gzip_bytes / 2**20:.2f} MiB",
        f"{idle_p50:.3f} / {_p(r.idle_rtts, 0.99):.3f} / {max(r.idle_rtts):.2f} ms"
        if r.idle_rtts
        else "-",
        f"{busy_max:.2f} ms (p99 {_p(r.busy_rtts, 0.99):.2f})" if r.busy_rtts else "-",
        f"{r.busy_lost} of {r.busy_sent}",
        cpu,
    ]


def render_d(runs: list[ScrapeRun], host: list[str], loads: tuple[str, str]) -> str:
    out = [
        "## Scrapes",
        "",
        "`bench/scale.py --parts d`, run by the venv's Python (see bench/README.md).",
        "",
        "### Machine",
        "",
        *host,
        f"- Load average (1/5/15 min) at start: {loads[0]}; at end: {loads[1]}",
        "",
        f"### (d) {SCRAPES} consecutive scrapes while a ping crosses vnet core every "
        f"{float(PING_INTERVAL) * 1000:.0f} ms",
        "",
        "| vnets | scrape, plain | scrape, gzip | bytes plain | bytes gzip "
        "| ping idle p50 / p99 / worst | ping during scrapes: worst | lost | CPU per scrape (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *[f"| {' | '.join(_scrape_cells(r))} |" for r in runs],
        "",
    ]
    single = [r for r in runs if r.workers == 1]
    if single and single[-1].idle_rtts and single[-1].busy_rtts:
        big = single[-1]
        limit = _p(big.idle_rtts, 0.5) + 10
        worst = max(big.busy_rtts)
        ok = big.busy_lost == 0 and worst <= limit
        out += [
            "### Target",
            "",
            "| target | measured | verdict |",
            "|---|---:|---|",
            f"| {big.vnets:,} vnets: a ping every 10 ms through a busy vnet during "
            f"{SCRAPES} scrapes loses nothing, worst RTT <= idle p50 + 10 ms "
            f"| {big.busy_lost} lost, worst {worst:.2f} ms (limit {limit:.2f}) "
            f"| {_verdict(ok, f'{worst - limit + 10:.2f} ms over idle p50')} |",
            "",
        ]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vnets", type=int, default=100_000, help="vnets in (a), even")
    parser.add_argument("--trace-vnets", type=int, default=2_000,
                        help="vnets built under tracemalloc in (a)")  # fmt: skip
    parser.add_argument("--churn", type=int, default=10_000, help="vnets per cycle in (b), even")
    parser.add_argument("--cycles", type=int, default=3, help="cycles in (b)")
    parser.add_argument("--v4", type=int, default=1_000_000, help="IPv4 routes in (c)")
    parser.add_argument("--v6", type=int, default=200_000, help="IPv6 routes in (c)")
    parser.add_argument("--scrape-vnets", default=SCRAPE_COUNTS,
                        help="vnet counts of the daemons scraped in (d)")  # fmt: skip
    parser.add_argument("--scrape-workers", type=int, default=2,
                        help="workers of one more daemon of the largest count in (d), "
                        "1: none")  # fmt: skip
    parser.add_argument("--parts", default="a,b,c,d", help="comma-separated subset of a,b,c,d")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"a", "b", "c", "d"} or not parts:
        parser.error("--parts takes a, b, c and/or d")
    if args.vnets < 2 or args.vnets % 2 or args.churn < 2 or args.churn % 2 or args.cycles < 1:
        parser.error("--vnets and --churn must be even and >= 2, --cycles >= 1")

    workdir = Path(tempfile.mkdtemp(prefix="vrouter-scale-"))
    daemons: list[Daemon] = []
    a = b = None
    c: list[dict] | None = None
    d: list[ScrapeRun] | None = None
    status = 0
    load_before = loadavg()
    started = time.monotonic()
    with signals_raise():
        try:
            if "a" in parts:
                a = part_a(workdir, args, daemons)
            if "b" in parts:
                b = part_b(workdir, args, daemons)
            if "c" in parts:
                c = lpm.compare(
                    {4: args.v4, 6: args.v6}, log=lambda s: print(f"(c) {s}", flush=True)
                )
            if "d" in parts:
                d = part_d(workdir, args, daemons)
        except KeyboardInterrupt:
            print("\ninterrupted, cleaning up", file=sys.stderr)
            status = 130
        except (BenchError, OSError) as err:
            print(f"\nerror: {err}", file=sys.stderr)
            for daemon in daemons:
                if daemon.logtext():
                    print(f"--- {daemon.dir.name} log tail:\n{daemon.logtext()}", file=sys.stderr)
            status = 1
        finally:
            old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                for daemon in daemons:
                    try:
                        daemon.stop()
                    except Exception as err:
                        print(f"warning: stopping {daemon.dir.name}: {err}", file=sys.stderr)
                shutil.rmtree(workdir, ignore_errors=True)
            finally:
                signal.signal(signal.SIGINT, old_int)
    if status == 0:
        host = machine()
        loads = (load_before, loadavg())
        if parts & {"a", "b", "c"}:
            text = render(args, a, b, c, host, loads)
            print(f"\n{text}")
            if not args.no_write:
                write_section("scale", text)
                print("written to bench/RESULTS.md (section scale)")
        if d is not None:
            text = render_d(d, host, loads)
            print(f"\n{text}")
            if not args.no_write:
                write_section("scrape", text)
                print("written to bench/RESULTS.md (section scrape)")
        print(f"took {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
