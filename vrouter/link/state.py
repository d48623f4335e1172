"""The link subsystem's per-vnet state: interfaces and the EtherType table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.registry import Subsystem

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

EtherHandler = Callable[["Ifnet", bytes | bytearray, float], None]
"""Receives (interface, whole frame, now) for one EtherType."""


class LinkError(Exception):
    """An interface operation was refused."""


@dataclass(slots=True)
class LinkState:
    """Per-vnet link state (FreeBSD's ``V_ifnet``)."""

    interfaces: dict[str, Ifnet] = field(default_factory=dict)
    """Interfaces by name."""
    ethertypes: dict[int, EtherHandler] = field(default_factory=dict)
    """Input handler per EtherType, filled by the subsystems that attach."""
    next_index: int = 1

    def add(self, ifp: Ifnet) -> None:
        """Register ``ifp`` in this vnet and give it an index."""
        if ifp.name in self.interfaces:
            raise LinkError(f"vnet {ifp.vnet.name} already has an interface {ifp.name!r}")
        ifp.index = self.next_index
        self.next_index += 1
        self.interfaces[ifp.name] = ifp

    def get(self, name: str) -> Ifnet:
        """Return interface ``name`` or raise LinkError."""
        try:
            return self.interfaces[name]
        except KeyError:
            raise LinkError(f"no interface {name!r}") from None


def _attach(vnet: Vnet) -> LinkState:
    return LinkState()


def _detach(vnet: Vnet) -> None:
    for ifp in vnet.link.interfaces.values():
        ifp.up = False
    vnet.link.interfaces.clear()
    vnet.link.ethertypes.clear()


SUBSYSTEM = Subsystem("link", _attach, _detach)
