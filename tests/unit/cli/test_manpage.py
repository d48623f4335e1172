"""Man pages: the installed ones are what the parsers and docs/ make now, and render."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from vrouter.cli import manpage

ROOT = Path(__file__).resolve().parents[3]
PAGES = manpage.pages(ROOT / "docs")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_committed_page_is_current(name: str) -> None:
    committed = (ROOT / "man" / name).read_text()
    assert committed == PAGES[name], f"man/{name} is stale: python -m vrouter.cli.manpage man"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_page_renders_without_errors(name: str) -> None:
    done = subprocess.run(
        ["groff", "-k", "-man", "-Tutf8", "-ww", "-P", "-cbou"], input=PAGES[name],
        capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    problems = [line for line in done.stderr.splitlines() if "cannot adjust" not in line]
    assert done.returncode == 0 and problems == [], problems
    assert "SYNOPSIS" in done.stdout or name.endswith(".5")


def test_every_page_is_installed_and_every_command_documented() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    installed = {Path(f).name for d, files in data.items() if "/man/" in d for f in files}
    assert installed == set(PAGES)
    ctl = PAGES["vrouterctl.8"]
    for command in (
        "route add", "vnet create", "firewall", "capture", "completion", "config dump",
        "config diff",
    ):
        assert command.replace("-", "\\-") in ctl, command
    assert "\\fBvrouterd\\fR" in PAGES["vrouterd.8"] and "\\-\\-check" in PAGES["vrouterd.8"]
    assert "\\-\\-log\\-format" in PAGES["vrouter-ripd.8"]
    assert ".SH CONFIGURATION" in PAGES["vrouter.toml.5"]
