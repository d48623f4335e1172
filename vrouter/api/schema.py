"""Argument schemas of control operations: what each argument is, checked before anything runs.

An operation declares its arguments as :class:`Arg` records; :func:`check`
turns a request's ``args`` object into a new dict holding every declared
argument (defaults filled in) or raises :class:`ApiError` naming the
argument and what it must be.  The types are JSON's, narrowed:

========== ============================================================
kind       accepts
========== ============================================================
``text``   a non-empty string (``choices``: one of them)
``str``    any string, empty included
``bool``   true or false
``int``    an integer, not a boolean (``low``/``high``: bounds)
``number`` an integer or a float, not a boolean (``low``/``high``)
``texts``  a list of strings
``ints``   a list of integers (``low``/``high``: bounds of each)
``scalars`` an object mapping strings to strings, numbers or booleans
========== ============================================================

Nothing here knows what an argument means (an address, a vnet): the
handler parses that and says what is wrong with it.  Unknown arguments are
refused, so a misspelt one is not silently ignored; arguments starting with
``_`` are the daemon's own (a front's, or set in-process) and are not
declared here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from vrouter.api.protocol import ApiError

KINDS: Final = frozenset({"text", "str", "bool", "int", "number", "texts", "ints", "scalars"})

_MISSING: Final = object()


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of an operation."""

    name: str
    kind: str
    help: str
    required: bool = False
    default: Any = None
    """Value when the request leaves it out (None: absent from the checked args)."""
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"argument {self.name}: unknown kind {self.kind!r}")

    def describe(self) -> str:
        """Return what a value must be, as an error message ends."""
        if self.choices:
            *head, last = self.choices
            return f"{', '.join(head)} or {last}" if head else last
        if self.kind in ("int", "number", "ints") and (
            self.low is not None or self.high is not None
        ):
            low = "" if self.low is None else _num(self.low)
            high = "" if self.high is None else _num(self.high)
            bounds = f"{low}..{high}"
            return f"a list of integers in {bounds}" if self.kind == "ints" else bounds
        return {
            "text": "a non-empty string",
            "str": "a string",
            "bool": "true or false",
            "int": "an integer",
            "number": "a number",
            "texts": "a list of strings",
            "ints": "a list of integers",
            "scalars": "an object of names to strings, numbers or booleans",
        }[self.kind]

    def accepts(self, value: Any) -> bool:
        """Return whether ``value`` is of this argument's kind and in its range."""
        kind = self.kind
        if kind in ("text", "str"):
            ok = isinstance(value, str) and (kind == "str" or value != "")
            return ok and (not self.choices or value in self.choices)
        if kind == "bool":
            return isinstance(value, bool)
        if kind in ("int", "number"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            if kind == "int" and not isinstance(value, int):
                return False
            # int and float compare exactly; float() of a huge JSON integer would overflow
            return (self.low is None or value >= self.low) and (
                self.high is None or value <= self.high
            )
        if kind == "texts":
            return isinstance(value, list) and all(isinstance(v, str) for v in value)
        if kind == "ints":
            return isinstance(value, list) and all(
                isinstance(v, int)
                and not isinstance(v, bool)
                and (self.low is None or v >= self.low)
                and (self.high is None or v <= self.high)
                for v in value
            )
        return isinstance(value, dict) and all(
            isinstance(v, str | int | float | bool) for v in value.values()
        )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check(
    op: str, schema: Iterable[Arg] | Mapping[str, Arg], args: Mapping[str, Any]
) -> dict[str, Any]:
    """Return ``args`` checked against ``schema``: a new dict, defaults filled in.

    ``schema`` is the arguments, or a mapping of their names to them (made once by
    :func:`by_name`).  Raise ApiError for a missing required argument, a value of the
    wrong kind, or an argument the operation does not take.  Keys starting with
    ``_`` pass through unchecked (the caller decides whether to keep them).
    """
    declared = schema if isinstance(schema, Mapping) else by_name(schema)
    own = False
    for key in args:
        if key not in declared:
            if not key.startswith("_"):
                unknown = sorted(k for k in args if not k.startswith("_") and k not in declared)
                known = ", ".join(declared) or "none"
                raise ApiError(f"{op} takes no argument {unknown[0]!r} (it takes: {known})")
            own = True
    checked: dict[str, Any] = {k: v for k, v in args.items() if k.startswith("_")} if own else {}
    for name, arg in declared.items():
        value = args.get(name, _MISSING)
        if value is _MISSING or value is None:
            if arg.required:
                raise ApiError(f"{op} needs {name!r} ({arg.help})")
            if arg.default is not None:
                default = arg.default
                checked[name] = list(default) if isinstance(default, list) else default
            continue
        if not arg.accepts(value):
            raise ApiError(f"{name!r} must be {arg.describe()}")
        checked[name] = value
    return checked


def by_name(schema: Iterable[Arg]) -> dict[str, Arg]:
    """Return the arguments of ``schema`` by name, in order."""
    return {arg.name: arg for arg in schema}
