"""The vnet DHCP server, sans-IO and on an in-memory link: RFC 2131 exchanges, leases, files."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import dpkt

from vrouter.route import state as route_state
from vrouter.services.dhcp import state as dhcp_state
from vrouter.services.dhcp.relay import RelaySettings, parse_agent, toward_server
from vrouter.services.dhcp.server import (
    BOUND,
    Arrival,
    PoolSettings,
    Server,
    StaticLease,
    destination,
)
from vrouter.wire import dhcp
from vrouter.wire.dhcp import DhcpMessage

A = ipaddress.IPv4Address
SUBNET = ipaddress.IPv4Network("192.0.2.0/24")
POOL = PoolSettings(
    SUBNET, A("192.0.2.10"), A("192.0.2.12"), 600, A("192.0.2.1"), (A("192.0.2.53"),),
    "lan.example", 1400, ((ipaddress.IPv4Network("198.51.100.0/24"), A("192.0.2.1")),),
    (StaticLease(bytes.fromhex("02005e0053aa"), A("192.0.2.100"), "printer"),),
)  # fmt: skip
HERE = Arrival((ipaddress.IPv4Interface("192.0.2.1/24"),), None, {A("192.0.2.1").packed})
SERVER_ID = A("192.0.2.1").packed


def request(kind: int, mac: int, **fields: object) -> DhcpMessage:
    options = fields.pop("options", {})
    message = DhcpMessage(dhcp.BOOTREQUEST, 0x1234 + mac, bytes.fromhex(f"02005e0053{mac:02x}"))
    for name, value in fields.items():
        setattr(message, name, value)
    message.set(dhcp.OPT_MESSAGE_TYPE, bytes((kind,)))
    for code, value in options.items():  # type: ignore[attr-defined]
        message.set(code, value)
    return DhcpMessage.parse(message.emit())


def lease(server: Server, mac: int, now: float = 0.0) -> bytes:
    """DISCOVER, then REQUEST what was offered; return the address ACKed."""
    offer = server.handle(request(dhcp.DISCOVER, mac), HERE, now)
    assert offer is not None and offer.type == dhcp.OFFER
    ack = server.handle(
        request(dhcp.REQUEST, mac, options={dhcp.OPT_SERVER_ID: SERVER_ID,
                                            dhcp.OPT_REQUESTED_IP: offer.yiaddr}),
        HERE, now,
    )  # fmt: skip
    assert ack is not None and ack.type == dhcp.ACK and ack.yiaddr == offer.yiaddr
    return ack.yiaddr


def test_offer_and_ack_carry_the_pool_options() -> None:
    server = Server((POOL,))
    offer = server.handle(request(dhcp.DISCOVER, 1), HERE, 0.0)
    assert offer is not None and offer.yiaddr == A("192.0.2.10").packed
    o = offer.options
    assert o[dhcp.OPT_SERVER_ID] == SERVER_ID
    assert o[dhcp.OPT_LEASE_TIME] == (600).to_bytes(4, "big")
    assert o[dhcp.OPT_T1] == (300).to_bytes(4, "big") and o[dhcp.OPT_T2] == (525).to_bytes(4, "big")
    assert o[dhcp.OPT_SUBNET_MASK] == A("255.255.255.0").packed
    assert o[dhcp.OPT_ROUTER] == SERVER_ID and o[dhcp.OPT_DNS] == A("192.0.2.53").packed
    assert o[dhcp.OPT_DOMAIN] == b"lan.example" and o[dhcp.OPT_MTU] == (1400).to_bytes(2, "big")
    routes = dhcp.parse_classless_routes(o[dhcp.OPT_CLASSLESS_ROUTES])
    assert routes == [(ipaddress.IPv4Network("198.51.100.0/24"), SERVER_ID),
                      (ipaddress.IPv4Network("0.0.0.0/0"), SERVER_ID)]  # fmt: skip
    assert lease(server, 1) == A("192.0.2.10").packed
    assert server.active(0.0) == 1 and server.stats.sent["ack"] == 1


def test_reply_destinations_follow_rfc2131_4_1() -> None:
    server = Server((POOL,))
    plain = request(dhcp.DISCOVER, 1)
    offer = server.handle(plain, HERE, 0.0)
    assert offer is not None
    where = destination(plain, offer)  # unicast to chaddr and yiaddr, no ARP
    assert (where.mac, where.address) == (plain.chaddr, offer.yiaddr)
    flagged = request(dhcp.DISCOVER, 2, flags=dhcp.FLAG_BROADCAST)
    offer = server.handle(flagged, HERE, 0.0)
    assert offer is not None and destination(flagged, offer).mac == b"\xff" * 6
    relayed = request(dhcp.DISCOVER, 3, giaddr=A("192.0.2.254").packed)
    offer = server.handle(relayed, Arrival((), SERVER_ID), 0.0)
    assert offer is not None
    where = destination(relayed, offer)
    assert (where.mac, where.address, where.port) == (None, relayed.giaddr, 67)


def test_static_lease_is_given_to_its_mac_only() -> None:
    server = Server((POOL,))
    offer = server.handle(request(dhcp.DISCOVER, 0xAA), HERE, 0.0)
    assert offer is not None and offer.yiaddr == A("192.0.2.100").packed
    wrong = request(dhcp.REQUEST, 0xAA, options={dhcp.OPT_REQUESTED_IP: A("192.0.2.10").packed})
    nak = server.handle(wrong, HERE, 0.0)
    assert nak is not None and nak.type == dhcp.NAK
    assert destination(wrong, nak).mac == b"\xff" * 6  # a NAK is broadcast
    for mac in (1, 2, 3):
        assert lease(server, mac) != A("192.0.2.100").packed


def test_pool_exhaustion_then_expiry_frees_the_oldest() -> None:
    server = Server((POOL,))
    got = [lease(server, mac) for mac in (1, 2, 3)]
    assert sorted(got) == [A(f"192.0.2.{n}").packed for n in (10, 11, 12)]
    assert server.handle(request(dhcp.DISCOVER, 4), HERE, 10.0) is None
    assert server.stats.drops["pool_exhausted"] == 1
    assert server.expire(700.0) and server.stats.expired == 3
    assert lease(server, 4, 700.0) in got
    assert lease(server, 1, 700.0) in got  # client 1 gets its old address back if still free


def test_init_reboot_and_renewing() -> None:
    server = Server((POOL,))
    address = lease(server, 1)
    reboot = request(dhcp.REQUEST, 1, options={dhcp.OPT_REQUESTED_IP: address})
    ack = server.handle(reboot, HERE, 5.0)
    assert ack is not None and ack.type == dhcp.ACK
    renew = request(dhcp.REQUEST, 1, ciaddr=address)
    ack = server.handle(renew, HERE, 6.0)
    assert ack is not None and ack.type == dhcp.ACK and ack.ciaddr == address
    assert destination(renew, ack).address == address
    # Another client asking for that address is refused; one we never saw is not answered.
    steal = request(dhcp.REQUEST, 2, options={dhcp.OPT_REQUESTED_IP: address})
    nak = server.handle(steal, HERE, 7.0)
    assert nak is not None and nak.type == dhcp.NAK
    unknown = request(dhcp.REQUEST, 3, options={dhcp.OPT_REQUESTED_IP: A("192.0.2.12").packed})
    assert server.handle(unknown, HERE, 7.0) is None
    assert server.stats.drops["unknown_client"] == 1
    elsewhere = request(dhcp.REQUEST, 3, options={dhcp.OPT_REQUESTED_IP: A("10.0.0.9").packed})
    nak = server.handle(elsewhere, HERE, 7.0)
    assert nak is not None and nak.type == dhcp.NAK


def test_selecting_another_server_frees_the_offer() -> None:
    server = Server((POOL,))
    offer = server.handle(request(dhcp.DISCOVER, 1), HERE, 0.0)
    assert offer is not None
    other = request(dhcp.REQUEST, 1, options={dhcp.OPT_SERVER_ID: A("192.0.2.2").packed,
                                              dhcp.OPT_REQUESTED_IP: offer.yiaddr})  # fmt: skip
    assert server.handle(other, HERE, 0.0) is None
    assert server.leases(0.0) == [] and server.stats.drops["other_server"] == 1


def test_decline_holds_the_address_back_and_release_keeps_it_for_the_client() -> None:
    server = Server((POOL,))
    first = lease(server, 1)
    decline = request(dhcp.DECLINE, 1, options={dhcp.OPT_SERVER_ID: SERVER_ID,
                                                dhcp.OPT_REQUESTED_IP: first})  # fmt: skip
    assert server.handle(decline, HERE, 1.0) is None
    second = lease(server, 1, 2.0)
    assert second != first
    assert [r["state"] for r in server.leases(2.0) if r["address"] == str(A(first))] == ["declined"]
    release = request(dhcp.RELEASE, 1, ciaddr=second, options={dhcp.OPT_SERVER_ID: SERVER_ID})
    assert server.handle(release, HERE, 3.0) is None
    assert server.active(3.0) == 0
    assert lease(server, 1, 4.0) == second


def test_inform_gets_options_without_a_lease() -> None:
    server = Server((POOL,))
    inform = request(dhcp.INFORM, 1, ciaddr=A("192.0.2.77").packed)
    ack = server.handle(inform, HERE, 0.0)
    assert ack is not None and ack.type == dhcp.ACK and ack.yiaddr == dhcp.ZERO
    assert dhcp.OPT_LEASE_TIME not in ack.options and dhcp.OPT_DNS in ack.options
    assert server.leases(0.0) == []


def test_no_pool_for_the_interface_is_dropped() -> None:
    server = Server((POOL,))
    away = Arrival((ipaddress.IPv4Interface("198.51.100.1/24"),))
    assert server.handle(request(dhcp.DISCOVER, 1), away, 0.0) is None
    assert server.stats.drops["no_pool"] == 1


def test_relay_agent_option_is_echoed() -> None:
    server = Server((POOL,))
    agent = bytes.fromhex("0103657030" "0203727231")
    relayed = request(dhcp.DISCOVER, 1, giaddr=A("192.0.2.254").packed, hops=1,
                      options={dhcp.OPT_RELAY_AGENT: agent})  # fmt: skip
    offer = server.handle(relayed, Arrival((), SERVER_ID), 0.0)
    assert offer is not None and offer.options[dhcp.OPT_RELAY_AGENT] == agent
    assert offer.giaddr == relayed.giaddr


# -- on a link, with the lease file ------------------------------------------------------


def _client_frame(host, message: DhcpMessage | bytes) -> bytes:  # type: ignore[no-untyped-def]
    data = message.emit() if isinstance(message, DhcpMessage) else message
    udp = dpkt.udp.UDP(sport=68, dport=67, data=data)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=bytes(4), dst=b"\xff" * 4, p=17, ttl=64, data=udp)
    return host.frame(ip, b"\xff" * 6)


def test_on_a_link_replies_go_to_the_client_mac_and_leases_reach_the_file(
    lab, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", None)
    path = tmp_path / "dhcp" / "red.leases"
    dhcp_state.configure(red, (POOL,), {}, str(path), lab.now)
    h1.take()  # the announcements of the address
    discover = request(dhcp.DISCOVER, 1)
    discover.chaddr = h1.mac
    h1.send(_client_frame(h1, discover), lab.now)
    [frame] = h1.take()
    assert frame.dst == h1.mac and frame.data.dst == A("192.0.2.10").packed  # no ARP first
    offer = DhcpMessage.parse(frame.data.data.data)
    assert offer.type == dhcp.OFFER and frame.data.data.dport == 68
    req = request(dhcp.REQUEST, 1, flags=dhcp.FLAG_BROADCAST,
                  options={dhcp.OPT_SERVER_ID: SERVER_ID, dhcp.OPT_REQUESTED_IP: offer.yiaddr})
    req.chaddr = h1.mac
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"version": 1, "vnet": "red"}
    ]
    h1.send(_client_frame(h1, req), lab.now)
    assert h1.take() == [] and len(path.read_text().splitlines()) == 1  # the ACK waits
    lab.run_timers()
    [frame] = h1.take()
    assert frame.dst == b"\xff" * 6 and DhcpMessage.parse(frame.data.data.data).type == dhcp.ACK
    [_, stored] = [json.loads(line) for line in path.read_text().splitlines()]
    assert stored["address"] == "192.0.2.10" and stored["state"] == BOUND
    # Garbage is dropped and counted by reason; the server keeps going.
    h1.send(_client_frame(h1, discover.emit()[:200]), lab.now)
    assert h1.take() == []
    shown = dhcp_state.leases(red, lab.now)
    assert shown["drops"] == {"dhcp_tooshort": 1} and shown["active"] == 1
    # A second server started on the file knows the lease.
    blue = lab.vnet("blue")
    lab.iface(blue, "eth0", "192.0.2.1/24")
    dhcp_state.configure(blue, (POOL,), {}, str(path), lab.now + 5)
    rows = dhcp_state.leases(blue, lab.now + 5)["leases"]
    assert isinstance(rows, list) and rows[0]["address"] == "192.0.2.10"
    assert rows[0]["state"] == BOUND and 590 <= rows[0]["expires_in"] <= 600
    dhcp_state.configure(red, (), {}, None, lab.now)
    assert 67 not in red.inet.udp_services


def test_an_unreadable_lease_file_is_set_aside(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    red = lab.vnet("red")
    path = tmp_path / "red.leases"
    path.write_text("{not json")
    dhcp_state.configure(red, (POOL,), {}, str(path), lab.now)
    assert (tmp_path / "red.leases.bad").exists()
    assert dhcp_state.leases(red, lab.now)["leases"] == []


# -- relay ---------------------------------------------------------------------------------


def test_relay_to_a_server_in_another_vnet_and_back(lab) -> None:  # type: ignore[no-untyped-def]
    """h1 -- [red: relay on eth0] == epair == [blue: server] (RFC 1542, RFC 3046)."""
    red, blue = lab.vnet("red"), lab.vnet("blue")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", None)
    lab.epair(red, "ep0", "203.0.113.1/30", blue, "ep0", "203.0.113.2/30")
    route_state.add_static(blue, ipaddress.IPv4Network("192.0.2.0/24"), "unicast",
                           A("203.0.113.1"), None)  # fmt: skip
    relay = RelaySettings((A("203.0.113.2"),), "eth0", "red")
    dhcp_state.configure(red, (), {"eth0": relay}, None, lab.now)
    dhcp_state.configure(blue, (POOL,), {}, None, lab.now)
    h1.take()
    discover = request(dhcp.DISCOVER, 1)
    discover.chaddr = h1.mac
    h1.send(_client_frame(h1, discover), lab.now)
    lab.settle()
    [frame] = h1.take()
    offer = DhcpMessage.parse(frame.data.data.data)
    assert offer.type == dhcp.OFFER and offer.yiaddr == A("192.0.2.10").packed
    assert frame.dst == h1.mac and frame.data.src == A("192.0.2.1").packed
    assert dhcp.OPT_RELAY_AGENT not in offer.options  # taken off again
    assert offer.giaddr == A("192.0.2.1").packed
    rows = dhcp_state.leases(blue, lab.now)["leases"]
    assert isinstance(rows, list) and rows[0]["circuit"] == "eth0"
    shown = dhcp_state.leases(red, lab.now)
    assert shown["relayed"] == {"to_server": 1, "to_client": 1}
    # A request that already crossed 16 relays is not relayed again.
    tired = request(dhcp.DISCOVER, 2, hops=16)
    h1.send(_client_frame(h1, tired), lab.now)
    lab.settle()
    assert h1.take() == []
    assert dhcp_state.leases(red, lab.now)["drops"] == {"relay_hops": 1}


def test_relay_option_82_and_giaddr() -> None:
    settings = RelaySettings((A("198.51.100.1"),), "port7", "edge1")
    message = request(dhcp.DISCOVER, 1)
    out = toward_server(message, A("192.0.2.1").packed, settings)
    assert isinstance(out, DhcpMessage)
    assert out.giaddr == A("192.0.2.1").packed and out.hops == 1
    assert parse_agent(out.options[dhcp.OPT_RELAY_AGENT]) == {1: b"port7", 2: b"edge1"}
    assert out.order[-1] == dhcp.OPT_RELAY_AGENT
    # From another relay: giaddr and its option 82 are kept.
    again = toward_server(DhcpMessage.parse(out.emit()), A("10.0.0.1").packed, settings)
    assert isinstance(again, DhcpMessage)
    assert again.giaddr == A("192.0.2.1").packed and again.hops == 2
    untrusted = request(dhcp.DISCOVER, 1, options={dhcp.OPT_RELAY_AGENT: b"\x01\x01x"})
    assert toward_server(untrusted, A("192.0.2.1").packed, settings) == "relay_untrusted_agent"


def test_the_lease_file_is_a_journal_rewritten_when_it_grows(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    red = lab.vnet("red")
    lab.iface(red, "eth0", "192.0.2.1/24")
    path = tmp_path / "red.leases"
    dhcp_state.configure(red, (POOL,), {}, str(path), lab.now)
    server = dhcp_state.state_of(red).server
    assert server is not None
    for mac in (1, 2):
        lease(server, mac, lab.now)
        dhcp_state._save(red, dhcp_state.state_of(red), lab.now)
    release = request(dhcp.RELEASE, 1, ciaddr=A("192.0.2.10").packed)
    server.handle(release, HERE, lab.now)
    dhcp_state._save(red, dhcp_state.state_of(red), lab.now)
    lines = path.read_text().splitlines()
    assert len(lines) == 4  # the header, two ACKs, the release
    path.write_text(path.read_text() + '{"address": "192.0.2.1')  # a torn last line
    blue = lab.vnet("blue")
    lab.iface(blue, "eth0", "192.0.2.1/24")
    dhcp_state.configure(blue, (POOL,), {}, str(path), lab.now)
    rows = {r["address"]: r["state"] for r in dhcp_state.leases(blue, lab.now)["leases"]}
    assert rows == {"192.0.2.10": "released", "192.0.2.11": "bound"}
    assert len(path.read_text().splitlines()) == 3  # written afresh: the header and two leases
