"""Shared by the benchmark scripts: the machine description and bench/RESULTS.md sections.

``RESULTS.md`` holds one section per script (``forwarding``, ``scale``, ``workers``,
``tcp``, ``fuzz``, ``soak``),
each between ``<!-- section:NAME -->`` and ``<!-- /section:NAME -->``
markers; a script rewrites its own section and keeps the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTIONS = (
    "forwarding", "forwarding6", "fastpath", "levers", "scale", "scrape", "workers", "tcp",
    "bridge", "nat", "views", "fuzz", "soak", "fairness", "mirror", "vxlan", "ecmp",
)  # fmt: skip
TITLE = "# Benchmark results"
INTRO = (
    "Written by `bench/forwarding.py`, `bench/fastpath.py`, `bench/scale.py`, "
    "`bench/workers.py`, `bench/tcp.py`, "
    "`bench/bridge.py`, `bench/nat.py`, `bench/views.py`, `bench/fuzz.py`, `bench/soak.py`, "
    "`bench/fairness.py`, `bench/mirror.py`, `bench/vxlan.py` and `bench/ecmp.py` "
    "(see bench/README.md); each script rewrites its own section (`levers` is kept by hand: "
    "what each change did, from those scripts' runs). Absolute numbers on a shared "
    "machine are noise; the ratios measured in the same run are the point."
)


def _first_line(*cmd: str) -> str:
    if shutil.which(cmd[0]) is None:
        return f"{cmd[0]} (not installed)"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return f"{cmd[0]} (no answer)"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else f"{cmd[0]} (unknown)"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def loadavg() -> str:
    """Return the 1/5/15-minute load averages."""
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "unknown"


def machine(tools: tuple[tuple[str, ...], ...] = ()) -> list[str]:
    """Describe the machine, the software and the moment as markdown list items."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        if match:
            mem = f"{int(match.group(1)) / 2**20:.1f} GiB"
    try:
        usable = len(os.sched_getaffinity(0))
    except OSError:
        usable = os.cpu_count() or 0
    git = ["git", "-C", str(HERE.parent)]
    commit = "unknown"
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        commit = (
            subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10, check=False).stdout.strip() or "unknown"
        )  # fmt: skip
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "vrouter"],
                               capture_output=True, text=True, timeout=10,
                               check=False).stdout.strip()  # fmt: skip
        if dirty:
            commit += " + uncommitted changes in vrouter/"
    lines = [
        f"- CPU: {model}, {os.cpu_count()} logical cores ({usable} usable by this process); "
        f"memory {mem}",
        f"- Kernel: {platform.system()} {platform.release()} ({platform.machine()})",
        f"- Python: {platform.python_version()} ({sys.executable}), uvloop {_version('uvloop')}",
        f"- vrouter: {_version('vrouter')}, git {commit}",
    ]
    if tools:
        lines.append("- Tools: " + "; ".join(_first_line(*t) for t in tools))
    lines.append(f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}")
    return lines


def _parse(text: str) -> dict[str, str]:
    found = {}
    for name in SECTIONS:
        match = re.search(
            rf"<!-- section:{name} -->\n(.*?)<!-- /section:{name} -->", text, re.DOTALL
        )
        if match:
            found[name] = match.group(1)
    return found


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace section ``name`` of ``path`` with ``body``, keeping the other sections.

    A file without section markers (the old single-report format) is replaced.
    """
    assert name in SECTIONS
    sections = _parse(path.read_text()) if path.exists() else {}
    sections[name] = body.rstrip("\n") + "\n"
    parts = [TITLE, "", INTRO, ""]
    for section in SECTIONS:
        if section in sections:
            parts += [f"<!-- section:{section} -->", sections[section].rstrip("\n"),
                      f"<!-- /section:{section} -->", ""]  # fmt: skip
    path.write_text("\n".join(parts))


def kept_by_hand(name: str, heading: str, path: Path = RESULTS) -> list[str]:
    """Return the lines of section ``name`` from ``heading`` (a line of its own) to the
    section's end, for a script that rewrites the section to keep them (no lines:
    no such heading yet)."""
    text = _parse(path.read_text()).get(name, "") if path.exists() else ""
    lines = text.rstrip("\n").split("\n")
    return lines[lines.index(heading) :] if heading in lines else []


def fmt_ratio(value: float | None, digits: int = 2) -> str:
    """Return a ratio as text, ``n/a`` for None."""
    return "n/a" if value is None else f"{value:.{digits}f}"
