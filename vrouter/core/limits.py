"""Per-vnet limits: inherited down the vnet tree, only ever narrowed.

Each vnet may set its own limit of each kind (:data:`KINDS`); its
*effective* limit is the smallest of its own and every ancestor's, so a
child can narrow what its parent allows but never widen it.  A vnet without
a limit of its own follows its parent's, live: raising the parent's limit
raises the child's.

Two kinds of enforcement:

- **Operation layer** (``interfaces``, ``routes``, ``sockets``): the code
  that adds one (:mod:`vrouter.daemon.ops`, the socket service) calls
  :meth:`Limits.check` first, which refuses with a :class:`LimitError`
  ("vnet lab/r1: route limit 100 reached") and counts the refusal.
- **Existing knobs** (``neighbours``, ``states``, ``reassembly_bytes``, ``fdb``): the
  data path already bounds its tables with per-vnet sysctls
  (:data:`CAPPED_KNOBS`); a limit caps those knobs in the vnet and its
  descendants, so the data path enforces it without a new check (and counts
  with its own counters: ``arp.table_full``, ``pf_states.limit``,
  ``ip_reass.memory``).  A knob cannot be set above the limit; when the
  limit is raised again, a knob that the limit had lowered gets back the
  value it had before.

The limits are sysctls themselves (``vnet.limits.routes`` …, 0 meaning "no
limit of its own"), so the config's ``[limits]`` table, ``vrouterctl sysctl``
and live reload all go through one path; unlike other knobs they are not
copied into a new child (it follows its parent instead).

What is counted (``in use``): ``interfaces`` of the vnet itself;
``routes`` in both families together, connected and static;
``neighbours`` per neighbour cache (ARP and NDP each); ``states`` in the
firewall's state table; ``sockets`` open in the vnet (the socket service);
``reassembly_bytes`` per family; ``fdb`` the entries of the vnet's bridges
together (``net.link.bridge.fdb_max``, refusals in ``fdb_full``).  A lowered
limit refuses new objects; it never removes existing ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.sysctl import Knob, Sysctl, SysctlError, Value

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet

KINDS = ("interfaces", "routes", "neighbours", "states", "sockets", "reassembly_bytes", "fdb")
"""Every kind of limit, in display order."""

NOUNS = {
    "interfaces": "interface",
    "routes": "route",
    "neighbours": "neighbour",
    "states": "firewall state",
    "sockets": "socket",
    "reassembly_bytes": "reassembly memory",
    "fdb": "FDB entry",
}
"""How a message names each kind ("route limit 100 reached")."""

KNOB_PREFIX = "vnet.limits."
"""The sysctl name of kind ``k`` is ``KNOB_PREFIX + k``."""

MAXIMUM = (1 << 31) - 1
"""Largest limit of any kind."""

CAPPED_KNOBS: dict[str, tuple[str, ...]] = {
    "neighbours": ("net.link.ether.inet.max_entries", "net.inet6.nd6.max_entries"),
    "states": ("net.pf.states_max",),
    "reassembly_bytes": ("net.inet.ip.reass.maxmem", "net.inet6.ip6.reass.maxmem"),
    "fdb": ("net.link.bridge.fdb_max",),
}
"""The data-path knobs each limit caps (a knob of an unloaded subsystem is skipped)."""

KIND_OF_KNOB = {name: kind for kind, names in CAPPED_KNOBS.items() for name in names}


class LimitError(SysctlError):
    """A limit was reached, or a limit or knob would exceed what an ancestor allows."""


def knob_name(kind: str) -> str:
    """Return the sysctl name of limit ``kind``."""
    return KNOB_PREFIX + kind


def kind_of(name: str) -> str | None:
    """Return the kind of the limit knob ``name``, None if it is not one."""
    if name.startswith(KNOB_PREFIX) and name[len(KNOB_PREFIX) :] in KINDS:
        return name[len(KNOB_PREFIX) :]
    return None


NONE_REFUSED: Counter[str] = Counter()
"""The refusals of every vnet refused nothing yet (shared, never written: a vnet gets
its own Counter with its first refusal)."""


@dataclass(slots=True)
class Limits:
    """The limits of one vnet: its own values, the refusals counted, the knobs capped."""

    name: str
    """The vnet's name, for messages."""
    parent: Limits | None = None
    """The parent vnet's limits (None for a top-level vnet)."""
    own: dict[str, int] = field(default_factory=dict)
    """Limits set on this vnet itself, by kind; a kind absent follows the parent."""
    refused: Counter[str] = field(default_factory=lambda: NONE_REFUSED)
    """Additions refused at the operation layer because a limit was reached, by kind
    (a kind never refused reads 0 and takes no room)."""
    capped: dict[str, tuple[Value, Value]] = field(default_factory=dict)
    """Knob name -> (the value it had, the value the limit lowered it to)."""

    def effective(self, kind: str) -> int | None:
        """Return the limit of ``kind`` in force here (None: unlimited)."""
        return self.effective_from(kind)[0]

    def effective_from(self, kind: str) -> tuple[int | None, str | None]:
        """Return (the limit in force, the name of the vnet that sets it)."""
        best: tuple[int | None, str | None] = (None, None)
        limits: Limits | None = self
        while limits is not None:
            value = limits.own.get(kind)
            if value is not None and (best[0] is None or value < best[0]):
                best = (value, limits.name)
            limits = limits.parent
        return best

    def check(self, kind: str, in_use: int, adding: int = 1) -> None:
        """Refuse (LimitError, counted) adding ``adding`` to ``in_use`` beyond the limit."""
        limit = self.effective(kind)
        if limit is not None and in_use + adding > limit:
            if self.refused is NONE_REFUSED:
                self.refused = Counter()
            self.refused[kind] += 1
            raise LimitError(f"vnet {self.name}: {NOUNS[kind]} limit {limit} reached")

    def check_setting(self, kind: str, value: int) -> None:
        """Refuse setting this vnet's own ``kind`` limit above its parent's (0: none)."""
        if value < 0 or value > MAXIMUM:
            raise LimitError(f"vnet {self.name}: a {NOUNS[kind]} limit must be 0..{MAXIMUM}")
        if value == 0 or self.parent is None:
            return
        allowed, where = self.parent.effective_from(kind)
        if allowed is not None and value > allowed:
            parent = self.parent.name
            source = "" if where == parent else f", set on {where}"
            raise LimitError(
                f"vnet {self.name}: {NOUNS[kind]} limit {value} is above the {NOUNS[kind]} "
                f"limit of its parent vnet {parent} ({allowed}{source})"
            )

    def check_knob(self, name: str, value: Value) -> None:
        """Refuse setting a capped knob (``net.pf.states_max`` …) above this vnet's limit."""
        kind = KIND_OF_KNOB.get(name)
        if kind is None:
            return
        limit = self.effective(kind)
        if limit is not None and value > limit:
            raise LimitError(
                f"vnet {self.name}: {name} {value:g} is above the vnet's "
                f"{NOUNS[kind]} limit {limit}"
            )

    # The limits as read by the socket service and the API.

    @property
    def interfaces(self) -> int | None:
        """Return the interface limit in force (None: unlimited)."""
        return self.effective("interfaces")

    @property
    def routes(self) -> int | None:
        """Return the route limit in force, both families together (None: unlimited)."""
        return self.effective("routes")

    @property
    def neighbours(self) -> int | None:
        """Return the limit of entries per neighbour cache (None: unlimited)."""
        return self.effective("neighbours")

    @property
    def states(self) -> int | None:
        """Return the firewall state limit in force (None: unlimited)."""
        return self.effective("states")

    @property
    def sockets(self) -> int | None:
        """Return the socket limit in force (None: unlimited)."""
        return self.effective("sockets")

    @property
    def reassembly_bytes(self) -> int | None:
        """Return the reassembly memory limit per family, in bytes (None: unlimited)."""
        return self.effective("reassembly_bytes")

    def describe(self) -> dict[str, dict[str, object]]:
        """Return every kind's own and effective limit, where it comes from, and refusals."""
        result: dict[str, dict[str, object]] = {}
        for kind in KINDS:
            limit, where = self.effective_from(kind)
            result[kind] = {
                "own": self.own.get(kind),
                "effective": limit,
                "set_on": where,
                "refused": self.refused[kind],
            }
        return result


def check_sockets(vnet: Vnet, in_use: int) -> None:
    """Refuse one more socket in ``vnet`` (LimitError, counted) if ``in_use`` is at the limit.

    The socket service calls this before it opens a socket; ``in_use`` is
    the number of sockets open in the vnet.
    """
    vnet.limits.check("sockets", in_use)


def subtree(vnet: Vnet) -> Iterator[Vnet]:
    """Yield ``vnet`` and its descendants, parents first."""
    yield vnet
    for child in list(vnet.children.values()):
        yield from subtree(child)


def set_limit(vnet: Vnet, kind: str, value: int, sysctl: Sysctl, *, check: bool = True) -> None:
    """Set ``vnet``'s own ``kind`` limit (0: none) and cap the knobs of its subtree.

    With ``check``, refuse (LimitError) a value above the parent's limit;
    a rollback passes False to restore an earlier, consistent state in any
    order.
    """
    if check:
        vnet.limits.check_setting(kind, value)
    if value:
        vnet.limits.own[kind] = value
    else:
        vnet.limits.own.pop(kind, None)
    for member in subtree(vnet):
        apply_caps(member, sysctl, kinds=(kind,))


def apply_caps(vnet: Vnet, sysctl: Sysctl, kinds: tuple[str, ...] = tuple(CAPPED_KNOBS)) -> None:
    """Bring ``vnet``'s capped knobs in line with its limits (lower, or restore when raised).

    A knob the limit lowered gets back the value it had once the limit
    allows it, unless it was set to something else meanwhile.
    """
    limits = vnet.limits
    for kind in kinds:
        limit = limits.effective(kind)
        for name in CAPPED_KNOBS.get(kind, ()):
            knob = sysctl.knobs.get(name)
            if knob is None:
                limits.capped.pop(name, None)
                continue
            if limit is None and name not in limits.capped:
                continue  # nothing to lower or to give back (and no lazy state created)
            try:
                current = knob.get(vnet)
            except AttributeError:  # subsystem not attached to this vnet (yet)
                continue
            memo = limits.capped.get(name)
            wanted = memo[0] if memo is not None and memo[1] == current else current
            target = wanted if limit is None else min(wanted, knob.kind(limit))
            if target != current:
                knob.set(vnet, target)
            if target != wanted:
                limits.capped[name] = (wanted, target)
            else:
                limits.capped.pop(name, None)


def forget_caps(vnet: Vnet, names: tuple[str, ...] | list[str]) -> None:
    """Forget what the limits remembered about knobs ``names`` (their subsystem unloaded)."""
    for name in names:
        vnet.limits.capped.pop(name, None)


def make_knobs(sysctl: Callable[[], Sysctl]) -> tuple[Knob, ...]:
    """Return the ``vnet.limits.*`` knobs; ``sysctl`` returns the tree whose knobs they cap."""

    def knob(kind: str) -> Knob:
        def get(vnet: Vnet) -> Value:
            return vnet.limits.own.get(kind, 0)

        def set_(vnet: Vnet, value: Value) -> None:
            set_limit(vnet, kind, int(value), sysctl())

        unit = "bytes of fragments per family" if kind == "reassembly_bytes" else NOUNS[kind] + "s"
        return Knob(
            knob_name(kind),
            int,
            f"Limit of {unit} in this vnet and its children (0: none of its own, "
            "the parent's applies); may only narrow the parent's",
            get,
            set_,
            0,
            MAXIMUM,
        )

    return tuple(knob(kind) for kind in KINDS)
