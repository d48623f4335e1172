"""Man pages made from the programs' own parsers and from the configuration pages of ``docs/``.

``python -m vrouter.cli.manpage DIR`` writes ``vrouterd.8``, ``vrouterctl.8``,
``vrouter-ripd.8`` (from their argparse parsers: usage, options, commands)
and ``vrouter.toml.5`` (the pages of ``docs/`` in :data:`CONFIG_PAGES`, the
configuration reference) into DIR, and first rewrites the table of every
sysctl knob at the end of ``docs/sysctl.md`` (:func:`knob_table`) from the
knobs themselves, so that page and ``vrouter.toml(5)`` list a new knob.
The package installs the pages made from this checkout (``man/``); a test
checks they are what this module makes now, so they never fall behind.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from vrouter import __version__

DATE = "2026"
SOURCE = f"vrouter {__version__}"
CONFIG_PAGES = (
    "config.md",
    "routes.md",
    "bridges.md",
    "vxlan.md",
    "mirror.md",
    "dhcp.md",
    "firewall.md",
    "nat.md",
    "sysctl.md",
    "ipv6.md",
    "limits.md",
    "permissions.md",
)
"""The pages of ``docs/`` that make ``vrouter.toml(5)``, in this order."""
DOCS = "docs/ of the vrouter sources (installed under share/doc/vrouter): one page per topic"


def _escape(text: str) -> str:
    """Return ``text`` safe in a roff line (backslashes, leading dots and quotes, dashes)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _header(name: str, section: int, title: str) -> list[str]:
    return [
        '.\\" -*- coding: UTF-8 -*-',
        f'.\\" Made by vrouter.cli.manpage from {name}\'s own parser or docs/: edit those.',
        f'.TH "{name.upper()}" "{section}" "{DATE}" "{SOURCE}" "{title}"',
        ".SH NAME",
        f"{_escape(name)} \\- {_escape(title)}",
    ]


def _usage(parser: argparse.ArgumentParser) -> str:
    usage = parser.format_usage().strip()
    return re.sub(r"\s+", " ", usage.removeprefix("usage: "))


def _options(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            flags = ", ".join(action.option_strings)
            if action.nargs != 0 and action.metavar is not None:
                flags += f" {action.metavar}"
            elif action.nargs != 0 and action.choices is None and not isinstance(
                action, argparse._StoreConstAction | argparse._VersionAction
            ):
                flags += f" {action.dest.upper()}"
            elif action.choices is not None:
                flags += " {" + ",".join(str(c) for c in action.choices) + "}"
        else:
            flags = str(action.metavar or action.dest)
        lines += [".TP", f"\\fB{_escape(flags)}\\fR", _escape(action.help or "")]
    return lines


def _commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            command = f"{prefix} {name}".strip()
            nested = any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
            if nested:
                lines += _commands(sub, command)
                continue
            usage = _usage(sub).split(" ", 1)[1] if " " in _usage(sub) else ""
            lines += [".TP", f"\\fB{_escape(command)}\\fR {_escape(usage.split(name, 1)[-1])}"]
            lines.append(_escape(helps.get(name) or sub.description or ""))
    return lines


def program_page(
    parser: argparse.ArgumentParser, section: int, title: str, see_also: str, extra: str = ""
) -> str:
    """Return the man page of a program, from its parser."""
    name = parser.prog
    lines = _header(name, section, title)
    lines += [".SH SYNOPSIS", f"\\fB{_escape(name)}\\fR {_escape(_usage(parser)[len(name):])}"]
    lines += [".SH DESCRIPTION", _escape(parser.description or title)]
    if extra:
        lines += [".PP", _escape(extra)]
    lines += [".SH OPTIONS", *_options(parser)]
    commands = _commands(parser, "")
    if commands:
        lines += [".SH COMMANDS", *commands]
    if parser.epilog:
        lines += [".SH EXIT STATUS", _escape(parser.epilog)]
    lines += [".SH SEE ALSO", _escape(see_also)]
    return "\n".join(lines) + "\n"


def markdown_page(name: str, section: int, title: str, markdown: str, see_also: str) -> str:
    """Return a man page of markdown pages: headings, paragraphs, lists, code.

    A page's title (``# ``) is a section, its headings (``## ``, ``### ``) subsections.
    """
    lines = _header(name, section, title)
    in_code = False
    for raw in markdown.splitlines():
        if raw.startswith("```"):
            lines.append(".EE" if in_code else ".EX")
            in_code = not in_code
            continue
        if in_code:
            lines.append(_escape(raw) if raw else "")
            continue
        text = re.sub(r"`([^`]*)`", r"\\fB\1\\fR", _escape(raw))
        text = re.sub(r"\*\*([^*]*)\*\*", r"\\fB\1\\fR", text)
        if raw.startswith("# "):
            lines.append(f".SH {_escape(raw[2:]).upper()}")
        elif raw.startswith(("## ", "### ")):
            lines.append(f".SS {_escape(raw.split(' ', 1)[1])}")
        elif raw.startswith("- "):
            lines += [".IP \\(bu 2", text[2:]]
        elif not raw.strip():
            lines.append(".PP")
        else:
            lines.append(text)
    lines += [".SH SEE ALSO", _escape(see_also)]
    return "\n".join(lines) + "\n"


KNOB_TABLE = "## Every knob"
"""The heading of docs/sysctl.md's last section, the table :func:`knob_table` makes."""


def knob_table() -> str:
    """Return the section listing every built-in sysctl knob (limits are in docs/limits.md)."""
    from vrouter.core import limits
    from vrouter.stack import builtin_sysctl

    rows = [
        KNOB_TABLE,
        "",
        "`vrouterctl sysctl VNET -a` prints the same list with the vnet's values.",
        "",
        "| Knob | Type | Range | What it is |",
        "|---|---|---|---|",
    ]
    knobs = builtin_sysctl().knobs
    for name in sorted(knobs):
        if limits.kind_of(name) is not None:
            continue
        knob = knobs[name]
        low = "" if knob.minimum is None else f"{knob.minimum:g}"
        high = "" if knob.maximum is None else f"{knob.maximum:g}"
        span = f"{low}..{high}" if knob.kind is not bool and (low or high) else ""
        what = knob.description.replace("|", "\\|")
        rows.append(f"| `{name}` | {knob.type_name} | {span} | {what} |")
    return "\n".join(rows) + "\n"


def with_knob_table(sysctl_page: str) -> str:
    """Return docs/sysctl.md's text with its knob table made anew."""
    return sysctl_page.partition(KNOB_TABLE)[0] + knob_table()


def pages(docs: Path) -> dict[str, str]:
    """Return every man page by file name (``docs``: the directory of the reference pages)."""
    from vrouter.cli import vrouterctl
    from vrouter.daemon import main as vrouterd
    from vrouter.rip import daemon as ripd

    see = f"vrouterd(8), vrouterctl(8), vrouter-ripd(8), vrouter.toml(5); the reference: {DOCS}"
    config = "\n".join((docs / page).read_text() for page in CONFIG_PAGES)
    return {
        "vrouterd.8": program_page(
            vrouterd.parser(), 8, "many virtual network stacks in one userspace daemon", see,
            "The configuration file is described in vrouter.toml(5); SIGHUP reloads it live.",
        ),
        "vrouterctl.8": program_page(
            vrouterctl._parser(), 8, "look into and change a running vrouterd", see,
            "Every command takes -j/--json for the raw result. 'vrouterctl completion bash' "
            "prints the shell completion script.",
        ),
        "vrouter-ripd.8": program_page(ripd.parser(), 8, "RIP in several vnets at once", see),
        "vrouter.toml.5": markdown_page(
            "vrouter.toml", 5, "vrouterd configuration file", config, see
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the man pages into the directory named (default ``man``)."""
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "man")
    out.mkdir(parents=True, exist_ok=True)
    docs = Path(__file__).resolve().parents[2] / "docs"
    sysctl_page = docs / "sysctl.md"
    sysctl_page.write_text(with_knob_table(sysctl_page.read_text()))
    for name, text in pages(docs).items():
        (out / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
