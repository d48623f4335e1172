"""Building vnets makes no cyclic garbage: start-up freezes what it built without a
collection of the whole heap (:func:`vrouter.core.gcpause.settle`), so garbage made by
building would be kept for ever."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from vrouter.daemon.build import bring_up, build
from vrouter.daemon.config import parse

ROOT = Path(__file__).resolve().parents[3]

PAIR = """
[vnets.{a}.interfaces.ep0]
type = "epair"
peer = "{b}:ep0"
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[vnets.{b}.interfaces.ep0]
type = "epair"
peer = "{a}:ep0"
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]
"""


def pairs(count: int) -> str:
    return "".join(PAIR.format(a=f"p{i}a", b=f"p{i}b") for i in range(count))


def garbage_of_building(text: str, name: str) -> list[object]:
    """Return the unreachable objects left by parsing ``text`` and building its vnets."""
    config = parse(text, name)
    gc.collect()  # the parse's, as start-up collects it before building
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        built = build(config, 0.0)
        for vcfg in config.vnets:
            bring_up(built.tree.get(vcfg.name), list(vcfg.interfaces), 0.0)
        gc.collect()
        found = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    del built
    return found


@pytest.mark.parametrize(
    ("name", "text"),
    [
        *[(p.name, p.read_text()) for p in sorted((ROOT / "configs").glob("*.toml"))],
        ("pairs", pairs(50)),
    ],
)
def test_building_the_vnets_of_a_config_leaves_no_cyclic_garbage(name: str, text: str) -> None:
    garbage_of_building(text, name)  # first: what lazy imports and caches make once
    found = garbage_of_building(text, name)
    assert found == [], f"{name}: {len(found)} unreachable objects, e.g. {found[:5]!r}"
