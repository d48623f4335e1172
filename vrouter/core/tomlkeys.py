"""Key paths, type names and typed reading for problems in TOML documents.

Every problem in a config or ruleset file names the key it is about, as a
dotted path (``vnets.red.interfaces.vr-red0.addresses[1]``); names that are
not plain are quoted as TOML would (``interfaces."eth0.100".mtu``).
``TomlReader`` reads typed values out of a loaded document and records a
``(key path, reason)`` problem for each wrong one; the daemon's
configuration and the firewall's rulesets are both read with it, so a
wrong type reads the same in both.  :func:`loads` reads the text of each
(and of ``vrouter-ripd``'s config) into a document.
"""

from __future__ import annotations

import datetime
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

rtoml: ModuleType | None
try:
    import rtoml
except ImportError:  # the package installs it; without it tomllib reads every text
    rtoml = None

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_/-]+")


def loads(text: str) -> dict[str, Any]:
    """Return the TOML document ``text``; ``tomllib.TOMLDecodeError`` if it is not one.

    rtoml (compiled) reads it when it is installed: a config of 100,000 vnets
    in 1.8 s instead of tomllib's 7.2.  A text rtoml refuses is read again by
    tomllib, whose verdict and message stand; arrays or inline tables nested
    deeper than tomllib can recurse are refused the same way.  What both read,
    they read alike (every example config and doc block, every TOML type:
    tests/unit/core/test_tomlkeys.py).  rtoml also reads what TOML 1.1 added
    and tomllib (TOML 1.0) refuses, such as an inline table over several lines.
    """
    if rtoml is not None:
        try:
            document: dict[str, Any] = rtoml.loads(text)
            return document
        except ValueError:
            pass
    try:
        return tomllib.loads(text)
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise tomllib.TOMLDecodeError("arrays or inline tables nested too deeply") from None


def join(key: str, name: str) -> str:
    """Return the key path of table entry ``name`` under ``key`` (quoted if needed)."""
    if not _PLAIN_KEY.fullmatch(name):
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        name = f'"{escaped}"'
    return f"{key}.{name}" if key else name


def type_name(value: object) -> str:
    """Return the TOML name of ``value``'s type (for "expected X, got Y")."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    if isinstance(value, datetime.datetime):
        return "datetime"
    if isinstance(value, datetime.date):
        return "date"
    if isinstance(value, datetime.time):
        return "time"
    return type(value).__name__


class TomlReader:
    """Typed access to the tables of one TOML document, collecting problems.

    Each accessor returns the value if it is present and of the right type,
    and None if it is absent or wrong; a wrong one is recorded in
    ``problems`` as ``(key path, reason)`` and reading goes on, so a caller
    reports every problem of a document at once.  Parsers of particular
    documents (the daemon's configuration, a firewall ruleset) build on it.
    """

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def problem(self, key: str, reason: str) -> None:
        """Record that the value at ``key`` is wrong because of ``reason``."""
        self.problems.append((key, reason))

    def wrong_type(self, key: str, expected: str, value: object, hint: str = "") -> None:
        """Record that ``value`` at ``key`` is not ``expected`` (``hint`` is appended)."""
        self.problem(key, f"expected {expected}, got {type_name(value)}{hint}")

    def check_keys(
        self,
        table: Mapping[str, object],
        key: str,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        hint: Callable[[str, object], str] | None = None,
    ) -> None:
        """Report unknown keys in ``table`` and missing ``required`` ones.

        ``hint(name, value)`` may add to the reason an unknown key is reported with.
        """
        for name, value in table.items():
            if name in allowed:
                continue
            reason = f"unknown key {name!r} (allowed: {', '.join(allowed)})"
            if hint is not None:
                reason += hint(name, value)
            self.problem(join(key, name), reason)
        for name in required:
            if name not in table:
                self.problem(join(key, name), f"missing required key {name!r}")

    def table(self, parent: Mapping[str, object], name: str, key: str) -> dict[str, object] | None:
        """Return table ``name`` of ``parent`` (at ``key``)."""
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.wrong_type(join(key, name), "a table", value)
            return None
        return value

    def string(self, parent: Mapping[str, object], name: str, key: str) -> str | None:
        """Return string ``name`` of ``parent`` (at ``key``)."""
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.wrong_type(join(key, name), "a string", value)
            return None
        return value

    def boolean(self, parent: Mapping[str, object], name: str, key: str) -> bool | None:
        """Return boolean ``name`` of ``parent`` (at ``key``)."""
        value = parent.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.wrong_type(join(key, name), "a boolean (true or false)", value)
            return None
        return value

    def integer(self, parent: Mapping[str, object], name: str, key: str) -> int | None:
        """Return integer ``name`` of ``parent`` (at ``key``); a boolean is not one."""
        value = parent.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(join(key, name), "an integer", value)
            return None
        return value

    def number(self, parent: Mapping[str, object], name: str, key: str) -> float | None:
        """Return number ``name`` of ``parent`` (at ``key``): an integer or a float."""
        value = parent.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(join(key, name), "a number", value)
            return None
        return float(value)

    def choice(
        self, parent: Mapping[str, object], name: str, key: str, choices: Sequence[str]
    ) -> str | None:
        """Return string ``name`` of ``parent`` (at ``key``) if it is one of ``choices``."""
        value = self.string(parent, name, key)
        if value is None:
            return None
        if value not in choices:
            self.problem(join(key, name), f"{value!r} is not one of: {', '.join(choices)}")
            return None
        return value
