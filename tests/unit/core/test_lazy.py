"""Lazy per-vnet state: an idle vnet holds no socket, TCP, firewall, DHCP or mirror state.

The state of a lazy subsystem is created the first time the vnet needs it
(a segment, a socket, a ruleset, a knob set to something else than its
default); views of an idle vnet show what a fresh state holds without
creating one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vrouter.api import views
from vrouter.core import limits
from vrouter.core.vnet import Vnet, VnetTree
from vrouter.daemon import metrics
from vrouter.inet import ipv4
from vrouter.inet6 import ipv6
from vrouter.stack import new_tree
from vrouter.transport.tcp import stack as tcp_stack
from vrouter.transport.tcp.segment import ACK, RST, SYN, build, parse
from vrouter.wire import udp

LAZY = ("tcp", "firewall", "dhcp", "mirror", "transport")
HOST = bytes([192, 0, 2, 10])
ROUTER = bytes([192, 0, 2, 1])


def test_a_new_vnet_holds_no_lazy_state_but_has_every_subsystem() -> None:
    vnet = new_tree().create("idle")
    for name in LAZY:
        assert vnet.has(name) and not vnet.holds(name), name
    assert vnet.holds("inet") and vnet.holds("link")
    assert vnet.inet6.own_rng is None  # its jitter generator comes with its first jitter


def test_asking_for_the_state_creates_it_once() -> None:
    vnet = new_tree().create("busy")
    tcp = vnet.tcp
    assert vnet.holds("tcp") and vnet.tcp is tcp
    assert vnet.inet.protocols[6] == tcp.input4  # the stack took over its entry points
    assert vnet.inet6.protocols[6] == tcp.input6
    assert not vnet.holds("firewall")


def test_an_unknown_attribute_is_still_an_attribute_error() -> None:
    vnet = new_tree().create("a")
    try:
        vnet.no_such_state  # noqa: B018
    except AttributeError as err:
        assert "no_such_state" in str(err)
    else:
        raise AssertionError("no AttributeError")


def test_sysctl_reads_the_default_and_only_a_change_creates_the_state() -> None:
    tree = new_tree()
    vnet = tree.create("a")
    sysctl = tree.registry.sysctl()
    assert sysctl.get(vnet, "net.pf.states_max") == 10000
    assert sysctl.get(vnet, "net.inet.tcp.syn_queue_limit") == tcp_stack.state_of(
        tree.registry.pristine(Vnet)
    ).table.config.syn_queue_limit
    sysctl.set(vnet, "net.pf.states_max", 10000)  # the default: nothing to store
    assert not vnet.holds("firewall")
    sysctl.set(vnet, "net.pf.states_max", 500)
    assert vnet.holds("firewall") and vnet.firewall.fw.states.max_states == 500
    assert sysctl.get(vnet, "net.pf.states_max") == 500
    assert not vnet.holds("tcp")


def test_a_child_gets_the_knobs_its_parent_changed_and_nothing_else() -> None:
    tree = new_tree()
    sysctl = tree.registry.sysctl()
    lab = tree.create("lab")
    sysctl.set(lab, "net.inet.tcp.syn_queue_limit", 7)
    child = tree.create("lab/r1")
    assert child.holds("tcp") and sysctl.get(child, "net.inet.tcp.syn_queue_limit") == 7
    assert not child.holds("firewall") and not child.holds("mirror")
    quiet = tree.create("quiet")
    assert not tree.create("quiet/r1").holds("tcp") and not quiet.holds("tcp")


def test_a_limit_below_a_lazy_default_creates_the_state_capped_and_above_it_nothing() -> None:
    tree = new_tree()
    sysctl = tree.registry.sysctl()
    roomy, tight = tree.create("roomy"), tree.create("tight")
    limits.set_limit(roomy, "states", 50000, sysctl)
    limits.set_limit(tight, "states", 100, sysctl)
    assert not roomy.holds("firewall") and sysctl.get(roomy, "net.pf.states_max") == 10000
    assert tight.holds("firewall") and tight.firewall.fw.states.max_states == 100
    limits.set_limit(tight, "states", 0, sysctl)  # raised again: the default comes back
    assert sysctl.get(tight, "net.pf.states_max") == 10000


def test_the_first_tcp_segment_creates_the_stack_which_answers_it(lab: Any) -> None:
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    h1.learn_router(lab.now)
    lab.settle()
    assert not red.holds("tcp")
    h1.send(h1.frame(h1.packet("192.0.2.1", 6, build(HOST, ROUTER, 40000, 9, 7000, 0, SYN,
                                                       65535))), lab.now)  # fmt: skip
    lab.settle()
    [rst] = [parse(bytes(f.data.data))[0] for f in h1.take_ip() if f.data.p == 6]
    assert rst.flags == RST | ACK and rst.ack == 7001
    assert red.holds("tcp") and red.tcp.stats.noport == 1


def test_the_first_udp_datagram_creates_the_socket_tables_and_is_owed_unreachable(
    lab: Any,
) -> None:
    red = lab.vnet("red")
    h1 = lab.host(red, "eth0", "192.0.2.1/24", "192.0.2.10")
    h1.learn_router(lab.now)
    lab.settle()
    assert not red.holds("transport")
    datagram = udp.build(HOST, ROUTER, 40000, 33434, b"probe")
    h1.send(h1.frame(h1.packet("192.0.2.1", 17, datagram)), lab.now)
    lab.settle()
    [icmp] = [f.data.data for f in h1.take_ip() if f.data.p == 1]
    assert (icmp.type, icmp.code) == (3, 3)  # port unreachable
    assert red.holds("transport") and red.transport.stats.udp_noport == 1


def test_unloading_tcp_and_transport_gives_every_vnet_back_its_closed_port_handlers() -> None:
    tree = new_tree()
    idle, busy = tree.create("idle"), tree.create("busy")
    busy.tcp  # noqa: B018
    busy.transport  # noqa: B018
    tree.unload("tcp")
    tree.unload("transport")
    for vnet in (idle, busy):
        for proto in (6, 17):
            assert vnet.inet.protocols[proto] is ipv4.BUILTIN_PROTOCOLS[proto]
            assert vnet.inet6.protocols[proto] is ipv6.BUILTIN_PROTOCOLS[proto]
        assert 6 not in vnet.inet.offload_protocols and not vnet.holds("tcp")
        assert not vnet.holds("transport")


def test_destroying_an_idle_vnet_creates_nothing() -> None:
    tree = new_tree()
    tree.create("a")
    tree.destroy("a")
    assert "a" not in tree


@dataclass
class _Host:
    tree: VnetTree
    endpoints: tuple[()] = ()


def _views(tree: VnetTree, name: str) -> dict[str, Any]:
    host: Any = _Host(tree)
    args = {"vnet": name}
    return {
        "netstat": views.netstat(host, args),
        "sockstat": views.sockstat(host, args),
        "show": views.vnet_show(host, args),
    }


@dataclass
class _Daemon:
    tree: VnetTree
    started: float = 0.0


def _scrape(tree: VnetTree) -> list[str]:
    """Return the vnets' samples of one scrape (the process's own vary from one to the next)."""
    text = metrics.Exporter(_Daemon(tree)).text()
    return [line for line in text.splitlines() if 'vnet="' in line]


def test_views_and_metrics_of_an_idle_vnet_show_fresh_values_without_creating_state() -> None:
    tree = new_tree()
    idle = tree.create("idle")
    seen = _views(tree, "idle")
    scraped = _scrape(tree)
    for name in LAZY:
        assert not idle.holds(name), name
    assert seen["netstat"]["tcp"]["noport"] == 0 and seen["netstat"]["pf"]["passed"] == 0
    assert seen["sockstat"]["tcp"] == [] and seen["sockstat"]["tcp_listeners"] == []
    assert 'vrouter_tcp_listeners{vnet="idle"} 0' in scraped
    assert 'vrouter_pf_states_limit{vnet="idle"} 10000' in scraped
    assert 'vrouter_pf_enabled{vnet="idle"} 0' in scraped
    for name in LAZY:
        getattr(idle, name)
    assert _views(tree, "idle") == seen
    assert _scrape(tree) == scraped
