"""Shell completion: candidates from the parser and the daemon, and the real bash and zsh
functions calling them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from fakedaemon import FakeDaemon
from harness import BIN

from vrouter.cli import completion, vrouterctl

PARSER = vrouterctl._parser()


def complete(*words: str, socket_path: str = "/nonexistent/control.sock") -> list[str]:
    line = ["vrouterctl", "--socket", socket_path, *words]
    return completion.candidates(PARSER, line, len(line) - 1)


def test_commands_actions_and_options_come_from_the_parser() -> None:
    assert "route" in complete("") and "capture" in complete("") and "completion" in complete("")
    assert complete("ro") == ["route"]
    assert complete("route", "") == ["add", "del", "show"]
    assert complete("route", "show", "--") == ["--help", "--json", "--limit", "--source"]
    assert complete("completion", "") == ["bash", "zsh"]
    assert complete("config", "") == ["diff", "dump"]
    assert complete("config", "diff", "-") == ["--help", "--json", "-h", "-j"]
    assert complete("config", "diff", "") == [], "a file: the shell's default"
    assert "--direction" in complete("capture", "red", "-")


def test_names_come_from_the_daemon_and_nothing_when_it_is_away(tmp_path: Path) -> None:
    assert complete("route", "show", "") == [], "no daemon: no names, no error"
    fake = FakeDaemon(tmp_path / "c.sock", [{"name": "red"}, {"name": "blue"}])
    try:
        assert complete("route", "show", "", socket_path=fake.path) == ["blue", "red"]
        assert complete("ifconfig", "r", socket_path=fake.path) == ["red"]
        # ifconfig VNET IFACE: interfaces of that vnet (the fake answers any request alike)
        assert complete("ifconfig", "red", "b", socket_path=fake.path) == ["blue"]
        assert fake.requests[-1] == {"op": "ifconfig", "args": {"vnet": "red"}}
        assert complete("epair", "create", "re", socket_path=fake.path) == ["red:"]
    finally:
        fake.close()


def test_values_of_options_are_left_to_the_shell() -> None:
    assert complete("epair", "create", "--mtu", "") == []
    assert complete("--socket", "") == []


def _env(tmp_path: Path) -> dict[str, Any]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path)}


def test_bash_completes_through_the_script(tmp_path: Path) -> None:
    script = subprocess.run(
        [str(BIN / "vrouterctl"), "completion", "bash"], capture_output=True, text=True,
        check=True, timeout=30,
    ).stdout  # fmt: skip
    probe = (
        script
        + 'COMP_WORDS=(vrouterctl route s); COMP_CWORD=2; _vrouterctl; echo "${COMPREPLY[@]}"\n'
        + 'COMP_WORDS=(vrouterctl fire); COMP_CWORD=1; _vrouterctl; echo "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(
        ["bash", "--norc", "-c", probe], capture_output=True, text=True, check=True,
        timeout=60, env=_env(tmp_path),
    ).stdout.splitlines()  # fmt: skip
    assert out == ["show", "firewall"]


def test_zsh_completes_through_the_script(tmp_path: Path) -> None:
    script = tmp_path / "_vrouterctl"
    made = subprocess.run(
        [str(BIN / "vrouterctl"), "completion", "zsh"], capture_output=True, text=True,
        check=True, timeout=30,
    )  # fmt: skip
    script.write_text(made.stdout)
    probe = (
        "compdef() { : }\n"  # outside a completion system: record nothing
        f"source {script}\n"
        'compadd() { shift; print -l -- "${(@P)1}" }\n'
        "words=(vrouterctl vnet l); CURRENT=3; _vrouterctl\n"
    )
    done = subprocess.run(
        ["zsh", "-f", "-c", probe], capture_output=True, text=True, timeout=60,
        env=_env(tmp_path), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["list"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_the_scripts_parse(shell: str) -> None:
    subprocess.run([shell, "-n", "-c", completion.SCRIPTS[shell]], check=True, timeout=30)
