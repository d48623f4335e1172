"""The link subsystem's per-vnet state: interfaces, the EtherType table, VLANs, bridges, VXLANs.

Its knobs: ``net.link.bridge.ageing_time`` and ``net.link.bridge.fdb_max``
(capped by the vnet's ``fdb`` limit), see :mod:`vrouter.link.bridge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core import tables
from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import field_knob
from vrouter.link import vlan
from vrouter.link.bridge import BridgeState
from vrouter.wire.vlan import TPID

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet
    from vrouter.link.vlan import Vlan
    from vrouter.link.vxlan import Vxlan

EtherHandler = Callable[["Ifnet", bytes | bytearray, float], None]
"""Receives (interface, whole frame, now) for one EtherType."""


class LinkError(Exception):
    """An interface operation was refused."""


@dataclass(slots=True)
class LinkState:
    """Per-vnet link state (FreeBSD's ``V_ifnet``)."""

    interfaces: dict[str, Ifnet] = field(default_factory=dict)
    """Interfaces by name."""
    ethertypes: dict[int, EtherHandler] = field(default_factory=tables.empty)
    """Input handler per EtherType, filled by the subsystems that attach (changed only
    through :func:`vrouter.core.tables.put`: vnets share it)."""
    next_index: int = 1
    vlans: dict[tuple[str, int], Vlan] = field(default_factory=dict)
    """802.1Q sub-interfaces by (parent interface name, VID)."""
    bridge: BridgeState = field(default_factory=BridgeState)
    """Bridges, their knobs and the vnet's FDB count."""
    vxlans: dict[str, Vxlan] = field(default_factory=dict)
    """VXLAN interfaces by name (:mod:`vrouter.link.vxlan`)."""

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
    state = LinkState()
    state.ethertypes = tables.put(state.ethertypes, TPID, vlan.input)
    return state


def _detach(vnet: Vnet) -> None:
    for bridge in list(vnet.link.bridge.bridges.values()):
        bridge.close()
    vnet.link.bridge.bridges.clear()
    for vx in list(vnet.link.vxlans.values()):
        vx.close()
    vnet.link.vxlans.clear()
    vnet.link.vlans.clear()
    for ifp in vnet.link.interfaces.values():
        ifp.up = False
    vnet.link.interfaces.clear()
    vnet.link.ethertypes = tables.EMPTY


KNOBS = (
    field_knob(
        "net.link.bridge.ageing_time",
        int,
        "seconds a learnt MAC stays in a bridge's FDB without a frame from it",
        "link.bridge.ageing_time",
        10,
        1000000,
    ),
    field_knob(
        "net.link.bridge.fdb_max",
        int,
        "FDB entries of the vnet's bridges together (sources beyond it are not learnt)",
        "link.bridge.fdb_max",
        0,
        (1 << 31) - 1,
    ),
)

SUBSYSTEM = Subsystem("link", _attach, _detach, knobs=KNOBS)
