"""802.1Q sub-interfaces: ``type = "vlan"`` with a ``parent`` and a ``vid``.

A VLAN interface is an Ifnet of its own (addresses, counters, captures) that
shares its parent's MAC, as on Linux and FreeBSD.  Receiving: the vnet's
EtherType table sends 0x8100 frames here; the tag names the sub-interface
(parent, VID) and the frame goes on, untagged, as if it had arrived there.
A priority-tagged frame (VID 0) belongs to the parent itself; a VID with no
sub-interface is dropped on the parent as ``vlan_unknown``.  Sending: the
sub-interface's device inserts the tag and hands the frame to the parent's
``output`` (a TAP, an epair, or a bridge that forwards it in that VLAN).

Offloads: the kernel's TAP never hands over a bare frame with the tag beside
it: ``tun`` writes a tag it holds out of band into the frame (and counts it
in ``csum_start``), so frames from a TAP are always tagged in line.  A tag
added or removed in front of a frame that still carries offload work moves
its checksum start and header length by four bytes; :func:`strip` and
:func:`insert` keep the header right.  A tagged super-frame is only ever
segmented or checksummed untagged (:func:`output`), since the offload code
expects the IP header right after 14 bytes of Ethernet.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrouter.link import ether
from vrouter.link.ifnet import Ifnet
from vrouter.link.offload import OffloadBuffer, VirtioHdr, resolve, vhdr_of
from vrouter.wire import vlan as wire


def _moved(vhdr: VirtioHdr, by: int) -> VirtioHdr:
    """Return ``vhdr`` with its offsets moved by ``by`` bytes (a tag added or removed)."""
    return vhdr._replace(
        hdr_len=max(0, vhdr.hdr_len + by) if vhdr.hdr_len else 0,
        csum_start=max(0, vhdr.csum_start + by) if vhdr.csum_start else 0,
    )


def strip(frame: bytes | bytearray) -> bytes | bytearray:
    """Return a tagged frame without its tag (an offload frame keeps its work, moved)."""
    vhdr = vhdr_of(frame)
    out = wire.strip(frame)
    if vhdr is None:
        return out
    buffer = OffloadBuffer(out)
    buffer.vhdr = _moved(vhdr, -wire.TAG_LEN)
    return buffer


def insert(frame: bytes | bytearray, tci: int) -> bytes | bytearray:
    """Return ``frame`` tagged with ``tci`` (an offload frame keeps its work, moved)."""
    vhdr = vhdr_of(frame)
    out = wire.insert(frame, tci)
    if vhdr is None:
        return out
    buffer = OffloadBuffer(out)
    buffer.vhdr = _moved(vhdr, wire.TAG_LEN)
    return buffer


def output(ifp: Ifnet, frame: bytes | bytearray) -> None:
    """Send ``frame`` (tagged or not) on ``ifp``, finishing offload work untagged if it must.

    A device that takes no offloads gets ordinary frames; for a tagged one
    they are completed without the tag and tagged again.
    """
    if not ifp.offload and wire.is_tagged(frame):
        vhdr = vhdr_of(frame)
        if vhdr is not None:
            tci = wire.tci_of(frame)
            for piece in resolve(strip(frame), _moved(vhdr, -wire.TAG_LEN)):
                ifp.output(wire.insert(piece, tci))
            return
    ifp.output(frame)


@dataclass(slots=True)
class Vlan:
    """One sub-interface: its Ifnet, the parent it rides on and its VLAN ID."""

    ifnet: Ifnet
    parent: Ifnet
    vid: int

    def transmit(self, frame: bytes | bytearray) -> None:
        """Tag a frame the sub-interface sends and hand it to the parent."""
        output(self.parent, insert(frame, self.vid))

    def describe(self) -> dict[str, object]:
        """Return the sub-interface as plain data for the API."""
        return {"interface": self.ifnet.name, "parent": self.parent.name, "vid": self.vid}


def attach(ifp: Ifnet, parent: Ifnet, vid: int) -> Vlan:
    """Make ``ifp`` the sub-interface of ``parent`` for ``vid`` (same vnet, same MAC)."""
    table = ifp.vnet.link.vlans
    key = (parent.name, vid)
    if key in table:
        raise ValueError(f"{parent.name} already has VLAN {vid} ({table[key].ifnet.name})")
    sub = Vlan(ifp, parent, vid)
    ifp.mac = parent.mac
    ifp.offload = parent.offload
    ifp.transmit = sub.transmit
    table[key] = sub
    return sub


def detach(ifp: Ifnet) -> Vlan | None:
    """Undo :func:`attach`; return the sub-interface it was, if any."""
    table = ifp.vnet.link.vlans
    for key, sub in list(table.items()):
        if sub.ifnet is ifp:
            del table[key]
            return sub
    return None


def of(ifp: Ifnet) -> Vlan | None:
    """Return the sub-interface ``ifp`` is, if it is one."""
    return next((s for s in ifp.vnet.link.vlans.values() if s.ifnet is ifp), None)


def children(ifp: Ifnet) -> list[Vlan]:
    """Return the sub-interfaces riding on ``ifp``."""
    return [s for s in ifp.vnet.link.vlans.values() if s.parent is ifp]


def input(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """The 0x8100 EtherType handler: hand a tagged frame to its sub-interface."""
    if len(frame) < wire.TAGGED_HEADER_LEN:
        ifp.drop("vlan_truncated", error=True)
        return
    vid = wire.tci_of(frame) & wire.VID_MASK
    if vid == 0:  # priority-tagged: the parent's own, without the tag
        untagged = strip(frame)
        handler = ifp.vnet.link.ethertypes.get((untagged[12] << 8) | untagged[13])
        if handler is None or handler is input:
            ifp.drop("unknown_ethertype")
            return
        handler(ifp, untagged, now)
        return
    sub = ifp.vnet.link.vlans.get((ifp.name, vid))
    if sub is None:
        ifp.drop("vlan_unknown")
        return
    ether.input(sub.ifnet, strip(frame), now)
