"""The per-vnet sysctl tree: typed, range-checked, documented knobs.

Each subsystem declares its knobs next to the state they set (FreeBSD's
``SYSCTL_INT(_net_inet_ip, …, VNET_NAME(ip_defttl), …)``); the registry
collects the knobs of the loaded subsystems.  A knob reads and writes one
field of one vnet's state, so every vnet has its own values; a new child
vnet starts with a copy of its parent's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet

Value = bool | int | float


class SysctlError(Exception):
    """A knob does not exist or a value does not fit it."""


@dataclass(frozen=True, slots=True)
class Knob:
    """One sysctl: a name, a type, a range and where its value lives."""

    name: str
    kind: type[bool] | type[int] | type[float]
    description: str
    get: Callable[[Vnet], Value]
    set: Callable[[Vnet, Value], None]
    minimum: float | None = None
    maximum: float | None = None

    @property
    def type_name(self) -> str:
        """Return ``bool``, ``int`` or ``float``."""
        return self.kind.__name__

    def coerce(self, value: object) -> Value:
        """Return ``value`` (a TOML/JSON value or a command-line string) as this knob's type.

        Raises SysctlError with the reason when it has the wrong type or is out of range.
        """
        if isinstance(value, str):
            value = self._from_text(value)
        if self.kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise SysctlError(f"{self.name}: expected a boolean (0/1, true/false), got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SysctlError(f"{self.name}: expected {self.type_name}, got {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise SysctlError(f"{self.name}: expected an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise SysctlError(f"{self.name}: {value} is out of range {self._range_text()}")
        return value

    def _from_text(self, text: str) -> object:
        text = text.strip()
        if self.kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise SysctlError(f"{self.name}: expected a boolean (0/1, true/false), got {text!r}")
        try:
            return int(text) if self.kind is int else float(text)
        except ValueError:
            raise SysctlError(f"{self.name}: expected {self.type_name}, got {text!r}") from None

    def _range_text(self) -> str:
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"[{low}, {high}]"

    def describe(self, vnet: Vnet) -> dict[str, object]:
        """Return the knob and its value in ``vnet`` as plain data for the API."""
        return {
            "name": self.name,
            "value": self.get(vnet),
            "type": self.type_name,
            "min": self.minimum,
            "max": self.maximum,
            "description": self.description,
        }


def field_knob(
    name: str,
    kind: type[bool] | type[int] | type[float],
    description: str,
    path: str,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Knob:
    """Return a knob bound to the attribute ``path`` of a vnet (``"inet.ttl"``)."""
    *parents, attr = path.split(".")

    def owner(vnet: Vnet) -> object:
        obj: object = vnet
        for part in parents:
            obj = getattr(obj, part)
        return obj

    def get(vnet: Vnet) -> Value:
        value: Value = getattr(owner(vnet), attr)
        return value

    def set_(vnet: Vnet, value: Value) -> None:
        setattr(owner(vnet), attr, value)

    return Knob(name, kind, description, get, set_, minimum, maximum)


class Sysctl:
    """The knobs of the loaded subsystems, by name."""

    def __init__(self, knobs: Iterable[Knob]) -> None:
        self.knobs: dict[str, Knob] = {}
        for knob in knobs:
            if knob.name in self.knobs:
                raise ValueError(f"sysctl {knob.name} declared twice")
            self.knobs[knob.name] = knob

    def knob(self, name: str) -> Knob:
        """Return knob ``name`` or raise SysctlError."""
        try:
            return self.knobs[name]
        except KeyError:
            raise SysctlError(f"unknown sysctl {name!r}") from None

    def get(self, vnet: Vnet, name: str) -> Value:
        """Return the value of ``name`` in ``vnet``."""
        return self.knob(name).get(vnet)

    def set(self, vnet: Vnet, name: str, value: object) -> Value:
        """Check and set ``name`` in ``vnet``; return the value stored."""
        knob = self.knob(name)
        checked = knob.coerce(value)
        knob.set(vnet, checked)
        return checked

    def snapshot(self, vnet: Vnet) -> dict[str, Value]:
        """Return every knob's value in ``vnet``."""
        return {name: knob.get(vnet) for name, knob in sorted(self.knobs.items())}

    def inherit(self, child: Vnet, parent: Vnet) -> None:
        """Give ``child`` its parent's values (at creation)."""
        for knob in self.knobs.values():
            knob.set(child, knob.get(parent))
