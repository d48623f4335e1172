"""TCP in a vnet: the glue between the sans-IO :class:`TcpTable` and the vnet's IP layers.

:data:`SUBSYSTEM` (name ``tcp``, after ``inet`` and ``inet6``) gives every
vnet a :class:`TcpStack` as ``vnet.tcp``, created when the vnet first needs
it (a socket, a view, or its first TCP segment: until then shared
first-segment entries stand in ``vnet.inet.protocols[6]`` and
``vnet.inet6.protocols[6]``, so an idle vnet holds no TCP state).  The stack
registers TCP input there (replacing the closed-port stand-ins, restored on
detach), wraps every segment the table
sends in IPv4/IPv6 and routes it (``ipv4.output``/``ipv6.output``), keeps
one deadline in ``vnet.timers`` for the table's earliest timer, and hands
every event to :attr:`TcpStack.on_event` (set by the socket service).

Segments arrive here already whole: the IP layer reassembles fragments.  A
frame from the host with a partial checksum, and a TCP super-frame (GSO) of
up to 64 KiB, comes in whole through ``offload_protocols`` (its checksum is
not checked: it never crossed a wire) and is one segment to the connection;
other layers complete or cut them first (:func:`vrouter.link.offload.resolve`).

Going out, a connection whose route leaves by an interface that takes
offloads (see :meth:`TcpStack.tso_to`) sends new data in super-segments of up
to :data:`~vrouter.transport.tcp.output.TSO_MAX` bytes with a partial checksum
(TSO): the IP layer sends one frame with a virtio-net GSO header, and the host
(or :func:`~vrouter.link.offload.resolve` where the frame cannot leave whole)
cuts it into MSS-sized segments.  One frame, one header and one system call
for up to 44 segments instead of one each.

IPv6 link-local peers are not supported yet (a connection does not carry
its scope interface).
"""

from __future__ import annotations

import errno
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vrouter.core import tables
from vrouter.core.registry import Subsystem
from vrouter.core.sysctl import field_knob
from vrouter.core.timers import Deadline
from vrouter.inet import ipv4
from vrouter.inet6 import ipv6
from vrouter.link import offload
from vrouter.transport.entries import give_back, restore
from vrouter.transport.tcp.conn import Connection, TcpError
from vrouter.transport.tcp.events import Event, Output, Transmit
from vrouter.transport.tcp.options import TcpOptions
from vrouter.transport.tcp.output import TSO_MAX
from vrouter.transport.tcp.table import Listener, TableConfig, TcpTable
from vrouter.wire import ipv4 as ip4_wire
from vrouter.wire.ethernet import HEADER_LEN as ETHER_LEN

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.tcp")

PROTO_TCP = 6
IP_SUMS_LIMIT = 4096
"""Address pairs whose IPv4 header sum a stack keeps before it starts again."""


class TcpStack:
    """``vnet.tcp``: one vnet's TCP table and its connection to the IP layers."""

    def __init__(self, vnet: Vnet, config: TableConfig | None = None) -> None:
        self.vnet = vnet
        self.table = TcpTable(config)
        self.stats = self.table.stats
        self.on_event: Callable[[Event], None] = lambda event: None
        """Receives every event (Connected, Readable, Acceptable…); set by the socket service."""
        self._deadline = Deadline()
        self._saved: dict[int, Any] = {}
        self._queue: deque[Output] = deque()
        self._dispatching = False
        self.tx_failed = 0
        """Segments the IP layer could not send (no route, no neighbour yet is not a failure)."""
        self._ip_sums: dict[tuple[bytes, bytes, int], int] = {}
        """The fixed part of the IPv4 header sum per source, destination and TTL
        (:func:`vrouter.wire.ipv4.fixed_sum`): a segment's header costs one pack."""

    # --- the socket layer's calls ----------------------------------------------------------------

    def connect(
        self,
        dst: bytes,
        dport: int,
        now: float,
        *,
        src: bytes = b"",
        sport: int = 0,
        options: TcpOptions | None = None,
    ) -> Connection:
        """Open a connection to ``dst``:``dport`` (source address from the routes if empty).

        Raises :class:`~vrouter.transport.tcp.conn.TcpError` (ENETUNREACH
        without a route or source address, EADDRINUSE, EADDRNOTAVAIL).
        """
        if not src:
            src = self.source_address(dst) or b""
            if not src:
                raise TcpError(errno.ENETUNREACH, "no route to the destination")
        elif not self.is_local(src):
            raise TcpError(errno.EADDRNOTAVAIL, "the source is not an address of this vnet")
        conn = self.table.connect(
            src, (dst, dport), now, local_port=sport, options=options, mtu=self.mtu_to(dst)
        )
        conn.tso_size = self.tso_to(dst)
        self.flush(now)
        return conn

    def listen(
        self,
        family: int,
        addr: bytes,
        port: int,
        backlog: int = 128,
        options: TcpOptions | None = None,
    ) -> Listener:
        """Listen on ``addr`` (empty: any address of ``family``) and ``port``.

        Raises :class:`~vrouter.transport.tcp.conn.TcpError` EADDRNOTAVAIL
        for an address the vnet does not have, EADDRINUSE, EINVAL.
        """
        if addr and not self.is_local(addr):
            raise TcpError(errno.EADDRNOTAVAIL, "not an address of this vnet")
        return self.table.listen(family, addr, port, backlog, options)

    def accept(self, listener: Listener) -> Connection | None:
        """Return the next established connection of ``listener`` (None: none yet)."""
        conn = self.table.accept(listener)
        if conn is not None:
            conn.tso_size = self.tso_to(conn.remote_addr)
        return conn

    def close_listener(self, listener: Listener, now: float) -> None:
        """Stop listening; connections not yet accepted are reset."""
        self.dispatch(self.table.close_listener(listener, now), now)

    def flush(self, now: float) -> None:
        """Send what connections touched by the program (send, recv, close…) now send."""
        self.dispatch(self.table.output(now), now)

    # --- addresses and MTU -----------------------------------------------------------------------

    def is_local(self, addr: bytes) -> bool:
        """Return True if ``addr`` is one of the vnet's (unicast) addresses."""
        if len(addr) == 4:
            return addr in self.vnet.inet.local
        return addr in self.vnet.inet6.local

    def source_address(self, dst: bytes) -> bytes | None:
        """Return the address this vnet sends from towards ``dst``."""
        vnet = self.vnet
        if len(dst) == 4:
            if dst in vnet.inet.local:
                return dst
            return ipv4.source_address(vnet, dst)
        if dst in vnet.inet6.local:
            return dst
        return ipv6.source_address(vnet, dst)

    def mtu_to(self, dst: bytes) -> int:
        """Return the MTU of the interface a packet to ``dst`` leaves by (1500 if unknown)."""
        vnet = self.vnet
        if len(dst) == 4:
            local = vnet.inet.local.get(dst)
            if local is not None:
                return int(local.mtu)
            route = vnet.route.fib.lookup(dst)
        else:
            addr6 = vnet.inet6.local.get(dst)
            if addr6 is not None:
                return int(addr6.ifnet.mtu)
            route = vnet.route.fib6.lookup(dst)
        if route is not None and route.ifnet is not None:
            return int(route.ifnet.mtu)
        return 1500

    def tso_to(self, dst: bytes) -> int:
        """Return the super-segment size for connections to ``dst`` (0: no TSO).

        TSO when the route leaves by an interface that takes offloads whole;
        not to the vnet's own addresses (they would be cut again at once).
        """
        vnet = self.vnet
        if not self.table.config.tso:
            return 0
        if len(dst) == 4:
            if dst in vnet.inet.local:
                return 0
            route = vnet.route.fib.lookup(dst)
        else:
            if dst in vnet.inet6.local:
                return 0
            route = vnet.route.fib6.lookup(dst)
        if route is not None and route.ifnet is not None and route.ifnet.offload:
            return TSO_MAX
        return 0

    # --- the IP layers ---------------------------------------------------------------------------

    def input4(self, ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
        """``vnet.inet.protocols[6]``: a TCP segment in an IPv4 packet for this vnet."""
        src = bytes(packet[12:16])
        dst = bytes(packet[16:20])
        out = self.table.input(src, dst, packet[hlen:], now, mtu=ifp.mtu, unicast=unicast)
        if out:
            self.dispatch(out, now)
        else:
            self._arm()

    def input6(
        self, ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float
    ) -> None:
        """``vnet.inet6.protocols[6]``: a TCP segment in an IPv6 packet for this vnet."""
        src = bytes(packet[8:24])
        dst = bytes(packet[24:40])
        out = self.table.input(src, dst, packet[offset:], now, mtu=ifp.mtu, unicast=unicast)
        if out:
            self.dispatch(out, now)
        else:
            self._arm()

    def input4_offloaded(
        self, ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float
    ) -> None:
        """``vnet.inet.offload_protocols[6]``: a segment or super-frame from the host."""
        out = self.table.input(bytes(packet[12:16]), bytes(packet[16:20]), packet[hlen:], now,
                               mtu=ifp.mtu, unicast=unicast, checked=True)  # fmt: skip
        if out:
            self.dispatch(out, now)
        else:
            self._arm()

    def input6_offloaded(
        self, ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float
    ) -> None:
        """``vnet.inet6.offload_protocols[6]``: a segment or super-frame from the host."""
        out = self.table.input(bytes(packet[8:24]), bytes(packet[24:40]), packet[offset:], now,
                               mtu=ifp.mtu, unicast=unicast, checked=True)  # fmt: skip
        if out:
            self.dispatch(out, now)
        else:
            self._arm()

    def dispatch(self, outputs: list[Output], now: float) -> None:
        """Send the segments, hand the events to :attr:`on_event`, re-arm the timer.

        Not re-entrant on purpose: a segment to one of the vnet's own
        addresses is delivered by the IP layer at once, and its answers
        (or the event handler's calls) come back here while the outer call
        is still working; they are queued and sent in order by the outer
        call, so a connection to ourselves neither recurses nor reorders.
        """
        self._queue.extend(outputs)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            queue = self._queue
            while queue:
                item = queue.popleft()
                if isinstance(item, Transmit):
                    if not self._send(item, now):
                        self.tx_failed += 1
                else:
                    try:
                        self.on_event(item)
                    except Exception:
                        log.exception("vnet %s: TCP event handler failed", self.vnet.name)
        finally:
            self._dispatching = False
        self._arm()

    def _send(self, seg: Transmit, now: float) -> bool:
        vnet = self.vnet
        head = seg.header
        ipv4_dst = len(seg.dst) == 4
        vhdr = None
        if seg.gso_size:
            vhdr = offload.tcp_super_header(ipv4_dst, 20 if ipv4_dst else 40,
                                            (head[12] >> 4) * 4, seg.gso_size)  # fmt: skip
        if not ipv4_dst:
            packet = ipv6.packet(vnet, seg.src, seg.dst, PROTO_TCP, seg.data)
            return ipv6.output(vnet, packet, now, vhdr=vhdr)
        src, dst = seg.src, seg.dst
        ttl = vnet.inet.ttl
        key = (src, dst, ttl)
        fixed = self._ip_sums.get(key)
        if fixed is None:
            if len(self._ip_sums) >= IP_SUMS_LIMIT:
                self._ip_sums.clear()
            fixed = self._ip_sums[key] = ip4_wire.fixed_sum(src, dst, PROTO_TCP, ttl=ttl, df=True)
        length = len(head)
        for piece in seg.payload:
            length += len(piece)
        ip = ip4_wire.header_from(fixed, src, dst, PROTO_TCP, length, ttl=ttl,
                                  ident=ipv4.next_ident(vnet), df=True)  # fmt: skip
        # The frame is made here, once: the payload's only copy in the daemon.
        frame = bytearray(ETHER_LEN) if vhdr is None else offload.OffloadBuffer(ETHER_LEN)
        frame += ip
        frame += head
        for piece in seg.payload:
            frame += piece
        return ipv4.output_frame(vnet, frame, now, vhdr)

    def _arm(self) -> None:
        self._deadline.arm(self.vnet.timers, self.table.poll_at(), self._on_timer)

    def _on_timer(self, now: float) -> None:
        self._deadline.cancel()
        self.dispatch(self.table.on_timer(now), now)


def state_of(vnet: Vnet) -> TcpStack:
    """Return ``vnet.tcp`` (typed; created by the registry when first asked for)."""
    return vnet.tcp


def _first_input4(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    """The first TCP segment of a vnet over IPv4: create its TCP state, which takes over."""
    state_of(ifp.vnet).input4(ifp, packet, hlen, unicast, now)


def _first_input6(ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float) -> None:
    """The first TCP segment of a vnet over IPv6: create its TCP state, which takes over."""
    state_of(ifp.vnet).input6(ifp, packet, offset, unicast, now)


def _first_input4_offloaded(
    ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float
) -> None:
    state_of(ifp.vnet).input4_offloaded(ifp, packet, hlen, unicast, now)


def _first_input6_offloaded(
    ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float
) -> None:
    state_of(ifp.vnet).input6_offloaded(ifp, packet, offset, unicast, now)


def _prepare(vnet: Vnet) -> None:
    """Point TCP of a new vnet at the shared first-segment entries (no state yet)."""
    inet, inet6 = vnet.inet, vnet.inet6
    inet.protocols = tables.put(inet.protocols, PROTO_TCP, _first_input4)
    inet6.protocols = tables.put(inet6.protocols, PROTO_TCP, _first_input6)
    inet.offload_protocols = tables.put(inet.offload_protocols, PROTO_TCP, _first_input4_offloaded)
    inet6.offload_protocols = tables.put(
        inet6.offload_protocols, PROTO_TCP, _first_input6_offloaded
    )


def _unprepare(vnet: Vnet) -> None:
    """Give TCP back to the IP layers' own handlers (the subsystem is unloaded)."""
    vnet.inet.offload_protocols = tables.drop(vnet.inet.offload_protocols, PROTO_TCP)
    vnet.inet6.offload_protocols = tables.drop(vnet.inet6.offload_protocols, PROTO_TCP)
    give_back(vnet, PROTO_TCP, (_first_input4, _first_input6))


def _attach(vnet: Vnet) -> TcpStack:
    stack = TcpStack(vnet)
    stack._saved[4] = vnet.inet.protocols.get(PROTO_TCP)
    stack._saved[6] = vnet.inet6.protocols.get(PROTO_TCP)
    inet, inet6 = vnet.inet, vnet.inet6
    inet.protocols = tables.put(inet.protocols, PROTO_TCP, stack.input4)
    inet6.protocols = tables.put(inet6.protocols, PROTO_TCP, stack.input6)
    inet.offload_protocols = tables.put(inet.offload_protocols, PROTO_TCP, stack.input4_offloaded)
    inet6.offload_protocols = tables.put(
        inet6.offload_protocols, PROTO_TCP, stack.input6_offloaded
    )
    return stack


def _detach(vnet: Vnet) -> None:
    stack = state_of(vnet)
    stack.table.clear(0.0)  # the vnet is going: nothing more is sent
    stack._deadline.cancel()
    vnet.inet.offload_protocols = tables.drop(vnet.inet.offload_protocols, PROTO_TCP)
    vnet.inet6.offload_protocols = tables.drop(vnet.inet6.offload_protocols, PROTO_TCP)
    restore(vnet.inet, PROTO_TCP, stack._saved.get(4))
    restore(vnet.inet6, PROTO_TCP, stack._saved.get(6))


KNOBS = (
    field_knob(
        "net.inet.tcp.syn_queue_limit",
        int,
        "Half-open (SYN-RECEIVED) TCP connections a vnet holds at most",
        "tcp.table.config.syn_queue_limit",
        1,
        1 << 20,
    ),
    field_knob(
        "net.inet.tcp.time_wait_limit",
        int,
        "TCP connections in TIME-WAIT a vnet holds at most (the oldest go first)",
        "tcp.table.config.time_wait_limit",
        1,
        1 << 20,
    ),
    field_knob(
        "net.inet.tcp.syncookies",
        bool,
        "Answer SYNs beyond the SYN queue with SYN cookies (0: drop them)",
        "tcp.table.config.syncookies",
    ),
    field_knob(
        "net.inet.tcp.challenge_ack_limit",
        int,
        "Challenge ACKs (RFC 5961) a vnet sends per second at most",
        "tcp.table.config.challenge_ack_limit",
        1,
        1 << 20,
    ),
    field_knob(
        "net.inet.tcp.msl",
        float,
        "Maximum segment lifetime in seconds: TIME-WAIT lasts twice this",
        "tcp.table.config.defaults.msl",
        0.0,
        600.0,
    ),
    field_knob(
        "net.inet.tcp.delacktime",
        float,
        "Longest a TCP ACK is delayed, in seconds",
        "tcp.table.config.defaults.delack",
        0.0,
        0.5,
    ),
    field_knob(
        "net.inet.tcp.sendspace",
        int,
        "Default TCP send buffer in bytes",
        "tcp.table.config.defaults.sndbuf",
        4096,
        1 << 30,
    ),
    field_knob(
        "net.inet.tcp.recvspace",
        int,
        "Default TCP receive buffer in bytes (the largest window offered)",
        "tcp.table.config.defaults.rcvbuf",
        4096,
        1 << 30,
    ),
    field_knob(
        "net.inet.tcp.tso",
        bool,
        "Send TCP super-segments (TSO) on paths whose interface takes offloads",
        "tcp.table.config.tso",
    ),
    field_knob(
        "net.inet.tcp.tlp",
        bool,
        "Send TCP tail loss probes (RFC 8985 7) on connections with SACK",
        "tcp.table.config.defaults.tail_probe",
    ),
    field_knob(
        "net.inet.tcp.rexmit_min",
        float,
        "Lower bound of the TCP retransmission timeout, in seconds",
        "tcp.table.config.defaults.min_rto",
        0.001,
        60.0,
    ),
    field_knob(
        "net.inet.tcp.keepidle",
        float,
        "Idle seconds before the first keepalive probe",
        "tcp.table.config.defaults.keepidle",
        1.0,
        1e6,
    ),
    field_knob(
        "net.inet.tcp.keepintvl",
        float,
        "Seconds between keepalive probes",
        "tcp.table.config.defaults.keepintvl",
        1.0,
        1e6,
    ),
)

SUBSYSTEM = Subsystem(
    "tcp",
    _attach,
    _detach,
    depends=("inet", "inet6"),
    knobs=KNOBS,
    lazy=True,
    prepare=_prepare,
    unprepare=_unprepare,
)
"""TCP for every vnet (not in the built-in list yet: the socket service adds it)."""
