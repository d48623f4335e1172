"""Tests for vrouter.link.stp: two bridges in two vnets joined twice (a loop) on a fake clock."""

from __future__ import annotations

import ipaddress

import pytest

from vrouter.inet import ipv4
from vrouter.link import bridge as bridge_
from vrouter.link.epair import Epair
from vrouter.link.ifnet import Ifnet
from vrouter.link.stp import PortState, StpSettings
from vrouter.wire import stp as wire

BCAST = b"\xff" * 6
FAST = StpSettings(hello_time=1, max_age=6, forward_delay=4)

# A broadcast of a local experimental EtherType from a station behind bridge A.
STATION = bytes.fromhex("02000000aa01")
FRAME = BCAST + STATION + b"\x88\xb5" + bytes(46)


class Loop:
    """Bridges ``a`` and ``b`` (each in its vnet) joined by two epairs (x and y), and a
    test station on each bridge."""

    def __init__(self, lab, a_settings: StpSettings | None, b_settings: StpSettings | None):
        self.lab = lab
        self.bridges: list[bridge_.Bridge] = []
        self.hosts = []
        self.epairs: list[Epair] = []
        va, vb = lab.vnet("stpa"), lab.vnet("stpb")
        ends = {}
        for vnet in (va, vb):
            for link in ("x", "y"):
                ifp = Ifnet(vnet, f"{vnet.name}{link}", "epair", lab.mac())
                vnet.link.add(ifp)
                ends[(vnet.name, link)] = ifp
        for link in ("x", "y"):
            pair = Epair(ends[("stpa", link)], ends[("stpb", link)])
            pair.queue_time = 3600.0
            self.epairs.append(pair)
            lab.epairs.append(pair)
        for vnet, settings in ((va, a_settings), (vb, b_settings)):
            brif = Ifnet(vnet, "br0", "bridge", lab.mac())
            vnet.link.add(brif)
            brif.up = True
            br = bridge_.create(brif)
            host = lab.host(vnet, "h", None, None, up=False)
            host.ifp.up = True
            for name in (f"{vnet.name}x", f"{vnet.name}y"):
                ifp = vnet.link.get(name)
                ifp.up = True
                br.add_port(ifp, now=lab.now)
            br.add_port(host.ifp, now=lab.now)
            br.set_stp(settings, lab.now)
            self.bridges.append(br)
            self.hosts.append(host)

    @property
    def a(self) -> bridge_.Bridge:
        return self.bridges[0]

    @property
    def b(self) -> bridge_.Bridge:
        return self.bridges[1]

    def run(self, seconds: float, step: float = 0.25) -> None:
        for _ in range(int(seconds / step)):
            self.lab.advance(step)

    def states(self, br: bridge_.Bridge) -> dict[str, PortState]:
        return {n: p.stp.state for n, p in br.ports.items() if p.stp is not None}


def data(host) -> list[bytes]:
    """Return the frames ``host`` got but BPDUs."""
    return [f for f in host.take_raw() if f[:6] != wire.GROUP]


@pytest.fixture
def loop(lab) -> Loop:
    return Loop(lab, FAST, StpSettings(priority=0x9000, hello_time=1, max_age=6, forward_delay=4))


def test_the_lower_bridge_id_wins_and_the_loop_is_broken_on_the_other_side(loop) -> None:
    loop.run(3)
    assert set(loop.states(loop.a).values()) == {PortState.LISTENING}  # nothing forwards yet
    loop.run(6)  # 2 x forward delay + a hello
    a, b = loop.a.stp, loop.b.stp
    assert a is not None and b is not None
    assert a.is_root() and not b.is_root()
    assert b.designated_root == a.bridge_id and b.root_cost == 100
    assert set(loop.states(loop.a).values()) == {PortState.FORWARDING}
    # Both links offer the same cost to the root: the lower designated port id wins.
    assert loop.states(loop.b) == {
        "stpbx": PortState.FORWARDING, "stpby": PortState.BLOCKING, "h": PortState.FORWARDING,
    }  # fmt: skip
    assert b.root_port is not None and b.root_port.name == "stpbx"
    assert loop.b.ports["stpby"].stp.role() == "blocked"
    assert loop.b.ports["stpby"].stp.counters.bpdu_in > 0  # a blocked port still listens


def test_a_broadcast_crosses_once_and_does_not_circle(loop) -> None:
    loop.run(10)
    ha, hb = loop.hosts
    hb.take_raw()
    ha.send(FRAME, loop.lab.now)
    loop.lab.settle()
    assert data(hb) == [FRAME]
    assert data(ha) == []
    assert loop.b.ports["stpby"].counters.drops["stp_blocking"] == 1
    assert [e.port.ifnet.name for e in loop.b.entries()] == ["stpbx"]


def test_without_stp_the_same_broadcast_loops(lab) -> None:
    loop = Loop(lab, None, None)
    ha = loop.hosts[0]
    ha.send(FRAME, lab.now)
    with pytest.raises(AssertionError, match="did not settle"):
        lab.settle()


def test_the_other_side_is_blocked_when_it_loses(lab) -> None:
    loop = Loop(lab, StpSettings(priority=0xA000, hello_time=1, max_age=6, forward_delay=4),
                StpSettings(priority=0x1000, hello_time=1, max_age=6, forward_delay=4))  # fmt: skip
    loop.run(10)
    assert loop.b.stp is not None and loop.b.stp.is_root()
    assert sorted(s.name for s in loop.states(loop.a).values()) == [
        "BLOCKING", "FORWARDING", "FORWARDING",
    ]  # fmt: skip
    assert set(loop.states(loop.b).values()) == {PortState.FORWARDING}


def test_timers_walk_listening_learning_forwarding(lab) -> None:
    loop = Loop(lab, FAST, FAST)
    port = loop.a.ports["h"]
    assert port.stp is not None
    seen = []
    for _ in range(40):
        seen.append((round(lab.now - 1000, 2), port.stp.state))
        loop.run(0.25)
    first = {state: t for t, state in reversed(seen)}
    assert first[PortState.LISTENING] == 0
    assert first[PortState.LEARNING] == pytest.approx(4, abs=0.3)
    assert first[PortState.FORWARDING] == pytest.approx(8, abs=0.3)


def test_a_silent_root_port_ages_out_and_the_blocked_port_takes_over(loop) -> None:
    loop.run(10)
    # Link x goes dark towards b: frames a sends on it vanish (b's side stays up).
    loop.a.vnet.link.get("stpax").transmit = lambda frame: None
    t0 = loop.lab.now
    b = loop.b.stp
    assert b is not None
    while loop.b.ports["stpby"].stp.state != PortState.FORWARDING and loop.lab.now - t0 < 30:
        loop.run(0.25)
    took = loop.lab.now - t0
    # max age (6) for the information to expire, then 2 x forward delay (8).
    assert 6 + 8 - 1 <= took <= 6 + 8 + 1.5
    assert b.root_port is not None and b.root_port.name == "stpby"
    assert b.topology_changes >= 1


def test_a_port_whose_link_goes_down_is_disabled_and_the_other_takes_over(loop) -> None:
    loop.run(10)
    t0 = loop.lab.now
    loop.b.ports["stpbx"].ifnet.up = False  # seen at the next hello
    while loop.b.ports["stpby"].stp.state != PortState.FORWARDING and loop.lab.now - t0 < 30:
        loop.run(0.25)
    assert loop.lab.now - t0 <= 1 + 8 + 0.5
    assert loop.b.ports["stpbx"].stp.state == PortState.DISABLED
    assert loop.b.ports["stpbx"].stp.role() == "disabled"


def test_removing_the_root_port_fails_over(loop) -> None:
    loop.run(10)
    loop.b.remove_port("stpbx", loop.lab.now)
    assert loop.b.stp is not None and loop.b.stp.root_port.name == "stpby"
    assert loop.b.ports["stpby"].stp.state == PortState.LISTENING
    loop.run(8.5)
    assert loop.b.ports["stpby"].stp.state == PortState.FORWARDING


def test_topology_change_reaches_the_root_and_shortens_ageing(loop) -> None:
    loop.run(10)
    a, b = loop.a.stp, loop.b.stp
    assert a is not None and b is not None
    hb = loop.hosts[1]
    hb_frame = BCAST + bytes.fromhex("02000000bb01") + b"\x88\xb5" + bytes(46)
    hb.send(hb_frame, loop.lab.now)
    loop.lab.settle()
    assert any(e.mac == bytes.fromhex("02000000bb01") for e in loop.a.entries())
    changes = a.topology_changes
    loop.lab.advance(30)  # whatever change the start caused is over
    hb.send(hb_frame, loop.lab.now)
    loop.lab.settle()
    # b's station port leaves forwarding: a change, told to the root by TCN
    tcn_before = loop.a.ports["stpax"].stp.counters.tcn_in
    loop.b.ports["h"].ifnet.up = False
    loop.run(2)
    assert loop.a.ports["stpax"].stp.counters.tcn_in > tcn_before
    assert a.tc and b.tc and a.topology_changes > changes
    assert not b.tc_detected  # the root acknowledged
    loop.run(4.5)  # the forward delay (4) passes: the station, silent, is aged out
    assert not any(e.mac == bytes.fromhex("02000000bb01") for e in loop.a.entries())
    loop.run(12)  # max age + forward delay: the change is over
    assert not a.tc and not b.tc


def test_malformed_bpdus_are_dropped_and_counted(loop) -> None:
    loop.run(2)
    ha, _ = loop.hosts
    port = loop.a.ports["h"]
    good = wire.Bpdu(False, 0, 1, 0, 1, 0x8001, 0, 6, 1, 4).frame(STATION)
    ha.send(good[:20], loop.lab.now)  # cut short of its 802.3 length
    ha.send(good[:12] + b"\x00\x05" + good[14:], loop.lab.now)  # too short for a BPDU
    ha.send(good[:14] + b"\xaa\xaa\x03" + good[17:], loop.lab.now)
    ha.send(good[:12] + b"\x05\xdc" + good[14:], loop.lab.now)  # length beyond the frame
    assert port.stp is not None
    assert port.stp.counters.drops == {"bpdu_short": 1, "bpdu_llc": 1, "bpdu_length": 2}
    assert port.ifnet.counters.rx_errors == 4
    ha.send(good, loop.lab.now)  # a better root: taken
    assert loop.a.stp is not None and loop.a.stp.designated_root == 1


def test_a_bpdu_without_stp_is_flooded_as_before(lab) -> None:
    loop = Loop(lab, None, None)
    loop.epairs.clear()
    lab.epairs.clear()
    ha = loop.hosts[0]
    bpdu = wire.Bpdu(False, 0, 1, 0, 1, 0x8001, 0, 6, 1, 4).frame(STATION)
    ha.send(bpdu, lab.now)
    assert loop.a.ports["stpax"].counters.sent == 1


def test_turning_stp_off_forwards_at_once_and_destroy_leaves_no_timer(loop) -> None:
    loop.run(10)
    loop.b.set_stp(None, loop.lab.now)
    assert all(p.forwarding and p.stp is None for p in loop.b.ports.values())
    assert all(p.ifnet.bridge_input == p.input for p in loop.b.ports.values())
    for br in loop.bridges:
        vnet = br.vnet
        bridge_.destroy(br.ifnet)
        vnet.timers.purge()
        assert len(vnet.timers) == 0, [t.callback for _, _, t in vnet.timers._heap]


def test_priority_change_at_run_time_moves_the_root(loop) -> None:
    loop.run(10)
    loop.b.set_stp(StpSettings(priority=0, hello_time=1, max_age=6, forward_delay=4), loop.lab.now)
    loop.run(10)
    assert loop.b.stp is not None and loop.b.stp.is_root()
    assert PortState.BLOCKING in loop.states(loop.a).values()
    assert set(loop.states(loop.b).values()) == {PortState.FORWARDING}


def test_path_cost_moves_the_root_port(loop) -> None:
    loop.run(10)
    loop.b.set_port_stp("stpbx", 500, 32, loop.lab.now)
    loop.run(10)
    assert loop.b.stp is not None and loop.b.stp.root_port.name == "stpby"
    assert loop.states(loop.b)["stpbx"] == PortState.BLOCKING
    with pytest.raises(bridge_.BridgeError, match="path_cost 0 is out of range"):
        loop.b.set_port_stp("stpbx", 0, 32, loop.lab.now)


def test_show_describes_the_tree(loop) -> None:
    loop.run(10)
    d = loop.b.describe(loop.lab.now)
    s = d["stp"]
    assert s["root_id"] == wire.id_to_str(loop.a.stp.bridge_id)
    assert s["root_port"] == "stpbx" and s["root_cost"] == 100
    ports = {p["name"]: p["stp"] for p in d["ports"]}
    assert ports["stpby"]["role"] == "blocked" and ports["stpby"]["state"] == "blocking"
    assert ports["stpbx"]["designated_bridge"] == s["root_id"]


def test_the_bridge_announces_its_address_when_its_ports_move(loop) -> None:
    brif = loop.b.ifnet
    ipv4.add_address(brif.vnet, brif, ipaddress.IPv4Interface("192.0.2.1/24"), loop.lab.now)
    loop.run(10)
    ha = loop.hosts[0]
    data(ha)
    loop.b.set_port_stp("stpbx", 500, 32, loop.lab.now)  # the root port moves to stpby
    loop.run(10)
    arps = [f for f in data(ha) if f[12:14] == b"\x08\x06"]
    # A gratuitous ARP request (sender = target = 192.0.2.1) from b's MAC, through y.
    assert arps and all(f[6:12] == brif.mac and f[28:32] == f[38:42] == bytes([192, 0, 2, 1])
                        for f in arps)  # fmt: skip
    assert loop.a.ports["stpay"].counters.flooded >= 1
