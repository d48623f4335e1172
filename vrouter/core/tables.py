"""Dispatch tables shared by every vnet that holds the same entries.

Each vnet has a few small tables from a number to a handler: its EtherTypes
(``vnet.link.ethertypes``), the IP protocols of each family
(``vnet.inet.protocols``, ``offload_protocols``) and what a bridge answers
an oversized frame with (``vnet.link.bridge.too_big``).  Almost every vnet
holds the same module functions there, so a table holding only functions
is one :class:`SharedTable` for all the vnets that hold those entries
(a dict of a few entries is 224 bytes, six of them per vnet).

A table is changed only by storing what :func:`put` or :func:`drop`
returns in its place; a shared one refuses to be written in place.  A
table holding anything but plain functions (a TCP stack's bound methods, a
closure) is the vnet's own dict.
"""

from __future__ import annotations

from types import FunctionType
from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SharedTable(dict[Any, Any]):
    """A table shared by vnets: read as a dict, never written (see :func:`put`)."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a shared table is not written in place: store what put() returns")

    __setitem__ = _refuse
    __delitem__ = _refuse
    __ior__ = _refuse
    pop = _refuse
    popitem = _refuse
    clear = _refuse
    update = _refuse
    setdefault = _refuse


_shared: dict[frozenset[tuple[object, object]], SharedTable] = {}
"""Every shared table by its entries (plain functions only: a bounded set)."""


def _shareable(value: object) -> bool:
    """Whether ``value`` is a function of a module: the same for every vnet, no state
    (a closure or a bound method may hold one vnet's, and would live on here)."""
    return type(value) is FunctionType and value.__closure__ is None


def share(entries: dict[K, V]) -> dict[K, V]:
    """Return a table holding ``entries``: the shared one if they are all functions."""
    if not all(_shareable(value) for value in entries.values()):
        return dict(entries)
    key = frozenset(entries.items())
    table = _shared.get(key)
    if table is None:
        table = _shared[key] = SharedTable(entries)
    return table


def put(table: dict[K, V], key: K, value: V) -> dict[K, V]:
    """Return ``table`` with ``key`` mapped to ``value``, to store in its place."""
    if type(table) is not SharedTable and not _shareable(value):
        table[key] = value  # the vnet's own already, and stays so
        return table
    return share({**table, key: value})


def drop(table: dict[K, V], key: K) -> dict[K, V]:
    """Return ``table`` without ``key``, to store in its place."""
    if key not in table:
        return table
    entries = dict(table)
    del entries[key]
    return share(entries)


EMPTY: dict[Any, Any] = share({})
"""The empty table every vnet's tables start as."""


def empty() -> dict[Any, Any]:
    """Return :data:`EMPTY` (a state's default table)."""
    return EMPTY
