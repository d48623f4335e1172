"""A DHCP relay agent's decisions (RFC 1542 section 4, RFC 3046), sans-IO.

:func:`toward_server` turns a client's request heard on a relay interface
into the copy sent to each server: ``giaddr`` set to the interface's
address (kept if another relay set it), ``hops`` counted, and the Relay
Agent Information option (82) added with the circuit id and, if
configured, the remote id.  :func:`toward_client` takes a server's reply
addressed to one of the relay's ``giaddr`` back: option 82 removed, and
where it goes (broadcast or the client's MAC) is
:func:`~vrouter.services.dhcp.server.destination`'s rule for a request
that came without a relay.  Each refusal is a reason string, counted by the
caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vrouter.services.dhcp.server import BROADCAST_MAC, Destination
from vrouter.wire import dhcp as wire
from vrouter.wire.dhcp import DhcpMessage

MAX_HOPS = 16
"""Requests that have crossed this many relays are dropped (RFC 1542 4.1.1)."""

SUB_CIRCUIT_ID = 1
SUB_REMOTE_ID = 2


@dataclass(frozen=True, slots=True)
class RelaySettings:
    """Relaying on one interface: the servers, and what option 82 says of the client."""

    servers: tuple[IPv4Address, ...]
    circuit_id: str
    remote_id: str | None = None


def agent_option(settings: RelaySettings) -> bytes:
    """Return the value of option 82 (RFC 3046 2.0): circuit id, then remote id."""
    out = bytearray()
    for sub, text in ((SUB_CIRCUIT_ID, settings.circuit_id), (SUB_REMOTE_ID, settings.remote_id)):
        if text:
            value = text.encode()[:255]
            out += bytes((sub, len(value))) + value
    return bytes(out)


def parse_agent(value: bytes) -> dict[int, bytes]:
    """Return option 82's sub-options by code (a truncated one ends the list)."""
    found: dict[int, bytes] = {}
    at = 0
    while at + 2 <= len(value):
        code, length = value[at], value[at + 1]
        if at + 2 + length > len(value):
            break
        found[code] = value[at + 2 : at + 2 + length]
        at += 2 + length
    return found


def toward_server(
    message: DhcpMessage, address: bytes, settings: RelaySettings
) -> DhcpMessage | str:
    """Return the request to forward to the servers, or why it is dropped."""
    if message.op != wire.BOOTREQUEST:
        return "relay_not_request"
    if message.hops >= MAX_HOPS:
        return "relay_hops"
    if message.giaddr == wire.ZERO:
        if wire.OPT_RELAY_AGENT in message.options:
            return "relay_untrusted_agent"  # RFC 3046 2.1: option 82 with no giaddr
        message.giaddr = address
        message.set(wire.OPT_RELAY_AGENT, agent_option(settings))
        message.order.remove(wire.OPT_RELAY_AGENT)
        message.order.append(wire.OPT_RELAY_AGENT)  # the last option before End
    message.hops += 1
    return message


def toward_client(message: DhcpMessage) -> DhcpMessage:
    """Return a server's reply as the client gets it: without option 82."""
    if wire.OPT_RELAY_AGENT in message.options:
        del message.options[wire.OPT_RELAY_AGENT]
        message.order.remove(wire.OPT_RELAY_AGENT)
    return message


def client_destination(reply: DhcpMessage) -> Destination:
    """Return where a relayed reply goes on the client's link (RFC 1542 5.4)."""
    if reply.broadcast or reply.type == wire.NAK:
        return Destination(b"\xff" * 4, wire.CLIENT_PORT, BROADCAST_MAC)
    if reply.ciaddr != wire.ZERO:
        return Destination(reply.ciaddr, wire.CLIENT_PORT, reply.chaddr)
    return Destination(reply.yiaddr, wire.CLIENT_PORT, reply.chaddr)
