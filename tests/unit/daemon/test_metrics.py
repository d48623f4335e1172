"""Tests for vrouter.daemon.metrics: the collector, its HTTP endpoint, the config key.

The scenario: two router vnets joined by an epair, a station on each side,
plus a lone vnet ``green``::

    h1 192.0.2.10 --- eth0 [red] ep0 ===== ep0 [blue] eth0 --- h2 203.0.113.10
            192.0.2.1/24     198.51.100.1/24  198.51.100.2/24   203.0.113.1/24

Traffic goes through the sans-IO stack; the exposition text is produced by
:class:`metrics.Exporter` and read back with prometheus-client's own parser,
so what is checked is what Prometheus would see.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import gzip
import re
import socket
import subprocess
import textwrap
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import dpkt
import pytest
from prometheus_client import REGISTRY
from prometheus_client.core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from vrouter import __version__
from vrouter.api import views
from vrouter.core.vnet import VnetTree
from vrouter.daemon import metrics, workers_metrics
from vrouter.daemon.config import ConfigError, parse
from vrouter.inet import ipv4
from vrouter.inet.fragment import ReassStats
from vrouter.inet.state import ArpStats, IcmpStats, IgmpStats, IpStats
from vrouter.inet6.state import Dhcp6Stats, Icmp6Stats, Ip6Stats
from vrouter.link import bridge as bridge_
from vrouter.link.ifnet import IfCounters, Ifnet
from vrouter.link.stp import StpSettings
from vrouter.route import state as route_state
from vrouter.transport.tcp.stats import TcpStats

STARTED = 1_700_000_000.0


@dataclass
class FakeDaemon:
    """Just what the collector reads from a daemon."""

    tree: VnetTree | None
    started: float = STARTED


class Scrape:
    """One scrape, parsed back: families by name and the raw text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}

    def family(self, name: str) -> Metric:
        assert name in self.families, f"no family {name}"
        return self.families[name]

    def samples(self, sample: str, **labels: str) -> list[float]:
        """Return the values of ``sample`` whose labels include ``labels``."""
        return [
            s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == sample and labels.items() <= s.labels.items()
        ]

    def value(self, sample: str, **labels: str) -> float:
        """Return the value of the one sample ``sample`` with exactly ``labels``."""
        found = [
            s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == sample and s.labels == labels
        ]
        assert len(found) == 1, f"{sample}{labels}: {len(found)} samples"
        return found[0]

    def vnets(self) -> set[str]:
        """Return every value of the ``vnet`` label."""
        return {
            s.labels["vnet"]
            for f in self.families.values()
            for s in f.samples
            if "vnet" in s.labels
        }


def scrape(daemon: FakeDaemon, sources: tuple[metrics.Source, ...] = metrics.SOURCES) -> Scrape:
    return Scrape(metrics.Exporter(daemon, sources).text())


class Scenario:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.red = lab.vnet("red")
        self.blue = lab.vnet("blue")
        self.green = lab.vnet("green")
        self.h1 = lab.host(self.red, "eth0", "192.0.2.1/24", "192.0.2.10")
        self.h2 = lab.host(self.blue, "eth0", "203.0.113.1/24", "203.0.113.10")
        self.g = lab.iface(self.green, "lo1", "192.0.2.1/24")
        lab.epair(self.red, "ep0", "198.51.100.1/24", self.blue, "ep0", "198.51.100.2/24")
        route_state.add_static(
            self.red, IPv4Network("203.0.113.0/24"), via=IPv4Address("198.51.100.2")
        )
        route_state.add_static(
            self.blue, IPv4Network("192.0.2.0/24"), via=IPv4Address("198.51.100.1")
        )
        self.daemon = FakeDaemon(lab.tree)

    def ping_across(self, count: int) -> None:
        """Ping h2 from h1 ``count`` times (through red and blue and back)."""
        for seq in range(count):
            self.h1.send(self.h1.ping("203.0.113.10", seq=seq), self.lab.now)
            self.lab.settle()
            # h2 does not answer by itself: send the reply it would send.
            for frame in self.h2.take_ip():
                request = frame.data
                reply = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHOREPLY, data=request.data.data)
                self.h2.send(
                    self.h2.frame(self.h2.packet(request.src, dpkt.ip.IP_PROTO_ICMP, reply)),
                    self.lab.now,
                )
            self.lab.settle()


@pytest.fixture
def net(lab) -> Scenario:
    return Scenario(lab)


# --------------------------------------------------------------------------
# Daemon-wide series
# --------------------------------------------------------------------------


def test_build_info_vnets_and_start_time(net: Scenario) -> None:
    s = scrape(net.daemon)
    assert s.value("vrouter_build_info", version=__version__) == 1
    assert s.family("vrouter_build_info").type == "gauge"
    assert s.value("vrouter_vnets") == 3
    assert s.value("vrouter_start_time_seconds") == STARTED


def test_no_tree_yet_is_a_valid_scrape() -> None:
    s = scrape(FakeDaemon(None))
    assert s.value("vrouter_vnets") == 0
    assert s.vnets() == set()


def test_process_and_platform_collectors_on_own_registry(net: Scenario) -> None:
    s = scrape(net.daemon)
    assert s.samples("process_cpu_seconds_total")
    assert s.samples("python_info")
    # A second registry for another daemon does not clash, the global one stays clean.
    other = scrape(FakeDaemon(None))
    assert other.value("vrouter_vnets") == 0
    assert not [f for f in REGISTRY.collect() if f.name.startswith("vrouter_")]


# --------------------------------------------------------------------------
# Interfaces
# --------------------------------------------------------------------------


def test_interface_counters_follow_traffic(net: Scenario) -> None:
    before = scrape(net.daemon)
    net.ping_across(3)
    s = scrape(net.daemon)
    for vnet, ifname in (("red", "eth0"), ("red", "ep0"), ("blue", "eth0"), ("blue", "ep0")):
        ifp = net.lab.tree.get(vnet).link.get(ifname)
        c = ifp.counters
        labels = {"vnet": vnet, "interface": ifname}
        for attr, name in (
            ("rx_packets", "receive_packets"),
            ("rx_bytes", "receive_bytes"),
            ("rx_errors", "receive_errors"),
            ("tx_packets", "transmit_packets"),
            ("tx_bytes", "transmit_bytes"),
            ("tx_errors", "transmit_errors"),
        ):
            assert s.value(f"vrouter_interface_{name}_total", **labels) == getattr(c, attr)
        grew = s.value("vrouter_interface_receive_packets_total", **labels) - before.value(
            "vrouter_interface_receive_packets_total", **labels
        )
        assert grew >= 3, (vnet, ifname)
        assert s.value("vrouter_interface_up", **labels) == 1
        assert s.value("vrouter_interface_mtu_bytes", **labels) == 1500
    assert s.family("vrouter_interface_receive_packets").type == "counter"


def test_drops_by_reason_and_down_interface(net: Scenario) -> None:
    net.g.drop("ip_badsum", error=True)
    net.g.drop("ip_badsum", error=True)
    net.g.drop("not_for_us")
    net.g.up = False
    net.g.output(b"\x00" * 60)
    net.g.mtu = 9000
    s = scrape(net.daemon)
    labels = {"vnet": "green", "interface": "lo1"}
    assert s.value("vrouter_interface_receive_drops_total", **labels, reason="ip_badsum") == 2
    assert s.value("vrouter_interface_receive_drops_total", **labels, reason="not_for_us") == 1
    assert s.value("vrouter_interface_receive_errors_total", **labels) == 2
    assert s.value("vrouter_interface_transmit_drops_total", **labels, reason="link_down") == 1
    assert s.value("vrouter_interface_up", **labels) == 0
    assert s.value("vrouter_interface_mtu_bytes", **labels) == 9000
    # Reasons never seen have no series (no guessing of reason names).
    assert not s.samples("vrouter_interface_receive_drops_total", vnet="red")


# --------------------------------------------------------------------------
# Protocol counters
# --------------------------------------------------------------------------


def test_ip_forward_and_icmp_counters(net: Scenario) -> None:
    net.ping_across(4)
    net.h1.send(net.h1.ping("192.0.2.1"), net.lab.now)  # echo to red itself
    net.lab.settle()
    s = scrape(net.daemon)
    for name in ("red", "blue"):
        stats = net.lab.tree.get(name).inet.stats
        assert s.value("vrouter_ip_forward_total", vnet=name) == stats.forward >= 8
        assert s.value("vrouter_ip_received_total", vnet=name) == stats.total
    assert s.value("vrouter_icmp_in_echo_total", vnet="red") == 1
    assert s.value("vrouter_icmp_out_echo_reply_total", vnet="red") == 1
    assert s.value("vrouter_arp_rx_replies_total", vnet="red") >= 1
    assert s.family("vrouter_ip_forward").type == "counter"


STATS_CLASSES = (
    ("vrouter_ip", IpStats, "inet", "stats"),
    ("vrouter_icmp", IcmpStats, "inet", "icmp"),
    ("vrouter_igmp", IgmpStats, "inet", "igmp"),
    ("vrouter_arp", ArpStats, "inet", "arpstat"),
    ("vrouter_ip6", Ip6Stats, "inet6", "stats"),
    ("vrouter_icmp6", Icmp6Stats, "inet6", "icmp"),
    ("vrouter_dhcp6", Dhcp6Stats, "inet6", "dhcp6_stats"),
    ("vrouter_tcp", TcpStats, "tcp", "stats"),
)


SPELT_OUT = {
    "total": "received",
    "sndtotal": "segments_sent",
    "rcvtotal": "segments_received",
    "sndbyte": "snd_bytes",
    "sndrexmitbyte": "sndrexmit_bytes",
    "rcvbyte": "rcv_bytes",
    "rcvdupbyte": "rcvdup_bytes",
    "rcvoobyte": "rcvoo_bytes",
    "rcvbyteafterwin": "rcvafterwin_bytes",
    "rcvackbyte": "rcvack_bytes",
    "in_ns": "in_neighbour_solicitations",
    "out_ns": "out_neighbour_solicitations",
    "in_na": "in_neighbour_advertisements",
    "out_na": "out_neighbour_advertisements",
    "in_rs": "in_router_solicitations",
    "out_rs": "out_router_solicitations",
    "in_ra": "in_router_advertisements",
    "out_ra": "out_router_advertisements",
}
"""Fields whose metric is not named after them: no ``_total_total``, bytes end in
``_bytes``, ND spelt out (promtool reads ``_ns_`` as nanoseconds)."""


def docstrings(cls: type) -> dict[str, str]:
    """Return the field docstrings of ``cls`` read with a regex (not the module's ast code)."""
    source = Path(__import__(cls.__module__, fromlist=["_"]).__file__).read_text()
    body = source.split(f"class {cls.__name__}", 1)[1].split("\n\n\n", 1)[0]
    pairs = re.findall(r'^    (\w+): int = 0\n    """(.*?)"""', body, re.M | re.S)
    assert pairs, cls
    return {name: " ".join(doc.split()) for name, doc in pairs}


@pytest.mark.parametrize(("prefix", "cls", "subsystem", "attr"), STATS_CLASSES)
def test_every_stats_field_is_a_counter_with_its_docstring(
    net: Scenario, prefix: str, cls: type, subsystem: str, attr: str
) -> None:
    stats = getattr(getattr(net.red, subsystem), attr)
    blue = getattr(getattr(net.blue, subsystem), attr)
    for i, f in enumerate(dataclasses.fields(cls)):
        setattr(stats, f.name, 1000 + i)
    s = scrape(net.daemon)
    docs = docstrings(cls)
    assert set(docs) == {f.name for f in dataclasses.fields(cls)}
    for i, f in enumerate(dataclasses.fields(cls)):
        name = f"{prefix}_{SPELT_OUT.get(f.name, f.name)}"
        family = s.family(name)
        assert family.type == "counter"
        assert family.documentation == docs[f.name].replace("``", "")
        assert s.value(f"{name}_total", vnet="red") == 1000 + i
        assert s.value(f"{name}_total", vnet="blue") == getattr(blue, f.name) < 1000


def test_help_strings_are_the_dataclass_docstrings(net: Scenario) -> None:
    s = scrape(net.daemon)
    assert s.family("vrouter_ip_badsum").documentation == "Dropped: header checksum wrong."
    assert s.family("vrouter_ip6_hoplimit_exceeded").documentation == (
        "Dropped: hop limit would reach 0 (time exceeded sent)."
    )
    assert s.family("vrouter_interface_receive_packets").documentation == (
        "Frames received from the link, valid or not."
    )
    assert s.family("vrouter_ip_reass_timeout").documentation == (
        "Datagrams dropped because their deadline passed before they completed."
    )
    if_docs = docstrings(IfCounters)
    assert s.family("vrouter_interface_transmit_errors").documentation == if_docs["tx_errors"]


def test_field_docs_reads_class_field_docstrings() -> None:
    docs = metrics.field_docs(ReassStats)
    assert docs["dead"] == (
        "Fragments ignored because their datagram was already dropped and has not timed out."
    )
    assert set(docs) == {f.name for f in dataclasses.fields(ReassStats)}

    @dataclass
    class Local:
        documented: int = 0
        """A field
        over two lines."""
        bare: int = 0

    assert metrics.field_docs(Local) == {"documented": "A field over two lines."}


def test_reassembly_counters_and_memory(net: Scenario) -> None:
    head = net.h1.packet(
        "192.0.2.1", dpkt.ip.IP_PROTO_UDP, b"\x00" * 64, ident=0x0BAD
    )  # the first of two fragments; the second never comes
    head.mf = 1
    net.h1.send(net.h1.frame(head), net.lab.now)
    s = scrape(net.daemon)
    reass = net.red.inet.reass
    assert s.value("vrouter_ip_reass_fragments_total", vnet="red") == 1
    assert s.value("vrouter_ip_reass_memory_bytes", vnet="red", family="inet") == reass.memory()
    assert reass.memory() > 64
    assert s.value("vrouter_ip_reass_memory_bytes", vnet="red", family="inet6") == 0
    assert s.value("vrouter_ip6_reass_fragments_total", vnet="red") == 0
    net.lab.advance(31)  # past the 30 s reassembly timeout
    s = scrape(net.daemon)
    assert s.value("vrouter_ip_reass_timeout_total", vnet="red") == 1
    assert s.value("vrouter_ip_reass_memory_bytes", vnet="red", family="inet") == 0


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


def test_neighbours_and_routes(net: Scenario) -> None:
    net.ping_across(1)
    s = scrape(net.daemon)
    for vnet in net.lab.tree:
        arp_states = [e.state for e in vnet.inet.arp.entries.values()]
        for state in ("incomplete", "reachable", "stale"):
            assert s.value(
                "vrouter_neighbours", vnet=vnet.name, family="inet", state=state
            ) == arp_states.count(state)
        nd_states = [e.state for e in vnet.inet6.nd.entries.values()]
        for state in ("incomplete", "reachable", "stale", "delay", "probe"):
            assert s.value(
                "vrouter_neighbours", vnet=vnet.name, family="inet6", state=state
            ) == nd_states.count(state)
        assert s.value("vrouter_routes", vnet=vnet.name, family="inet") == len(vnet.route.fib)
        assert s.value("vrouter_routes", vnet=vnet.name, family="inet6") == len(vnet.route.fib6)
    # red: eth0's and ep0's networks plus one static route; h1 and blue's ep0 resolved.
    assert s.value("vrouter_routes", vnet="red", family="inet") == 3
    for source, count in (("connected", 2), ("static", 1)):
        labels = {"vnet": "red", "family": "inet", "source": source}
        assert s.value("vrouter_routes_by_source", **labels, state="installed") == count
        assert s.value("vrouter_routes_by_source", **labels, state="held") == 0
    assert s.value("vrouter_neighbours", vnet="red", family="inet", state="reachable") == 2
    # inet and inet6 both yield vrouter_neighbours: one header, samples merged.
    assert s.text.count("# TYPE vrouter_neighbours gauge") == 1
    assert s.text.count("# HELP vrouter_neighbours ") == 1


def test_each_path_of_a_multipath_route_has_its_packet_counter(net: Scenario) -> None:
    prefix = IPv4Network("198.18.0.0/24")
    paths = [(IPv4Address("198.51.100.2"), None), (IPv4Address("192.0.2.10"), None)]
    route = route_state.resolve_multipath(net.red, prefix, paths, weights=(2, 1))
    net.red.route.fib.add(route)
    route.nexthops[0].use, route.nexthops[1].use = 7, 3
    s = scrape(net.daemon)
    labels = {"vnet": "red", "family": "inet", "prefix": "198.18.0.0/24", "source": "static"}
    path = "vrouter_route_path_packets_total"
    assert s.value(path, **labels, gateway="198.51.100.2", interface="ep0") == 7
    assert s.value(path, **labels, gateway="192.0.2.10", interface="eth0") == 3
    net.red.route.fib.delete(prefix)
    assert not scrape(net.daemon).samples(path, vnet="red")


# --------------------------------------------------------------------------
# Life cycle: destroyed vnets, unloaded subsystems
# --------------------------------------------------------------------------


def test_destroyed_vnet_disappears(net: Scenario) -> None:
    assert "green" in scrape(net.daemon).vnets()
    net.lab.tree.destroy("green")
    s = scrape(net.daemon)
    assert s.vnets() == {"red", "blue"}
    assert s.value("vrouter_vnets") == 2
    assert not s.samples("vrouter_interface_up", interface="lo1")


def test_unloaded_subsystem_is_skipped(net: Scenario) -> None:
    tree = net.lab.tree
    tree.registry.unload("tcp", list(tree))  # it needs inet6
    tree.registry.unload("transport", list(tree))  # so does transport
    tree.registry.unload("firewall", list(tree))  # so does the firewall
    tree.registry.unload("mirror", list(tree))  # and the mirror
    tree.registry.unload("inet6", list(tree))
    s = scrape(net.daemon)
    assert not s.samples("vrouter_ip6_forward_total")
    assert not s.samples("vrouter_neighbours", family="inet6")
    assert s.samples("vrouter_ip_forward_total", vnet="red")


# --------------------------------------------------------------------------
# Extending: sources and the reload hook
# --------------------------------------------------------------------------


def test_an_extra_source_adds_families_and_merges_shared_ones(net: Scenario) -> None:
    def read(vnet) -> list[metrics.Entry]:
        pinned = metrics.label("family", "inet") + metrics.label("state", "firewall-pinned")
        return [7, [(pinned, 1)] if vnet.name == "red" else []]

    extra = metrics.Source(
        "extra",
        (
            metrics.Family("vrouter_firewall_rules", "gauge", "Rules."),
            metrics.Family("vrouter_neighbours", "gauge", "ignored", ("family", "state")),
        ),
        read,
    )
    s = scrape(net.daemon, (*metrics.SOURCES, extra))
    assert s.value("vrouter_firewall_rules", vnet="blue") == 7
    assert s.value("vrouter_neighbours", vnet="red", family="inet", state="firewall-pinned") == 1
    assert s.family("vrouter_neighbours").documentation.startswith("Neighbour cache entries")


def test_a_family_name_with_two_types_is_an_error(net: Scenario) -> None:
    clash = metrics.Source(
        "clash", (metrics.Family("vrouter_routes", "counter", "Not a gauge."),), lambda v: [1]
    )
    with pytest.raises(ValueError, match="vrouter_routes"):
        metrics.Exporter(net.daemon, (*metrics.SOURCES, clash)).text()


def test_reload_metrics_absent_until_the_daemon_keeps_them(net: Scenario) -> None:
    s = scrape(net.daemon)
    assert not [n for n in s.families if n.startswith("vrouter_config_")]

    @dataclass
    class Reloading(FakeDaemon):
        reloads: dict[str, int] = dataclasses.field(default_factory=dict)
        last_reload_success: float | None = None

    daemon = Reloading(net.lab.tree, reloads={"success": 3, "failure": 1})
    s = scrape(daemon)
    assert s.value("vrouter_config_reloads_total", result="success") == 3
    assert s.value("vrouter_config_reloads_total", result="failure") == 1
    assert "vrouter_config_last_reload_success_timestamp_seconds" not in s.families
    daemon.last_reload_success = 1_700_000_100.0
    s = scrape(daemon)
    assert s.value("vrouter_config_last_reload_success_timestamp_seconds") == 1_700_000_100.0


def test_names_and_labels_follow_conventions(net: Scenario) -> None:
    net.ping_across(1)
    s = scrape(net.daemon)
    allowed = {"vnet", "interface", "reason", "family", "state", "version", "rule", "kind",
               "source", "port"}  # port: a bridge member (vrouter_bridge_port_*)
    for family in s.families.values():
        if not family.name.startswith("vrouter_"):
            continue
        assert re.fullmatch(r"vrouter_[a-z0-9_]+", family.name)
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith("_total")
            else:
                assert not sample.name.endswith("_total")
            assert set(sample.labels) <= allowed, sample
            for value in sample.labels.values():
                assert value and not value.isdigit(), sample


METRICS_PAGE = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def _readme_renames() -> list[tuple[str, str]]:
    """Return the (old, new) series names of the table of renamed series in docs/metrics.md."""
    section = METRICS_PAGE.read_text().split("## Renamed series", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `(vrouter_\w+)` \| `(vrouter_\w+)` \|$", section, re.M)


def test_renamed_series_are_exported_under_their_new_names_only(net: Scenario) -> None:
    renames = _readme_renames()
    assert len(renames) >= 15
    net.ping_across(1)
    text = scrape(net.daemon).text
    names = {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}
    for old, new in renames:
        assert old not in names, old
        assert new in names, new


def test_every_series_is_written_once(net: Scenario) -> None:
    net.ping_across(1)
    lines = [line.rsplit(" ", 1)[0] for line in scrape(net.daemon).text.splitlines()]
    series = [line for line in lines if not line.startswith("#")]
    assert len(series) == len(set(series))
    assert 'vrouter_pf_state_table_full_total{vnet="red"}' in series
    assert 'vrouter_pf_state_limit_total{vnet="red"}' in series


def test_names_carry_units_and_one_spelling(net: Scenario) -> None:
    net.ping_across(1)
    s = scrape(net.daemon)
    names = {sample.name for f in s.families.values() for sample in f.samples}
    assert not [n for n in names if "_total_total" in n]
    assert not [n for n in names if "neighbor" in n]
    assert not [n for n in names if "byte" in n and not re.search(r"_bytes(_total)?$", n)]
    memory = [n for n in names if "reass" in n and "memory" in n]
    assert memory == ["vrouter_ip_reass_memory_bytes"]
    assert s.family("vrouter_ip_reass_evicted").type == "counter"


def test_bridge_series_carry_units_and_follow_conventions(net: Scenario) -> None:
    lab = net.lab
    vnet = lab.vnet("l2")
    hosts = [lab.host(vnet, f"p{i}", None, None) for i in (1, 2)]
    brif = Ifnet(vnet, "br0", "bridge", lab.mac())
    vnet.link.add(brif)
    br = bridge_.create(brif)
    for host in hosts:
        br.add_port(host.ifp, storm_pps=1)
    ipv4.set_up(vnet, brif, lab.now)
    a, b = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")
    for _ in range(2):  # the second broadcast exceeds p1's storm limit
        hosts[0].send(b"\xff" * 6 + a + b"\x88\xb5" + bytes(46), lab.now)
    hosts[1].send(a + b + b"\x88\xb5" + bytes(46), lab.now)
    s = scrape(net.daemon)
    port = {"vnet": "l2", "interface": "br0", "port": "p1"}
    assert s.value("vrouter_bridge_fdb_entries", vnet="l2", interface="br0") == 2
    assert s.value("vrouter_bridge_fdb_learned_total", vnet="l2", interface="br0") == 2
    assert s.value("vrouter_bridge_port_flooded_frames_total", **port) == 1
    assert s.value("vrouter_bridge_port_sent_frames_total", **port) == 1
    assert s.value("vrouter_bridge_port_drops_total", **port, reason="storm_control") == 1
    names = [f.name for f in s.families.values() if f.name.startswith("vrouter_bridge_")]
    for name in names:
        family = s.families[name]
        if "_stp_" in name:  # test_spanning_tree_series
            continue
        assert family.type == ("gauge" if name.endswith("_entries") else "counter"), name
        assert name.endswith(("_entries", "_frames", "_drops")) or "_fdb_" in name, name
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=s.text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_spanning_tree_series(net: Scenario) -> None:
    lab = net.lab
    vnet = lab.vnet("l2")
    hosts = [lab.host(vnet, f"p{i}", None, None) for i in (1, 2)]
    brif = Ifnet(vnet, "br0", "bridge", lab.mac())
    vnet.link.add(brif)
    br = bridge_.create(brif)
    for host in hosts:
        br.add_port(host.ifp, now=lab.now)
    brif.up = True
    br.set_stp(StpSettings(hello_time=1, max_age=6, forward_delay=4), lab.now)
    for _ in range(40):
        lab.advance(0.25)
    hosts[0].send(bytes.fromhex("0180c2000000") + bytes(6) + b"\x00\x26\xaa", lab.now)
    s = scrape(net.daemon)
    port = {"vnet": "l2", "interface": "br0", "port": "p1"}
    assert s.value("vrouter_bridge_stp_root", vnet="l2", interface="br0") == 1
    assert s.value("vrouter_bridge_stp_root_path_cost", vnet="l2", interface="br0") == 0
    assert s.value("vrouter_bridge_stp_topology_changes_total", vnet="l2", interface="br0") == 1
    assert s.value("vrouter_bridge_stp_port_state", **port) == 3  # forwarding
    assert s.value("vrouter_bridge_stp_port_bpdus_sent_total", **port) >= 9
    assert s.value("vrouter_bridge_stp_port_bpdus_received_total", **port) == 0
    assert s.value("vrouter_bridge_stp_port_bpdu_drops_total", **port, reason="bpdu_length") == 1
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=s.text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_finds_no_lint_problems(net: Scenario) -> None:
    net.ping_across(1)
    net.g.drop("ip_badsum", error=True)
    text = scrape(net.daemon).text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------
# The HTTP endpoint
# --------------------------------------------------------------------------


def _http(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


Call = tuple[str, str] | tuple[str, str, dict[str, str]] | bytes


def serve(
    daemon: FakeDaemon,
    calls: list[Call],
    sources: tuple[metrics.Source, ...] = metrics.SOURCES,
    selection: metrics.Selection | None = None,
) -> list[tuple[int, dict[str, str], bytes] | bytes]:
    """Serve *daemon*'s metrics on a free port and make *calls*: (method, path[, headers])
    requests, or raw bytes."""
    exporter = metrics.Exporter(daemon, sources)

    async def expose(query: metrics.Query) -> Iterator[str]:
        return exporter.steps(query)

    async def main() -> list[tuple[int, dict[str, str], bytes] | bytes]:
        chosen = selection or metrics.Selection(known=exporter.names)
        server = metrics.MetricsServer(expose, lambda: chosen)
        await server.start("127.0.0.1", 0)
        port = int(server.urls()[0].rsplit(":", 1)[1].split("/")[0])
        answers: list[tuple[int, dict[str, str], bytes] | bytes] = []
        try:
            for call in calls:
                if isinstance(call, bytes):
                    answers.append(await asyncio.to_thread(_raw, port, call))
                else:
                    answers.append(await asyncio.to_thread(_http, port, *call))
        finally:
            await server.close()
        return answers

    return asyncio.run(main())


def test_http_server_serves_metrics_on_the_loop(net: Scenario, caplog) -> None:
    calls: list[Call] = [
        ("GET", "/metrics"),
        ("GET", "/metrics?name[]=x"),
        ("HEAD", "/metrics"),
        ("GET", "/"),
        ("POST", "/metrics"),
        b"nonsense\r\n\r\n",
    ]
    with caplog.at_level("INFO", logger="vrouter.metrics"):
        get, query, head, root, post, garbage = serve(net.daemon, calls)
    assert any(
        "metrics exporter listening on http://127.0.0.1:" in r.message for r in caplog.records
    )
    assert isinstance(get, tuple) and isinstance(head, tuple) and isinstance(post, tuple)
    status, headers, body = get
    assert status == 200
    assert headers["Content-Type"] == metrics.CONTENT_TYPE_LATEST
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Encoding" not in headers
    families = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {"vrouter_build_info", "vrouter_interface_receive_packets"} <= families
    assert query[0] == 200
    assert head[0] == 200 and head[2] == b""
    assert head[1]["Content-Type"] == metrics.CONTENT_TYPE_LATEST
    assert root[0] == 404
    assert post[0] == 405 and post[1]["Allow"] == "GET, HEAD"
    assert isinstance(garbage, bytes) and garbage.startswith(b"HTTP/1.1 400 ")


def test_http_server_reports_a_failing_source_as_500(net: Scenario, caplog) -> None:
    def read(vnet) -> list[metrics.Entry]:
        raise RuntimeError("boom")

    broken = metrics.Source("broken", (metrics.Family("vrouter_x", "gauge", "X."),), read)
    with caplog.at_level("ERROR", logger="vrouter.metrics"):
        [answer] = serve(net.daemon, [("GET", "/metrics")], (broken,))
    assert isinstance(answer, tuple) and answer[0] == 500
    assert "metrics scrape failed" in caplog.text


def test_gzip_when_the_client_accepts_it(net: Scenario) -> None:
    net.ping_across(1)
    calls: list[Call] = [
        ("GET", "/metrics", {"Accept-Encoding": "gzip"}),
        ("GET", "/metrics", {"Accept-Encoding": "deflate, gzip;q=0"}),
        ("GET", "/metrics", {"Accept-Encoding": "br, gzip;q=0.5"}),
        ("GET", "/metrics", {"Accept-Encoding": "gzip;q=high"}),
    ]
    zipped, refused, weighted, odd = serve(net.daemon, calls)
    assert isinstance(odd, tuple) and odd[1]["Content-Encoding"] == "gzip"
    assert isinstance(zipped, tuple) and isinstance(refused, tuple)
    assert isinstance(weighted, tuple)
    assert zipped[1]["Content-Encoding"] == "gzip"
    assert weighted[1]["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in refused[1]
    text = gzip.decompress(zipped[2]).decode()
    assert len(zipped[2]) * 4 < len(text)
    plain = {
        (s.name, tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(refused[2].decode())
        for s in f.samples
        if s.name.startswith("vrouter_")
    }
    unzipped = {
        (s.name, tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.startswith("vrouter_")
    }
    assert plain == unzipped


def test_openmetrics_when_the_client_asks_for_it(net: Scenario) -> None:
    net.ping_across(1)
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    [answer] = serve(net.daemon, [("GET", "/metrics", {"Accept": accept})])
    assert isinstance(answer, tuple)
    status, headers, body = answer
    assert status == 200
    assert headers["Content-Type"] == metrics.OPENMETRICS_CONTENT_TYPE
    text = body.decode()
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    families = {f.name: f for f in openmetrics_families(text)}
    forward = families["vrouter_ip_forward"]
    assert forward.type == "counter"
    assert {s.labels["vnet"]: s.value for s in forward.samples if s.name.endswith("_total")}[
        "red"
    ] >= 2
    assert families["vrouter_build_info"].type == "gauge"
    assert "process_cpu_seconds" in families
    # prometheus-client's OpenMetrics parser is strict (one group per series, the
    # EOF); promtool reads only the text format.


def test_collect_and_exclude_pick_sources(net: Scenario) -> None:
    calls: list[Call] = [
        ("GET", "/metrics?collect[]=link&collect[]=route"),
        ("GET", "/metrics?collect%5B%5D=daemon"),
        ("GET", "/metrics?exclude[]=tcp&exclude[]=process&exclude[]=inet6"),
        ("GET", "/metrics?collect[]=nonesuch"),
        ("GET", "/metrics?collect[]=link&exclude[]=tcp"),
    ]
    link, daemon, excluded, unknown, both = serve(net.daemon, calls)
    assert isinstance(link, tuple) and isinstance(daemon, tuple) and isinstance(excluded, tuple)
    assert isinstance(unknown, tuple) and isinstance(both, tuple)
    names = {f.name for f in text_string_to_metric_families(link[2].decode())}
    assert "vrouter_interface_receive_packets" in names and "vrouter_routes" in names
    assert not [n for n in names if n.startswith(("vrouter_ip", "vrouter_tcp", "process_"))]
    assert "vrouter_build_info" not in names
    names = {f.name for f in text_string_to_metric_families(daemon[2].decode())}
    assert names == {"vrouter_build_info", "vrouter_start_time_seconds", "vrouter_vnets"}
    names = {f.name for f in text_string_to_metric_families(excluded[2].decode())}
    assert "vrouter_ip_forward" in names and "vrouter_build_info" in names
    assert not [n for n in names if n.startswith(("vrouter_tcp", "process_", "vrouter_ip6_"))]
    assert unknown[0] == 400 and b"unknown collector 'nonesuch'" in unknown[2]
    assert both[0] == 400


def test_config_turns_sources_and_families_off(net: Scenario) -> None:
    selection = metrics.Selection(
        enabled=("daemon", "link", "inet"),
        exclude=("vrouter_interface_*_drops", "vrouter_icmp_*"),
    )
    calls: list[Call] = [("GET", "/metrics"), ("GET", "/metrics?collect[]=tcp")]
    served, refused = serve(net.daemon, calls, selection=selection)
    assert isinstance(served, tuple) and isinstance(refused, tuple)
    names = {f.name for f in text_string_to_metric_families(served[2].decode())}
    assert "vrouter_interface_receive_packets" in names and "vrouter_ip_forward" in names
    assert "vrouter_interface_receive_drops" not in names
    assert not [n for n in names if n.startswith(("vrouter_icmp_", "vrouter_tcp", "process_"))]
    assert refused[0] == 400 and b"turned off" in refused[2]


# --------------------------------------------------------------------------
# Slices: a scrape in bounded steps, from a snapshot, the loop running between
# --------------------------------------------------------------------------


def test_steps_are_bounded_and_written_from_a_snapshot(lab) -> None:
    for i in range(40):
        lab.iface(lab.vnet(f"v{i:02d}"), "eth0", f"192.0.2.{i + 1}/32")
    daemon = FakeDaemon(lab.tree)
    exporter = metrics.Exporter(daemon)
    steps = exporter.steps(metrics.Query(frozenset(metrics.NAMES)))
    snapshot_steps = 0
    for piece in steps:
        if piece:
            prelude = piece
            break
        snapshot_steps += 1
    assert snapshot_steps == -(-40 // metrics.STEP_VNETS)
    assert "vrouter_vnets 40.0" in prelude
    # Counters changed after the snapshot are not in this scrape, only in the next.
    lab.tree.get("v00").inet.stats.forward = 12345
    rest = "".join(steps)
    assert 'vrouter_ip_forward_total{vnet="v00"} 0\n' in rest
    assert 'vrouter_ip_forward_total{vnet="v00"} 12345\n' in exporter.text()


def test_a_labelled_step_writes_a_bounded_number_of_vnets(lab, monkeypatch) -> None:
    monkeypatch.setattr(metrics, "STEP_LABELLED", 3)
    monkeypatch.setattr(metrics, "STEP_SAMPLES", 5)
    for i in range(7):
        lab.vnet(f"v{i}")
    exporter = metrics.Exporter(FakeDaemon(lab.tree), (metrics.ROUTE, metrics.INET_SOURCE))
    pieces = [p for p in exporter.steps(metrics.Query(frozenset({"route", "inet"}))) if p]
    routes = [p for p in pieces if p.startswith("vrouter_routes{")]
    assert [p.count("\n") for p in routes] == [6, 6, 2]  # 3 vnets x 2 families, then 1
    forward = [p for p in pieces if p.startswith("vrouter_ip_forward_total{")]
    assert [p.count("\n") for p in forward] == [5, 2]


def test_paced_hands_the_loop_back_between_slices(lab) -> None:
    for i in range(64):
        lab.iface(lab.vnet(f"v{i:02d}"), "eth0", "192.0.2.1/24")
    exporter = metrics.Exporter(FakeDaemon(lab.tree))
    query = metrics.Query(frozenset(metrics.NAMES))
    steps = sum(1 for _ in exporter.steps(query))

    async def main() -> tuple[int, int, str]:
        ticks = 0
        done = False

        def tick() -> None:
            nonlocal ticks
            ticks += 1
            if not done:
                asyncio.get_running_loop().call_soon(tick)

        asyncio.get_running_loop().call_soon(tick)
        pacer = metrics.Pacer(0.0)  # every step is a slice of its own
        chunks = await metrics.paced(exporter.steps(query), pacer)
        done = True
        return ticks, pacer.passes, "".join(chunks)

    ticks, passes, text = asyncio.run(main())
    assert passes == steps + 1
    assert ticks >= steps  # the loop ran a pass between every two steps
    assert _vrouter_lines(text) == _vrouter_lines(exporter.text())


def test_a_scrape_reports_how_the_previous_one_was_paced(net: Scenario) -> None:
    exporter = metrics.Exporter(net.daemon)
    assert "vrouter_scrape_" not in exporter.text()
    pacer = metrics.Pacer(0.0)
    asyncio.run(metrics.paced(exporter.steps(metrics.Query(frozenset(metrics.NAMES))), pacer))
    exporter.record(pacer)
    s = Scrape(exporter.text())
    assert s.value("vrouter_scrape_loop_passes") == pacer.passes > 10
    assert 0 < s.value("vrouter_scrape_longest_pass_seconds") <= s.value(
        "vrouter_scrape_duration_seconds"
    )
    assert s.value("vrouter_scrape_longest_pass_cpu_seconds") > 0


def _vrouter_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "vrouter_" in line]


def test_gc_is_held_during_a_scrape_and_restored(net: Scenario) -> None:
    exporter = metrics.Exporter(net.daemon)
    seen: list[bool] = []

    def read(vnet) -> list[metrics.Entry]:
        seen.append(gc.isenabled())
        return [1]

    probe = metrics.Source("probe", (metrics.Family("vrouter_probe", "gauge", "P."),), read)
    exporter = metrics.Exporter(net.daemon, (probe,))
    assert gc.isenabled()
    asyncio.run(metrics.paced(exporter.steps(metrics.Query(frozenset({"probe"})))))
    assert seen == [False, False, False]
    assert gc.isenabled()


# --------------------------------------------------------------------------
# A front: its workers' texts merged without parsing their samples
# --------------------------------------------------------------------------


def test_front_merges_workers_by_family(lab) -> None:
    for name in ("a", "b"):
        lab.iface(lab.vnet(name), "eth0", "192.0.2.1/24")
    for openmetrics in (False, True):
        texts = []
        for name in ("a", "b"):
            tree = VnetTree(lab.tree.registry)
            tree._vnets[name] = lab.tree.get(name)  # one vnet per worker
            exporter = metrics.Exporter(FakeDaemon(tree))
            query = metrics.Query(frozenset(metrics.NAMES), openmetrics=openmetrics)
            texts.append(exporter.text(query))

        @dataclass
        class Front:
            started: float = STARTED
            reloads: dict[str, int] = dataclasses.field(default_factory=lambda: {"success": 1})

        query = metrics.Query(frozenset(metrics.NAMES), openmetrics=openmetrics)
        merged = "".join(
            workers_metrics.WorkersScrape(Front(), [(0, texts[0]), (1, texts[1]), (2, None)]).steps(
                query
            )  # type: ignore[arg-type]
        )
        parse = openmetrics_families if openmetrics else text_string_to_metric_families
        families = {f.name: f for f in parse(merged)}
        help_name = "vrouter_ip_forward" if openmetrics else "vrouter_ip_forward_total"
        assert merged.count(f"# HELP {help_name} ") == 1
        forward = families["vrouter_ip_forward"]
        assert {s.labels["vnet"] for s in forward.samples if s.name.endswith("_total")} == {
            "a",
            "b",
        }
        assert [s.value for s in families["vrouter_vnets"].samples] == [2]
        up = {s.labels["worker"]: s.value for s in families["vrouter_worker_up"].samples}
        assert up == {"0": 1, "1": 1, "2": 0}
        cpu = {s.labels["worker"] for s in families["vrouter_worker_cpu_seconds"].samples}
        assert cpu >= {"0", "1"}
        assert (
            len([s for s in families["vrouter_build_info"].samples]) == 1
        )  # the front's, not each worker's
        assert merged.endswith("# EOF\n") == openmetrics
        if openmetrics:
            continue
        result = subprocess.run(
            ["promtool", "check", "metrics"],
            input=merged,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_worker_packs_the_pieces_it_sends_its_front(lab) -> None:
    for i in range(30):
        lab.iface(lab.vnet(f"v{i:02d}"), "eth0", "192.0.2.1/24")
    exporter = metrics.Exporter(FakeDaemon(lab.tree))

    class Host:
        async def metrics_chunks(self, collect, exclude, openmetrics) -> list[str]:
            query = metrics.Query(frozenset(collect), tuple(exclude), openmetrics)
            return await metrics.paced(exporter.steps(query))

    args = {"collect": ["link", "inet"], "exclude": [], "openmetrics": False}
    plain = asyncio.run(views.metrics_scrape(Host(), {**args, "packed": False})).materialize()
    packed = asyncio.run(views.metrics_scrape(Host(), {**args, "packed": True})).materialize()
    unpacked = "".join(zlib.decompress(base64.b64decode(piece)).decode() for piece in packed)
    assert unpacked == "".join(plain) and "vrouter_ip_forward_total" in unpacked
    assert sum(map(len, packed)) * 4 < sum(map(len, plain))


def test_families_cuts_a_text_at_its_help_lines() -> None:
    text = (
        '# HELP a_total A.\n# TYPE a_total counter\na_total 1\na_total{x="# HELP"} 2\n'
        "# HELP b B.\n# TYPE b gauge\n# UNIT b seconds\nb 3\n# EOF\n"
    )
    assert list(workers_metrics.families(text)) == [
        ("a", "# HELP a_total A.\n# TYPE a_total counter\n", 'a_total 1\na_total{x="# HELP"} 2\n'),
        ("b", "# HELP b B.\n# TYPE b gauge\n# UNIT b seconds\n", "b 3\n"),
    ]
    assert list(workers_metrics.families("")) == []


# --------------------------------------------------------------------------
# The [daemon] metrics key
# --------------------------------------------------------------------------


def _daemon_config(lines: str) -> str:
    return textwrap.dedent(lines) + "\n[vnets]\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"127.0.0.1:9585"', ("127.0.0.1", 9585)),
        ('"0.0.0.0:1"', ("0.0.0.0", 1)),
        ('"[::1]:9585"', ("::1", 9585)),
        ('"[::]:65535"', ("::", 65535)),
        ('"localhost:9100"', ("localhost", 9100)),
    ],
)
def test_config_metrics_listen_address(value: str, expected: tuple[str, int]) -> None:
    config = parse(_daemon_config(f"[daemon]\nmetrics = {value}\n"), "t.toml")
    assert config.daemon.metrics == expected


def test_config_metrics_absent_is_disabled() -> None:
    assert parse(_daemon_config("[daemon]\n"), "t.toml").daemon.metrics is None
    assert parse("", "t.toml").daemon.metrics is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9585", "expected a string, got integer"),
        ('"127.0.0.1"', "has no port"),
        ('"127.0.0.1:"', "is not a decimal number"),
        ('"127.0.0.1:http"', "is not a decimal number"),
        ('"127.0.0.1:0"', "out of range 1..65535"),
        ('"127.0.0.1:65536"', "out of range 1..65535"),
        ('"::1:9585"', "must be in brackets"),
        ('"[::1:9585"', "must be in brackets"),
        ('"[not-v6]:9585"', "is not an IPv6 address"),
        ('"[192.0.2.1]:9585"', "is not an IPv6 address"),
        ('"256.0.0.1:9585"', "is not an IPv4 address"),
        ('":9585"', "has no host"),
        ('"bad host:9585"', "neither an IP address nor a host name"),
        ('""', "has no port"),
    ],
)
def test_config_metrics_malformed(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(_daemon_config(f"[daemon]\nmetrics = {value}\n"), "t.toml")
    [problem] = info.value.problems
    assert problem.key == "daemon.metrics"
    assert reason in problem.reason


def test_config_metrics_collectors_and_exclude() -> None:
    text = _daemon_config(
        '[daemon]\nmetrics_collectors = ["link", "inet", "link"]\n'
        'metrics_exclude = ["vrouter_tcp_*"]\n'
    )
    config = parse(text, "t.toml")
    assert config.daemon.metrics_collectors == ("link", "inet")
    assert config.daemon.metrics_exclude == ("vrouter_tcp_*",)
    default = parse(_daemon_config("[daemon]\n"), "t.toml").daemon
    assert default.metrics_collectors is None and default.metrics_exclude == ()


def test_config_metrics_collectors_problems() -> None:
    text = _daemon_config(
        '[daemon]\nmetrics_collectors = ["link", "ipx"]\nmetrics_exclude = "vrouter_tcp_*"\n'
    )
    with pytest.raises(ConfigError) as info:
        parse(text, "t.toml")
    reasons = {p.key: p.reason for p in info.value.problems}
    assert "unknown collector 'ipx'" in reasons["daemon.metrics_collectors[1]"]
    assert "an array of strings" in reasons["daemon.metrics_exclude"]


def test_config_metrics_problem_is_collected_with_others() -> None:
    text = _daemon_config('[daemon]\nlog_level = "loud"\nmetrics = "nowhere"\n')
    with pytest.raises(ConfigError) as info:
        parse(text, "t.toml")
    assert {p.key for p in info.value.problems} == {"daemon.log_level", "daemon.metrics"}
    assert "t.toml: daemon.metrics: 'nowhere' has no port" in str(info.value)


def test_firewall_rules_and_states_are_exported(net: Scenario) -> None:
    from vrouter.firewall import subsystem as firewall
    from vrouter.firewall.ruleparse import parse_ruleset

    red = net.lab.tree.get("red")
    ruleset = parse_ruleset(
        {"default": "block", "rules": [{"action": "pass", "proto": "udp", "label": "udp"}]}
    )
    firewall.replace_ruleset(red, ruleset)
    firewall.set_enabled(red, True)
    ruleset.counters[0].packets = 7
    ruleset.default_counters.bytes = 99
    s = scrape(net.daemon)
    assert s.value("vrouter_pf_enabled", vnet="red") == 1
    assert s.value("vrouter_pf_enabled", vnet="blue") == 0
    assert s.value("vrouter_pf_rule_packets_total", vnet="red", rule="udp") == 7
    assert s.value("vrouter_pf_rule_bytes_total", vnet="red", rule="default") == 99
    assert s.value("vrouter_pf_states_limit", vnet="red") == 10000


def test_firewall_rule_series_are_named_by_the_rules_label(net: Scenario) -> None:
    from vrouter.firewall import subsystem as firewall
    from vrouter.firewall.ruleparse import parse_ruleset

    red = net.lab.tree.get("red")
    rules = [
        {"action": "pass", "proto": "udp", "label": "dns"},
        {"action": "pass", "proto": "tcp"},
        {"action": "pass", "proto": "icmp", "label": "dns"},
    ]
    ruleset = parse_ruleset({"default": "block", "rules": rules})
    firewall.replace_ruleset(red, ruleset)
    for count, counters in zip((3, 5, 4), ruleset.counters, strict=True):
        counters.packets = count
    s = scrape(net.daemon)
    assert s.value("vrouter_pf_rule_packets_total", vnet="red", rule="dns") == 3 + 4
    assert s.value("vrouter_pf_rule_packets_total", vnet="red", rule="rule1") == 5
    assert s.value("vrouter_pf_rule_packets_total", vnet="red", rule="default") == 0
    assert len(s.samples("vrouter_pf_rule_packets_total", vnet="red")) == 3


def test_tcp_connections_by_state_and_listeners(net: Scenario) -> None:
    net.red.tcp.listen(4, b"", 8080)
    net.red.tcp.connect(IPv4Address("192.0.2.10").packed, 80, 0.0)
    s = scrape(net.daemon)
    assert s.value("vrouter_tcp_listeners", vnet="red") == 1
    assert s.value("vrouter_tcp_listeners", vnet="blue") == 0
    assert s.value("vrouter_tcp_connections", vnet="red", state="SYN-SENT") == 1
    assert s.value("vrouter_tcp_connections", vnet="red", state="ESTABLISHED") == 0
    assert s.value("vrouter_tcp_connattempt_total", vnet="red") == 1


def test_rapid_spanning_tree_series(net: Scenario) -> None:
    lab = net.lab
    vnet = lab.vnet("l2")
    hosts = [lab.host(vnet, f"p{i}", None, None) for i in (1, 2)]
    brif = Ifnet(vnet, "br0", "bridge", lab.mac())
    vnet.link.add(brif)
    br = bridge_.create(brif)
    br.add_port(hosts[0].ifp, now=lab.now, edge=True)
    br.add_port(hosts[1].ifp, now=lab.now)
    brif.up = True
    br.set_stp(StpSettings(hello_time=1, max_age=6, forward_delay=4, protocol="rstp"), lab.now)
    lab.advance(0.5)
    s = scrape(net.daemon)
    p1 = {"vnet": "l2", "interface": "br0", "port": "p1"}
    p2 = {"vnet": "l2", "interface": "br0", "port": "p2"}
    assert s.value("vrouter_bridge_stp_port_role", **p1, role="designated") == 1
    assert s.value("vrouter_bridge_stp_port_edge", **p1) == 1
    assert s.value("vrouter_bridge_stp_port_edge", **p2) == 0
    assert s.value("vrouter_bridge_stp_port_state", **p1) == 3  # an edge port forwards at once
    assert s.value("vrouter_bridge_stp_port_state", **p2) == 4  # discarding, auto edge after 3 s
    assert s.value("vrouter_bridge_stp_port_protocol", **p2, protocol="rstp") == 1
    assert s.value("vrouter_bridge_stp_port_migrations_total", **p2) == 0
    assert s.value("vrouter_bridge_stp_port_flushes_total", **p2) == 0
    for _ in range(14):
        lab.advance(0.25)
    s = scrape(net.daemon)
    assert s.value("vrouter_bridge_stp_port_edge", **p2) == 1
    assert s.value("vrouter_bridge_stp_port_state", **p2) == 3
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=s.text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
