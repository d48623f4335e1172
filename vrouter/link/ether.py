"""Ethernet input: accept frames for this interface and demux by EtherType.

Every frame that arrives is counted; one that is dropped is counted by
reason on the interface.  The per-vnet EtherType table decides who gets it.
Captures (``ifp.captures``) see each frame first, before any drop decision.
A bridge member hands its frames to the bridge (:mod:`vrouter.link.bridge`).
"""

from __future__ import annotations

import logging

from vrouter.link.ifnet import Ifnet
from vrouter.wire.ethernet import HEADER_LEN

log = logging.getLogger("vrouter.link")


def input(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """Process one frame received on ``ifp``."""
    counters = ifp.counters
    size = len(frame)
    counters.rx_packets += 1
    counters.rx_bytes += size
    if ifp.captures:  # captures see every received frame, before any drop decision
        ifp.show_captures(frame, False)
    if not ifp.up:
        ifp.drop("link_down")
        return
    if size < HEADER_LEN:
        ifp.drop("eth_truncated", error=True)
        return
    if ifp.bridge_input is not None:  # a bridge member: the bridge decides
        ifp.bridge_input(ifp, frame, now)
        return
    # Unicast to another station: a TAP or epair peer only sends this when
    # misconfigured (or in promiscuous mode on a bridge); not ours to route.
    if not frame[0] & 1 and not frame.startswith(ifp.mac):  # no slice made to compare
        ifp.drop("not_for_us")
        return
    # EtherType at ethernet.ETHERTYPE; literal offsets cost least, once per frame.
    handler = ifp.vnet.link.ethertypes.get((frame[12] << 8) | frame[13])
    if handler is None:
        ifp.drop("unknown_ethertype")
        return
    handler(ifp, frame, now)


def receive(ifp: Ifnet, frame: bytes | bytearray, now: float) -> None:
    """Process one frame as :func:`input` does; a bug costs that frame, never the caller.

    Devices (TAP readers, epairs) deliver through this so one bad frame
    that trips an unexpected exception is counted and logged, and the batch
    goes on.
    """
    try:
        input(ifp, frame, now)
    except Exception:
        failed(ifp)


def failed(ifp: Ifnet) -> None:
    """Count and log the frame whose processing on ``ifp`` just raised (in an ``except``
    block): what :func:`receive` does, for devices that call :func:`input` in a loop of
    their own, guarded there."""
    ifp.drop("internal_error", error=True)
    log.exception("vnet %s: %s: frame processing failed", ifp.vnet.name, ifp.name)
