"""Who may change a vnet or open sockets in it: principals, grants, the policy.

Callers of the control socket are identified by the kernel (``SO_PEERCRED``:
pid, uid, gid, and ``SO_PEERGROUPS``: supplementary groups) as a
:class:`Cred`.  The config grants rights to *principals* (``uid:1000``,
``gid:100``, ``user:alice``, ``group:netops``; names are resolved when the
config is loaded):

- ``[daemon] admins``: daemon-wide operations (reload, module load/unload,
  creating and destroying top-level vnets and setting their limits), and
  everything a manager of any vnet may do;
- ``[vnets.NAME.permissions] manage``: change that vnet and its descendants
  (create and destroy children, interfaces, addresses, routes, sysctl,
  firewall, capture) and open sockets in them;
- ``[vnets.NAME.permissions] sockets``: open sockets in that vnet and its
  descendants (the socket service); binding a port below 1024, and a route
  socket (it changes routes), need ``manage``.

Rights are inherited: the principals allowed on a vnet are the union of the
grants on it and on every ancestor (a right on ``lab`` covers ``lab/r1``), so
a child's grants can only add principals *for that subtree*; nothing granted
on a child reaches its parent or siblings.  A vnet's own limits are changed by
whoever may manage its parent (a daemon admin for a top-level vnet), never by
its own managers alone.  Grants are by vnet name, so a vnet destroyed and
created again under the same name gets the same rights.  root (uid 0) and the
daemon's own uid may do everything.

Everything here is pure: :class:`Policy` answers from the config, and each
vnet carries its effective :class:`Rights` (installed by
:meth:`~vrouter.core.vnet.VnetTree.set_policy`), so
:func:`may_open_sockets` and :func:`may_bind_privileged` need only the vnet.
The control server makes the caller of the request it is answering
available through :func:`caller` (a ContextVar: API plumbing only).
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet

PRINCIPAL_KINDS = ("uid", "gid", "user", "group")


@dataclass(frozen=True, slots=True)
class Cred:
    """A caller as the kernel reports it."""

    pid: int
    uid: int
    gid: int
    groups: frozenset[int] = frozenset()
    """Supplementary groups (``SO_PEERGROUPS``)."""

    def __str__(self) -> str:
        return f"uid {self.uid}"

    def describe(self) -> str:
        """Return ``uid 1000 (alice) gid 100 pid 4242`` for log lines."""
        try:
            user = f" ({pwd.getpwuid(self.uid).pw_name})"
        except KeyError:
            user = ""
        return f"uid {self.uid}{user} gid {self.gid} pid {self.pid}"


ROOT = Cred(pid=0, uid=0, gid=0)
"""The daemon itself (in-process callers)."""


def superuser(cred: Cred) -> bool:
    """Return True for root and for the daemon's own uid (which could ptrace it anyway)."""
    return cred.uid in (0, os.geteuid())


@dataclass(frozen=True, slots=True)
class Principal:
    """Someone the config grants a right: a uid or a gid (names resolved at load)."""

    kind: str
    """``uid`` or ``gid``."""
    id: int
    text: str
    """As written in the config (``user:alice``)."""

    def matches(self, cred: Cred) -> bool:
        """Return True if ``cred`` is this principal (a gid matches supplementary groups too)."""
        if self.kind == "uid":
            return cred.uid == self.id
        return cred.gid == self.id or self.id in cred.groups

    @property
    def root(self) -> bool:
        """Return True for uid 0 (granting root anything changes nothing)."""
        return self.kind == "uid" and self.id == 0

    def __str__(self) -> str:
        return self.text


class PrincipalError(ValueError):
    """A principal is malformed or names an unknown user or group."""


def parse_principal(text: str) -> Principal:
    """Parse ``uid:N``, ``gid:N``, ``user:NAME`` or ``group:NAME``; raise PrincipalError."""
    kind, sep, value = text.partition(":")
    if not sep or kind not in PRINCIPAL_KINDS or not value:
        raise PrincipalError(
            f"{text!r} is not a principal; write uid:N, gid:N, user:NAME or group:NAME"
        )
    if kind in ("uid", "gid"):
        if not value.isdigit() or int(value) >= 1 << 32:
            raise PrincipalError(f"{text!r}: {kind} must be a number 0..4294967295")
        return Principal(kind, int(value), text)
    try:
        if kind == "user":
            return Principal("uid", pwd.getpwnam(value).pw_uid, text)
        return Principal("gid", grp.getgrnam(value).gr_gid, text)
    except KeyError:
        raise PrincipalError(f"{text!r}: no {kind} named {value!r} on this system") from None


@dataclass(frozen=True, slots=True)
class Grants:
    """The principals the config names on one vnet (``[vnets.NAME.permissions]``)."""

    manage: tuple[Principal, ...] = ()
    sockets: tuple[Principal, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.manage or self.sockets)


NO_GRANTS = Grants()


@dataclass(frozen=True, slots=True)
class Rights:
    """Who may do what on one vnet, inheritance and admins included."""

    manage: frozenset[Principal] = frozenset()
    sockets: frozenset[Principal] = frozenset()
    """Principals that may open sockets (managers included)."""


NO_RIGHTS = Rights()


def _any(principals: Iterable[Principal], cred: Cred) -> bool:
    return any(p.matches(cred) for p in principals)


def ancestry(name: str) -> list[str]:
    """Return ``a``, ``a/b``, ``a/b/c`` for ``a/b/c``: the vnet and its ancestors, root first."""
    parts = name.split("/")
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def parent_of(name: str) -> str | None:
    """Return the parent's name of vnet ``name`` (None for a top-level vnet)."""
    parent, sep, _ = name.rpartition("/")
    return parent if sep else None


@functools.lru_cache(maxsize=1024)
def _shared_rights(manage: frozenset[Principal], sockets: frozenset[Principal]) -> Rights:
    """Return one Rights for each distinct pair, shared by the vnets that have it."""
    return Rights(manage, sockets)


@dataclass(frozen=True, slots=True)
class Policy:
    """The rights of one configuration: daemon admins and grants by vnet name."""

    admins: tuple[Principal, ...] = ()
    grants: Mapping[str, Grants] = field(default_factory=dict)

    def rights(self, name: str) -> Rights:
        """Return the effective rights on vnet ``name`` (whether or not it exists)."""
        manage: set[Principal] = set(self.admins)
        sockets: set[Principal] = set()
        for vnet in ancestry(name):
            grants = self.grants.get(vnet)
            if grants is not None:
                manage.update(grants.manage)
                sockets.update(grants.sockets)
        return _shared_rights(frozenset(manage), frozenset(manage | sockets))

    def is_admin(self, cred: Cred) -> bool:
        """Return True if ``cred`` may do daemon-wide operations."""
        return superuser(cred) or _any(self.admins, cred)

    def may_manage(self, name: str, cred: Cred) -> bool:
        """Return True if ``cred`` may change vnet ``name`` (and its descendants)."""
        return superuser(cred) or _any(self.rights(name).manage, cred)

    def may_open_sockets(self, name: str, cred: Cred) -> bool:
        """Return True if ``cred`` may open sockets in vnet ``name``."""
        return superuser(cred) or _any(self.rights(name).sockets, cred)

    def may_set_limits(self, name: str, cred: Cred) -> bool:
        """Return True if ``cred`` may change vnet ``name``'s own limits (its parent's managers)."""
        parent = parent_of(name)
        return self.is_admin(cred) if parent is None else self.may_manage(parent, cred)

    def non_root(self) -> bool:
        """Return True if any principal other than root is granted anything."""
        everyone = [*self.admins]
        for grants in self.grants.values():
            everyone.extend(grants.manage)
            everyone.extend(grants.sockets)
        return any(not p.root for p in everyone)


def may_manage(vnet: Vnet, cred: Cred) -> bool:
    """Return True if ``cred`` may change ``vnet``."""
    return superuser(cred) or _any(vnet.rights.manage, cred)


def may_open_sockets(vnet: Vnet, cred: Cred) -> bool:
    """Return True if ``cred`` may open sockets in ``vnet`` (its managers may too)."""
    return superuser(cred) or _any(vnet.rights.sockets, cred)


def may_bind_privileged(vnet: Vnet, cred: Cred) -> bool:
    """Return True if ``cred`` may bind ports below 1024 in ``vnet``: its managers may."""
    return may_manage(vnet, cred)


_CALLER: ContextVar[Cred] = ContextVar("vrouter_caller", default=ROOT)


def caller() -> Cred:
    """Return who made the control request being answered (ROOT outside of one)."""
    return _CALLER.get()


def set_caller(cred: Cred) -> Token[Cred]:
    """Make ``cred`` the caller for what runs next in this context; return a reset token."""
    return _CALLER.set(cred)


def reset_caller(token: Token[Cred]) -> None:
    """Undo :func:`set_caller`."""
    _CALLER.reset(token)
