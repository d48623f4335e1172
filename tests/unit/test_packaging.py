"""Packaging: the image's constraints pin every runtime dependency, and the image
declares what it is (labels, the metrics port)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_constraints_pin_every_runtime_dependency_and_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    wanted |= {_name(r) for r in project["optional-dependencies"]["fib"]}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[_name(name)] = version
    assert wanted <= set(pins), f"not pinned: {sorted(wanted - set(pins))}"


def test_dockerfile_labels_exposes_and_uses_the_constraints() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "-c /src/constraints.txt" in text
    assert "COPY man /src/man" in text, "the man pages are data files of the package"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"!man", "!constraints.txt", "!vrouter", "!pyproject.toml"} <= set(ignore)
    assert "COPY pyproject.toml README.md constraints.txt /src/" in text
    assert "org.opencontainers.image.title=" in text
    assert "org.opencontainers.image.licenses=" in text
    assert re.search(r"^EXPOSE 9585/tcp$", text, re.M)
