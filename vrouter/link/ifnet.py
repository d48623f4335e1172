"""Interfaces: one ``Ifnet`` per attachment of a vnet to a link.

An interface knows its vnet, so every frame that arrives on it starts from
the right stack.  The device behind it (a TAP, one end of an epair, a test
channel) sets ``transmit``; protocol code only calls :meth:`Ifnet.output`.
Counters are plain integers read by the CLI and metrics at their own pace.

Packet capture hooks in here and in :func:`vrouter.link.ether.input`, like
BPF's ``bpf_mtap``: ``captures`` is an empty list unless someone captures, so
the data path pays one truth test per frame for it.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.link.offload import resolve, vhdr_of
from vrouter.wire.ethernet import mac_to_str

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet

Transmit = Callable[[bytes | bytearray], None]
FrameCapture = Callable[[bytes | bytearray, bool], None]
"""Sees (frame, outbound) for every frame received or sent (:mod:`vrouter.link.capture`)."""
Receive = Callable[["Ifnet", bytes | bytearray, float], None]
"""Takes (interface, frame, now) for a frame received on the interface."""


@dataclass(slots=True)
class IfCounters:
    """Per-interface counters, like ``struct if_data``."""

    rx_packets: int = 0
    """Frames received from the link, valid or not."""
    rx_bytes: int = 0
    """Bytes of those frames."""
    rx_errors: int = 0
    """Frames dropped because they were malformed (a subset of rx_drops)."""
    tx_packets: int = 0
    """Frames handed to the device."""
    tx_bytes: int = 0
    """Bytes of those frames."""
    tx_errors: int = 0
    """Frames the device failed to send."""
    rx_drops: Counter[str] = field(default_factory=Counter)
    """Received frames dropped, by reason (``ip_badsum``, ``not_for_us`` …)."""
    tx_drops: Counter[str] = field(default_factory=Counter)
    """Frames dropped on the way out, by reason (``link_down``, ``queue_full`` …)."""


def _no_device(frame: bytes | bytearray) -> None:
    raise OSError("interface has no device attached")


class Ifnet:
    """A network interface of one vnet."""

    __slots__ = (
        "name",
        "vnet",
        "kind",
        "mac",
        "mtu",
        "up",
        "index",
        "addresses",
        "addresses6",
        "counters",
        "transmit",
        "offload",
        "captures",
        "bridge_input",
        "__weakref__",
    )

    def __init__(self, vnet: Vnet, name: str, kind: str, mac: bytes, mtu: int = 1500) -> None:
        self.vnet = vnet
        self.name = name
        self.kind = kind
        self.mac = mac
        self.mtu = mtu
        self.up = False
        self.index = 0
        self.addresses: list[ipaddress.IPv4Interface] = []
        """IPv4 addresses, in the order they were added."""
        self.addresses6: list[ipaddress.IPv6Interface] = []
        """IPv6 addresses, the link-local one first (state lives in ``vnet.inet6``)."""
        self.counters = IfCounters()
        self.transmit: Transmit = _no_device
        self.offload = True
        """The device takes frames that still carry offload work (partial
        checksums, TCP super-frames); False makes ``output`` finish them first."""
        self.captures: list[FrameCapture] = []
        """Captures watching this interface; empty unless someone captures."""
        self.bridge_input: Receive | None = None
        """Set while the interface is a bridge member: every frame it receives goes
        there instead of the EtherType demux (:mod:`vrouter.link.bridge`)."""

    def all_addresses(self) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
        """Return the IPv4 then the IPv6 addresses."""
        return [*self.addresses, *self.addresses6]

    def output(self, frame: bytes | bytearray) -> None:
        """Send a complete Ethernet frame out of this interface."""
        counters = self.counters
        if not self.up:
            counters.tx_drops["link_down"] += 1
            return
        if not self.offload:
            vhdr = vhdr_of(frame)
            if vhdr is not None:
                for piece in resolve(frame, vhdr):
                    self.output(piece)
                return
        if self.captures:
            self.show_captures(frame, True)
        try:
            self.transmit(frame)
        except OSError:
            counters.tx_errors += 1
            return
        counters.tx_packets += 1
        counters.tx_bytes += len(frame)

    def show_captures(self, frame: bytes | bytearray, outbound: bool) -> None:
        """Show ``frame`` to every capture on this interface (callers check ``captures`` first)."""
        for capture in tuple(self.captures):  # one whose reader went away detaches itself
            capture(frame, outbound)

    def drop(self, reason: str, error: bool = False) -> None:
        """Count a received frame dropped for ``reason`` (malformed if ``error``)."""
        self.counters.rx_drops[reason] += 1
        if error:
            self.counters.rx_errors += 1

    def describe(self) -> dict[str, object]:
        """Return the interface as plain data for the API."""
        c = self.counters
        return {
            "name": self.name,
            "index": self.index,
            "kind": self.kind,
            "mac": mac_to_str(self.mac),
            "mtu": self.mtu,
            "up": self.up,
            "addresses": [str(a) for a in self.all_addresses()],
            "counters": {
                "rx_packets": c.rx_packets,
                "rx_bytes": c.rx_bytes,
                "rx_errors": c.rx_errors,
                "tx_packets": c.tx_packets,
                "tx_bytes": c.tx_bytes,
                "tx_errors": c.tx_errors,
                "rx_drops": dict(sorted(c.rx_drops.items())),
                "tx_drops": dict(sorted(c.tx_drops.items())),
            },
        }

    def __repr__(self) -> str:
        return f"<Ifnet {self.vnet.name}:{self.name}>"
