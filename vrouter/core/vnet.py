"""Vnets: independent network stacks, named in a tree (``lab``, ``lab/r1``).

A :class:`Vnet` holds no protocol state of its own: each subsystem attaches
its per-vnet state as a typed attribute (``vnet.link``, ``vnet.inet``,
``vnet.route``), so everything FreeBSD keeps in ``V_`` variables lives here,
once per stack.  Protocol code receives the vnet explicitly.

Two things belong to every vnet whatever is loaded: its :class:`Limits`
(``vnet.limits``, inherited from the parent and only narrowed, see
:mod:`vrouter.core.limits`) and its effective :class:`Rights`
(``vnet.rights``, from the tree's :class:`~vrouter.core.perms.Policy`).
A new child copies its parent's sysctl values, but not its limits: it
follows them.

The state of a lazy subsystem (``vnet.tcp``, ``vnet.firewall`` …) is
created the first time it is asked for; :meth:`Vnet.holds` tells whether it
exists yet, :meth:`Vnet.has` whether the subsystem is loaded at all, and
:meth:`Vnet.view` gives read-only views the state or, before it exists, a
fresh one's values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from vrouter.core import limits as limits_
from vrouter.core.limits import Limits
from vrouter.core.perms import NO_RIGHTS, Policy, Rights
from vrouter.core.registry import Registry, Subsystem
from vrouter.core.timers import Timers

if TYPE_CHECKING:
    from vrouter.firewall.subsystem import FilterState
    from vrouter.inet.state import InetState
    from vrouter.inet6.state import Inet6State
    from vrouter.link.state import LinkState
    from vrouter.route.state import RouteState
    from vrouter.transport.sockets import TransportState
    from vrouter.transport.tcp.stack import TcpStack

DEFAULT_VNET = "vnet0"
Listener = Callable[[dict[str, object]], None]
"""Told of a change event of a vnet (route, address, interface)."""
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}\Z")


class VnetError(Exception):
    """A vnet cannot be created or destroyed as asked."""


def check_name(name: str) -> None:
    """Raise VnetError unless ``name`` is a valid hierarchical vnet name."""
    if not name or not all(_SEGMENT.match(seg) for seg in name.split("/")):
        raise VnetError(
            f"bad vnet name {name!r}: segments of letters, digits, '_' or '-' "
            "(at most 32, starting with a letter or digit) joined by '/'"
        )


class Vnet:
    """One network stack."""

    link: LinkState
    inet: InetState
    inet6: Inet6State
    route: RouteState
    firewall: FilterState
    transport: TransportState
    tcp: TcpStack
    limits: Limits
    rights: Rights

    def __init__(self, name: str, parent: Vnet | None) -> None:
        self.registry: Registry | None = None
        """The registry whose subsystems built this vnet's state (set when attached)."""
        self.name = name
        self.parent = parent
        self.children: dict[str, Vnet] = {}
        self.timers = Timers(self)
        self.limits = Limits(name, parent.limits if parent is not None else None)
        """This vnet's limits (its own, and the way to its ancestors')."""
        self.rights = NO_RIGHTS
        """Who may manage it or open sockets in it (set by :meth:`VnetTree.set_policy`)."""
        self.listeners: tuple[Listener, ...] = ()
        """Called with every change event (route, address, interface), e.g. by route sockets
        (changed through :meth:`listen`; a tuple: most vnets have none, and ``()`` is shared)."""
        self.link_listeners: tuple[Listener, ...] = ()
        """Called with address and interface events (and route events only when there are
        :attr:`listeners`: a route's event costs a description, a feed's millions of them)."""

    def listen(self, listener: Listener, link: bool = False) -> None:
        """Call ``listener`` with every change event (only address and interface events,
        and route events while :attr:`listeners` has any, if ``link``)."""
        if link:
            self.link_listeners = (*self.link_listeners, listener)
        else:
            self.listeners = (*self.listeners, listener)

    def unlisten(self, listener: Listener, link: bool = False) -> None:
        """Stop calling ``listener`` (added by :meth:`listen` with the same ``link``), if it is."""
        found = list(self.link_listeners if link else self.listeners)
        if listener in found:
            found.remove(listener)
            if link:
                self.link_listeners = tuple(found)
            else:
                self.listeners = tuple(found)

    @property
    def listened(self) -> bool:
        """Whether anyone listens for address and interface events."""
        return bool(self.listeners or self.link_listeners)

    def __getattr__(self, name: str) -> Any:
        """Create the state of lazy subsystem ``name`` the first time it is asked for."""
        registry = self.__dict__.get("registry")
        subsystem = registry.lazy.get(name) if registry is not None else None
        if subsystem is None:
            raise AttributeError(f"vnet {self.__dict__.get('name')!r} has no {name!r}")
        state = subsystem.attach(self)
        setattr(self, name, state)
        assert registry is not None
        limits_.apply_caps(self, registry.sysctl())  # a fresh state's knobs obey the limits
        return state

    def holds(self, name: str) -> bool:
        """Return True if the state of subsystem ``name`` exists in this vnet (no creation)."""
        return name in self.__dict__

    def has(self, name: str) -> bool:
        """Return True if subsystem ``name`` is loaded here (its state may not exist yet)."""
        return name in self.__dict__ or (self.registry is not None and name in self.registry.lazy)

    def view(self, name: str) -> Any:
        """Return the state of subsystem ``name`` for reading, None if it is not loaded.

        Before a lazy state exists this is the registry's pristine one, which
        holds what a fresh state would (empty tables, zero counters, default
        knobs); the caller must not change it.
        """
        state = self.__dict__.get(name)
        if state is not None or self.registry is None or name not in self.registry.lazy:
            return state
        return getattr(self.registry.pristine(type(self)), name)

    def emit(self, event: dict[str, object]) -> None:
        """Tell every listener about a change in this vnet."""
        for listener in (*self.listeners, *self.link_listeners):
            listener(event)

    @property
    def basename(self) -> str:
        """Return the last segment of the name."""
        return self.name.rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"<Vnet {self.name}>"


class VnetTree:
    """Every vnet of one process, and the registry that builds their state."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._vnets: dict[str, Vnet] = {}
        self.policy = Policy()
        """The rights in force; every vnet's ``rights`` is derived from it."""
        self.mac_seed = b""
        """The installation's seed, mixed into the MACs derived from names."""

    def create(self, name: str) -> Vnet:
        """Create vnet ``name``; its parent (the name before the last ``/``) must exist."""
        check_name(name)
        if name in self._vnets:
            raise VnetError(f"vnet {name!r} already exists")
        parent = None
        if "/" in name:
            parent_name = name.rsplit("/", 1)[0]
            parent = self._vnets.get(parent_name)
            if parent is None:
                raise VnetError(
                    f"cannot create vnet {name!r}: parent {parent_name!r} does not exist"
                )
        vnet = Vnet(name, parent)
        self.registry.attach_all(vnet)
        if parent is not None:
            sysctl = self.registry.sysctl()
            for knob in sysctl.knobs.values():
                if limits_.kind_of(knob.name) is None:  # limits are followed, not copied
                    knob.set(vnet, knob.get(parent))  # a lazy state's default stores nothing
            # What the parent's limits lowered comes back here too when they are raised.
            vnet.limits.capped = dict(parent.limits.capped)
            limits_.apply_caps(vnet, sysctl)
        vnet.rights = self.policy.rights(name)
        self._vnets[name] = vnet
        if parent is not None:
            parent.children[vnet.basename] = vnet
        return vnet

    def destroy(self, name: str) -> None:
        """Destroy vnet ``name``, which must have no children."""
        vnet = self.get(name)
        if vnet.children:
            raise VnetError(f"vnet {name!r} still has children: {', '.join(vnet.children)}")
        self.registry.detach_all(vnet)
        vnet.timers.clear()
        # The timers' owner is the vnet: without the back-reference the destroyed vnet is
        # freed when its last reference goes, not when the cyclic collector walks it.
        vnet.timers.owner = None
        del self._vnets[name]
        if vnet.parent is not None:
            del vnet.parent.children[vnet.basename]

    def set_policy(self, policy: Policy) -> None:
        """Put ``policy`` in force: recompute every vnet's rights."""
        self.policy = policy
        for vnet in self._vnets.values():
            vnet.rights = policy.rights(vnet.name)

    def load(self, subsystem: Subsystem) -> None:
        """Load ``subsystem`` and attach it to every vnet; the limits cap its knobs at once.

        Raise RegistryError (nothing changed) if it is loaded or a dependency is not.
        """
        self.registry.load(subsystem, self)
        sysctl = self.registry.sysctl()
        for vnet in self:
            limits_.apply_caps(vnet, sysctl)

    def unload(self, name: str) -> Subsystem:
        """Detach subsystem ``name`` from every vnet, children first, and unload it.

        Raise RegistryError (nothing changed) if it is not loaded or another
        loaded subsystem needs it.
        """
        subsystem = self.registry.get(name)
        knobs = [k.name for k in subsystem.knobs] if subsystem is not None else []
        deepest_first = sorted(self, key=lambda v: v.name.count("/"), reverse=True)
        self.registry.unload(name, deepest_first)
        assert subsystem is not None
        for vnet in self:
            limits_.forget_caps(vnet, knobs)
        return subsystem

    def get(self, name: str) -> Vnet:
        """Return vnet ``name`` or raise VnetError."""
        try:
            return self._vnets[name]
        except KeyError:
            raise VnetError(f"no vnet named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._vnets

    def __iter__(self) -> Iterator[Vnet]:
        return iter(list(self._vnets.values()))

    def __len__(self) -> int:
        return len(self._vnets)
