"""Workers: which process runs which vnets, and what each process is told.

With ``[daemon] workers = N`` (N > 1) vrouterd runs as a front process and N
worker processes (the GIL rules out threads for packet work).  A worker is
an ordinary vrouterd over a subset of the config: it owns whole top-level
vnets with their children (a hierarchy never spans processes), their TAPs,
host namespaces, sockets and SOCKS5 gateways, and runs their data path on
its own event loop.  The front (:mod:`vrouter.daemon.front`) keeps the one
control socket, the metrics exporter, the config and its reloads.

An epair between vnets of two workers is a *wire*: a Unix stream socket
pair made by the front before the workers start, one end inherited by each
(:mod:`vrouter.io.workerwire`).

Everything here is pure: the assignment of vnets to workers, the wires a
config needs, and the config a worker runs.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vrouter.daemon.config import Config


def root_of(name: str) -> str:
    """Return the top-level vnet of ``name`` (``lab`` for ``lab/r1``)."""
    return name.partition("/")[0]


def assign(
    config: Config, workers: int, running: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Map every top-level vnet of ``config`` to a worker.

    A pinned vnet (``worker = K``) goes to K; one already running stays where
    it runs (``running``); any other goes to the worker with the fewest
    top-level vnets (the lowest index on a tie), so a fresh start deals
    them out in file order.
    """
    running = running or {}
    tops = [v for v in config.vnets if "/" not in v.name]
    placed: dict[str, int] = {}
    for vcfg in tops:
        if vcfg.worker is not None:
            placed[vcfg.name] = vcfg.worker
        elif vcfg.name in running and running[vcfg.name] < workers:
            placed[vcfg.name] = running[vcfg.name]
    load = [0] * workers
    for index in [*placed.values(), *(w for n, w in running.items() if n not in placed)]:
        if index < workers:
            load[index] += 1
    for vcfg in tops:
        if vcfg.name not in placed:
            index = min(range(workers), key=lambda k: (load[k], k))
            placed[vcfg.name] = index
            load[index] += 1
    return placed


@dataclass(frozen=True, slots=True, order=True)
class Wire:
    """An epair whose two ends run in different workers (ends in canonical order)."""

    a: tuple[str, str]
    """(vnet, interface) of one end."""
    b: tuple[str, str]

    def __str__(self) -> str:
        return f"{self.a[0]}:{self.a[1]} <-> {self.b[0]}:{self.b[1]}"


def end_key(vnet: str, interface: str) -> str:
    """Return how a wire's end is named to its worker (``vnet:interface``)."""
    return f"{vnet}:{interface}"


def wires(config: Config, placed: Mapping[str, int]) -> list[Wire]:
    """Return the epairs of ``config`` whose ends are placed on different workers."""
    found: set[Wire] = set()
    for vcfg in config.vnets:
        for icfg in vcfg.interfaces:
            if icfg.type != "epair" or icfg.peer is None:
                continue
            here, there = (vcfg.name, icfg.name), icfg.peer
            if placed.get(root_of(here[0])) != placed.get(root_of(there[0])):
                found.add(Wire(*sorted((here, there))))
    return sorted(found)


def worker_dir(state_dir: str, index: int) -> str:
    """Return worker ``index``'s state directory (its namespaces record)."""
    return str(Path(state_dir) / f"worker-{index}")


def worker_socket(state_dir: str, index: int) -> str:
    """Return worker ``index``'s private control socket (the front's only)."""
    return str(Path(state_dir) / f"worker-{index}.sock")


def subset(config: Config, index: int, tops: Iterable[str]) -> Config:
    """Return the config worker ``index`` runs: the vnets under ``tops`` and their gateways.

    The worker gets its own control socket and state directory and no
    metrics exporter (the front scrapes it).  Epairs to vnets elsewhere stay
    in its interfaces; it attaches them to the wires it inherited.
    """
    mine = set(tops)
    daemon = config.daemon
    return dataclasses.replace(
        config,
        daemon=dataclasses.replace(
            daemon,
            control_socket=worker_socket(daemon.state_dir, index),
            state_dir=worker_dir(daemon.state_dir, index),
            metrics=None,
            socks=tuple(g for g in daemon.socks if root_of(g.vnet) in mine),
            workers=1,
        ),
        vnets=tuple(v for v in config.vnets if root_of(v.name) in mine),
    )


@dataclass(frozen=True, slots=True)
class Spec:
    """What the front tells a worker on its command line."""

    index: int
    front: int
    """The front's pid: the only peer whose requests carry a caller and daemon arguments."""
    tops: tuple[str, ...]
    """The top-level vnets it runs."""
    wires: Mapping[str, int]
    """Inherited descriptor of each wire end it owns, by :func:`end_key`."""
    ready: int
    """Descriptor to write ``ready`` (or ``failed: why``) to, then close."""
    config: int = -1
    """Descriptor holding the config text the front read (a memfd)."""

    def encode(self) -> str:
        """Return the spec as one command-line argument."""
        return json.dumps(
            {
                "index": self.index,
                "front": self.front,
                "tops": list(self.tops),
                "wires": dict(self.wires),
                "ready": self.ready,
                "config": self.config,
            }
        )

    @classmethod
    def decode(cls, text: str) -> Spec:
        """Parse :meth:`encode`'s output; raise ValueError if it is not one."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a worker spec is a JSON object")
        try:
            return cls(
                index=int(data["index"]),
                front=int(data["front"]),
                tops=tuple(str(t) for t in data["tops"]),
                wires={str(k): int(v) for k, v in dict(data["wires"]).items()},
                ready=int(data["ready"]),
                config=int(data.get("config", -1)),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"bad worker spec: {err}") from None


def config_fd(text: str) -> int:
    """Return a descriptor (a memfd) holding ``text``, for a worker."""
    fd = os.memfd_create("vrouter-config")  # close-on-exec: handed over by pass_fds only
    os.write(fd, text.encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def read_text(fd: int) -> str:
    """Return the config text the front passed on ``fd`` (and close it)."""
    with os.fdopen(fd, "rb") as f:
        return f.read().decode("utf-8")


PR_SET_PDEATHSIG = 1


def follow(spec: Spec) -> None:
    """Make this worker get SIGTERM when its front dies; exit if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != spec.front:
        sys.exit("vrouterd: the front process is gone")
