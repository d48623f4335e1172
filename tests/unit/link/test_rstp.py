"""Tests for vrouter.link.rstp: vnet bridges looped by epairs on a fake clock."""

from __future__ import annotations

import pytest

from vrouter.link import bridge as bridge_
from vrouter.link.epair import Epair
from vrouter.link.ifnet import Ifnet
from vrouter.link.rstp import Role, RstpPort
from vrouter.link.stp import DEFAULT_PATH_COST, PortState, StpSettings
from vrouter.wire import stp as wire

RSTP = StpSettings(hello_time=1, max_age=6, forward_delay=4, protocol="rstp")
STP = StpSettings(hello_time=1, max_age=6, forward_delay=4)
BCAST = b"\xff" * 6
STATION = bytes.fromhex("02000000aa01")
FRAME = BCAST + STATION + b"\x88\xb5" + bytes(46)


class Net:
    """Bridges ``br0`` in vnets ``names`` joined by epairs ``links`` ((a, b) per link;
    the member on a is named ``a-b<n>``), each with a station port ``h`` (edge if asked)."""

    def __init__(self, lab, names, links, settings=RSTP, edge_hosts=True, priorities=None):
        self.lab = lab
        self.vnets = {n: lab.vnet(n) for n in names}
        self.bridges: dict[str, bridge_.Bridge] = {}
        self.hosts = {}
        self.epairs: dict[str, Epair] = {}
        for n, vnet in self.vnets.items():
            brif = Ifnet(vnet, "br0", "bridge", lab.mac())
            vnet.link.add(brif)
            brif.up = True
            self.bridges[n] = bridge_.create(brif)
        for i, (a, b) in enumerate(links):
            ends = []
            for here, there in ((a, b), (b, a)):
                ifp = Ifnet(self.vnets[here], f"{here}-{there}{i}", "epair", lab.mac())
                self.vnets[here].link.add(ifp)
                ifp.up = True
                ends.append(ifp)
            pair = Epair(ends[0], ends[1])
            pair.queue_time = 3600.0
            self.epairs[f"{a}-{b}{i}"] = pair
            lab.epairs.append(pair)
            for ifp in ends:
                self.bridges[ifp.vnet.name].add_port(ifp, now=lab.now)
        for n, vnet in self.vnets.items():
            host = lab.host(vnet, "h", None, None, up=False)
            host.ifp.up = True
            br = self.bridges[n]
            br.add_port(host.ifp, now=lab.now, edge=edge_hosts)
            self.hosts[n] = host
            s = settings
            if priorities and n in priorities:
                s = StpSettings(priorities[n], s.hello_time, s.max_age, s.forward_delay, s.protocol)
            br.set_stp(s, lab.now)
        lab.settle()

    def run(self, seconds: float, step: float = 0.05) -> None:
        for _ in range(round(seconds / step)):
            self.lab.advance(step)

    def port(self, name: str) -> RstpPort:
        vnet = name.split("-")[0] if "-" in name else name
        sp = self.bridges[vnet].ports[name].stp
        assert isinstance(sp, RstpPort)
        return sp

    def all_ports(self) -> list[RstpPort]:
        out = []
        for br in self.bridges.values():
            for port in br.ports.values():
                assert isinstance(port.stp, RstpPort)
                out.append(port.stp)
        return out

    def discarding(self) -> list[str]:
        return sorted(p.name for p in self.all_ports() if p.state == PortState.BLOCKING)

    def link_down(self, link: str) -> None:
        pair = self.epairs[link]
        for ifp in (pair.a, pair.b):
            ifp.up = False
            br = self.bridges[ifp.vnet.name]
            assert br.stp is not None
            br.stp.check_links(self.lab.now)
        self.lab.settle()


def data(host) -> list[bytes]:
    return [f for f in host.take_raw() if f[:6] != wire.GROUP]


def converged_at(net: Net, step: float = 0.01, limit: float = 30.0) -> float:
    """Run until no port is learning or discarding-with-a-forwarding-role; return seconds."""
    start = net.lab.now
    for _ in range(round(limit / step)):
        if all(
            p.state == PortState.FORWARDING
            if p.role in (Role.ROOT, Role.DESIGNATED)
            else p.state == PortState.BLOCKING
            for p in net.all_ports()
        ):
            return net.lab.now - start
        net.lab.advance(step)
    raise AssertionError("no convergence")


@pytest.fixture
def two(lab) -> Net:
    # a has the lowest MAC of the two bridges: it is the root
    return Net(lab, ["a", "b"], [("a", "b"), ("a", "b")])


def test_election_roles_and_exactly_one_discarding_port(two) -> None:
    a, b = two.bridges["a"].stp, two.bridges["b"].stp
    assert a.is_root() and not b.is_root()
    assert b.root_port is two.port("b-a0")
    assert two.port("b-a1").role == Role.ALTERNATE
    assert {p.name: p.role for p in a.ports.values()} == {
        "a-b0": Role.DESIGNATED, "a-b1": Role.DESIGNATED, "h": Role.DESIGNATED,
    }  # fmt: skip
    assert two.discarding() == ["b-a1"]
    assert all(p.send_rstp for p in two.all_ports())


def test_proposal_and_agreement_forward_well_under_a_second(lab) -> None:
    net = Net(lab, ["a", "b"], [("a", "b"), ("a", "b")])
    # no timer has run yet (the fake clock has not moved): the handshake alone did it
    for name in ("a-b0", "a-b1", "b-a0"):
        assert net.port(name).state == PortState.FORWARDING
    assert net.port("a-b0").counters.agreements_in >= 1
    assert net.port("b-a0").counters.proposals_in >= 1


def test_convergence_time_rstp_against_stp(lab) -> None:
    rstp = Net(lab, ["a", "b"], [("a", "b"), ("a", "b")])
    t_rstp = converged_at(rstp)
    assert t_rstp < 0.5
    # the same topology with STP forwards after two forward delays (8 s here)
    from tests.unit.link.test_stp import Loop

    stp = Loop(lab, STP, STP)
    start = lab.now
    while (
        not all(
            s in (PortState.FORWARDING, PortState.BLOCKING)
            for br in stp.bridges
            for s in stp.states(br).values()
        )
        or lab.now - start < 1
    ):
        lab.advance(0.05)
        assert lab.now - start < 30
    assert lab.now - start >= 2 * STP.forward_delay


def test_a_broadcast_crosses_once(two) -> None:
    two.run(0.2)
    two.hosts["a"].take_raw()
    two.hosts["b"].take_raw()
    two.hosts["a"].send(FRAME, two.lab.now)
    two.lab.settle()
    assert data(two.hosts["b"]) == [FRAME]
    two.run(0.2)
    assert data(two.hosts["a"]) == []


def test_alternate_takes_over_at_once_when_the_root_port_goes_down(two) -> None:
    two.run(1)
    two.link_down("a-b0")
    b = two.bridges["b"].stp
    assert b.root_port is two.port("b-a1")
    assert two.port("b-a1").state == PortState.FORWARDING
    two.hosts["a"].take_raw()
    two.hosts["b"].take_raw()
    two.hosts["a"].send(FRAME, two.lab.now)
    two.lab.settle()
    assert data(two.hosts["b"]) == [FRAME]


def test_alternate_takes_over_after_three_missed_hellos(two) -> None:
    two.run(1)
    # a's port on link 0 goes mute (its BPDUs no longer reach b); the link stays up
    mute = two.port("a-b0")
    mute.tx_window, mute.tx_count = float("inf"), 1 << 30
    start = lab_now = two.lab.now
    assert two.port("b-a1").state == PortState.BLOCKING
    while two.port("b-a1").state != PortState.FORWARDING:
        two.lab.advance(0.05)
        assert two.lab.now - start < 5
    took = two.lab.now - lab_now
    assert 2.0 < took <= 3.0 + 1.0  # three hellos of 1 s, not max age + 2 forward delays
    assert two.bridges["b"].stp.root_port is two.port("b-a1")
    assert two.port("b-a0").counters.aged == 1


def test_three_bridges_ring_and_failover(lab) -> None:
    net = Net(lab, ["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    net.run(0.5)
    # a root; b and c reach it directly; b (lower id) is designated on b-c
    assert net.discarding() == ["c-b1"]
    assert net.port("c-b1").role == Role.ALTERNATE
    net.link_down("c-a2")
    assert net.bridges["c"].stp.root_port is net.port("c-b1")
    assert net.port("c-b1").state == PortState.FORWARDING
    assert net.discarding() == []
    for n in ("b", "c"):
        net.hosts[n].take_raw()
    net.hosts["a"].send(FRAME, net.lab.now)
    net.lab.settle()
    assert data(net.hosts["c"]) == [FRAME] and data(net.hosts["b"]) == [FRAME]


def test_topology_change_flushes_learnt_macs_on_the_other_ports(two) -> None:
    two.run(0.5)
    br_a = two.bridges["a"]
    # a station behind b is learnt on a's port a-b0
    two.hosts["b"].send(BCAST + bytes.fromhex("02000000bb01") + FRAME[12:], two.lab.now)
    two.lab.settle()
    assert br_a.plain is not None
    assert br_a.plain[bytes.fromhex("02000000bb01")].port.ifnet.name == "a-b0"
    before = br_a.stats.aged
    two.link_down("a-b0")  # b's alternate forwards: a change, told to a by the TC flag
    assert bytes.fromhex("02000000bb01") not in br_a.plain
    assert br_a.stats.aged == before  # flushed at once, not aged
    assert two.bridges["b"].stp.topology_changes >= 1
    assert two.port("a-b1").counters.tc_in >= 1
    # the TC flag stops after two hello times
    two.run(3)
    assert not two.bridges["a"].stp.tc and not two.bridges["b"].stp.tc


def test_edge_ports_forward_at_once_and_auto_edge_after_the_migrate_time(lab) -> None:
    net = Net(lab, ["a", "b"], [("a", "b")], edge_hosts=False)
    h = net.bridges["a"].ports["h"].stp
    assert isinstance(h, RstpPort)
    assert h.state == PortState.BLOCKING and not h.oper_edge and h.proposing
    net.run(2.5)
    assert h.state != PortState.FORWARDING
    net.run(0.6)
    assert h.oper_edge and h.state == PortState.FORWARDING
    # an edge port's start is no topology change
    changes = net.bridges["a"].stp.topology_changes
    net.bridges["a"].set_port_stp("h", 100, 32, net.lab.now, edge=True)
    assert net.bridges["a"].stp.topology_changes == changes
    edge = Net(lab, ["c", "d"], [("c", "d")], edge_hosts=True)
    sp = edge.bridges["c"].ports["h"].stp
    assert isinstance(sp, RstpPort)
    assert sp.oper_edge and sp.state == PortState.FORWARDING


def test_an_edge_port_that_hears_a_bpdu_is_no_longer_edge(two) -> None:
    h = two.bridges["a"].ports["h"].stp
    assert isinstance(h, RstpPort) and h.oper_edge
    bpdu = wire.Bpdu(
        False, wire.ROLE_DESIGNATED << wire.ROLE_SHIFT, wire.bridge_id(0, b"\x02" * 6), 0,
        wire.bridge_id(0, b"\x02" * 6), wire.port_id(32, 1), 0, 6, 1, 4, True,
    )  # fmt: skip
    two.hosts["a"].send(bpdu.frame(b"\x02\x00\x00\x00\x00\x77"), two.lab.now)
    two.lab.settle()
    assert not h.oper_edge
    # a better root heard there: h is now a's root port
    assert two.bridges["a"].stp.root_port is h


def test_falls_back_to_stp_when_an_stp_bpdu_comes_and_back_on_mcheck(lab) -> None:
    net = Net(lab, ["a", "b"], [("a", "b"), ("a", "b")], priorities={"b": 0})
    net.bridges["b"].set_stp(
        StpSettings(0, STP.hello_time, STP.max_age, STP.forward_delay, "stp"), lab.now
    )
    net.run(4)
    for name in ("a-b0", "a-b1"):
        p = net.port(name)
        assert not p.send_rstp and p.counters.migrations == 1
    # the 802.1D bridge is the root; a's two ports: root and alternate, no proposals: timers
    a = net.bridges["a"].stp
    assert not a.is_root() and a.root_port is net.port("a-b0")
    net.run(10)
    assert net.port("a-b1").state == PortState.BLOCKING
    assert net.port("a-b0").state == PortState.FORWARDING
    assert net.port("a-b0").describe(lab.now)["protocol"] == "stp"
    # mcheck: a tries RSTP again, hears STP, falls back after the migrate time
    net.bridges["a"].mcheck("a-b0", lab.now)
    assert net.port("a-b0").send_rstp
    net.run(4)
    assert not net.port("a-b0").send_rstp
    # the other side speaks RSTP again: so does a
    net.bridges["b"].set_stp(
        StpSettings(0, RSTP.hello_time, RSTP.max_age, RSTP.forward_delay, "rstp"), lab.now
    )
    net.run(4)
    assert net.port("a-b0").send_rstp and net.port("a-b1").send_rstp


def test_malformed_bpdus_are_dropped_and_counted(two) -> None:
    p = two.port("b-a0")
    frame = bytearray(
        wire.Bpdu(False, 0, 1, 0, 1, 1, 0, 6, 1, 4, True).frame(b"\x02\x00\x00\x00\x00\x66")
    )
    two.epairs["a-b0"].a.output(bytes(frame))  # role 0: unknown
    short = bytearray(frame)
    short[12:14] = (3 + 30).to_bytes(2, "big")
    two.epairs["a-b0"].a.output(bytes(short))
    two.lab.settle()
    assert p.counters.drops["bpdu_role"] == 1
    assert p.counters.drops["bpdu_short"] == 1
    assert two.bridges["b"].stp.root_port is p


def test_show_and_switching_protocols_at_run_time(two) -> None:
    d = two.bridges["b"].describe(two.lab.now)
    assert d["stp"]["protocol"] == "rstp"
    ports = {p["name"]: p["stp"] for p in d["ports"]}
    assert ports["b-a1"]["role"] == "alternate" and ports["b-a1"]["state"] == "discarding"
    assert ports["h"]["edge"] is True and ports["b-a0"]["protocol"] == "rstp"
    for br in two.bridges.values():
        br.set_stp(STP, two.lab.now)
    assert all(br.stp is not None and br.stp.protocol == "stp" for br in two.bridges.values())
    rstp = two.bridges["a"].stp
    two.bridges["a"].set_stp(RSTP, two.lab.now)
    assert two.bridges["a"].stp is not rstp and two.bridges["a"].stp.protocol == "rstp"
    for br in two.bridges.values():
        br.set_stp(None, two.lab.now)
        assert br.stp is None and all(p.forwarding for p in br.ports.values())


def solo(lab, q_cost: int = DEFAULT_PATH_COST) -> tuple[bridge_.Bridge, Epair]:
    """One RSTP bridge whose members p and q are the two ends of one epair."""
    vnet = lab.vnet("solo")
    brif = Ifnet(vnet, "br0", "bridge", lab.mac())
    vnet.link.add(brif)
    brif.up = True
    br = bridge_.create(brif)
    ends = []
    for name in ("p", "q"):
        ifp = Ifnet(vnet, name, "epair", lab.mac())
        vnet.link.add(ifp)
        ifp.up = True
        ends.append(ifp)
    pair = Epair(ends[0], ends[1])
    pair.queue_time = 3600.0
    lab.epairs.append(pair)
    br.add_port(ends[0], now=lab.now)
    br.add_port(ends[1], path_cost=q_cost, now=lab.now)
    br.set_stp(RSTP, lab.now)
    lab.settle()
    return br, pair


def test_two_ports_of_one_bridge_joined_make_a_backup_port_that_discards(lab) -> None:
    br, _ = solo(lab)
    for _ in range(20):
        lab.advance(0.05)
    p, q = br.ports["p"].stp, br.ports["q"].stp
    assert isinstance(p, RstpPort) and isinstance(q, RstpPort)
    assert (p.role, q.role) == (Role.DESIGNATED, Role.BACKUP)
    assert q.state == PortState.BLOCKING and p.state == PortState.FORWARDING
    assert br.stp is not None and br.stp.is_root()
    for _ in range(200):  # ten seconds: it stays that way (no loop, no flapping)
        lab.advance(0.05)
    assert (p.role, q.role) == (Role.DESIGNATED, Role.BACKUP) and q.state == PortState.BLOCKING
    assert q.counters.transitions == 0


def _designated(priority: int, age: float = 0.0, max_age: float = 6.0) -> bytes:
    """An RST BPDU from designated port 1 of root bridge ``priority``.02:02:02:02:02:02."""
    ident = wire.bridge_id(priority, b"\x02" * 6)
    return wire.Bpdu(
        False, wire.ROLE_DESIGNATED << wire.ROLE_SHIFT, ident, 0, ident, wire.port_id(32, 1),
        age, max_age, 1, 4, True,
    ).frame(b"\x02\x00\x00\x00\x00\x77")  # fmt: skip


def test_a_neighbour_that_gets_worse_is_believed_at_once(lab) -> None:
    # 17.6: a message from the same designated bridge (MAC) and port (number) replaces
    # what the port holds even when worse, e.g. after the neighbour's priority changed
    one = Net(lab, ["a"], [])
    a = one.bridges["a"].stp
    h = one.bridges["a"].ports["h"].stp
    one.hosts["a"].send(_designated(0), lab.now)
    lab.settle()
    assert a.root_port is h and not a.is_root()
    one.run(0.5)
    one.hosts["a"].send(_designated(0xF000), lab.now)
    lab.settle()
    assert a.is_root() and h.role == Role.DESIGNATED and h.vector[2] == a.bridge_id


def test_information_too_old_to_relay_is_aged_at_once(two) -> None:
    # 17.21.23: message age + 1 s beyond max age: the information ages out at once, so it
    # never makes a root port (the BPDU itself, age 5.75 < 6, is valid)
    a = two.bridges["a"].stp
    h = two.bridges["a"].ports["h"].stp
    two.hosts["a"].send(_designated(0, age=5.75), two.lab.now)
    two.lab.settle()
    assert a.is_root() and a.root_port is None and h.role == Role.DESIGNATED
    assert h.counters.aged == 1


def test_a_bpdu_as_old_as_max_age_is_dropped(two) -> None:
    h = two.bridges["a"].ports["h"].stp
    two.hosts["a"].send(_designated(0, age=6.0), two.lab.now)
    two.lab.settle()
    assert h.counters.drops["bpdu_age"] == 1 and two.bridges["a"].stp.is_root()


def test_a_port_backup_until_now_waits_two_hellos_before_it_forwards_as_root(lab) -> None:
    # 17.29.2: rbWhile holds 2 hello times while a port is backup and runs down after;
    # a root port that was backup forwards only then (its own designated port on the
    # link, the one it backed up, has had the time to hear the new root and discard)
    br, pair = solo(lab, q_cost=1)  # q's lower cost: root port once a root is heard there
    for _ in range(200):
        lab.advance(0.05)
    p, q = br.ports["p"].stp, br.ports["q"].stp
    assert isinstance(p, RstpPort) and isinstance(q, RstpPort)
    assert (p.role, q.role) == (Role.DESIGNATED, Role.BACKUP)
    assert p.state == PortState.FORWARDING
    # a better root's designated BPDU on the link: q hears it first, then p
    pair.a.output(_designated(0))
    lab.settle()
    assert q.role == Role.ROOT and q.state == PortState.BLOCKING
    pair.b.output(_designated(0))
    lab.settle()
    assert p.role == Role.ALTERNATE and p.state == PortState.BLOCKING
    for _ in range(38):  # 1.9 s
        lab.advance(0.05)
        pair.a.output(_designated(0))
        pair.b.output(_designated(0))
        lab.settle()
    assert q.state == PortState.BLOCKING
    for _ in range(4):
        lab.advance(0.05)
        pair.a.output(_designated(0))
        pair.b.output(_designated(0))
        lab.settle()
    assert q.state == PortState.FORWARDING and p.state == PortState.BLOCKING


def test_removing_ports_switching_protocol_and_destroy_leave_no_timer(two) -> None:
    two.run(2)
    a, b = two.bridges["a"], two.bridges["b"]
    for name in list(a.ports):
        a.remove_port(name)
    assert a.stp is not None and not a.stp.ports
    b.set_stp(STP, two.lab.now)  # the RSTP tree of b goes, an STP one comes
    b.set_stp(RSTP, two.lab.now)
    for br in (a, b):
        vnet = br.vnet
        bridge_.destroy(br.ifnet)
        vnet.timers.purge()
        assert len(vnet.timers) == 0, [t.callback for _, _, t in vnet.timers._heap]


def test_a_topology_change_leaves_a_port_that_only_learns_alone(lab) -> None:
    # 17.25: a port flushes and sends TC (PROPAGATING) only from ACTIVE, that is
    # forwarding as root or designated; one still learning ignores the change
    net = Net(lab, ["a", "b"], [("a", "b")], settings=STP)
    # a's port to b: no agreement (STP there), no edge (b's root port is silent): timers
    net.bridges["a"].ports["a-b0"].auto_edge = False
    net.bridges["a"].set_stp(RSTP, lab.now)
    net.run(5)
    p = net.port("a-b0")
    assert p.role == Role.DESIGNATED and p.state == PortState.LEARNING
    flushes = p.counters.flushes
    worse = wire.bridge_id(0xF000, b"\x02" * 6)
    tc = wire.Bpdu(
        False, wire.FLAG_TC | wire.ROLE_DESIGNATED << wire.ROLE_SHIFT, worse, 0, worse,
        wire.port_id(32, 1), 0, 6, 1, 4, True,
    )  # fmt: skip
    net.hosts["a"].send(tc.frame(b"\x02\x00\x00\x00\x00\x77"), lab.now)
    lab.settle()
    h = net.bridges["a"].ports["h"].stp
    assert isinstance(h, RstpPort) and h.counters.tc_in == 1
    assert p.counters.flushes == flushes and p.tc_until <= lab.now


def test_at_most_six_bpdus_a_second_leave_a_port(two) -> None:
    # 17.13.12 TxHoldCount: news beyond six a second waits for the next second
    two.run(2)
    br = two.bridges["a"]
    p = two.port("a-b0")
    sent = p.counters.bpdu_out
    for i in range(20):  # each priority change is news for the port's neighbour
        br.set_port_stp("a-b0", 100, 16 + i % 2, two.lab.now)
    burst = p.counters.bpdu_out - sent
    assert 1 <= burst <= 6 and p.new_info  # the latest news still waits
    two.lab.advance(1.0)
    assert p.counters.bpdu_out - sent > burst and not p.new_info
