"""Every fuzz target of tests/fuzzlab.py runs for a few seconds on mutated captures.

About a minute in all (``FUZZ_SECONDS`` per target, default 2.5).  A target
that ran fewer than ``MIN_INPUTS`` inputs fails, so a broken setup or a
stuck target cannot pass by doing nothing; any finding fails with its input
in hex.  The seed of the mutator is fixed, so a failure repeats;
``FUZZ_SEED`` changes it.  ``bench/fuzz.py`` runs the same targets for
longer.
"""

from __future__ import annotations

import os

import fuzzlab
import pytest

SECONDS = float(os.environ.get("FUZZ_SECONDS", "2.5"))
SEED = int(os.environ.get("FUZZ_SEED", "1"))
MIN_INPUTS = {"input.ether": 500, "input.arp": 500, "input.ipv4": 500, "input.ipv6": 500,
              "control.answer": 500, "socks.handshake": 500, "rip.instance": 1000}  # fmt: skip
"""Inputs each target must reach in its budget (2,000 for the others): a tenth or less of
what this 2-core machine does when shared, so only a broken target falls below."""


def test_the_targets_cover_every_parser_and_input_function() -> None:
    assert set(fuzzlab.TARGETS) >= {
        "wire.ethernet", "wire.arp", "wire.ipv4", "wire.ipv6", "wire.icmp4", "wire.icmp6",
        "wire.ndp", "wire.udp", "wire.tcp", "rip.packet", "rip.packet_ng", "rip.instance",
        "input.ether", "input.arp", "input.ipv4", "input.ipv6", "control.decode",
        "control.answer", "socks.handshake", "socks.udp", "dhcp.server",
    }  # fmt: skip


def test_every_target_has_captured_seeds_that_pass_unmutated() -> None:
    for name, spec in fuzzlab.TARGETS.items():
        assert len(spec.seeds()) >= 3, name


@pytest.mark.parametrize("name", sorted(fuzzlab.TARGETS))
def test_target_survives_its_time_budget(name: str) -> None:
    result = fuzzlab.run(name, seconds=SECONDS, seed=SEED)
    if result.findings:
        raise result.findings[0]
    floor = MIN_INPUTS.get(name, 2000)
    assert result.inputs >= floor, f"{name}: only {result.inputs} inputs in {SECONDS} s"
