"""Dicts and sets in shards: tables that grow to millions of entries without holding the loop.

A dict or a set grows by copying itself whole into a table two to four
times the size, in one C call: 12, 15 and 28 ms at 175,000, 350,000 and
700,000 entries, a stall of every vnet's forwarding in the middle of a
route feed.  :class:`ShardedDict`, :class:`NetShards` and
:class:`ShardedSet` split one into :data:`SHARDS` plain ones by key, and
each grows on its own at 1/:data:`SHARDS` of the size: of a million
entries the largest copy is some 4,000, a fraction of a millisecond.  An
operation costs a Python call more than the plain one's; a hot loop may
ask for a key's :meth:`~ShardedDict.shard` once and work on that plain
dict.  They count their entries, so ``len`` costs nothing either.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, ItemsView, Iterable, Iterator, MutableMapping, ValuesView
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

SHARDS = 256
"""Shards of a table (a power of 2)."""
_MASK = SHARDS - 1
_MISSING = object()


class ShardedDict(MutableMapping[K, V]):
    """A dict in :data:`SHARDS` shards by ``hash(key)`` (see the module docstring); iterated
    shard by shard."""

    __slots__ = ("_count", "shards")

    def __init__(self, items: Iterable[tuple[K, V]] = ()) -> None:
        self.shards: list[dict[K, V]] = [{} for _ in range(SHARDS)]
        """The plain dicts (which holds a key: :meth:`shard`)."""
        self._count = 0
        shard = self.shard
        for key, value in items:
            shard(key)[key] = value
        self._count = sum(map(len, self.shards))

    def shard(self, key: K) -> dict[K, V]:
        """Return the plain dict that holds ``key`` if any does (changed only through
        this table: the count would be wrong)."""
        return self.shards[hash(key) & _MASK]

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D) -> V | D: ...
    def get(self, key: K, default: object = None) -> object:
        """Return the value of ``key``, or ``default``."""
        return self.shards[hash(key) & _MASK].get(key, default)  # (inlined :meth:`shard`)

    def __getitem__(self, key: K) -> V:
        return self.shard(key)[key]

    def __setitem__(self, key: K, value: V) -> None:
        shard = self.shards[hash(key) & _MASK]
        size = len(shard)
        shard[key] = value
        self._count += len(shard) - size

    def __delitem__(self, key: K) -> None:
        del self.shard(key)[key]
        self._count -= 1

    def __contains__(self, key: object) -> bool:
        return key in self.shard(key)  # type: ignore[arg-type]

    @overload
    def pop(self, key: K) -> V: ...
    @overload
    def pop(self, key: K, default: V | D) -> V | D: ...
    def pop(self, key: K, default: object = _MISSING) -> object:
        """Remove ``key`` and return its value (``default`` if given and it is not there)."""
        shard = self.shard(key)
        if default is _MISSING or key in shard:
            value = shard.pop(key)
        else:
            return default
        self._count -= 1
        return value

    def popitem(self) -> tuple[K, V]:
        """Remove and return an entry; KeyError when empty."""
        for shard in self.shards:
            if shard:
                self._count -= 1
                return shard.popitem()
        raise KeyError("popitem(): the table is empty")

    def clear(self) -> None:
        """Remove every entry."""
        for shard in self.shards:
            shard.clear()
        self._count = 0

    def drain(self, count: int) -> bool:
        """Remove ``count`` entries, or all there are; return whether some are left (a
        large table freed a part at a time)."""
        self._count -= _drain(self.shards, count, dict.popitem)
        return self._count > 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[K]:
        return itertools.chain.from_iterable(self.shards)

    def values(self) -> ValuesView[V]:
        """The values, in the order of the keys (as a dict's view, read shard by shard)."""
        return _Values(self)

    def items(self) -> ItemsView[K, V]:
        """The entries, in the order of the keys (as a dict's view, read shard by shard)."""
        return _Items(self)


class _Values(ValuesView[V]):
    _mapping: ShardedDict[object, V]

    def __iter__(self) -> Iterator[V]:
        return itertools.chain.from_iterable(s.values() for s in self._mapping.shards)


class _Items(ItemsView[K, V]):
    _mapping: ShardedDict[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return itertools.chain.from_iterable(s.items() for s in self._mapping.shards)


RUN = 12
"""Bits of a network's number that :class:`NetShards` leaves out: runs of 4,096
consecutive networks of a length share a shard."""


class NetShards(ShardedDict[int, V]):
    """A :class:`ShardedDict` of the networks of one prefix length as integers, by bits of
    the network's number (``key >> shift``, ``shift`` the host bits and :data:`RUN`).

    Not by the lowest bits: a feed in order (a million consecutive /32s) would give each
    shard one route in turn, and all of them would grow at once, in the same slice of
    the feed, as long as the whole table growing.  By runs of consecutive networks such
    a feed fills one shard after another, each growing on its own; networks spread out
    (a real table, or one in random order) spread over the shards at random, and the
    shards reach their sizes each at its own time.
    """

    __slots__ = ("shift",)

    def __init__(self, host: int, items: Iterable[tuple[int, V]] = ()) -> None:
        """Shard the networks whose last ``host`` bits are host bits (clear)."""
        self.shift = shift = host + RUN
        super().__init__()
        shards = self.shards
        for key, value in items:  # a dict split: no call a route
            shards[key >> shift & _MASK][key] = value
        self._count = sum(map(len, shards))

    def shard(self, key: int) -> dict[int, V]:
        """Return the plain dict that holds ``key`` if any does."""
        return self.shards[key >> self.shift & _MASK]

    @overload
    def get(self, key: int) -> V | None: ...
    @overload
    def get(self, key: int, default: V | D) -> V | D: ...
    def get(self, key: int, default: object = None) -> object:
        """Return the value of ``key``, or ``default`` (one call: a lookup's probe)."""
        return self.shards[key >> self.shift & _MASK].get(key, default)

    def __setitem__(self, key: int, value: V) -> None:
        shard = self.shards[key >> self.shift & _MASK]
        size = len(shard)
        shard[key] = value
        self._count += len(shard) - size


class ShardedSet(Generic[K]):
    """A set of hashable keys in :data:`SHARDS` shards (see the module docstring), taken
    from a slice at a time."""

    __slots__ = ("_next", "shards")

    def __init__(self, keys: Iterable[K] = ()) -> None:
        self.shards: list[set[K]] = [set() for _ in range(SHARDS)]
        """The plain sets, by ``hash(key)`` modulo :data:`SHARDS`."""
        self._next = 0
        """The shard :meth:`take` starts from (where the last one stopped)."""
        self.update(keys)

    def add(self, key: K) -> None:
        """Add ``key``."""
        self.shards[hash(key) & _MASK].add(key)

    def discard(self, key: K) -> None:
        """Remove ``key`` if it is there."""
        self.shards[hash(key) & _MASK].discard(key)

    def update(self, keys: Iterable[K]) -> None:
        """Add every one of ``keys``."""
        shards = self.shards
        for key in keys:
            shards[hash(key) & _MASK].add(key)

    def take(self, count: int) -> list[K]:
        """Remove and return up to ``count`` keys (fewer only when that empties the set)."""
        taken: list[K] = []
        shards = self.shards
        at = self._next
        for _ in range(SHARDS):
            shard = shards[at]
            if not count:
                break
            if len(shard) > count:
                taken += (shard.pop() for _ in range(count))
                break
            taken += shard
            count -= len(shard)
            shard.clear()
            at = at + 1 & _MASK
        self._next = at
        return taken

    def clear(self) -> None:
        """Remove every key."""
        for shard in self.shards:
            shard.clear()

    def drain(self, count: int) -> bool:
        """Remove ``count`` keys, or all there are; return whether some are left (a large
        set freed a part at a time)."""
        _drain(self.shards, count, set.pop)
        return any(self.shards)

    def __contains__(self, key: object) -> bool:
        return key in self.shards[hash(key) & _MASK]

    def __len__(self) -> int:
        return sum(map(len, self.shards))

    def __bool__(self) -> bool:
        return any(self.shards)

    def __iter__(self) -> Iterator[K]:
        return itertools.chain.from_iterable(self.shards)


def _drain(shards: list[Any], count: int, pop: Callable[[Any], object]) -> int:
    """Remove up to ``count`` entries of ``shards``, the last shards first, whole shards
    cleared at once; return how many went."""
    gone = 0
    for shard in reversed(shards):
        if gone >= count:
            break
        if len(shard) <= count - gone:
            gone += len(shard)
            shard.clear()
        else:
            for _ in range(count - gone):
                pop(shard)
            gone = count
    return gone
