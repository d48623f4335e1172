"""Soak: a daemon under mixed traffic and control-plane churn for a long while (root).

Topology (a daemon of its own, every name with a per-run prefix)::

    h1 ── TAP ── [red] ══ epair ══ [blue] ── TAP ── h2
                   └── TAP ── h3   (198.18.0.0/15 and 2001:db8:5::/64 on-link: the scan targets)

For ``--minutes`` (default 30), all at once:

- TCP: iperf3 h1 -> h2, one stream at ``--tcp-rate``, in runs of 20 s;
- UDP flood: iperf3 -u h1 -> h2, 64-byte datagrams at ``--udp-rate``, in runs of 20 s;
- ping h1 -> h2 every 50 ms: the longest gap between two answers is the
  longest forwarding pause;
- ARP and ND scans: every 30 s, alternately, h1 sends for 10 s (500 datagrams
  a second) to random addresses of red's on-link 198.18.0.0/15 (ARP) or
  2001:db8:5::/64 (ND);
- SOCKS5: every 2 s, curl through the daemon's gateway into blue fetches a
  page from an HTTP server in h2;
- a reload every 30 s (the config alternates between two versions, so every
  reload changes something: a sysctl and a static route);
- vnet churn through the API every 5 s: ``vrouterctl vnet create`` of two
  vnets, an epair between them with addresses, ``vrouterctl vnet destroy``;
- a metrics scrape every second;
- a capture now and then (every 45 s, 200 frames of red's TAP to h1).

Every second the daemon's RSS, open descriptors and CPU share are sampled.
At the end: a CSV (``bench/soak.csv``) and, if matplotlib is installed, a
plot (``bench/soak.png``); a summary with the counts of every activity
(done, failed), RSS/fds/CPU at start, peak and end, the tracebacks in the
daemon's log (must be 0) and the longest forwarding pause, in the ``soak``
section of bench/RESULTS.md (``--no-write``: neither file nor section), and
as JSON with ``--json FILE``.  Exit status 1 if a traceback was logged, the
daemon died, or the longest pause exceeds ``--max-pause``.

Clean-up: every program started runs in its own process group and is killed;
the daemon gets SIGTERM (it removes its TAPs and namespaces) and anything
left with the run's prefix is removed, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from harness import Vrouterd  # noqa: E402

CONFIG = """
[daemon]
control_socket = "{{dir}}/control.sock"
state_dir = "{{dir}}/state"
log_level = "info"
metrics = "127.0.0.1:{metrics}"

[[daemon.socks]]
vnet = "blue"
listen = "127.0.0.1:{socks}"

[vnets.red.interfaces.{{p}}r]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
host = {{{{ netns = "{{p}}h1", addresses = ["192.0.2.2/24", "2001:db8:1::2/64"], \
gateway = "192.0.2.1", gateway6 = "2001:db8:1::1" }}}}

[vnets.red.interfaces.{{p}}s]
type = "tap"
addresses = ["198.18.0.1/15", "2001:db8:5::1/64"]
host = {{{{ netns = "{{p}}h3", addresses = ["198.18.0.2/15", "2001:db8:5::2/64"] }}}}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[vnets.red.sysctl]
"net.inet.ip.ttl" = {ttl}

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[[vnets.red.routes]]
to = "2001:db8:2::/64"
via = "2001:db8:ff::2"
{extra_route}
[vnets.blue.interfaces.{{p}}b]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
host = {{{{ netns = "{{p}}h2", addresses = ["198.51.100.2/24", "2001:db8:2::2/64"], \
gateway = "198.51.100.1", gateway6 = "2001:db8:2::1" }}}}

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]

[[vnets.blue.routes]]
to = "192.0.2.0/24"
via = "203.0.113.1"

[[vnets.blue.routes]]
to = "2001:db8:1::/64"
via = "2001:db8:ff::1"

[[vnets.blue.routes]]
to = "198.18.0.0/15"
via = "203.0.113.1"
"""

EXTRA_ROUTE = """
[[vnets.red.routes]]
to = "203.0.113.128/25"
type = "blackhole"
"""

SCANNER = """
import ipaddress, random, socket, sys, time
network = ipaddress.ip_network(sys.argv[1])
rate, seconds = float(sys.argv[2]), float(sys.argv[3])
family = socket.AF_INET6 if network.version == 6 else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
rng = random.Random(int(sys.argv[4]))
end = time.monotonic() + seconds
sent = 0
while time.monotonic() < end:
    address = network[rng.randrange(2, network.num_addresses - 1)]
    try:
        s.sendto(b"scan", (str(address), 9))
        sent += 1
    except OSError:
        pass
    time.sleep(1 / rate)
print(sent)
"""


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(metrics: int, socks: int, variant: int) -> str:
    """Return the soak's config template, ``variant`` 0 or 1 (what each reload changes)."""
    return CONFIG.format(metrics=metrics, socks=socks, ttl=64 if variant == 0 else 63,
                         extra_route=EXTRA_ROUTE if variant else "")  # fmt: skip


@dataclass
class Activity:
    """How often one kind of load ran, and how it failed."""

    done: int = 0
    failed: int = 0
    last_error: str = ""

    def ok(self) -> None:
        self.done += 1

    def fail(self, why: str) -> None:
        self.failed += 1
        self.last_error = why[-300:]


@dataclass
class Soak:
    """One soak run: the daemon, the programs around it and what was seen."""

    daemon: Vrouterd
    args: argparse.Namespace
    metrics_port: int
    socks_port: int
    stop: threading.Event = field(default_factory=threading.Event)
    activities: dict[str, Activity] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ping_log: Path | None = None

    def activity(self, name: str) -> Activity:
        return self.activities.setdefault(name, Activity())

    # -- programs ------------------------------------------------------------------------

    def spawn(self, host: str, *cmd: str, out: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in host ``host``'s namespace, in a process group of its own."""
        stdout = out.open("wb") if out is not None else subprocess.DEVNULL
        proc = subprocess.Popen(["ip", "netns", "exec", self.daemon.ns(host), *cmd],
                                stdout=stdout, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def run(self, name: str, cmd: list[str], timeout: float) -> None:
        """Run ``cmd`` to its end (bounded), counting it under ``name``."""
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                 check=False, start_new_session=True)  # fmt: skip
        except subprocess.TimeoutExpired:
            self.activity(name).fail(f"timed out after {timeout} s")
            return
        if out.returncode == 0:
            self.activity(name).ok()
        else:
            self.activity(name).fail(f"exit {out.returncode}: {out.stdout[-200:]}{out.stderr}")

    def ctl(self, name: str, *args: str, timeout: float = 30) -> None:
        """Run ``vrouterctl ARGS`` against the daemon, counting it under ``name``."""
        cmd = [sys.executable, "-m", "vrouter.cli.vrouterctl", "--socket", self.daemon.socket]
        self.run(name, [*cmd, *args], timeout)

    def in_host(self, host: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.daemon.ns(host), *cmd]

    # -- the loads -----------------------------------------------------------------------

    def every(self, period: float, body: Callable[[int], None], first: float = 0.0) -> None:
        """Run ``body(n)`` every ``period`` seconds until the stop (in this thread)."""
        n = 0
        if self.stop.wait(first):
            return
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                body(n)
            except Exception as err:  # a broken load is counted, the soak goes on
                self.activity(f"{body.__name__} (harness)").fail(repr(err))
            n += 1
            self.stop.wait(max(0.0, period - (time.monotonic() - started)))

    def tcp(self, n: int) -> None:
        self.run("tcp (iperf3 20 s)", self.in_host("h1", "iperf3", "-c", "198.51.100.2", "-p",
                 "5201", "-t", "20", "-b", self.args.tcp_rate, "--connect-timeout", "3000"),
                 timeout=40)  # fmt: skip

    def udp(self, n: int) -> None:
        self.run("udp flood (iperf3 -u 20 s)", self.in_host("h1", "iperf3", "-c", "198.51.100.2",
                 "-p", "5202", "-u", "-l", "64", "-b", self.args.udp_rate, "-t", "20"),
                 timeout=40)  # fmt: skip

    def scan(self, n: int) -> None:
        network, kind = (("198.18.0.0/15", "arp scan"), ("2001:db8:5::/64", "nd scan"))[n % 2]
        self.run(kind, self.in_host("h1", sys.executable, "-c", SCANNER, network, "500", "10",
                                    str(n)), timeout=30)  # fmt: skip

    def socks(self, n: int) -> None:
        self.run("socks (curl)", ["curl", "-sS", "-o", "/dev/null", "--max-time", "5",
                                  "--socks5", f"127.0.0.1:{self.socks_port}",
                                  "http://198.51.100.2:8000/"], timeout=10)  # fmt: skip

    def reload(self, n: int) -> None:
        text = config_text(self.metrics_port, self.socks_port, (n + 1) % 2)
        self.daemon.write_config(text.format(dir=self.daemon.dir, p=self.daemon.prefix))
        self.ctl("reload", "reload", timeout=60)

    def churn(self, n: int) -> None:
        a, b = f"churn{n}a", f"churn{n}b"
        for args in (("vnet", "create", a), ("vnet", "create", b)):
            self.ctl("vnet churn (vrouterctl)", *args)
        try:
            self.daemon.call("epair.create", a=f"{a}:e0", b=f"{b}:e0",
                             a_addresses=["203.0.113.9/30"], b_addresses=["203.0.113.10/30"])
            self.activity("epair create (API)").ok()
        except Exception as err:  # an ApiError or a connection failure: counted
            self.activity("epair create (API)").fail(repr(err))
        for name in (a, b):
            self.ctl("vnet churn (vrouterctl)", "vnet", "destroy", name)

    def scrape(self, n: int) -> None:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = answer.read()
            if b"vrouter_build_info" not in body:
                raise ValueError("no vrouter_build_info in the scrape")
            self.activity("metrics scrape").ok()
        except (OSError, ValueError) as err:
            self.activity("metrics scrape").fail(repr(err))

    def capture(self, n: int) -> None:
        out = self.daemon.dir / f"capture-{n}.pcap"
        self.ctl("capture (200 frames)", "capture", "red", self.daemon.tap("r"), "-c", "200",
                 "-w", str(out), timeout=20)  # fmt: skip
        with contextlib.suppress(OSError):
            out.unlink()

    def sample(self, n: int) -> None:
        proc = self.daemon.proc
        assert proc is not None
        if proc.poll() is not None:
            self.activity("daemon alive").fail(f"exited {proc.returncode}")
            self.stop.set()
            return
        pid = proc.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
        now = time.monotonic()
        last = self.samples[-1] if self.samples else None
        share = (cpu - last["cpu_s"]) / (now - last["t"]) * 100 if last else 0.0
        self.samples.append({"t": now, "rss_mib": rss, "fds": fds, "cpu_s": cpu,
                             "cpu_pct": share})  # fmt: skip

    # -- the run -------------------------------------------------------------------------

    def start_programs(self) -> None:
        d = self.daemon
        self.spawn("h2", "iperf3", "-s", "-p", "5201")
        self.spawn("h2", "iperf3", "-s", "-p", "5202")
        web = d.dir / "www"
        web.mkdir()
        (web / "index.html").write_text("vrouter soak\n" * 1000)
        self.spawn("h2", sys.executable, "-m", "http.server", "8000", "--bind", "198.51.100.2",
                   "--directory", str(web))  # fmt: skip
        self.ping_log = d.dir / "ping.log"
        self.spawn("h1", "ping", "-D", "-i", "0.05", "198.51.100.2", out=self.ping_log)

    def go(self) -> None:
        minutes = self.args.minutes
        loads: list[tuple[float, Callable[[int], None], float]] = [
            (1.0, self.sample, 0.0), (20.5, self.tcp, 1.0), (20.5, self.udp, 2.0),
            (30.0, self.scan, 5.0), (2.0, self.socks, 1.5), (self.args.reload_every, self.reload,
            self.args.reload_every), (5.0, self.churn, 3.0), (1.0, self.scrape, 0.5),
            (45.0, self.capture, 10.0),
        ]  # fmt: skip
        threads = [threading.Thread(target=self.every, args=load, daemon=True) for load in loads]
        for thread in threads:
            thread.start()
        self.stop.wait(minutes * 60)
        self.stop.set()
        for thread in threads:
            thread.join(90)

    def pauses(self) -> tuple[list[tuple[float, float]], int, int]:
        """Return the gaps between two ping answers as (seconds since the first answer, gap),
        longest first, the answers, and the requests sent."""
        assert self.ping_log is not None
        stamps, seqs = [], []
        for line in self.ping_log.read_text(errors="replace").splitlines():
            match = re.match(r"\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=(\d+)", line)
            if match:
                stamps.append(float(match.group(1)))
                seqs.append(int(match.group(2)))
        gaps = [(a - stamps[0], b - a) for a, b in itertools.pairwise(stamps)]
        return sorted(gaps, key=lambda g: -g[1]), len(stamps), max(seqs, default=0)

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


def summarize(soak: Soak, seconds: float) -> dict[str, Any]:
    """Return what the soak saw, as plain data."""
    samples = soak.samples
    log = soak.daemon.logtext()
    gaps, answered, requested = soak.pauses()

    def stat(key: str) -> dict[str, float]:
        values = [s[key] for s in samples] or [0.0]
        return {"start": values[0], "peak": max(values), "end": values[-1],
                "mean": sum(values) / len(values)}  # fmt: skip

    return {
        "seconds": round(seconds, 1),
        "tracebacks": log.count("Traceback"),
        "errors_logged": len(re.findall(r"\bERROR\b", log)),
        "daemon_alive": soak.daemon.proc is not None and soak.daemon.proc.poll() is None,
        "longest_pause_s": round(gaps[0][1], 3) if gaps else float("inf"),
        "longest_pauses": [{"at_s": round(at, 1), "gap_s": round(gap, 3)} for at, gap in gaps[:5]],
        "ping_answered": answered,
        "ping_sent": requested,
        "rss_mib": stat("rss_mib"),
        "fds": stat("fds"),
        "cpu_pct": stat("cpu_pct"),
        "activities": {k: vars(v) for k, v in sorted(soak.activities.items())},
    }


def write_csv(samples: list[dict[str, float]], path: Path) -> None:
    """Write the per-second samples (seconds since the start, RSS, fds, CPU)."""
    t0 = samples[0]["t"] if samples else 0.0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seconds", "rss_mib", "fds", "cpu_percent"])
        for s in samples:
            writer.writerow([f"{s['t'] - t0:.1f}", f"{s['rss_mib']:.1f}", int(s["fds"]),
                             f"{s['cpu_pct']:.1f}"])  # fmt: skip


def plot(samples: list[dict[str, float]], path: Path) -> bool:
    """Plot RSS, fds and CPU over time into ``path``; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    t0 = samples[0]["t"]
    minutes = [(s["t"] - t0) / 60 for s in samples]
    figure, axes = plt.subplots(3, 1, sharex=True, figsize=(9, 7))
    labels = ("RSS (MiB)", "open fds", "CPU (% of a core)")
    for ax, key, label in zip(axes, ("rss_mib", "fds", "cpu_pct"), labels, strict=True):
        ax.plot(minutes, [s[key] for s in samples], linewidth=0.8)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel("minutes")
    figure.suptitle("vrouterd under the soak (bench/soak.py)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    return True


def render(summary: dict[str, Any], command: str, plotted: bool) -> str:
    """Return the RESULTS.md section."""
    s = summary
    lines = ["## Soak", "", f"`{command}` (see bench/README.md).", "", "### Machine", "",
             *report.machine((("iperf3", "--version"), ("curl", "--version"))), "",
             "### Summary", "",
             f"- Ran {s['seconds'] / 60:.1f} minutes; daemon alive at the end: "
             f"{'yes' if s['daemon_alive'] else '**no**'}.",
             f"- Tracebacks in the daemon's log: **{s['tracebacks']}**; ERROR lines: "
             f"{s['errors_logged']}.",
             f"- Longest forwarding pause (largest gap between two ping answers, h1 -> h2 every "
             f"50 ms): **{s['longest_pause_s'] * 1000:.0f} ms**; {s['ping_answered']:,} answers "
             f"to {s['ping_sent']:,} requests ({s['ping_sent'] - s['ping_answered']:,} lost); "
             "the five longest gaps: " + ", ".join(f"{p['gap_s'] * 1000:.0f} ms at "
             f"{p['at_s'] / 60:.1f} min" for p in s["longest_pauses"]) + ".",
             "", "| measure | start | peak | end | mean |",
             "|---|---:|---:|---:|---:|"]  # fmt: skip
    measures = (("rss_mib", "RSS (MiB)"), ("fds", "open fds"), ("cpu_pct", "CPU % of a core"))
    for key, label in measures:
        v = s[key]
        lines.append(f"| {label} | {v['start']:.1f} | {v['peak']:.1f} | {v['end']:.1f} | "
                     f"{v['mean']:.1f} |")  # fmt: skip
    lines += ["", "| activity | done | failed | last failure |", "|---|---:|---:|---|"]
    for name, a in s["activities"].items():
        why = a["last_error"].replace("|", "/").replace("\n", " ")[:160]
        lines.append(f"| {name} | {a['done']:,} | {a['failed']:,} | {why} |")
    where = "; plot: `bench/soak.png`." if plotted else " (matplotlib not installed: no plot)."
    lines += ["", "Per-second samples: `bench/soak.csv`" + where, ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--reload-every", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--tcp-rate", default="200M", help="iperf3 -b for TCP (default 200M)")
    parser.add_argument("--udp-rate", default="4M", help="iperf3 -b for 64-byte UDP (default 4M)")
    parser.add_argument("--max-pause", type=float, default=5.0,
                        help="fail if the longest pause is longer (seconds, default 5)")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    parser.add_argument("--no-write", action="store_true",
                        help="write neither bench/RESULTS.md nor bench/soak.csv/.png")
    args = parser.parse_args()  # fmt: skip
    if os.geteuid() != 0:
        parser.error("needs root (network namespaces and TAP devices)")
    missing = [t for t in ("ip", "iperf3", "ping", "curl") if shutil.which(t) is None]
    if missing:
        parser.error(f"needs {', '.join(missing)}")
    command = ".venv/bin/python bench/soak.py " + " ".join(sys.argv[1:])
    metrics, socks = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="vrouter-soak-") as work:
        daemon = Vrouterd(Path(work), config_text(metrics, socks, 0))
        soak = Soak(daemon, args, metrics, socks)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: soak.stop.set())
        started = time.monotonic()
        try:
            daemon.start()
            daemon.wait_ipv6()
            soak.start_programs()
            soak.go()
            summary = summarize(soak, time.monotonic() - started)
        except KeyboardInterrupt:
            soak.stop.set()
            summary = summarize(soak, time.monotonic() - started)
        finally:
            soak.stop.set()
            soak.close()
            try:
                if daemon.proc is not None and daemon.proc.poll() is None:
                    daemon.stop()
            finally:
                if "Traceback" in daemon.logtext():
                    print(daemon.logtext()[-5000:], file=sys.stderr)
                daemon.cleanup()
    plotted = False
    if not args.no_write:
        write_csv(soak.samples, HERE / "soak.csv")
        plotted = bool(soak.samples) and plot(soak.samples, HERE / "soak.png")
        report.write_section("soak", render(summary, command, plotted))
    print(render(summary, command, plotted))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1))
    bad = (summary["tracebacks"] or not summary["daemon_alive"]
           or summary["longest_pause_s"] > args.max_pause)  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    random.seed(0)
    sys.exit(main())
