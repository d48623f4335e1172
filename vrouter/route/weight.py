"""Weights of a multipath (ECMP) route's paths: how they are written and how flows share them.

A path's weight (1 to :data:`MAX_WEIGHT`, 1 when not given) is its share of
the flows against the other paths' shares: with weights 3 and 1, three
flows in four take the first path.  Linux writes weights as ``weight - 1``
(``rtnh_hops`` of ``RTA_MULTIPATH``, the weight byte of a nexthop group's
``struct nexthop_grp``), and so up to 256.

As text (a config ``via`` list item, an API ``paths`` item, a vrouterctl
``via``): ``ADDR`` or ``ADDR weight N`` (the API's ``ADDR%INTERFACE weight N``).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd
from typing import TypeVar

MAX_WEIGHT = 256
"""The largest weight, as Linux's: one byte holding ``weight - 1``."""

MAX_SLOTS = 256
"""Entries a destination's paths are spread over at most (a destination cache entry
holds them): weights whose reduced sum is larger are scaled to fit, which keeps each
share within 1/256 of what was asked."""

_T = TypeVar("_T")


def split_weight(text: str) -> tuple[str, int]:
    """Return the next hop part of ``ADDR`` or ``ADDR weight N`` and its weight.

    Raises ValueError saying what was expected.
    """
    words = text.split()
    if len(words) == 1:
        return words[0], 1
    if len(words) == 3 and words[1] == "weight":
        return words[0], parse_weight(words[2])
    raise ValueError(f"{text!r}: expected ADDR or ADDR weight N")


def parse_weight(text: str) -> int:
    """Return the weight ``text`` spells; ValueError unless it is 1 to :data:`MAX_WEIGHT`."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_WEIGHT:
        raise ValueError(f"weight {text!r} is not a whole number from 1 to {MAX_WEIGHT}")
    return int(text)


def spread(paths: Sequence[_T], weights: Sequence[int]) -> tuple[_T, ...]:
    """Return ``paths``, each repeated in proportion to its weight: a flow hash modulo the
    length then picks a path with the probability its weight asks.

    The weights are divided by their greatest common divisor (equal weights return
    the paths as they are); beyond :data:`MAX_SLOTS` entries they are scaled down
    to fit, each path keeping at least one.
    """
    common = gcd(*weights)
    shares = [weight // common for weight in weights]
    if all(share == 1 for share in shares):
        return tuple(paths)
    total = sum(shares)
    if total > MAX_SLOTS:
        shares = [max(1, share * MAX_SLOTS // total) for share in shares]
    return tuple(path for path, share in zip(paths, shares, strict=True)
                 for _ in range(share))  # fmt: skip
