"""The DHCP client state machine against the vnet's own server, sans-IO (RFC 2131 4.4)."""

from __future__ import annotations

import ipaddress
import random

from vrouter.services.dhcp.client import (
    BOUND,
    INIT,
    REBINDING,
    RENEWING,
    SELECTING,
    Bound,
    Client,
    Send,
    Unbound,
)
from vrouter.services.dhcp.server import Arrival, PoolSettings, Server
from vrouter.wire import dhcp
from vrouter.wire.dhcp import DhcpMessage

A = ipaddress.IPv4Address
POOL = PoolSettings(ipaddress.IPv4Network("203.0.113.0/24"), A("203.0.113.10"),
                    A("203.0.113.20"), 600, A("203.0.113.1"), (A("203.0.113.53"),))  # fmt: skip
HERE = Arrival((ipaddress.IPv4Interface("203.0.113.1/24"),))
MAC = bytes.fromhex("02005e005377")


def exchange(server: Server, client: Client, actions: list, now: float) -> list:  # type: ignore[type-arg]
    """Carry each Send through the server (as the wire would) until only events remain."""
    events = []
    for _ in range(10):
        sends = [a for a in actions if isinstance(a, Send)]
        events += [a for a in actions if not isinstance(a, Send)]
        if not sends:
            return events
        actions = []
        for send in sends:
            request = DhcpMessage.parse(send.message.emit())
            reply = server.handle(request, HERE, now)
            if reply is not None:
                actions += client.receive(DhcpMessage.parse(reply.emit()), now)
    raise AssertionError("no end to the exchange")


def test_discover_offer_request_ack_then_renew_and_rebind() -> None:
    server, client = Server((POOL,)), Client(MAC, random.Random(1), "edge")
    start = client.start(0.0)
    assert client.state == SELECTING
    [send] = start
    assert isinstance(send, Send) and send.server is None and send.message.broadcast
    assert send.message.options[dhcp.OPT_HOSTNAME] == b"edge"
    [bound] = exchange(server, client, start, 0.0)
    assert isinstance(bound, Bound) and bound.previous is None
    lease = bound.lease
    assert lease.address == ipaddress.IPv4Interface("203.0.113.10/24")
    assert lease.router == A("203.0.113.1") and lease.dns == (A("203.0.113.53"),)
    assert (lease.lease_time, lease.t1, lease.t2) == (600, 300, 525)
    assert client.state == BOUND and client.deadline == 300
    # T1: a unicast renewal to the server, ACKed, the same lease again.
    renew = client.timer(300.0)
    [send] = renew
    assert isinstance(send, Send) and send.server == A("203.0.113.1").packed
    assert client.state == RENEWING and send.message.ciaddr == lease.address.ip.packed
    assert not send.message.broadcast
    [again] = exchange(server, client, renew, 300.0)
    assert isinstance(again, Bound) and again.lease.address == lease.address
    # No answer to renewals until T2: rebinding, broadcast.
    assert client.timer(300.0 + 300) != []
    rebind = client.timer(300.0 + 525)
    assert client.state == REBINDING and isinstance(rebind[0], Send)
    assert rebind[0].server is None
    # The lease runs out: the address goes, DISCOVER again.
    end = client.timer(300.0 + 600)
    assert isinstance(end[0], Unbound) and isinstance(end[1], Send)
    assert client.state == SELECTING and client.lease is None


def test_a_nak_unbinds_and_starts_over() -> None:
    server, client = Server((POOL,)), Client(MAC, random.Random(2))
    exchange(server, client, client.start(0.0), 0.0)
    lease = client.lease
    assert lease is not None
    # The server forgets the client and another takes the address: the renewal is NAKed.
    server.by_client.clear()
    server.by_address[lease.address.ip.packed].client = "hw:other"
    server.by_address[lease.address.ip.packed].state = "bound"
    server.by_address[lease.address.ip.packed].expires = 10_000.0
    events = exchange(server, client, client.timer(300.0), 300.0)
    assert [type(e) for e in events] == [Unbound] and client.state == INIT
    assert client.stats["naks"] == 1
    restart = client.timer(302.0)
    [bound] = exchange(server, client, restart, 302.0)
    assert isinstance(bound, Bound) and bound.lease.address != lease.address


def test_retransmissions_back_off_and_foreign_replies_are_ignored() -> None:
    client = Client(MAC, random.Random(3))
    client.start(0.0)
    first = client.deadline
    assert first is not None and 3.0 <= first <= 5.0
    client.timer(first)
    second = client.deadline
    assert second is not None and 7.0 <= second - first <= 9.0
    stranger = DhcpMessage(dhcp.BOOTREPLY, client.xid ^ 1, MAC)
    stranger.set(dhcp.OPT_MESSAGE_TYPE, bytes((dhcp.OFFER,)))
    assert client.receive(stranger, 1.0) == [] and client.stats["ignored"] == 1
