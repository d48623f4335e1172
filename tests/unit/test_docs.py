"""docs/: every configuration key the parser accepts is documented, every page installed.

The keys are not a list kept here: they are read out of the parsers
themselves.  Every ``check_keys(table, key, ALLOWED, ...)`` call in the
configuration package and the ruleset parser names the keys a table may
hold; this test finds each call in the source and evaluates its ALLOWED
argument in the module it sits in, so a key added to a parser without a
word in docs/ fails here.  The sysctl knobs and limit kinds (keys of
``[sysctl]`` and ``[limits]``) come from the knob registry and
:mod:`vrouter.core.limits`.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path
from types import ModuleType

from vrouter.cli import manpage
from vrouter.core import limits
from vrouter.stack import builtin_sysctl

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PARSERS = (
    *sorted((ROOT / "vrouter" / "daemon" / "config").glob("*.py")),
    ROOT / "vrouter" / "firewall" / "ruleparse.py",
)


def _module(path: Path) -> ModuleType:
    dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return importlib.import_module(dotted.removesuffix(".__init__"))


def _allowed(node: ast.expr, module: ModuleType) -> set[str]:
    """Evaluate the ALLOWED argument of a check_keys call in ``module``'s namespace."""
    value = eval(compile(ast.Expression(node), "<allowed>", "eval"), vars(module))
    assert all(isinstance(k, str) for k in value), ast.unparse(node)
    return set(value)


def parser_keys() -> dict[str, set[str]]:
    """Return every key a ``check_keys`` call accepts, with where it is checked."""
    found: dict[str, set[str]] = {}
    for path in PARSERS:
        module = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "check_keys"
            ):
                continue
            allowed = node.args[2] if len(node.args) > 2 else None
            allowed = allowed or next(k.value for k in node.keywords if k.arg == "allowed")
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for key in _allowed(allowed, module):
                found.setdefault(key, set()).add(where)
    return found


def _documented(text: str, key: str) -> bool:
    """Return whether ``key`` appears in ``text`` as code or as a TOML key."""
    quoted = re.escape(key)
    return bool(
        re.search(rf"`[^`\n]*\b{quoted}\b[^`\n]*`", text)
        or re.search(rf"^\s*(\[+[^\]\n]*)?\b{quoted}\s*=|[{{,]\s*{quoted}\s*=", text, re.M)
        or re.search(rf"^\[+[^\]\n]*\.{quoted}[.\]]", text, re.M)
    )


def test_the_parsers_keys_are_found() -> None:
    keys = parser_keys()
    # a few from each parser, so an empty or partial scan cannot pass
    assert {"control_socket", "addresses", "vlan_filtering", "prefix", "to"} <= set(keys)
    assert {"default", "tables", "nat", "action"} <= set(keys)
    assert len(keys) > 60


def test_every_config_key_is_documented() -> None:
    text = "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    missing = [
        f"{key} (checked at {', '.join(sorted(where))})"
        for key, where in sorted(parser_keys().items())
        if not _documented(text, key)
    ]
    assert missing == [], "config keys no page of docs/ mentions: " + "; ".join(missing)


def test_every_limit_and_sysctl_knob_is_documented() -> None:
    text = "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    names = set(limits.KINDS) | {
        name for name in builtin_sysctl().knobs if not name.startswith(limits.KNOB_PREFIX)
    }
    missing = sorted(n for n in names if not _documented(text, n))
    assert missing == [], f"limits and sysctl knobs no page of docs/ mentions: {missing}"


def test_the_knob_table_is_current() -> None:
    page = (DOCS / "sysctl.md").read_text()
    assert page == manpage.with_knob_table(page), (
        "docs/sysctl.md's knob table is stale: python -m vrouter.cli.manpage man"
    )


def test_an_undocumented_key_is_caught() -> None:
    assert _documented("`vlan_filtering = true` turns it on", "vlan_filtering")
    assert _documented("[vnets.red.interfaces.br0]\nmembers = []\n", "members")
    assert _documented('host = { netns = "h1", slaac = true }', "slaac")
    assert not _documented("filtering by VLAN", "vlan_filtering")
    assert not _documented("`vlan_filtering_x`", "vlan_filtering")


def test_every_page_is_installed_and_in_the_readme_map() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    pages = {p.name for p in DOCS.glob("*.md")}
    assert set(data["share/doc/vrouter"]) == {f"docs/{name}" for name in pages}
    readme = (ROOT / "README.md").read_text()
    assert [name for name in sorted(pages) if f"(docs/{name})" not in readme] == []
