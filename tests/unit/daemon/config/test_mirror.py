"""``[vnets.NAME.mirror]``: the namespace, the protocols synced and ``vrf_dir``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vrouter.daemon import hostns
from vrouter.daemon.config import ConfigError, MirrorConfig, parse
from vrouter.mirror.vrfdir import is_mount_point

FILE = "/etc/vrouter/vrouter.toml"


def _mirror(text: str) -> MirrorConfig | None:
    return parse("[vnets.red]\n[vnets.red.mirror]\n" + text, FILE).vnets[0].mirror


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _mirror(text)
    return [f"{p.key}: {p.reason}" for p in info.value.problems]


def test_a_mirror_has_no_vrf_dir_unless_configured() -> None:
    assert _mirror("") == MirrorConfig("vr-m-red", None, None)


def test_vrf_dir_is_read() -> None:
    mirror = _mirror('netns = "red"\nvrf_dir = "/run/vrouter-vrfs"\n')
    assert mirror == MirrorConfig("red", None, "/run/vrouter-vrfs")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('vrf_dir = "run/frr"\n', ["vnets.red.mirror.vrf_dir", "not an absolute path"]),
        ('vrf_dir = "/run/netns/"\n', ["vnets.red.mirror.vrf_dir", "not /run/netns"]),
        ('vrf_dir = "/var/run/netns"\n', ["vnets.red.mirror.vrf_dir", "not /run/netns"]),
        ('vrf_dir = 3\n', ["vnets.red.mirror.vrf_dir"]),
        (f'netns = "{"n" * 36}"\nvrf_dir = "/run/frr-vrfs"\n',
         ["vnets.red.mirror.netns", "at most 35 characters"]),
    ],
)  # fmt: skip
def test_a_bad_vrf_dir_is_named(text: str, words: list[str]) -> None:
    problems = _problems(text)
    assert len(problems) == 1, problems
    assert all(w in problems[0] for w in words), problems


def test_a_long_namespace_name_is_fine_without_vrf_dir() -> None:
    assert _mirror(f'netns = "{"n" * 36}"\n') == MirrorConfig("n" * 36)


def test_mount_points_are_told_from_plain_directories(tmp_path: Path) -> None:
    assert is_mount_point("/")
    assert is_mount_point("/proc")
    assert not is_mount_point(tmp_path)


def test_a_crashed_runs_leftover_in_a_vrf_dir_is_removed_at_the_next_start(
    tmp_path: Path,
) -> None:
    gone = subprocess.Popen(["true"])  # the crashed run: a process no longer there
    gone.wait(10)
    leftover = tmp_path / "vrfs" / "vr-m-red"  # bound when the run crashed: no longer here
    leftover.parent.mkdir()
    leftover.touch()
    kept = tmp_path / "vrfs" / "notes"
    kept.write_text("not made by vrouterd\n")
    state = tmp_path / "state"
    state.mkdir()
    (state / hostns.STATE_FILE).write_text(
        f'{{"pid": {gone.pid}, "netns": [], "mirrors": [], '
        f'"published": ["{leftover}", "{kept}"]}}'
    )
    hostns.claim(state)
    assert not leftover.exists()
    assert kept.exists()  # not empty: not what vrouterd made
    assert not (state / hostns.STATE_FILE).exists()
    assert os.listdir(tmp_path / "vrfs") == ["notes"]
