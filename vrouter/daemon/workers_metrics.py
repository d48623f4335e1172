"""The metrics of a daemon with workers, as one target: the workers' merged by name.

The front scrapes every worker (``metrics.scrape``) and serves their
families joined, with its own daemon-wide ones (:data:`FRONT_FAMILIES`,
not once per worker) and per-worker CPU time, memory and liveness
(``vrouter_worker_*``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

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


class WorkersCollector:
    """The workers' metrics as one target, with the front's daemon-wide families."""

    def __init__(self, front: Front) -> None:
        self.front = front

    def collect(self) -> Iterator[Metric]:
        """Return the front's families, then every worker's, merged by name.

        Runs in the exporter after :meth:`Front.scrape` has fetched the texts.
        """
        front = self.front
        yield from metrics.reload_metrics(front)
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
        merged: dict[str, Metric] = {}
        for index, text in sorted(front.scraped.items()):
            label = (str(index),)
            up.add_metric(label, 0 if text is None else 1)
            for family in text_string_to_metric_families(text or ""):
                name = family.name
                if name == "vrouter_vnets":
                    vnets += sum(s.value for s in family.samples)
                elif name == "process_cpu_seconds":
                    cpu.add_metric(label, sum(s.value for s in family.samples))
                elif name == "process_resident_memory_bytes":
                    memory.add_metric(label, sum(s.value for s in family.samples))
                if name in FRONT_FAMILIES or name.startswith(("process_", "python_")):
                    continue
                first = merged.setdefault(name, family)
                if first is not family:
                    first.samples.extend(family.samples)
        yield from metrics.daemon_metrics(front.started, int(vnets))
        yield up
        yield cpu
        yield memory
        yield from merged.values()
