"""The subsystem registry: per-vnet state constructors run in dependency order.

A subsystem (``link``, ``inet``, ``route`` …) declares what it depends on and
how to attach its state to a vnet and detach it again, like FreeBSD's
``VNET_SYSINIT``/``VNET_SYSUNINIT``.  The registry orders subsystems so every
dependency attaches first and detaches last; loading a subsystem attaches it
to every existing vnet, unloading detaches it everywhere.

A subsystem may be *lazy*: a new vnet then gets its state the first time
something asks for ``vnet.<name>`` (a socket, a ruleset, a sysctl), not at
creation, so an idle vnet pays nothing for it.  Its ``prepare`` function
runs at creation instead and installs entry points that are shared by every
vnet (module functions), which ask for the state when traffic first needs it.
Read-only views of a vnet that has not needed the state yet read the
registry's :meth:`Registry.pristine` one: what a fresh state holds.

The sysctl tree of a registry holds the knobs of its loaded subsystems and,
always, the ``vnet.limits.*`` knobs of :mod:`vrouter.core.limits` (limits are
part of every vnet, not a subsystem).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core import limits
from vrouter.core.sysctl import Knob, Sysctl, Value

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet


class RegistryError(Exception):
    """A subsystem cannot be loaded or unloaded (missing or needed dependency)."""


@dataclass(frozen=True, slots=True)
class Subsystem:
    """A kind of per-vnet state and the functions that create and destroy it."""

    name: str
    attach: Callable[[Vnet], object]
    """Build the subsystem's state for a new vnet; stored as ``vnet.<name>``."""
    detach: Callable[[Vnet], None] = field(default=lambda vnet: None)
    """Release what ``attach`` built; the registry then removes the attribute."""
    depends: tuple[str, ...] = ()
    knobs: tuple[Knob, ...] = ()
    """The sysctls this subsystem's state carries."""
    lazy: bool = False
    """True: ``attach`` runs when the vnet first asks for ``vnet.<name>``, not at creation."""
    prepare: Callable[[Vnet], None] = field(default=lambda vnet: None)
    """For a lazy subsystem: what a new vnet gets at creation instead of the state
    (shared entry points that attach the state when first used)."""
    unprepare: Callable[[Vnet], None] = field(default=lambda vnet: None)
    """Undo ``prepare`` in a vnet that never needed the state (on unload)."""


class Registry:
    """The loaded subsystems, kept in an order where dependencies come first."""

    def __init__(self, subsystems: Iterable[Subsystem] = ()) -> None:
        self._ordered: list[Subsystem] = []
        self._sysctl: Sysctl | None = None
        self.lazy: dict[str, Subsystem] = {}
        """The loaded lazy subsystems by name (shared by every vnet of the registry)."""
        self._pristine: Vnet | None = None
        for subsystem in subsystems:
            self._append(subsystem)

    def _append(self, subsystem: Subsystem) -> None:
        names = self.names()
        if subsystem.name in names:
            raise RegistryError(f"subsystem {subsystem.name!r} is already loaded")
        missing = [dep for dep in subsystem.depends if dep not in names]
        if missing:
            raise RegistryError(
                f"subsystem {subsystem.name!r} needs {', '.join(missing)}, which is not loaded"
            )
        self._ordered.append(subsystem)
        if subsystem.lazy:
            self.lazy[subsystem.name] = subsystem
        self._sysctl = None
        self._pristine = None

    def _remove(self, subsystem: Subsystem) -> None:
        self._ordered.remove(subsystem)
        self.lazy.pop(subsystem.name, None)
        self._sysctl = None
        self._pristine = None

    def sysctl(self) -> Sysctl:
        """Return the sysctl tree of the loaded subsystems."""
        if self._sysctl is None:
            knobs = [*limits.make_knobs(self.sysctl)]
            for subsystem in self._ordered:
                if subsystem.lazy:
                    knobs.extend(self._lazy_knob(subsystem.name, k) for k in subsystem.knobs)
                else:
                    knobs.extend(subsystem.knobs)
            self._sysctl = Sysctl(knobs)
        return self._sysctl

    def _lazy_knob(self, name: str, knob: Knob) -> Knob:
        """Return ``knob`` of lazy subsystem ``name``, read and written without creating state.

        A vnet that does not hold the state yet reads the default; setting the
        default there stores nothing, any other value creates the state.
        """
        get, set_ = knob.get, knob.set

        def read(vnet: Vnet) -> Value:
            return get(vnet if vnet.holds(name) else self.pristine(type(vnet)))

        def write(vnet: Vnet, value: Value) -> None:
            if vnet.holds(name) or value != get(self.pristine(type(vnet))):
                set_(vnet, value)

        return dataclasses.replace(knob, get=read, set=write)

    def get(self, name: str) -> Subsystem | None:
        """Return the loaded subsystem ``name``, None if it is not loaded."""
        return next((s for s in self._ordered if s.name == name), None)

    def users(self, name: str) -> list[str]:
        """Return the loaded subsystems that depend on ``name``, in attach order."""
        return [s.name for s in self._ordered if name in s.depends]

    def names(self) -> list[str]:
        """Return the loaded subsystem names in attach order."""
        return [s.name for s in self._ordered]

    def __iter__(self) -> Iterator[Subsystem]:
        return iter(list(self._ordered))

    def pristine(self, kind: type[Vnet]) -> Vnet:
        """Return a vnet (of class ``kind``) that no traffic reaches, whose states are what
        fresh ones hold.

        Views read a lazy subsystem's state there for a vnet that has not
        needed its own yet; they must not change it.
        """
        if self._pristine is None:
            pristine = kind("(pristine)", None)
            self.attach_all(pristine)
            self._pristine = pristine
        return self._pristine

    def attach_all(self, vnet: Vnet) -> None:
        """Attach the eager subsystems to ``vnet`` in order (prepare lazy ones); undo on failure."""
        vnet.registry = self
        done: list[Subsystem] = []
        try:
            for subsystem in self._ordered:
                _attach(subsystem, vnet)
                done.append(subsystem)
        except BaseException:
            for subsystem in reversed(done):
                _detach(subsystem, vnet)
            raise

    def detach_all(self, vnet: Vnet) -> None:
        """Detach every subsystem from ``vnet`` (which is destroyed) in reverse order.

        A lazy subsystem the vnet never needed is not unprepared: that only gives the
        vnet's dispatch tables back their own entries, and the vnet goes with its tables.
        """
        for subsystem in reversed(self._ordered):
            _detach(subsystem, vnet, unprepare=False)

    def load(self, subsystem: Subsystem, vnets: Iterable[Vnet]) -> None:
        """Load ``subsystem`` and attach it to every vnet in ``vnets``."""
        self._append(subsystem)
        done: list[Vnet] = []
        try:
            for vnet in vnets:
                _attach(subsystem, vnet)
                done.append(vnet)
        except BaseException:
            for vnet in done:
                _detach(subsystem, vnet)
            self._remove(subsystem)
            raise

    def unload(self, name: str, vnets: Iterable[Vnet]) -> None:
        """Detach subsystem ``name`` from every vnet and unload it."""
        subsystem = next((s for s in self._ordered if s.name == name), None)
        if subsystem is None:
            raise RegistryError(f"subsystem {name!r} is not loaded")
        users = self.users(name)
        if users:
            needs = ", ".join(f"{user} needs {name}" for user in users)
            raise RegistryError(
                f"cannot unload subsystem {name!r}: it is needed by {', '.join(users)} ({needs})"
            )
        for vnet in vnets:
            _detach(subsystem, vnet)
        self._remove(subsystem)


def _attach(subsystem: Subsystem, vnet: Vnet) -> None:
    if subsystem.lazy:
        subsystem.prepare(vnet)
    else:
        setattr(vnet, subsystem.name, subsystem.attach(vnet))


def _detach(subsystem: Subsystem, vnet: Vnet, unprepare: bool = True) -> None:
    """Detach ``subsystem`` from ``vnet`` if it holds it; a lazy one is also unprepared
    (``vnet``'s dispatch tables given back their own entries) unless ``unprepare`` is
    False, for a vnet that goes with its tables."""
    if vnet.holds(subsystem.name):
        subsystem.detach(vnet)
        delattr(vnet, subsystem.name)
    if unprepare and subsystem.lazy:
        subsystem.unprepare(vnet)
