#!/usr/bin/env python3
"""Longest-prefix match for one big FIB: vrouter's ``Fib`` against alternatives.

Every implementation maps prefixes to the same :class:`vrouter.route.fib.Route`
objects and answers ``lookup(packed destination) -> Route | None``; ``Fib``
also answers ``lookup_nhop(packed destination) -> Nhop | None``, the route's
shared next hop, which is what the data path asks of it on a destination
cache miss (measured as the 'next-hop lookups' columns):

  fib       vrouter.route.fib.Fib as the daemon uses it: one dict per prefix
            length, and for an IPv4 table from fib.INDEX_AT routes on its
            DIR-24-8 index (vrouter.route.dir248), patched on every add
  fibdict   the same Fib with the index turned off (INDEX_AT out of reach):
            the dicts probed longest first, one probe per distinct length
            down to the match
  pytricia  pytricia.PyTricia, a patricia tree in C (if installed)
  radix     py-radix, a radix tree in C (if installed)
  dir248    DIR-24-8 (Gupta, Lin, McKeown 1998), IPv4 only: a 2^24-entry
            array of route indexes for the top 24 bits plus 256-entry blocks
            for longer prefixes; one or two array reads per lookup
  bsl       binary search on prefix lengths with markers (Waldvogel et al.
            1997): about log2(distinct lengths) dict probes per lookup

dir248 and bsl are this file's own, bulk-built prototypes (``load`` only);
they answer lookups exactly like ``Fib`` (checked by a digest of the
answers).  For fib and fibdict the route churn at full size is measured too:
deleting and re-adding random installed routes, and the default route and a
/8 deleted and added (or added and deleted) under all the others.

Each measurement runs in a child process of its own so its memory (RSS)
is not mixed with another's:

  .venv/bin/python bench/lpm.py                      # all, 1,000,000 IPv4 + 200,000 IPv6
  .venv/bin/python bench/lpm.py --v4 100000 --v6 0   # smaller
  .venv/bin/python bench/lpm.py --child fib 4 100000 time   # one measurement, JSON

``bench/scale.py`` calls :func:`compare` and writes the results.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import ipaddress
import json
import random
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from vrouter.route import fib as fib_module
from vrouter.route.fib import STATIC, UNICAST, Fib, Route

HERE = Path(__file__).resolve().parent
IMPLS = ("fib", "fibdict", "pytricia", "radix", "dir248", "bsl")
SEED = 20261126
LOOKUPS = 200_000
REPEATS = 3
DIGEST_SAMPLE = 20_000
CHURN = 20_000
"""Random installed routes deleted and added back to time route churn."""

# Prefix lengths roughly as in a full Internet table (IPv4: /24 dominates, a
# few longer internal routes; IPv6: /48 dominates), plus a default route.
GW6 = bytes.fromhex("20010db8" + "0" * 22 + "fe")
V4_LENGTHS = {
    8: 0.1, 11: 0.1, 12: 0.2, 13: 0.3, 14: 0.5, 15: 0.6, 16: 1.5, 17: 1.0, 18: 1.8,
    19: 3.0, 20: 4.0, 21: 4.5, 22: 10.0, 23: 9.0, 24: 61.0, 25: 0.4, 26: 0.4, 27: 0.3,
    28: 0.3, 29: 0.4, 30: 0.3, 31: 0.1, 32: 0.3,
}  # fmt: skip
V6_LENGTHS = {
    19: 0.1, 20: 0.1, 24: 0.3, 28: 0.5, 29: 3.0, 30: 0.5, 32: 12.0, 33: 0.5, 34: 0.5,
    35: 0.5, 36: 2.0, 40: 4.0, 42: 1.0, 44: 6.0, 45: 0.5, 46: 2.0, 47: 1.5, 48: 55.0,
    52: 0.5, 56: 3.0, 60: 0.5, 64: 4.0, 128: 1.0,
}  # fmt: skip


# --------------------------------------------------------------------------- routes


def make_entries(family: int, count: int, seed: int = SEED) -> list[tuple[int, int]]:
    """Return ``count`` distinct random (network int, prefix length), plus the default."""
    rng = random.Random(seed * 10 + family)
    bits = 32 if family == 4 else 128
    dist = V4_LENGTHS if family == 4 else V6_LENGTHS
    lengths = rng.choices(list(dist), weights=list(dist.values()), k=count)
    full = (1 << bits) - 1
    seen: set[tuple[int, int]] = {(0, 0)}
    out = [(0, 0)]
    common = 24 if family == 4 else 48
    for plen in lengths:
        tries = 0
        while True:
            # IPv6: global unicast, 2000::/3
            addr = rng.getrandbits(32) if family == 4 else (1 << 125) | rng.getrandbits(125)
            net = addr & (full << (bits - plen)) & full
            if (net, plen) not in seen:
                seen.add((net, plen))
                out.append((net, plen))
                break
            tries += 1
            if tries > 20:  # a short length whose few networks are all taken
                plen = common
    return out


def make_routes(family: int, entries: list[tuple[int, int]]) -> list[Route]:
    """Return one static Route per entry, made from the integers as a table loader does
    (``Route.of``: no ipaddress network is built)."""
    bits = 32 if family == 4 else 128
    gateway = bytes([192, 0, 2, 254]) if family == 4 else GW6
    of = Route.of
    return [of(net, plen, bits, UNICAST, gateway, None, STATIC) for net, plen in entries]


def make_addresses(
    family: int, entries: list[tuple[int, int]], count: int, hit: bool
) -> list[bytes]:
    """Return packed destinations: uniformly random, or inside random installed prefixes."""
    rng = random.Random(SEED + family + (1 if hit else 0))
    bits = 32 if family == 4 else 128
    size = bits // 8
    out = []
    for _ in range(count):
        if hit:
            net, plen = entries[rng.randrange(1, len(entries))]
            addr = net | rng.getrandbits(bits - plen) if plen < bits else net
        elif family == 4:
            addr = rng.getrandbits(32)
        else:
            addr = (0b001 << 125) | rng.getrandbits(125)
        out.append(addr.to_bytes(size, "big"))
    return out


# --------------------------------------------------------------------------- implementations


class Lpm(Protocol):
    """What the benchmark asks of an implementation."""

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None: ...

    def lookup(self, dst: bytes) -> Route | None: ...


class FibLpm:
    """vrouter's own table, used exactly as the daemon does (``add``, ``lookup``)."""

    def __init__(self, family: int) -> None:
        self.fib = Fib(32 if family == 4 else 128)

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None:
        self.fib.add_many(routes)
        self.lookup = self.fib.lookup  # the index's, once there is one
        self.lookup_nhop = self.fib.lookup_nhop

    def make_and_load(self, family: int, entries: list[tuple[int, int]]) -> list[Route]:
        """Load routes made from ``entries`` as ``Fib.add_many`` takes them; return them.

        Each route is given its own gateway bytes, as one decoded from a message is.
        """
        made: list[Route] = []
        keep = made.append
        bits = 32 if family == 4 else 128
        gateway = int.from_bytes(bytes([192, 0, 2, 254]) if family == 4 else GW6)
        size = bits // 8
        of = Route.of

        def routes() -> Iterator[Route]:
            for net, plen in entries:
                route = of(net, plen, bits, UNICAST, gateway.to_bytes(size), None, STATIC)
                keep(route)
                yield route

        self.fib.add_many(routes())
        self.lookup = self.fib.lookup
        self.lookup_nhop = self.fib.lookup_nhop
        return made

    def churn(self, routes: list[Route]) -> dict[str, object]:
        """Time deletes and adds at full size; return microseconds per route."""
        fib = self.fib
        sample = random.Random(SEED).sample(routes[1:], min(CHURN, len(routes) - 1))
        t0 = time.perf_counter()
        for route in sample:
            fib.delete(route.prefix)
        t1 = time.perf_counter()
        for route in sample:
            fib.add(route)
        t2 = time.perf_counter()
        out: dict[str, object] = {
            "indexed": fib.indexed,
            "churn_routes": len(sample),
            "delete_us": (t1 - t0) / len(sample) * 1e6,
            "add_us": (t2 - t1) / len(sample) * 1e6,
        }
        default = routes[0]
        family = ipaddress.IPv4Network if fib.bits == 32 else ipaddress.IPv6Network
        prefix = family((10 << (fib.bits - 8), 8))  # 10.0.0.0/8, a:: /8 (often there)
        short = fib.get(prefix) or Route(prefix, UNICAST, default.gateway)
        for name, route in (("default", default), ("slash8", short)):
            adds, deletes = [], []
            for _ in range(3):  # deleted and added back if it is there, else the reverse
                steps = (fib.delete, route.prefix, deletes), (fib.add, route, adds)
                for call, arg, times in steps if fib.get(route.prefix) else steps[::-1]:
                    t0 = time.perf_counter()
                    call(arg)  # type: ignore[operator]
                    times.append(time.perf_counter() - t0)
            out[f"{name}_add_ms"] = min(adds) * 1e3
            out[f"{name}_delete_ms"] = min(deletes) * 1e3
        return out


class FibDictLpm(FibLpm):
    """vrouter's Fib with its index turned off: the dicts alone."""

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None:
        fib_module.INDEX_AT = fib_module.INDEX6_AT = 1 << 62
        super().load(entries, routes)


class PyTriciaLpm:
    """pytricia.PyTricia keyed by packed network and length."""

    def __init__(self, family: int) -> None:
        import pytricia

        self.bits = 32 if family == 4 else 128
        self.tree = pytricia.PyTricia(self.bits)
        self.lookup = self.tree.get

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None:
        size = self.bits // 8
        insert = self.tree.insert
        for (net, plen), route in zip(entries, routes, strict=True):
            insert(net.to_bytes(size, "big"), plen, route)


class RadixLpm:
    """py-radix; the route is kept in each node's ``data`` dict."""

    def __init__(self, family: int) -> None:
        import radix

        self.size = 4 if family == 4 else 16
        self.tree = radix.Radix()
        self.search = self.tree.search_best

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None:
        add = self.tree.add
        size = self.size
        for (net, plen), route in zip(entries, routes, strict=True):
            add(packed=net.to_bytes(size, "big"), masklen=plen).data["r"] = route

    def lookup(self, dst: bytes) -> Route | None:
        node = self.search(packed=dst)
        return node.data["r"] if node is not None else None


_BLOCK = 0x8000_0000


class Dir248Lpm:
    """DIR-24-8 for IPv4: ``tbl24[addr >> 8]`` is a route index or, with the top
    bit set, the number of a 256-entry block in ``tbl8`` indexed by the last byte.

    Index 0 means no route.  Built in order of increasing prefix length, so a
    longer prefix simply overwrites the slots of the shorter ones it covers.
    """

    def __init__(self, family: int) -> None:
        if family != 4:
            raise ValueError("DIR-24-8 is for IPv4 only")
        self.routes: list[Route | None] = [None]
        self.tbl24 = array("I", bytes(4 << 24))
        self.tbl8 = array("I")

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None:
        tbl24, tbl8, table = self.tbl24, self.tbl8, self.routes
        order = sorted(range(len(entries)), key=lambda i: entries[i][1])
        for i in order:
            net, plen = entries[i]
            index = len(table)
            table.append(routes[i])
            if plen <= 24:
                start = net >> 8
                count = 1 << (24 - plen)
                if count == 1:
                    tbl24[start] = index
                else:
                    tbl24[start : start + count] = array("I", [index]) * count
                continue
            slot = net >> 8
            value = tbl24[slot]
            if value & _BLOCK:
                base = (value & ~_BLOCK) << 8
            else:
                base = len(tbl8)
                tbl8.extend(array("I", [value]) * 256)
                tbl24[slot] = _BLOCK | (base >> 8)
            start = base + (net & 0xFF)
            count = 1 << (32 - plen)
            if count == 1:
                tbl8[start] = index
            else:
                tbl8[start : start + count] = array("I", [index]) * count

    def lookup(self, dst: bytes) -> Route | None:
        addr = int.from_bytes(dst, "big")
        value = self.tbl24[addr >> 8]
        if value & _BLOCK:
            value = self.tbl8[((value & ~_BLOCK) << 8) | (addr & 0xFF)]
        return self.routes[value]


_MISSING = object()


class BslLpm:
    """Binary search on the distinct prefix lengths with markers and precomputed
    best matches (Waldvogel, Varghese, Turner, Plattner, SIGCOMM 1997).

    ``tables[i]`` maps a network of length ``lengths[i]`` to the best route for
    anything under it found so far: the route itself for a real prefix, the best
    shorter real prefix (or None) for a marker.  A hit means "look longer", a
    miss "look shorter".
    """

    def __init__(self, family: int) -> None:
        self.bits = 32 if family == 4 else 128
        self.lengths: list[int] = []
        self.masks: list[int] = []
        self.tables: list[dict[int, Route | None]] = []

    def load(self, entries: list[tuple[int, int]], routes: list[Route]) -> None:
        full = (1 << self.bits) - 1
        self.lengths = lengths = sorted({plen for _, plen in entries})
        self.masks = masks = [(full << (self.bits - n)) & full for n in lengths]
        level = {plen: i for i, plen in enumerate(lengths)}
        real: list[dict[int, Route]] = [{} for _ in lengths]
        for (net, plen), route in zip(entries, routes, strict=True):
            real[level[plen]][net] = route
        tables: list[dict[int, Route | None]] = [dict(t) for t in real]
        pending: list[set[int]] = [set() for _ in lengths]
        top = len(lengths) - 1
        for i, table in enumerate(real):
            # The search path towards level i: a marker wherever it goes longer.
            path = []
            lo, hi = 0, top
            while lo <= hi:
                mid = (lo + hi) >> 1
                if mid == i:
                    break
                if mid < i:
                    path.append(mid)
                    lo = mid + 1
                else:
                    hi = mid - 1
            for mid in path:
                mask, marks, present = masks[mid], pending[mid], tables[mid]
                for net in table:
                    key = net & mask
                    if key not in present:
                        marks.add(key)
        for mid, marks in enumerate(pending):
            table = tables[mid]
            for key in marks:
                if key in table:
                    continue
                best = None
                for j in range(mid - 1, -1, -1):
                    best = real[j].get(key & masks[j])
                    if best is not None:
                        break
                table[key] = best
        self.tables = tables

    def lookup(self, dst: bytes) -> Route | None:
        addr = int.from_bytes(dst, "big")
        tables, masks = self.tables, self.masks
        best = None
        lo, hi = 0, len(tables) - 1
        while lo <= hi:
            mid = (lo + hi) >> 1
            found = tables[mid].get(addr & masks[mid], _MISSING)
            if found is _MISSING:
                hi = mid - 1
            else:
                if found is not None:
                    best = found
                lo = mid + 1
        return best  # type: ignore[return-value]


FACTORIES: dict[str, Callable[[int], Lpm]] = {
    "fib": FibLpm,
    "fibdict": FibDictLpm,
    "pytricia": PyTriciaLpm,
    "radix": RadixLpm,
    "dir248": Dir248Lpm,
    "bsl": BslLpm,
}


def available(name: str, family: int) -> str | None:
    """Return None if ``name`` can run for ``family``, else why not."""
    if name == "dir248" and family != 4:
        return "IPv4 only"
    module = {"pytricia": "pytricia", "radix": "radix"}.get(name)
    if module is not None:
        try:
            __import__(module)
        except ImportError:
            dist = "py-radix" if name == "radix" else name
            return f"not installed (pip install {dist})"
    return None


# --------------------------------------------------------------------------- measuring


def rss_kib() -> int:
    """Return this process's resident set size in KiB."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else 0


def digest(impl: Lpm, addresses: list[bytes]) -> str:
    """Return a digest of the answers (prefix of the matched route) for ``addresses``."""
    h = hashlib.sha256()
    for dst in addresses:
        route = impl.lookup(dst)
        h.update(b"-" if route is None else str(route.prefix).encode())
        h.update(b";")
    return h.hexdigest()[:16]


def child(name: str, family: int, count: int, mode: str) -> dict[str, object]:
    """Measure one implementation in this (fresh) process; return the results."""
    entries = make_entries(family, count)
    result: dict[str, object] = {"impl": name, "family": family, "routes": len(entries)}
    gc.collect()
    if mode == "memory":
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        routes = make_routes(family, entries)
        result["route_objects_bytes"] = tracemalloc.get_traced_memory()[0] - base
        base = tracemalloc.get_traced_memory()[0]
        impl = FACTORIES[name](family)
        impl.load(entries, routes)
        gc.collect()
        result["structure_bytes"] = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return result
    impl = FACTORIES[name](family)
    if isinstance(impl, FibLpm) and not isinstance(impl, FibDictLpm):
        # As a table loader does: the routes made while Fib.add_many takes them.
        gc.collect()
        rss0 = rss_kib()
        t0 = time.perf_counter()
        routes = impl.make_and_load(family, entries)
        result["load_s"] = time.perf_counter() - t0
        result["route_objects_s"] = 0.0
        result["routes_in_load"] = True
    else:
        t0 = time.perf_counter()
        routes = make_routes(family, entries)
        result["route_objects_s"] = time.perf_counter() - t0
        gc.collect()
        rss0 = rss_kib()
        t0 = time.perf_counter()
        impl.load(entries, routes)
        result["load_s"] = time.perf_counter() - t0
    gc.collect()
    result["rss_kib"] = rss_kib() - rss0
    for kind in ("random", "hit"):
        addresses = make_addresses(family, entries, LOOKUPS, hit=kind == "hit")
        lookups = {"": impl.lookup}
        if isinstance(impl, FibLpm):
            lookups["nhop_"] = impl.lookup_nhop
        for what, lookup in lookups.items():
            rates = []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                for dst in addresses:
                    lookup(dst)
                rates.append(len(addresses) / (time.perf_counter() - t0))
            result[f"{what}{kind}_rates"] = rates
        result[f"{kind}_digest"] = digest(impl, addresses[:DIGEST_SAMPLE])
    if isinstance(impl, FibLpm):
        gc.collect()
        before = rss_kib()
        result.update(impl.churn(routes))
        gc.collect()
        result["churn_rss_kib"] = rss_kib() - before
    return result


def total_mib(row: dict) -> float:
    """Return the MiB a row's table holds with its Route objects (RSS growth + objects)."""
    if row.get("routes_in_load"):
        return row["rss_kib"] / 1024
    return (row["rss_kib"] * 1024 + row.get("route_objects_bytes", 0)) / 2**20


def run_child(name: str, family: int, count: int, mode: str, timeout: float = 600) -> dict:
    """Run :func:`child` in a new interpreter; return its results or {'error': ...}."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, str(family),
           str(count), mode]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"impl": name, "family": family, "error": f"no result within {timeout:.0f} s"}
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["?"]
        return {"impl": name, "family": family, "error": f"exit {out.returncode}: {tail[0]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(counts: dict[int, int], impls: tuple[str, ...] = IMPLS, log=print) -> list[dict]:
    """Measure every available implementation for each family; return one row each."""
    rows = []
    for family, count in counts.items():
        if count <= 0:
            continue
        for name in impls:
            why = available(name, family)
            if why is not None:
                rows.append({"impl": name, "family": family, "skipped": why})
                log(f"IPv{family} {name}: skipped, {why}")
                continue
            log(f"IPv{family} {name}: {count:,} routes ...")
            timing = run_child(name, family, count, "time")
            memory = run_child(name, family, count, "memory")
            row = {**memory, **timing}
            if "error" in memory and "error" not in timing:
                row["memory_error"] = memory["error"]
            rows.append(row)
            if "error" in row:
                log(f"  error: {row['error']}")
            else:
                log(
                    f"  load {row['load_s']:.2f} s (+{row['route_objects_s']:.2f} s Route "
                    f"objects), random {statistics.median(row['random_rates']) / 1e3:,.0f} k/s, "
                    f"hit {statistics.median(row['hit_rates']) / 1e3:,.0f} k/s, "
                    f"RSS +{row['rss_kib'] / 1024:.0f} MiB" + _nhop_text(row)
                )
    return rows


def _nhop_text(row: dict) -> str:
    """Return the next-hop lookup rates of ``row`` for the log (none: empty)."""
    if "nhop_random_rates" not in row:
        return ""
    rnd = statistics.median(row["nhop_random_rates"]) / 1e3
    hit = statistics.median(row["nhop_hit_rates"]) / 1e3
    return f", next hops random {rnd:,.0f} k/s, hit {hit:,.0f} k/s"


def table(rows: list[dict]) -> tuple[list[str], list[str]]:
    """Return the markdown table of ``rows`` and notes (digest mismatches, winners)."""
    out = [
        "| family | structure | routes | load s | + Route objects s | lookups/s random "
        "(min/median/max) | lookups/s in installed prefixes (median) | next-hop lookups/s "
        "random (min/median/max) | next-hop lookups/s in installed prefixes (median) "
        "| RSS growth MiB | tracemalloc MiB | Route objects MiB | answers = Fib |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---|",
    ]
    notes = []
    reference = {r["family"]: r for r in rows if r.get("impl") == "fib" and "load_s" in r}
    for r in rows:
        fam = f"IPv{r['family']}"
        if "skipped" in r or "error" in r:
            why = r.get("skipped") or r.get("error")
            out.append(f"| {fam} | {r['impl']} | | | | {why} | | | | | | | |")
            continue
        rnd = r["random_rates"]
        ref = reference.get(r["family"])
        same = "n/a"
        if ref is not None:
            same = "yes" if (ref["random_digest"], ref["hit_digest"]) == (
                r["random_digest"], r["hit_digest"]) else "**NO**"  # fmt: skip
            if same != "yes":
                notes.append(f"{fam} {r['impl']}: answers differ from Fib's")
        objs = r.get("route_objects_bytes")
        objects = "n/a" if objs is None else f"{objs / 2**20:.0f}"
        mem = r.get("structure_bytes")
        if mem is None:
            mem_text = "n/a"
        elif mem < 2**19 and r["impl"] in ("pytricia", "radix"):
            mem_text = "~0 (C malloc)"
        else:
            mem_text = f"{mem / 2**20:.0f}"
        made = "in load" if r.get("routes_in_load") else f"{r['route_objects_s']:.2f}"
        rss = f"{r['rss_kib'] / 1024:.0f}" + (" (with routes)" if r.get("routes_in_load") else "")
        nrnd = r.get("nhop_random_rates")
        nhops = "n/a | n/a"
        if nrnd:
            nhops = (
                f"{min(nrnd) / 1e3:,.0f}k / {statistics.median(nrnd) / 1e3:,.0f}k / "
                f"{max(nrnd) / 1e3:,.0f}k | {statistics.median(r['nhop_hit_rates']) / 1e3:,.0f}k"
            )
        out.append(
            f"| {fam} | {r['impl']} | {r['routes']:,} | {r['load_s']:.2f} "
            f"| {made} "
            f"| {min(rnd) / 1e3:,.0f}k / {statistics.median(rnd) / 1e3:,.0f}k / "
            f"{max(rnd) / 1e3:,.0f}k | {statistics.median(r['hit_rates']) / 1e3:,.0f}k "
            f"| {nhops} | {rss} | {mem_text} | {objects} | {same} |"
        )
    return out, notes


def churn_table(rows: list[dict]) -> list[str]:
    """Return the markdown table of route churn for the rows that measured it."""
    out = [
        "| family | structure | routes | indexed | delete us/route | add us/route "
        "| default route delete / add ms | a /8 add / delete ms | RSS change MiB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "delete_us" not in r:
            continue
        out.append(
            f"| IPv{r['family']} | {r['impl']} | {r['routes']:,} "
            f"| {'yes' if r['indexed'] else 'no'} | {r['delete_us']:.1f} | {r['add_us']:.1f} "
            f"| {r['default_delete_ms']:.3f} / {r['default_add_ms']:.3f} "
            f"| {r['slash8_add_ms']:.3f} / {r['slash8_delete_ms']:.3f} "
            f"| {r['churn_rss_kib'] / 1024:+.1f} |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v4", type=int, default=1_000_000, help="IPv4 routes (default 1M)")
    parser.add_argument("--v6", type=int, default=200_000, help="IPv6 routes (default 200k)")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated subset")
    parser.add_argument("--child", nargs=4, metavar=("IMPL", "FAMILY", "COUNT", "MODE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child:
        name, family, count, mode = args.child
        print(json.dumps(child(name, int(family), int(count), mode)))
        return 0
    impls = tuple(i for i in args.impls.split(",") if i)
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        parser.error(f"unknown structure(s) {', '.join(unknown)}; known: {', '.join(IMPLS)}")
    rows = compare({4: args.v4, 6: args.v6}, impls)
    lines, notes = table(rows)
    print("\n".join([*lines, "", *churn_table(rows), "", *notes]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
