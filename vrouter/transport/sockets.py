"""Sockets in a vnet: UDP and raw IP, with the semantics programs expect of BSD sockets.

Each vnet's ``transport`` state holds its sockets in dicts (UDP by
(family, port), raw by (family, protocol)), so delivery is a dict lookup
then a short scan of the sockets sharing that port, most specific first
(bound address, bound interface, connected peer).  A datagram to a UDP
port nobody holds still gets ICMP port unreachable.  Raw sockets see every
packet of their protocol addressed to the vnet, next to the protocol's own
handling.

Sockets are sans-IO: a socket hands each message for its program to
``deliver`` (set by the socket service, which writes it to the program's
descriptor) and is driven by :func:`handle` with the program's messages.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vrouter.core import tables
from vrouter.core.registry import Subsystem
from vrouter.inet import igmp, ipv4
from vrouter.inet6 import ipv6, nd
from vrouter.transport.entries import give_back, restore
from vrouter.transport.message import CTRL, DATA, ERROR, FROM, REPLY, TO, Message, control
from vrouter.wire import ipv4 as ip4_wire
from vrouter.wire import ipv6 as ip6_wire
from vrouter.wire import udp as udp_wire
from vrouter.wire.checksum import checksum, pseudo_header_sum
from vrouter.wire.errors import WireError
from vrouter.wire.ipv6 import build, walk

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.sockets")

UDP = "udp"
RAW = "raw"
EPHEMERAL = range(49152, 65536)
PROTO_UDP = 17


class SocketError(Exception):
    """A socket request that cannot be done; ``errno`` says which."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.errno = code


@dataclass(eq=False, slots=True)
class Socket:
    """One socket of one program in one vnet."""

    vnet: Vnet
    family: int
    kind: str
    proto: int = PROTO_UDP
    local: bytes = b""
    """Bound address (empty: any)."""
    port: int = 0
    peer: bytes = b""
    """Connected peer (empty: not connected)."""
    peer_port: int = 0
    ifname: str | None = None
    """Bound interface (SO_BINDTODEVICE)."""
    ttl: int = 0
    """TTL/hop limit of unicast datagrams (0: the vnet's default)."""
    multicast_ttl: int = 1
    multicast_if: str | None = None
    broadcast: bool = False
    reuse: bool = False
    checksum_offset: int = -1
    """Raw IPv6: where the daemon computes and checks the checksum (IPV6_CHECKSUM)."""
    groups: set[tuple[str, bytes]] = field(default_factory=set)
    privileged: bool = False
    """May bind ports below 1024."""
    deliver: Callable[[bytes], bool] = field(default=lambda data: False)
    """Hand one message to the program; False if it could not take it."""
    rx_datagrams: int = 0
    tx_datagrams: int = 0
    rx_dropped: int = 0
    """Datagrams the program did not read in time (its descriptor was full)."""
    closed: bool = False

    @property
    def width(self) -> int:
        """Return the address length of the family."""
        return 4 if self.family == 4 else 16

    def describe(self) -> dict[str, object]:
        """Return the socket as plain data (sockstat)."""

        def text(address: bytes, port: int) -> str:
            host = str(ipaddress.ip_address(address)) if address else "*"
            return f"{host}:{port}" if self.kind == UDP else host

        return {
            "kind": self.kind,
            "family": "inet" if self.family == 4 else "inet6",
            "proto": self.proto,
            "local": text(self.local, self.port),
            "peer": text(self.peer, self.peer_port) if self.peer else None,
            "interface": self.ifname,
            "groups": sorted(f"{ipaddress.ip_address(g)}%{i}" for i, g in self.groups),
            "rx": self.rx_datagrams,
            "tx": self.tx_datagrams,
            "rx_dropped": self.rx_dropped,
        }


@dataclass(slots=True)
class TransportStats:
    """Socket-layer counters of one vnet."""

    udp_delivered: int = 0
    """UDP datagrams handed to a socket."""
    udp_noport: int = 0
    """UDP datagrams for a port no socket holds (port unreachable sent when unicast)."""
    udp_badsum: int = 0
    """UDP datagrams with a bad checksum."""
    udp_sent: int = 0
    """UDP datagrams sent by sockets."""
    raw_delivered: int = 0
    """Packets handed to raw sockets."""
    raw_sent: int = 0
    """Packets sent by raw sockets."""
    send_failed: int = 0
    """Datagrams a socket could not send (no route, no source address)."""
    full: int = 0
    """Datagrams dropped because the program's descriptor was full."""


@dataclass(slots=True)
class TransportState:
    """Per-vnet socket tables."""

    udp: dict[tuple[int, int], list[Socket]] = field(default_factory=dict)
    raw: dict[tuple[int, int], list[Socket]] = field(default_factory=dict)
    sockets: list[Socket] = field(default_factory=list)
    """Every open socket, UDP, raw and route alike (route sockets live in the service)."""
    next_port: dict[int, int] = field(default_factory=dict)
    stats: TransportStats = field(default_factory=TransportStats)
    saved: dict[tuple[int, int], Any] = field(default_factory=dict)
    """Protocol handlers replaced while raw sockets listen (restored after)."""
    on_close: list[Callable[[Socket], None]] = field(default_factory=list)


# --- opening, binding, closing ---


def port_in_use(vnet: Vnet, port: int) -> bool:
    """Return True if a socket holds UDP ``port`` (IPv4) in ``vnet``."""
    return bool(vnet.transport.udp.get((4, port)))


def open_socket(vnet: Vnet, family: int, kind: str, proto: int = 0) -> Socket:
    """Create a socket of ``kind`` (udp or raw) in ``vnet``."""
    if family not in (4, 6):
        raise SocketError(errno.EAFNOSUPPORT, f"family {family} is not 4 or 6")
    if kind == UDP:
        sock = Socket(vnet, family, UDP)
    elif kind == RAW:
        if not 0 < proto < 256 or proto in (6, PROTO_UDP):
            raise SocketError(
                errno.EPROTONOSUPPORT,
                f"raw sockets take an IP protocol 1..255 other than tcp/udp, not {proto}",
            )
        sock = Socket(vnet, family, RAW, proto)
        if family == 6 and proto == 58:
            sock.checksum_offset = 2  # ICMPv6 always carries its checksum (RFC 3542 3.1)
        _raw_attach(vnet, sock)
    else:
        raise SocketError(errno.ESOCKTNOSUPPORT, f"socket kind {kind!r} is not udp or raw")
    vnet.transport.sockets.append(sock)
    return sock


def close(sock: Socket) -> None:
    """Release everything ``sock`` holds (idempotent)."""
    if sock.closed:
        return
    sock.closed = True
    state = sock.vnet.transport
    if sock in state.sockets:
        state.sockets.remove(sock)
    if sock.kind == UDP and sock.port:
        holders = state.udp.get((sock.family, sock.port), [])
        if sock in holders:
            holders.remove(sock)
        if not holders:
            state.udp.pop((sock.family, sock.port), None)
    elif sock.kind == RAW:
        _raw_detach(sock.vnet, sock)
    for name, group in sorted(sock.groups):
        ifp = sock.vnet.link.interfaces.get(name)
        if ifp is not None:
            _leave_unheld(sock, ifp, group)
    for listener in tuple(state.on_close):
        listener(sock)


def _parse_address(sock: Socket, text: object, what: str) -> bytes:
    if text in (None, "", "*"):
        return b""
    try:
        address = ipaddress.ip_address(str(text))
    except ValueError:
        raise SocketError(errno.EINVAL, f"{what} {text!r} is not an address") from None
    if address.version != sock.family:
        raise SocketError(errno.EAFNOSUPPORT, f"{what} {address} is not IPv{sock.family}")
    return b"" if address.is_unspecified else address.packed


def _is_local(vnet: Vnet, family: int, address: bytes) -> bool:
    if family == 4:
        return address in vnet.inet.local
    if address in vnet.inet6.local:
        return True
    return any(a == address for _, a in vnet.inet6.linklocal)


def bind(sock: Socket, address: object, port: int) -> None:
    """Bind ``sock`` to ``address`` (any when empty) and ``port`` (ephemeral when 0)."""
    if sock.kind != UDP:
        sock.local = _parse_address(sock, address, "address")
        return
    if sock.port:
        raise SocketError(errno.EINVAL, "socket is already bound")
    local = _parse_address(sock, address, "address")
    state = sock.vnet.transport
    if (
        local
        and not _is_local(sock.vnet, sock.family, local)
        and local[0] != 0xFF
        and not (sock.family == 4 and 224 <= local[0] < 240)
    ):
        raise SocketError(
            errno.EADDRNOTAVAIL,
            f"{ipaddress.ip_address(local)} is not an address of vnet {sock.vnet.name}",
        )
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise SocketError(errno.EINVAL, f"port {port!r} is not 0..65535")
    if 0 < port < 1024 and not sock.privileged:
        raise SocketError(errno.EACCES, f"port {port} needs root or a grant to bind")
    if port == 0:
        port = _ephemeral(state, sock.family)
    if sock.family == 4 and port in sock.vnet.inet.udp_services:
        raise SocketError(errno.EADDRINUSE, f"port {port} is served by vnet {sock.vnet.name}")
    holders = state.udp.setdefault((sock.family, port), [])
    for other in holders:
        clash = other.local == local and other.ifname == sock.ifname
        if clash and not (other.reuse and sock.reuse):
            raise SocketError(errno.EADDRINUSE, f"port {port} is in use in vnet {sock.vnet.name}")
    sock.local = local
    sock.port = port
    # Most specific first: a bound address, then a bound interface, then connected.
    holders.append(sock)
    holders.sort(key=lambda s: (not s.local, s.ifname is None, not s.peer))


def _ephemeral(state: TransportState, family: int) -> int:
    start = state.next_port.get(family, EPHEMERAL.start)
    span = len(EPHEMERAL)
    for i in range(span):
        port = EPHEMERAL.start + (start - EPHEMERAL.start + i) % span
        if (family, port) not in state.udp:
            state.next_port[family] = port + 1
            return port
    raise SocketError(errno.EADDRINUSE, "no ephemeral port left")


def connect(sock: Socket, address: object, port: int) -> None:
    """Fix the peer of a datagram socket (bound to an ephemeral port if not yet bound)."""
    peer = _parse_address(sock, address, "address")
    if not peer:
        sock.peer, sock.peer_port = b"", 0
        return
    if sock.kind == UDP and not 0 < port <= 65535:
        raise SocketError(errno.EINVAL, f"port {port!r} is not 1..65535")
    if sock.kind == UDP and not sock.port:
        bind(sock, None, 0)
    sock.peer, sock.peer_port = peer, port
    if sock.kind == UDP:
        holders = sock.vnet.transport.udp[(sock.family, sock.port)]
        holders.sort(key=lambda s: (not s.local, s.ifname is None, not s.peer))


# --- raw sockets take over their protocol's handler, keeping the original ---


def _raw_attach(vnet: Vnet, sock: Socket) -> None:
    state = vnet.transport
    key = (sock.family, sock.proto)
    holders = state.raw.setdefault(key, [])
    holders.append(sock)
    if len(holders) == 1:
        ip = vnet.inet if sock.family == 4 else vnet.inet6
        state.saved[key] = ip.protocols.get(sock.proto)
        handler = _raw_input4 if sock.family == 4 else _raw_input6
        ip.protocols = tables.put(ip.protocols, sock.proto, handler)


def _raw_detach(vnet: Vnet, sock: Socket) -> None:
    state = vnet.transport
    key = (sock.family, sock.proto)
    holders = state.raw.get(key, [])
    if sock in holders:
        holders.remove(sock)
    if holders:
        return
    state.raw.pop(key, None)
    restore(vnet.inet if sock.family == 4 else vnet.inet6, sock.proto, state.saved.pop(key, None))


def _raw_input4(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    _raw_input(
        ifp,
        4,
        packet,
        hlen,
        packet[9],
        packet[8],
        bytes(packet[ip4_wire.SRC]),
        bytes(packet[ip4_wire.DST]),
        unicast,
        now,
    )


def _raw_input6(ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float) -> None:
    proto = walk(packet, len(packet), local=True).proto
    _raw_input(
        ifp,
        6,
        packet,
        offset,
        proto,
        packet[7],
        bytes(packet[ip6_wire.SRC]),
        bytes(packet[ip6_wire.DST]),
        unicast,
        now,
    )


def _raw_input(
    ifp: Ifnet,
    family: int,
    packet: memoryview,
    offset: int,
    proto: int,
    ttl: int,
    src: bytes,
    dst: bytes,
    unicast: bool,
    now: float,
) -> None:
    vnet = ifp.vnet
    state = vnet.transport
    payload = bytes(packet[offset:])
    for sock in state.raw.get((family, proto), ()):
        if sock.ifname is not None and sock.ifname != ifp.name:
            continue
        if sock.local and sock.local != dst:
            continue
        if sock.peer and sock.peer != src:
            continue
        if family == 6 and sock.checksum_offset >= 0 and not _checksum_ok(sock, src, dst, payload):
            continue
        _give(sock, Message(DATA, family, ttl, 0, 0, 0, ifp.index, src, dst, payload))
        state.stats.raw_delivered += 1
    original = state.saved.get((family, proto))
    if original is not None:
        original(ifp, packet, offset, unicast, now)


def _checksum_ok(sock: Socket, src: bytes, dst: bytes, payload: bytes) -> bool:
    if len(payload) < sock.checksum_offset + 2:
        return False
    return checksum(payload, pseudo_header_sum(src, dst, sock.proto, len(payload))) == 0


# --- UDP input ---


def _give(sock: Socket, message: Message) -> None:
    if sock.deliver(message.emit()):
        sock.rx_datagrams += 1
    else:
        sock.rx_dropped += 1
        sock.vnet.transport.stats.full += 1


def _udp_input4(ifp: Ifnet, packet: memoryview, hlen: int, unicast: bool, now: float) -> None:
    src, dst = bytes(packet[ip4_wire.SRC]), bytes(packet[ip4_wire.DST])
    _udp_input(ifp, 4, packet, hlen, packet[ip4_wire.TTL], src, dst, unicast, now)


def _udp_input6(ifp: Ifnet, packet: memoryview, offset: int, unicast: bool, now: float) -> None:
    if ipv6.udp_service(ifp, packet, offset, unicast, now):
        return
    src, dst = bytes(packet[ip6_wire.SRC]), bytes(packet[ip6_wire.DST])
    _udp_input(ifp, 6, packet, offset, packet[ip6_wire.HOP_LIMIT], src, dst, unicast, now)


def _udp_input(
    ifp: Ifnet,
    family: int,
    packet: memoryview,
    offset: int,
    ttl: int,
    src: bytes,
    dst: bytes,
    unicast: bool,
    now: float,
) -> None:
    vnet = ifp.vnet
    state = vnet.transport
    datagram = packet[offset:]
    try:
        header = udp_wire.UdpHeader.parse(datagram)
    except WireError as err:
        ifp.drop(err.reason, error=True)
        return
    datagram = datagram[: header.length]
    # IPv6 requires the checksum (RFC 8200 8.1); IPv4 may leave it 0.
    ok = not (family == 6 and header.checksum == 0) and udp_wire.verify(src, dst, datagram)
    if not ok:
        state.stats.udp_badsum += 1
        ifp.drop("udp_badsum", error=True)
        return
    service = vnet.inet.udp_services.get(header.dst_port) if family == 4 else None
    if service is not None:
        state.stats.udp_delivered += 1
        service(ifp, src, dst, header.src_port, bytes(datagram[8:]), now)
        return
    holders = state.udp.get((family, header.dst_port))
    matched = False
    if holders:
        multicast = dst[0] >= 224 if family == 4 else dst[0] == 0xFF
        payload = bytes(datagram[8:])
        for sock in holders:
            if sock.ifname is not None and sock.ifname != ifp.name:
                continue
            if sock.peer and (sock.peer != src or sock.peer_port != header.src_port):
                continue
            if sock.local and sock.local != dst:
                continue
            if multicast and not sock.local and (ifp.name, dst) not in sock.groups:
                continue
            _give(
                sock,
                Message(
                    DATA,
                    family,
                    ttl,
                    0,
                    header.src_port,
                    header.dst_port,
                    ifp.index,
                    src,
                    dst,
                    payload,
                ),
            )
            state.stats.udp_delivered += 1
            matched = True
            if unicast:
                break  # unicast goes to the most specific socket only
    if matched:
        return
    state.stats.udp_noport += 1
    ifp.drop("udp_noport")
    if unicast:
        (ipv4 if family == 4 else ipv6).port_unreachable(vnet, ifp, packet, now)


# --- the program's messages ---


def handle(sock: Socket, data: bytes, now: float) -> None:
    """Act on one message from the program (a datagram to send or a request)."""
    try:
        message = Message.parse(data)
        if message.kind == DATA:
            send(sock, message, now)
        elif message.kind == CTRL:
            reply = request(sock, message.json())
            sock.deliver(control(REPLY, {"ok": True, **reply}))
        else:
            raise SocketError(errno.EINVAL, f"unexpected message kind {message.kind}")
    except SocketError as err:
        kind = REPLY if data[:1] == bytes([CTRL]) else ERROR
        sock.deliver(control(kind, {"ok": False, "errno": err.errno, "error": str(err)}))
    except ValueError as err:
        sock.deliver(control(ERROR, {"ok": False, "errno": errno.EINVAL, "error": str(err)}))


def request(sock: Socket, body: Any) -> dict[str, Any]:
    """Carry out one control request; return the reply's fields."""
    if not isinstance(body, dict) or not isinstance(body.get("op"), str):
        raise SocketError(errno.EINVAL, "a request is a JSON object with an 'op'")
    op = body["op"]
    if op == "bind":
        bind(sock, body.get("address"), int(body.get("port", 0)))
        return _name(sock)
    if op == "connect":
        connect(sock, body.get("address"), int(body.get("port", 0)))
        return _name(sock)
    if op == "getsockname":
        return _name(sock)
    if op in ("join", "leave"):
        return _membership(sock, op, body)
    if op == "setsockopt":
        _setsockopt(sock, str(body.get("name")), body.get("value"))
        return {}
    raise SocketError(errno.EOPNOTSUPP, f"unknown request {op!r}")


def _name(sock: Socket) -> dict[str, Any]:
    unspecified = "0.0.0.0" if sock.family == 4 else "::"
    return {
        "address": str(ipaddress.ip_address(sock.local)) if sock.local else unspecified,
        "port": sock.port,
    }


def _interface(sock: Socket, name: object) -> Ifnet:
    ifp = sock.vnet.link.interfaces.get(str(name))
    if ifp is None:
        raise SocketError(errno.ENODEV, f"no interface {name!r} in vnet {sock.vnet.name}")
    return ifp


def _membership(sock: Socket, op: str, body: dict[str, Any]) -> dict[str, Any]:
    group = _parse_address(sock, body.get("group"), "group")
    if not group or not (group[0] >= 224 if sock.family == 4 else group[0] == 0xFF):
        raise SocketError(errno.EINVAL, f"{body.get('group')!r} is not a multicast group")
    ifp = _interface(sock, body.get("interface"))
    key = (ifp.name, group)
    if op == "join":
        sock.groups.add(key)
        if sock.family == 6:
            nd.join(sock.vnet, ifp, group)
        else:
            igmp.join(sock.vnet, ifp, group)
    else:
        sock.groups.discard(key)
        _leave_unheld(sock, ifp, group)
    return {}


def _leave_unheld(sock: Socket, ifp: Ifnet, group: bytes) -> None:
    """Leave ``group`` on ``ifp`` unless another socket of the vnet still holds it."""
    key = (ifp.name, group)
    if any(key in s.groups and s.family == sock.family for s in sock.vnet.transport.sockets):
        return
    if sock.family == 6:
        nd.leave(sock.vnet, ifp, group)
    else:
        igmp.leave(sock.vnet, ifp, group)


def _setsockopt(sock: Socket, name: str, value: object) -> None:
    def as_int(low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SocketError(errno.EINVAL, f"{name}: {value!r} is not {low}..{high}")
        return value

    if name == "ttl":
        sock.ttl = as_int(0, 255)
    elif name == "multicast_ttl":
        sock.multicast_ttl = as_int(0, 255)
    elif name == "broadcast":
        sock.broadcast = bool(value)
    elif name == "reuse":
        sock.reuse = bool(value)
    elif name == "bindtodevice":
        sock.ifname = None if value in (None, "") else _interface(sock, value).name
    elif name == "multicast_if":
        sock.multicast_if = None if value in (None, "") else _interface(sock, value).name
    elif name == "checksum":
        if sock.kind != RAW:
            raise SocketError(errno.ENOPROTOOPT, "checksum offsets apply to raw sockets")
        offset = as_int(-1, 65534)
        if offset >= 0 and offset % 2:
            raise SocketError(errno.EINVAL, "checksum offset must be even")
        sock.checksum_offset = offset
    else:
        raise SocketError(errno.ENOPROTOOPT, f"unknown option {name!r}")


# --- sending ---


def send(sock: Socket, message: Message, now: float) -> None:
    """Send the program's datagram ``message``."""
    vnet = sock.vnet
    state = vnet.transport
    if message.flags & TO:
        dst, dport = message.dst, message.dport
    elif sock.peer:
        dst, dport = sock.peer, sock.peer_port
    else:
        raise SocketError(errno.EDESTADDRREQ, "not connected and no destination given")
    if len(dst) != sock.width or dst == bytes(sock.width):
        raise SocketError(errno.EINVAL, "bad destination address")
    if sock.kind == UDP and not sock.port:
        bind(sock, None, 0)
    ifp = _interface(sock, sock.ifname) if sock.ifname else None
    if message.ifindex:
        ifp = next((i for i in vnet.link.interfaces.values() if i.index == message.ifindex), None)
        if ifp is None:
            raise SocketError(errno.ENXIO, f"no interface with index {message.ifindex}")
    multicast = dst[0] >= 224 and dst != b"\xff\xff\xff\xff" if sock.family == 4 else dst[0] == 0xFF
    broadcast = sock.family == 4 and (dst == b"\xff\xff\xff\xff" or dst in vnet.inet.broadcasts)
    if broadcast and not sock.broadcast:
        raise SocketError(errno.EACCES, "sending to a broadcast address needs the broadcast option")
    if multicast and ifp is None:
        ifp = _interface(sock, sock.multicast_if) if sock.multicast_if else None
        if ifp is None:
            raise SocketError(errno.ENETUNREACH, "multicast needs multicast_if or an interface")
    src = message.src if message.flags & FROM else sock.local
    if src and not _is_local(vnet, sock.family, src):
        raise SocketError(errno.EADDRNOTAVAIL, f"{ipaddress.ip_address(src)} is not ours")
    if not src:
        src = _source(vnet, sock.family, dst, ifp)
        if not src:
            state.stats.send_failed += 1
            raise SocketError(errno.ENETUNREACH, f"no route to {ipaddress.ip_address(dst)}")
    ttl = message.ttl or (sock.multicast_ttl if multicast else sock.ttl)
    if sock.kind == UDP:
        payload = udp_wire.build(src, dst, sock.port, dport, message.payload)
        proto = PROTO_UDP
    else:
        payload = message.payload
        proto = sock.proto
        if sock.family == 6 and sock.checksum_offset >= 0:
            payload = _fill_checksum(sock, src, dst, payload)
    if not _output(
        vnet, sock.family, src, dst, proto, payload, ttl, ifp, multicast or broadcast, now
    ):
        state.stats.send_failed += 1
        raise SocketError(errno.ENETUNREACH, f"no route to {ipaddress.ip_address(dst)}")
    sock.tx_datagrams += 1
    if sock.kind == UDP:
        state.stats.udp_sent += 1
    else:
        state.stats.raw_sent += 1


def _fill_checksum(sock: Socket, src: bytes, dst: bytes, payload: bytes) -> bytes:
    at = sock.checksum_offset
    if len(payload) < at + 2:
        raise SocketError(errno.EINVAL, "datagram shorter than the checksum offset")
    raw = bytearray(payload)
    raw[at : at + 2] = b"\0\0"
    raw[at : at + 2] = checksum(raw, pseudo_header_sum(src, dst, sock.proto, len(raw))).to_bytes(
        2, "big"
    )
    return bytes(raw)


def _source(vnet: Vnet, family: int, dst: bytes, ifp: Ifnet | None) -> bytes:
    if family == 4:
        if ifp is not None and ifp.addresses:
            return ifp.addresses[0].ip.packed
        return ipv4.source_address(vnet, dst) or b""
    return ipv6.source_address(vnet, dst, ifp) or b""


def _output(
    vnet: Vnet,
    family: int,
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes,
    ttl: int,
    ifp: Ifnet | None,
    group: bool,
    now: float,
) -> bool:
    if family == 4:
        packet = ip4_wire.build(
            src, dst, proto, payload, ttl=ttl or vnet.inet.ttl, ident=ipv4.next_ident(vnet)
        )
        if ifp is not None:
            return ipv4.output_on(vnet, ifp, packet, now)
        return ipv4.output(vnet, packet, now)
    packet6 = build(src, dst, proto, payload, hop_limit=ttl or vnet.inet6.hop_limit)
    return ipv6.output(vnet, packet6, now, ifp)


# --- the subsystem ---


def _attach(vnet: Vnet) -> TransportState:
    state = TransportState()
    state.saved[(4, PROTO_UDP)] = _replaced(vnet.inet.protocols, ipv4.BUILTIN_PROTOCOLS)
    state.saved[(6, PROTO_UDP)] = _replaced(vnet.inet6.protocols, ipv6.BUILTIN_PROTOCOLS)
    _prepare(vnet)
    return state


def _replaced(table: dict[int, Any], builtin: dict[int, Any]) -> Any:
    """Return the UDP handler that ours stands in for in ``table``."""
    handler = table.get(PROTO_UDP)
    return builtin.get(PROTO_UDP) if handler in (_udp_input4, _udp_input6) else handler


def _prepare(vnet: Vnet) -> None:
    """Deliver UDP of a vnet through the sockets (the state comes with the first datagram)."""
    vnet.inet.protocols = tables.put(vnet.inet.protocols, PROTO_UDP, _udp_input4)
    vnet.inet6.protocols = tables.put(vnet.inet6.protocols, PROTO_UDP, _udp_input6)


def _unprepare(vnet: Vnet) -> None:
    """Give UDP back to the IP layers' own handlers (the subsystem is unloaded)."""
    give_back(vnet, PROTO_UDP, (_udp_input4, _udp_input6))


def _detach(vnet: Vnet) -> None:
    state = vnet.transport
    for sock in list(state.sockets):
        close(sock)
    for family, ip in ((4, vnet.inet), (6, vnet.inet6)):
        original = state.saved.get((family, PROTO_UDP))
        if original is not None:
            restore(ip, PROTO_UDP, original)


SUBSYSTEM = Subsystem(
    "transport",
    _attach,
    _detach,
    depends=("inet", "inet6"),
    lazy=True,
    prepare=_prepare,
    unprepare=_unprepare,
)
"""Lazy: a vnet gets its socket tables with its first socket or UDP datagram."""
