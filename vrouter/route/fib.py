"""A forwarding table with longest-prefix match, for IPv4 or IPv6.

Routes are kept in one dict per prefix length, keyed by the masked network
as an integer; a lookup tries the lengths in use from longest to shortest,
so it costs at most one dict probe per distinct prefix length present.
``generation`` increases on every change so caches can tell they are stale.

Those dicts stay the source of truth.  An IPv4 table that grows to
:data:`INDEX_AT` routes also gets a DIR-24-8 index (:mod:`vrouter.route.dir248`,
64 MiB plus 1 KiB per /24 holding longer prefixes), patched on every add and
delete, and from then on a lookup is one or two array reads and a list read
whatever the lengths present; the index is dropped when the table shrinks
below :data:`UNINDEX_BELOW`.  Small
tables, a vnet's usual few connected and static routes, never pay for it.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrouter.link.ifnet import Ifnet
    from vrouter.route.dir248 import Dir248

log = logging.getLogger("vrouter.route")

UNICAST = "unicast"
BLACKHOLE = "blackhole"
REJECT = "reject"

CONNECTED = "connected"
STATIC = "static"

Prefix = ipaddress.IPv4Network | ipaddress.IPv6Network


def _masks(bits: int) -> list[int]:
    full = (1 << bits) - 1
    return [(full << (bits - n)) & full for n in range(bits + 1)]


_MASKS = {32: _masks(32), 128: _masks(128)}

INDEX_AT = 262_144
"""IPv4 routes at which a Fib builds its DIR-24-8 index: about where the
routes themselves (some 270 bytes each with their dict entries) weigh as much
as the index's 64 MiB top table, so the index at most doubles a table's memory."""
_index_missing: str | None = None
"""Why the index cannot be built (numpy not installed), once that is known."""
UNINDEX_BELOW = 65_536
"""IPv4 routes below which an indexed Fib drops its index again (a quarter of
:data:`INDEX_AT`, so a table moving around the threshold is not rebuilt
back and forth)."""


class RouteError(Exception):
    """A route cannot be added or removed as asked."""


@dataclass(slots=True)
class Route:
    """One entry: where packets for ``prefix`` go."""

    prefix: Prefix
    type: str = UNICAST
    """``unicast``, ``blackhole`` (drop silently) or ``reject`` (drop, ICMP unreachable)."""
    gateway: bytes | None = None
    """Next hop address (4 or 16 bytes); None means the destination is on-link."""
    ifnet: Ifnet | None = None
    """Egress interface of a unicast route."""
    origin: str = STATIC
    """``connected`` (from an interface address) or ``static``."""
    use: int = 0
    """Packets that took this route."""
    number: int = field(default=0, init=False, repr=False, compare=False)
    """Its number in the Fib's DIR-24-8 index, if the Fib has one (else 0)."""

    def describe(self) -> dict[str, object]:
        """Return the route as plain data for the API."""
        return {
            "prefix": str(self.prefix),
            "type": self.type,
            "gateway": str(ipaddress.ip_address(self.gateway)) if self.gateway else None,
            "interface": self.ifnet.name if self.ifnet is not None else None,
            "origin": self.origin,
            "use": self.use,
        }


class Fib:
    """A longest-prefix-match table of :class:`Route` for one address family."""

    _index: Dir248 | None = None
    """The DIR-24-8 index of a large IPv4 table (its ``lookup`` shadows the method)."""

    def __init__(self, bits: int = 32) -> None:
        self.bits = bits
        self._masks = _MASKS[bits]
        self._by_len: dict[int, dict[int, Route]] = {}
        self._lens: list[int] = []
        self._count = 0
        self.generation = 0
        self.on_change: Callable[[str, Route], None] | None = None
        """Told ``("add"|"delete", route)`` after every change (route-socket monitors)."""

    def _check_family(self, prefix: Prefix) -> None:
        if prefix.max_prefixlen != self.bits:
            raise RouteError(f"{prefix} is not an IPv{4 if self.bits == 32 else 6} prefix")

    def add(self, route: Route) -> None:
        """Insert ``route``; a route for the same prefix must not exist."""
        self._check_family(route.prefix)
        plen = route.prefix.prefixlen
        key = int(route.prefix.network_address)
        table = self._by_len.get(plen)
        if table is None:
            table = self._by_len[plen] = {}
            self._lens = sorted(self._by_len, reverse=True)
        if key in table:
            raise RouteError(f"route to {route.prefix} already exists")
        table[key] = route
        self._count += 1
        if self._index is not None:
            self._index.add(route, key, plen, self._covering)
        elif self._count >= INDEX_AT and self.bits == 32 and _index_missing is None:
            self._build_index()
        self.generation += 1
        if self.on_change is not None:
            self.on_change("add", route)

    def delete(self, prefix: Prefix) -> Route:
        """Remove and return the route for exactly ``prefix``."""
        table = self._by_len.get(prefix.prefixlen)
        route = table.pop(int(prefix.network_address), None) if table is not None else None
        if route is None:
            raise RouteError(f"no route to {prefix}")
        plen = prefix.prefixlen
        if not table:
            del self._by_len[plen]
            self._lens = sorted(self._by_len, reverse=True)
        self._count -= 1
        if self._index is not None:
            if self._count < UNINDEX_BELOW:
                self._drop_index()
            else:
                key = int(prefix.network_address)
                self._index.delete(route, key, plen, self._covering)
        self.generation += 1
        if self.on_change is not None:
            self.on_change("delete", route)
        return route

    def get(self, prefix: Prefix) -> Route | None:
        """Return the route for exactly ``prefix``, if any."""
        table = self._by_len.get(prefix.prefixlen)
        return table.get(int(prefix.network_address)) if table is not None else None

    def _covering(self, key: int, plen: int) -> Route | None:
        """Return the longest route shorter than ``plen`` covering ``key``, if any."""
        by_len = self._by_len
        masks = self._masks
        for shorter in self._lens:
            if shorter < plen:
                route = by_len[shorter].get(key & masks[shorter])
                if route is not None:
                    return route
        return None

    def _build_index(self) -> None:
        # Imported here: numpy costs a daemon whose tables stay small some
        # 12 MiB and its import time for nothing; and it is optional (the
        # ``fib`` extra): without it, lookups stay route-length by route-length.
        global _index_missing
        try:
            from vrouter.route.dir248 import Dir248
        except ImportError as err:
            _index_missing = str(err)
            log.warning(
                "an IPv4 table passed %d routes, but without numpy it gets no DIR-24-8 "
                "index (%s; pip install 'vrouter[fib]')", INDEX_AT, err,
            )  # fmt: skip
            return
        self._index = Dir248(self._by_len)
        self.lookup = self._index.lookup  # type: ignore[method-assign,assignment]

    def _drop_index(self) -> None:
        for table in self._by_len.values():
            for route in table.values():
                route.number = 0
        del self._index
        del self.lookup

    @property
    def indexed(self) -> bool:
        """Whether lookups go through the DIR-24-8 index."""
        return self._index is not None

    def lookup(self, dst: bytes) -> Route | None:
        """Return the most specific route covering ``dst`` (packed), or None."""
        addr = int.from_bytes(dst, "big")
        by_len = self._by_len
        masks = self._masks
        for plen in self._lens:
            route = by_len[plen].get(addr & masks[plen])
            if route is not None:
                return route
        return None

    def __iter__(self) -> Iterator[Route]:
        for plen in self._lens:
            yield from sorted(self._by_len[plen].values(), key=lambda r: r.prefix)

    def __len__(self) -> int:
        return self._count
