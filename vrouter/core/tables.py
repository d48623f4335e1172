"""Dispatch tables shared by every vnet that holds the same entries.

Each vnet has a few small tables from a number to a handler: its EtherTypes
(``vnet.link.ethertypes``), the IP protocols of each family
(``vnet.inet.protocols``, ``offload_protocols``) and what a bridge answers
an oversized frame with (``vnet.link.bridge.too_big``).  Almost every vnet
holds the same module functions there, so a table holding only functions
is one dict for all the vnets that hold those entries (a dict of a few
entries is 224 bytes, six of them per vnet).

A table is changed only by storing what :func:`put` or :func:`drop`
returns in its place, never in place: a shared table is a plain dict, so
that the data path reads it at a dict's speed (a subclass refusing writes
costs ~10 ns a lookup), and :func:`intact` tells whether one was written.  A
table holding anything but plain functions (a TCP stack's bound methods, a
closure) is the vnet's own dict.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


_shared: dict[frozenset[tuple[object, object]], dict[Any, Any]] = {}
"""Every shared table by its entries (plain functions only: a bounded set)."""
_shared_ids: set[int] = set()
"""The ``id`` of every shared table (they live as long as the process)."""
_steps: dict[tuple[int, object, object], dict[Any, Any]] = {}
"""What :func:`put` and :func:`drop` made of a shared table before: the same
change of the same table gives the same table, without building it again.
A :func:`put` that adds an entry also records the :func:`drop` that takes it
out again, so that destroying vnets (a burst of drops after a burst of
puts) makes no new entry here: one made then lives as long as the process
and keeps the allocator's arenas the destroyed vnets filled from being
given back."""
_DROP = object()


def _shareable(value: object) -> bool:
    """Whether ``value`` is a function of a module: the same for every vnet, no state
    (a closure or a bound method may hold one vnet's, and would live on here)."""
    return type(value) is FunctionType and value.__closure__ is None


def is_shared(table: dict[Any, Any]) -> bool:
    """Whether ``table`` is a shared one (which must not be written in place)."""
    return id(table) in _shared_ids


def intact() -> bool:
    """Whether every shared table still holds what it was made with."""
    return all(frozenset(table.items()) == key for key, table in _shared.items())


def share(entries: dict[K, V]) -> dict[K, V]:
    """Return a table holding ``entries``: the shared one if they are all functions."""
    if not all(_shareable(value) for value in entries.values()):
        return dict(entries)
    key = frozenset(entries.items())
    table = _shared.get(key)
    if table is None:
        table = _shared[key] = dict(entries)
        _shared_ids.add(id(table))
    return table


def put(table: dict[K, V], key: K, value: V) -> dict[K, V]:
    """Return ``table`` with ``key`` mapped to ``value``, to store in its place."""
    if id(table) in _shared_ids:
        step = (id(table), key, value)
        found = _steps.get(step)
        if found is None:
            found = share({**table, key: value})
            if id(found) in _shared_ids:
                _steps[step] = found
                if key not in table:
                    # The way back, known now: a vnet destroyed later drops the entry
                    # without making anything (what it would make then lives on, and
                    # pins memory its burst freed, see :data:`_steps`).
                    _steps[(id(found), key, _DROP)] = table
        return found
    if not _shareable(value):
        table[key] = value  # the vnet's own already, and stays so
        return table
    return share({**table, key: value})


def drop(table: dict[K, V], key: K) -> dict[K, V]:
    """Return ``table`` without ``key``, to store in its place."""
    if key not in table:
        return table
    shared = id(table) in _shared_ids
    step = (id(table), key, _DROP)
    found = _steps.get(step) if shared else None
    if found is None:
        entries = dict(table)
        del entries[key]
        found = share(entries)  # fewer functions: shared too
        if shared:
            _steps[step] = found
    return found


EMPTY: dict[Any, Any] = share({})
"""The empty table every vnet's tables start as."""


def empty() -> dict[Any, Any]:
    """Return :data:`EMPTY` (a state's default table)."""
    return EMPTY
