"""The mirror subsystem's per-vnet state: the representors' writers, the punt limit, counters.

Attaching the subsystem costs a vnet nothing on its data path: the IP layers
only consult the punt hook (``vnet.inet.punt``, ``vnet.inet6.punt``) when a
mirror is enabled (:func:`vrouter.mirror.punt.enable`), and only for packets
addressed to the vnet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from vrouter.core.ratelimit import TokenBucket
from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import field_knob

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet

Writer = Callable[[bytes], bool]
"""Write one frame to a representor; False if the kernel would not take it."""


@dataclass(slots=True)
class PuntStats:
    """Counters of the traffic between a vnet and its mirror."""

    punted: int = 0
    """Packets addressed to the vnet written to a representor."""
    ratelimited: int = 0
    """Packets not punted: over ``net.mirror.punt_rate``."""
    nodevice: int = 0
    """Packets not punted: the interface has no representor (yet)."""
    full: int = 0
    """Packets not punted: the representor's queue was full."""
    out: int = 0
    """Packets the mirror sent, handed to the vnet's output."""
    out_noroute: int = 0
    """Packets the mirror sent that the vnet could not route or send."""
    out_dropped: int = 0
    """Frames from the mirror that were not IPv4 or IPv6, or were malformed."""


@dataclass(slots=True)
class MirrorState:
    """Per-vnet mirror state (the namespace and devices themselves belong to the daemon)."""

    punt_rate: int = 10_000
    """``net.mirror.punt_rate``: packets per second punted at most, 0 = no limit."""
    sync_grace: int = 0
    """``net.mirror.sync_grace``: seconds a synced route stays after the mirror's kernel
    withdrew it (a routing daemon restarting), 0 = none."""
    bucket: TokenBucket = field(default_factory=TokenBucket)
    """Spent by every packet punted."""
    writers: dict[str, Writer] = field(default_factory=dict)
    """The representor of each interface, by interface name."""
    stats: PuntStats = field(default_factory=PuntStats)


def default_netns(vnet: str) -> str:
    """Return the default mirror namespace of ``vnet``: ``vr-m-`` and its name, ``/`` as ``.``."""
    return "vr-m-" + vnet.replace("/", ".")


def state_of(vnet: Vnet) -> MirrorState:
    """Return ``vnet.mirror`` (typed; created by the registry when first asked for)."""
    return cast(MirrorState, vnet.mirror)


def _attach(vnet: Vnet) -> MirrorState:
    return MirrorState()


def _detach(vnet: Vnet) -> None:
    state_of(vnet).writers.clear()
    vnet.inet.punt = None
    vnet.inet6.punt = None


KNOBS = (
    field_knob(
        "net.mirror.punt_rate",
        int,
        "Packets per second punted to the control-plane mirror at most (0: no limit)",
        "mirror.punt_rate",
        0,
        10_000_000,
    ),
    field_knob(
        "net.mirror.sync_grace",
        int,
        "Seconds a synced route stays after the mirror withdrew it (a daemon restarting)",
        "mirror.sync_grace",
        0,
        3600,
    ),
)

SUBSYSTEM = Subsystem(
    "mirror", _attach, _detach, depends=("inet", "inet6"), knobs=KNOBS, lazy=True
)
"""Lazy: a vnet gets its mirror state when it first gets a mirror (or a knob is set)."""
