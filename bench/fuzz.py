"""Fuzz every target of tests/fuzzlab.py for a long run; report inputs per second per target.

Each target runs in a process of its own (``--jobs`` at once), until it has
run ``--count`` inputs or ``--seconds`` have passed, whichever comes first,
with one of two engines:

- ``mutate`` (default): the in-process mutator of ``fuzzlab.run`` (seeded, so
  a finding repeats with the same ``--seed``), every finding kept;
- ``atheris``: libFuzzer through atheris, coverage-guided, the corpus in the
  work directory; it stops at its first finding (``crash-*`` file).

A finding is any exception a target lets out (see tests/fuzzlab.py for what
each target promises).  The report lists the inputs actually run, the time,
the rate and the findings with their input in hex, and goes into the
``fuzz`` section of bench/RESULTS.md unless ``--no-write``.

    nice .venv/bin/python bench/fuzz.py                           # 10^6 inputs per target
    nice .venv/bin/python bench/fuzz.py --count 100000 --seconds 60 \
        --targets input.ipv4,control.answer
    nice .venv/bin/python bench/fuzz.py --engine atheris --seconds 300 --targets input.ipv6
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
sys.path.insert(0, str(TESTS))
sys.path.insert(0, str(HERE))

import fuzzlab  # noqa: E402
import report  # noqa: E402

GOAL = 1_000_000
"""Inputs per target the issue asks of a full run."""


def one(name: str, count: int | None, seconds: float | None, seed: int) -> dict[str, Any]:
    """Run one target in this process (the mutate engine); return the result as plain data."""
    result = fuzzlab.run(name, count=count, seconds=seconds, seed=seed, stop_at_first=False,
                         max_findings=20)  # fmt: skip
    return {
        "target": name,
        "engine": "mutate",
        "inputs": result.inputs,
        "seconds": result.seconds,
        "findings": [{"what": f.what, "input": f.data.hex()} for f in result.findings],
    }


def _mutate(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--seed", str(args.seed)]
    if args.count:
        cmd += ["--count", str(args.count)]
    if args.seconds:
        cmd += ["--seconds", str(args.seconds)]
    limit = (args.seconds or 86400) * 2 + 300
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    if out.returncode != 0:
        return {"target": name, "engine": "mutate", "inputs": 0, "seconds": 0.0,
                "findings": [{"what": f"the run failed: {out.stderr.strip()[-2000:]}",
                              "input": ""}]}  # fmt: skip
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _atheris(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    corpus = work / f"corpus-{name}"
    artifacts = work / f"artifacts-{name}"
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(TESTS / "fuzzlab.py"), name, f"-seed={args.seed or 1}",
           f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(corpus)]  # fmt: skip
    if args.count:
        cmd.append(f"-runs={args.count}")
    if args.seconds:
        cmd.append(f"-max_total_time={int(args.seconds)}")
    limit = (args.seconds or 86400) * 2 + 300
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False)
    elapsed = time.monotonic() - started
    runs = re.findall(r"stat::number_of_executed_units: (\d+)", out.stderr)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", out.stderr)
    findings = []
    for crash in sorted(artifacts.glob("crash-*")):
        what = re.findall(r"=== Uncaught Python exception: ===\n(.*?)\n", out.stderr)
        findings.append({"what": what[0] if what else "crash", "input": crash.read_bytes().hex()})
    if out.returncode not in (0, 1) and not findings:
        findings.append({"what": f"atheris exited {out.returncode}: {out.stderr[-2000:]}",
                         "input": ""})  # fmt: skip
    return {
        "target": name,
        "engine": "atheris",
        "inputs": int(runs[-1]) if runs else 0,
        "seconds": elapsed,
        "coverage": f"{cov[-1][0]} edges, {cov[-1][1]} features" if cov else "",
        "findings": findings,
    }


def render(results: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    """Return the RESULTS.md section."""
    lines = ["## Fuzz", "", f"`{command}` (see bench/README.md).", "", "### Machine", "",
             *report.machine(), "", "### Targets", "",
             "Inputs are what each target really ran (every seed once, then mutations); the "
             f"goal of a full run is {GOAL:,} per target.  A finding is any exception a "
             "target lets out (tests/fuzzlab.py says what each one promises).", "",
             "| target | what it feeds | engine | inputs | seconds | inputs/s | goal reached | "
             "findings |", "|---|---|---|---:|---:|---:|---|---:|"]  # fmt: skip
    total = 0
    for r in results:
        rate = r["inputs"] / r["seconds"] if r["seconds"] else 0.0
        total += r["inputs"]
        engine = r["engine"] + (f" ({r['coverage']})" if r.get("coverage") else "")
        lines.append(
            f"| {r['target']} | {fuzzlab.TARGETS[r['target']].what} | {engine} | "
            f"{r['inputs']:,} | {r['seconds']:.1f} | {rate:,.0f} | "
            f"{'yes' if r['inputs'] >= GOAL else 'no'} | {len(r['findings'])} |"
        )
    missing = [n for n in args.targets.split(",") if n and n not in {r["target"] for r in results}]
    if missing:
        lines += ["", f"Not run (yet): {', '.join(missing)}."]
    lines += ["", f"{total:,} inputs in all; load average at the end: {report.loadavg()}.", ""]
    found = [(r["target"], f) for r in results for f in r["findings"]]
    lines += ["### Findings", ""]
    if not found:
        lines.append("None: no target let an exception out.")
    for target, f in found:
        lines.append(f"- `{target}`: {f['what'][:300]} — input `{f['input'][:400]}`")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=GOAL,
                        help=f"inputs per target (default {GOAL:,}; 0: no limit)")
    parser.add_argument("--seconds", type=float, default=0,
                        help="time budget per target (default 0: no limit)")
    parser.add_argument("--targets", default=",".join(fuzzlab.TARGETS),
                        help="comma-separated subset of the targets")
    parser.add_argument("--engine", choices=("mutate", "atheris"), default="mutate")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if not args.count and not args.seconds:
        parser.error("give --count or --seconds (or both)")
    if args.one:
        print(json.dumps(one(args.one, args.count or None, args.seconds or None, args.seed)))
        return 0
    names = [n for n in args.targets.split(",") if n]
    unknown = [n for n in names if n not in fuzzlab.TARGETS]
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    command = ".venv/bin/python bench/fuzz.py " + shlex.join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="vrouter-fuzz-") as work:

        finished: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()

        def go(name: str) -> dict[str, Any]:
            if args.engine == "atheris":
                r = _atheris(name, args, Path(work))
            else:
                r = _mutate(name, args)
            rate = r["inputs"] / r["seconds"] if r["seconds"] else 0.0
            print(f"{name:18s} {r['inputs']:>10,} inputs {r['seconds']:8.0f} s {rate:>9,.0f}/s "
                  f"{len(r['findings'])} findings", flush=True)  # fmt: skip
            with lock:  # the section grows as targets finish: a cut-short run keeps them
                finished[name] = r
                if not args.no_write:
                    done = [finished[n] for n in names if n in finished]
                    report.write_section("fuzz", render(done, args, command))
            return r

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            results = list(pool.map(go, names))
    text = render(results, args, command)
    if not args.no_write:
        print(f"wrote {report.RESULTS}")
    else:
        print(text)
    return 1 if any(r["findings"] for r in results) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
