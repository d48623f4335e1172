"""Route sources: who put a route in a vnet's table, and how much it is trusted.

Every route records its :class:`Source`: ``connected`` (an interface
address), ``static`` (the config, the control API, ``vrouterctl``), ``ra``
(a host's default router learnt from router advertisements), or a
routing protocol speaking through a route socket (``rip``, ``ripng``, ``bgp``
…), as Linux records a route's ``proto`` and BSD its ``RTF_STATIC`` /
``RTF_PROTO*`` flags.  A source is identified by its *name*: only requests
naming it may change or delete its routes, so a routing daemon never
removes a configured static route to a prefix it also learnt.  A restarted
daemon naming the same protocol takes its predecessor's routes over, as on
Linux.  The control-plane mirror's netlink sync is meant to add one source
per kernel route protocol the same way.

Several sources may hold the same prefix.  The entry with the lowest
*administrative distance* is installed (used for forwarding); the others
are held and the best of them takes over when it goes.  On a tie the entry
that was there first stays installed.  The defaults follow FRR's (zebra's)
table; a request may give its own distance (a floating static route is a
static route with a distance above the protocol it backs up).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from types import MappingProxyType

DISTANCES = MappingProxyType(
    {
        "connected": 0,
        "static": 1,
        "ebgp": 20,
        "bgp": 20,
        "eigrp": 90,
        "babel": 100,
        "ospf": 110,
        "ospf6": 110,
        "isis": 115,
        "openfabric": 115,
        "rip": 120,
        "ripng": 120,
        "routesock": 150,
        "ibgp": 200,
        "ra": 240,
        "dhcp": 254,
    }
)
"""Default administrative distance by source name (FRR's defaults where FRR has one;
``dhcp``, the default route a vnet's DHCP client installs, yields to every other)."""
OTHER_DISTANCE = 150
"""The distance of a source name not in :data:`DISTANCES`."""
MIN_DISTANCE = 1
"""The lowest distance a request may give: 0 is the connected routes' own."""
MAX_DISTANCE = 255
ROUTESOCK = "routesock"
"""The source of a route-socket request that names none."""
DAEMON_SOURCES = frozenset({"connected", "static", "ra", "dhcp"})
"""Sources only the daemon itself adds to (addresses, config, control API, a host's
default routers learnt from router advertisements, its DHCP client)."""

_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,15}")


class SourceError(ValueError):
    """A source name or distance that cannot be used."""


@dataclass(frozen=True, slots=True)
class Source:
    """A route's source: its name and the administrative distance of its routes."""

    name: str
    distance: int

    def __str__(self) -> str:
        return f"{self.name}[{self.distance}]"


CONNECTED = Source("connected", 0)
STATIC = Source("static", 1)
RA = Source("ra", DISTANCES["ra"])
"""A host's default route to a router learnt from its advertisements (:mod:`vrouter.inet6.slaac`);
every other source's default route wins over it."""


def default_distance(name: str) -> int:
    """Return the distance of ``name``'s routes unless a request says otherwise."""
    return DISTANCES.get(name, OTHER_DISTANCE)


def check_name(name: object) -> str:
    """Return ``name`` if it can name a source, else raise SourceError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SourceError(
            f"bad route source {name!r}: 1-16 characters from [a-z0-9_.-], starting with a letter"
        )
    return name


def check_distance(distance: object) -> int:
    """Return ``distance`` if a request may give it (1..255), else raise SourceError."""
    if isinstance(distance, bool) or not isinstance(distance, int):
        raise SourceError(f"bad distance {distance!r}: an integer {MIN_DISTANCE}..{MAX_DISTANCE}")
    if not MIN_DISTANCE <= distance <= MAX_DISTANCE:
        raise SourceError(f"distance {distance} is not in {MIN_DISTANCE}..{MAX_DISTANCE}")
    return distance


@functools.lru_cache(maxsize=1024)
def source(name: str, distance: int | None = None) -> Source:
    """Return the (shared) Source ``name`` with ``distance`` (None: its default).

    Routes of one source share one object, so a source costs a route nothing
    beyond the reference it always had.
    """
    if name == CONNECTED.name:
        return CONNECTED
    check_name(name)
    return Source(name, default_distance(name) if distance is None else check_distance(distance))
