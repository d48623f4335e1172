"""A vnet's DHCP server and relay on the wire: UDP port 67, replies on the link, leases on disk.

A request heard on an interface with a relay goes to the relay's servers
(:mod:`vrouter.services.dhcp.relay`), through the vnet's routes, from the
interface's address; a server's reply to that address comes back onto the
interface's link.  Every other request goes to the vnet's own server, if
it has pools.

The ``dhcp`` subsystem gives every vnet a :class:`DhcpState`; a vnet serves
DHCP once :func:`configure` gives it pools.  Requests reach
:func:`_input` through the transport's in-daemon port 67 (before any
socket); a malformed message is dropped and counted by its parse error, a
well-formed one is decided by :class:`~vrouter.services.dhcp.server.Server`.

Replies leave as RFC 2131 4.1 says: to a relay through the vnet's routes,
otherwise straight onto the receiving link in an Ethernet frame addressed
to the client's hardware address (or broadcast), with no ARP, because the
client has no address yet.

Leases reach stable storage before the ACK that grants them: the lease file
(JSON lines, expiry times in wall-clock seconds so a reboot counts) is a
journal of changes, appended and flushed, and now and then written whole
to a temporary file, flushed and renamed over the old one.  The write is a
group commit: the replies of every request handled in one pass of the loop
wait in ``pending`` until one write has taken all their leases.  A lease file that
cannot be read is logged and set aside (``.bad``); one that cannot be
written is logged and counted, and the server goes on answering.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from vrouter.core.registry import Subsystem
from vrouter.core.timers import Deadline
from vrouter.inet import ipv4
from vrouter.inet.source import next_ident, source_address
from vrouter.route import state as route_state
from vrouter.route.fib import RouteError
from vrouter.route.source import source
from vrouter.services.dhcp.client import Action, Bound, Client, Lease, Send
from vrouter.services.dhcp.relay import (
    RelaySettings,
    client_destination,
    toward_client,
    toward_server,
)
from vrouter.services.dhcp.server import (
    BROADCAST_MAC,
    Arrival,
    Destination,
    DhcpStats,
    PoolSettings,
    Server,
    destination,
)
from vrouter.transport import sockets
from vrouter.wire import dhcp as wire
from vrouter.wire import ipv4 as ip_wire
from vrouter.wire import udp as udp_wire
from vrouter.wire.errors import WireError
from vrouter.wire.ethernet import ETHERTYPE_IPV4, HEADER

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

log = logging.getLogger("vrouter.dhcp")

FILE_VERSION = 1
DHCP_SOURCE = source("dhcp")
"""The source of the default route a DHCP client installs."""


@dataclass(slots=True)
class DhcpState:
    """One vnet's DHCP server, if it serves DHCP."""

    server: Server | None = None
    pools: tuple[PoolSettings, ...] = ()
    relays: dict[str, RelaySettings] = field(default_factory=dict)
    """Interfaces whose clients' requests are relayed, by name."""
    clients: dict[str, ClientRun] = field(default_factory=dict)
    """Interfaces that take their IPv4 address by DHCP, by name."""
    lease_file: str | None = None
    stats: DhcpStats = field(default_factory=DhcpStats)
    write_errors: int = 0
    """Lease file writes that failed."""
    journal: int = 0
    """Lines appended to the lease file since it was last written whole."""
    expiry: Deadline = field(default_factory=Deadline)
    commit: Deadline = field(default_factory=Deadline)
    """Runs once the current burst of requests is handled: the lease file, then the replies."""
    pending: list[tuple[Ifnet, wire.DhcpMessage, wire.DhcpMessage]] = field(default_factory=list)
    """Replies waiting for the leases they grant to be written."""
    wall: Callable[[], float] = time.time
    """The wall clock lease files are written in (tests replace it)."""


@dataclass(slots=True)
class ClientRun:
    """A DHCP client on one interface of the vnet, and its timer."""

    ifp: Ifnet
    client: Client
    timer: Deadline = field(default_factory=Deadline)
    drops: Counter[str] = field(default_factory=Counter)
    """Replies dropped before the state machine saw them, by reason."""


def state_of(vnet: Vnet) -> DhcpState:
    """Return the vnet's DHCP state."""
    state: DhcpState = vnet.dhcp
    return state


def configure(
    vnet: Vnet,
    pools: tuple[PoolSettings, ...],
    relays: dict[str, RelaySettings],
    lease_file: str | None,
    now: float,
) -> tuple[tuple[PoolSettings, ...], dict[str, RelaySettings]]:
    """Serve ``pools`` and relay on ``relays`` in ``vnet`` (neither: stop); return the
    previous pools and relays.

    Starting a server reads the lease file; raise ValueError if a socket holds port 67.
    """
    state = state_of(vnet)
    previous = (state.pools, dict(state.relays))
    if (pools or relays) and wire.SERVER_PORT not in vnet.inet.udp_services:
        if vnet.holds("transport") and sockets.port_in_use(vnet, wire.SERVER_PORT):
            raise ValueError(f"a socket holds UDP port {wire.SERVER_PORT}")
        ipv4.serve_udp(vnet, wire.SERVER_PORT, lambda *args: _input(vnet, *args))
    elif not pools and not relays:
        ipv4.serve_udp(vnet, wire.SERVER_PORT, None)
    state.relays = dict(relays)
    if not pools:
        state.server = None
        state.pools = ()
        state.lease_file = None
        state.expiry.cancel()
        return previous
    if state.server is None:
        state.server = Server(pools)
        state.server.stats = state.stats
        state.lease_file = lease_file
        _load(vnet, state, now)
    else:
        state.server.reconfigure(pools)
        if lease_file != state.lease_file:
            state.lease_file = lease_file
        _save(vnet, state, now, full=True)
        state.server.soonest = state.server.next_expiry()
    state.pools = pools
    _arm_expiry(vnet, state)
    return previous


def _load(vnet: Vnet, state: DhcpState, now: float) -> None:
    """Take the leases of the lease file, then write it afresh (the journal starts over)."""
    path = state.lease_file
    server = state.server
    if path is None or server is None:
        return
    records: list[dict[str, object]] = []
    torn = 0
    try:
        with open(path, "rb") as f:
            lines = f.read().splitlines()
        header = json.loads(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("version") != FILE_VERSION:
            raise ValueError(f"not a version {FILE_VERSION} lease file")
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:  # a line cut short by a crash while it was appended
                torn += 1
                continue
            if isinstance(record, dict):
                records.append(record)
    except FileNotFoundError:
        _save(vnet, state, now, full=True)
        return
    except (OSError, ValueError) as err:
        log.error("vnet %s: lease file %s: %s; set aside as .bad", vnet.name, path, err)
        with contextlib.suppress(OSError):
            os.replace(path, path + ".bad")
        _save(vnet, state, now, full=True)
        return
    wall = state.wall()
    for record in records:
        if isinstance(record.get("expires"), (int, float)):
            record["remaining"] = float(record["expires"]) - wall  # type: ignore[arg-type]
    taken = server.restore(records, now)
    server.soonest = server.next_expiry()
    log.info("vnet %s: %d leases from %s%s", vnet.name, taken, path,
             f" ({torn} torn lines skipped)" if torn else "")  # fmt: skip
    _save(vnet, state, now, full=True)


JOURNAL_MIN = 1024
"""Lines the lease file may grow by before it is rewritten (or twice the leases, if more)."""


def _save(vnet: Vnet, state: DhcpState, now: float, full: bool = False) -> bool:
    """Put the changed leases on disk; False (logged, counted) if that failed.

    The file is a journal: a header line, then one JSON line per lease as it
    changed (a later line of an address wins).  Changes are appended and
    flushed; when the journal has grown past :data:`JOURNAL_MIN` lines and
    twice the leases held (or ``full``), the whole file is written to a
    temporary file, flushed and renamed over the old one.
    """
    server = state.server
    path = state.lease_file
    if server is None:
        return True
    server.changed = False
    if path is None:
        server.dirty.clear()
        return True
    rewrite = full or state.journal >= max(JOURNAL_MIN, 2 * len(server.by_address))
    wall = state.wall()
    lines = []
    for record in server.records(now, changed_only=not rewrite):
        if "remaining" in record:
            record["expires"] = round(wall + float(str(record.pop("remaining"))), 3)
        lines.append(json.dumps(record) + "\n")
    try:
        if rewrite:
            os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
            tmp = f"{path}.tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps({"version": FILE_VERSION, "vnet": vnet.name}) + "\n")
                f.writelines(lines)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            state.journal = len(lines)
        elif lines:
            with open(path, "a") as f:
                f.writelines(lines)
                f.flush()
                os.fsync(f.fileno())
            state.journal += len(lines)
    except OSError as err:
        state.write_errors += 1
        state.journal = 1 << 62  # what was lost goes with the next whole rewrite
        log.error("vnet %s: cannot write lease file %s: %s", vnet.name, path, err)
        return False
    return True


def _arm_expiry(vnet: Vnet, state: DhcpState) -> None:
    server = state.server
    if server is None:
        return
    soonest, server.soonest = server.soonest, None
    state.expiry.arm(vnet.timers, soonest, lambda now: _expire(vnet, now))


def _expire(vnet: Vnet, now: float) -> None:
    state = state_of(vnet)
    server = state.server
    if server is None:
        return
    if server.expire(now):
        _save(vnet, state, now)
    server.soonest = server.next_expiry()  # once per sweep, not per lease
    _arm_expiry(vnet, state)


def _input(vnet: Vnet, ifp: Ifnet, src: bytes, dst: bytes, sport: int, payload: bytes,
           now: float) -> None:  # fmt: skip
    """Handle one datagram to port 67 received on ``ifp``: relay it, or serve it."""
    state = state_of(vnet)
    try:
        request = wire.DhcpMessage.parse(payload)
    except WireError as err:
        state.stats.drops[err.reason] += 1
        ifp.drop("dhcp_" + err.reason.removeprefix("dhcp_"))
        return
    if request.op == wire.BOOTREPLY:
        _relay_reply(vnet, state, request, now)
        return
    relay = state.relays.get(ifp.name)
    if relay is not None:
        _relay_request(vnet, state, ifp, request, relay, now)
        return
    server = state.server
    if server is None:
        state.stats.drops["no_server"] += 1
        return
    relay_source = None
    if request.giaddr != wire.ZERO:
        relay_source = source_address(vnet, request.giaddr)
    arrival = Arrival(tuple(ifp.addresses), relay_source, vnet.inet.local)
    reply = server.handle(request, arrival, now)
    if server.changed or state.pending:
        # Group commit: the leases of a burst are written once, then their replies go.
        if reply is not None:
            state.pending.append((ifp, request, reply))
        state.commit.arm(vnet.timers, now, lambda t: _commit(vnet, t))
        return
    if reply is not None:
        send(vnet, ifp, request, reply, now)


def _commit(vnet: Vnet, now: float) -> None:
    """Write the leases changed since the last commit, then send the replies that waited."""
    state = state_of(vnet)
    pending, state.pending = state.pending, []
    if state.server is not None:
        _save(vnet, state, now)
        _arm_expiry(vnet, state)
    for ifp, request, reply in pending:
        if vnet.link.interfaces.get(ifp.name) is ifp:
            send(vnet, ifp, request, reply, now)


def _relay_request(vnet: Vnet, state: DhcpState, ifp: Ifnet, request: wire.DhcpMessage,
                   relay: RelaySettings, now: float) -> None:  # fmt: skip
    """Forward a client's request heard on ``ifp`` to the relay's servers (RFC 1542 4.1)."""
    if not ifp.addresses:
        state.stats.drops["relay_no_address"] += 1
        return
    address = ifp.addresses[0].ip.packed
    forwarded = toward_server(request, address, relay)
    if isinstance(forwarded, str):
        state.stats.drops[forwarded] += 1
        return
    message = forwarded.emit()
    for server in relay.servers:
        where = Destination(server.packed, wire.SERVER_PORT, None)
        if _send(vnet, ifp, where, address, message, now):
            state.stats.relayed["to_server"] += 1
        else:
            state.stats.drops["relay_no_route"] += 1


def _relay_reply(vnet: Vnet, state: DhcpState, reply: wire.DhcpMessage, now: float) -> None:
    """Take a server's reply to one of our relay addresses back to the client's link."""
    ifp = vnet.inet.local.get(reply.giaddr)
    if ifp is None or ifp.name not in state.relays:
        state.stats.drops["relay_unknown_giaddr"] += 1
        return
    toward_client(reply)
    _send(vnet, ifp, client_destination(reply), reply.giaddr, reply.emit(), now)
    state.stats.relayed["to_client"] += 1


def send(vnet: Vnet, ifp: Ifnet, request: wire.DhcpMessage, reply: wire.DhcpMessage,
         now: float) -> None:  # fmt: skip
    """Send ``reply`` to ``request`` where RFC 2131 4.1 says."""
    where = destination(request, reply)
    server_id = reply.address_option(wire.OPT_SERVER_ID) or wire.ZERO
    if not _send(vnet, ifp, where, server_id, reply.emit(), now):
        state_of(vnet).stats.drops["relay_unreachable"] += 1


def _send(vnet: Vnet, ifp: Ifnet, where: Destination, src: bytes, message: bytes,
          now: float, sport: int = wire.SERVER_PORT) -> bool:  # fmt: skip
    """Send ``message`` from ``sport`` of ``src``: routed, or on ``ifp``'s link; False: no route."""
    payload = udp_wire.build(src, where.address, sport, where.port, message)
    packet = ip_wire.build(
        src, where.address, udp_wire.PROTO, payload, ttl=vnet.inet.ttl, ident=next_ident(vnet),
    )  # fmt: skip
    if where.mac is None:
        return ipv4.output(vnet, packet, now)
    frame = bytearray(HEADER.size + len(packet))
    HEADER.pack_into(frame, 0, where.mac, ifp.mac, ETHERTYPE_IPV4)
    frame[HEADER.size :] = packet
    vnet.inet.stats.localout += 1
    ifp.output(frame)
    return True


def leases(vnet: Vnet, now: float) -> dict[str, object]:
    """Return the vnet's leases and counters as plain data."""
    state = state_of(vnet)
    server = state.server
    stats = state.stats
    return {
        "serving": server is not None or bool(state.relays),
        "pools": [str(p.subnet) for p in state.pools],
        "lease_file": state.lease_file,
        "active": server.active(now) if server is not None else 0,
        "leases": server.leases(now) if server is not None else [],
        "relays": {
            name: {
                "servers": [str(a) for a in relay.servers],
                "circuit_id": relay.circuit_id,
                "remote_id": relay.remote_id,
            }
            for name, relay in sorted(state.relays.items())
        },
        "relayed": dict(stats.relayed),
        "clients": clients(vnet),
        "received": dict(stats.received),
        "sent": dict(stats.sent),
        "drops": dict(stats.drops),
        "expired": stats.expired,
        "write_errors": state.write_errors,
    }


# --- the client side -----------------------------------------------------------------


def start_client(vnet: Vnet, ifp: Ifnet, now: float, rng: random.Random | None = None) -> None:
    """Take ``ifp``'s IPv4 address, and a default route, by DHCP (RFC 2131 4.4)."""
    state = state_of(vnet)
    if ifp.name in state.clients:
        return
    if wire.CLIENT_PORT not in vnet.inet.udp_services:
        ipv4.serve_udp(vnet, wire.CLIENT_PORT, lambda *args: _client_input(vnet, *args))
    run = ClientRun(ifp, Client(ifp.mac, rng, vnet.basename))
    state.clients[ifp.name] = run
    log.info("vnet %s: %s: dhcp client started", vnet.name, ifp.name)
    _client_apply(vnet, run, run.client.start(now), now)


def stop_client(vnet: Vnet, name: str, now: float) -> None:
    """Stop the client of interface ``name``; its address and route go."""
    state = state_of(vnet)
    run = state.clients.pop(name, None)
    if run is None:
        return
    run.timer.cancel()
    if run.ifp.vnet is vnet and vnet.link.interfaces.get(name) is run.ifp:
        _client_apply(vnet, run, run.client.stop(), now)
    if not state.clients:
        ipv4.serve_udp(vnet, wire.CLIENT_PORT, None)


def _client_input(vnet: Vnet, ifp: Ifnet, src: bytes, dst: bytes, sport: int, payload: bytes,
                  now: float) -> None:  # fmt: skip
    run = state_of(vnet).clients.get(ifp.name)
    if run is None or run.ifp is not ifp:
        return
    try:
        message = wire.DhcpMessage.parse(payload)
    except WireError as err:
        run.drops[err.reason] += 1
        ifp.drop("dhcp_" + err.reason.removeprefix("dhcp_"))
        return
    _client_apply(vnet, run, run.client.receive(message, now), now)


def _client_timer(vnet: Vnet, run: ClientRun, now: float) -> None:
    if state_of(vnet).clients.get(run.ifp.name) is not run:
        return
    if vnet.link.interfaces.get(run.ifp.name) is not run.ifp:  # the interface is gone
        stop_client(vnet, run.ifp.name, now)
        return
    _client_apply(vnet, run, run.client.timer(now), now)


def _client_apply(vnet: Vnet, run: ClientRun, actions: list[Action], now: float) -> None:
    ifp = run.ifp
    for action in actions:
        if isinstance(action, Send):
            lease = run.client.lease
            src = lease.address.ip.packed if lease is not None else wire.ZERO
            if action.message.ciaddr == wire.ZERO:
                src = wire.ZERO
            message = action.message.emit()
            if action.server is not None:
                where = Destination(action.server, wire.SERVER_PORT, None)
            else:
                where = Destination(b"\xff" * 4, wire.SERVER_PORT, BROADCAST_MAC)
            if not _send(vnet, ifp, where, src, message, now, wire.CLIENT_PORT):
                run.drops["no_route"] += 1
        elif isinstance(action, Bound):
            _install(vnet, ifp, action.lease, action.previous, now)
        else:
            _uninstall(vnet, ifp, action.lease)
    deadline = run.client.deadline
    run.timer.cancel()
    if deadline is not None:
        run.timer.arm(vnet.timers, deadline, lambda t: _client_timer(vnet, run, t))


_DEFAULT = ipaddress.IPv4Network("0.0.0.0/0")


def _install(vnet: Vnet, ifp: Ifnet, lease: Lease, previous: Lease | None, now: float) -> None:
    if previous is not None and (
        previous.address != lease.address or previous.router != lease.router
    ):
        _uninstall(vnet, ifp, previous)
    if lease.address not in ifp.addresses:
        try:
            ipv4.add_address(vnet, ifp, lease.address, now)
        except ValueError as err:  # another interface holds it
            log.error("vnet %s: %s: dhcp: %s", vnet.name, ifp.name, err)
            return
        log.info("vnet %s: %s: dhcp address %s (router %s, lease %d s)", vnet.name, ifp.name,
                 lease.address, lease.router, lease.lease_time)  # fmt: skip
    if lease.router is not None and (previous is None or previous.router != lease.router
                                     or previous.address != lease.address):  # fmt: skip
        try:
            route_state.add_static(vnet, _DEFAULT, "unicast", lease.router, ifp, DHCP_SOURCE)
        except RouteError as err:
            log.error("vnet %s: %s: dhcp default route: %s", vnet.name, ifp.name, err)


def _uninstall(vnet: Vnet, ifp: Ifnet, lease: Lease) -> None:
    with contextlib.suppress(RouteError):
        vnet.route.fib.delete(_DEFAULT, DHCP_SOURCE.name)
    if lease.address in ifp.addresses:
        ipv4.remove_address(vnet, ifp, lease.address)
        log.info("vnet %s: %s: dhcp address %s removed", vnet.name, ifp.name, lease.address)


def clients(vnet: Vnet) -> dict[str, object]:
    """Return the vnet's DHCP clients as plain data, by interface."""
    out: dict[str, object] = {}
    for name, run in sorted(state_of(vnet).clients.items()):
        lease = run.client.lease
        out[name] = {
            "state": run.client.state,
            "address": str(lease.address) if lease is not None else None,
            "router": str(lease.router) if lease is not None and lease.router else None,
            "server": str(IPv4Address(lease.server)) if lease is not None else None,
            "lease_time": lease.lease_time if lease is not None else None,
            **run.client.stats,
            "drops": dict(run.drops),
        }
    return out


def _attach(vnet: Vnet) -> DhcpState:
    return DhcpState()


def _detach(vnet: Vnet) -> None:
    state = state_of(vnet)
    for run in state.clients.values():
        run.timer.cancel()
    if state.clients:
        ipv4.serve_udp(vnet, wire.CLIENT_PORT, None)
    if state.server is not None or state.relays:
        ipv4.serve_udp(vnet, wire.SERVER_PORT, None)
    state.expiry.cancel()
    state.commit.cancel()


SUBSYSTEM = Subsystem("dhcp", _attach, _detach, depends=("inet",), lazy=True)
"""Lazy: a vnet gets its DHCP state when it first serves, relays or asks for a lease."""
