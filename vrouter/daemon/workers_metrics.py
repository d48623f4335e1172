"""The metrics of a daemon with workers, as one target: the workers' merged by name.

The front scrapes every worker (``metrics.scrape``, in the format and with
the sources its client asked for) and serves their families joined, with
its own daemon-wide ones (:data:`FRONT_FAMILIES`, not once per worker) and
per-worker CPU time, memory and liveness (``vrouter_worker_*``).

Guarantee: the merge never parses a sample of the vnets' families.  A
worker's text is cut into families at its ``# HELP`` lines (``str.find``
over the text); the samples of one family from every worker are written
under its first header, as they came.  Only the few lines the front reads
(a worker's ``vrouter_vnets``, CPU time and memory) are parsed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vrouter.daemon import metrics

if TYPE_CHECKING:
    from vrouter.daemon.front import Front

FRONT_FAMILIES = frozenset(
    {
        "vrouter_build_info",
        "vrouter_start_time_seconds",
        "vrouter_vnets",
        "vrouter_config_reloads",
        "vrouter_config_last_reload_success_timestamp_seconds",
    }
)
"""Daemon-wide families the front answers itself (not once per worker)."""
PROCESS_WIDE = ("process_", "python_", "vrouter_scrape_")
"""Prefixes of a worker's families about the worker process itself, not its vnets:
left out (its CPU time and memory become ``vrouter_worker_*``)."""

EOF = "# EOF\n"


def families(text: str) -> Iterator[tuple[str, str, str]]:
    """Yield (name, header, samples) per family of an exposition text, as written.

    ``name`` is the family's name as its HELP line gives it, less any
    ``_total`` (the text format's counters carry it there, OpenMetrics'
    do not); the header is the family's ``#`` lines.
    """
    text = text.removesuffix(EOF)
    start = 0 if text.startswith("# HELP ") else text.find("\n# HELP ") + 1
    if start == 0 and not text.startswith("# HELP "):
        return
    while start < len(text):
        following = text.find("\n# HELP ", start) + 1 or len(text)
        body = text.find("\n", start) + 1 or len(text)  # after HELP: TYPE, any UNIT
        while text.startswith(("# TYPE ", "# UNIT "), body):
            body = text.find("\n", body) + 1 or len(text)
        name = text[start + 7 : text.find(" ", start + 7)].removesuffix("_total")
        yield name, text[start:body], text[body:following]
        start = following


def total(samples: str) -> float:
    """Return the sum of the values of some sample lines."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in samples.splitlines() if line)


class WorkersScrape:
    """One scrape of the front: its own families, then every worker's, merged by name."""

    def __init__(self, front: Front, texts: Sequence[tuple[int, str | None]]) -> None:
        self.front = front
        self.texts = texts
        """(worker index, its text or None if it did not answer), in worker order."""

    def steps(self, query: metrics.Query) -> Iterator[str]:
        """Yield the exposition: the front's families first, then the merged ones."""
        merged: dict[str, list[str]] = {}
        up = GaugeMetricFamily(
            "vrouter_worker_up", "1 if the worker answered this scrape, else 0.", labels=("worker",)
        )
        cpu = CounterMetricFamily(
            "vrouter_worker_cpu_seconds",
            "User and system CPU time the worker process has spent, in seconds.",
            labels=("worker",),
        )
        memory = GaugeMetricFamily(
            "vrouter_worker_resident_memory_bytes",
            "Resident memory of the worker process, in bytes.",
            labels=("worker",),
        )
        vnets = 0.0
        for index, text in self.texts:
            label = (str(index),)
            up.add_metric(label, 0 if text is None else 1)
            for name, header, samples in families(text or ""):
                if name == "vrouter_vnets":
                    vnets += total(samples)
                elif name == "process_cpu_seconds":
                    cpu.add_metric(label, total(samples))
                elif name == "process_resident_memory_bytes":
                    memory.add_metric(label, total(samples))
                if name in FRONT_FAMILIES or name.startswith(PROCESS_WIDE):
                    continue
                parts = merged.get(name)
                if parts is None:
                    merged[name] = [header, samples]
                else:
                    parts.append(samples)
            yield ""
        own: list[Metric] = []
        if metrics.DAEMON in query.sources:
            own.extend(metrics.reload_metrics(self.front))
            own.extend(metrics.daemon_metrics(self.front.started, int(vnets)))
            own.extend((up, cpu, memory))
        if metrics.PROCESS in query.sources:
            own.extend(metrics.process_metrics())
        yield metrics.encode(own, query.openmetrics, query.exclude)
        for parts in merged.values():
            yield from parts
        if query.openmetrics:
            yield EOF
