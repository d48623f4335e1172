"""Key paths and type names for messages about TOML documents.

Every problem in a config or ruleset file names the key it is about, as a
dotted path (``vnets.red.interfaces.vr-red0.addresses[1]``); names that are
not plain are quoted as TOML would (``interfaces."eth0.100".mtu``).
"""

from __future__ import annotations

import datetime
import re

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_/-]+")


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
