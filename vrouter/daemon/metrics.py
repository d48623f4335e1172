"""The Prometheus exporter: every vnet's counters as metrics, read at scrape time.

Responsibility: turn the live state of a running daemon (its vnet tree, each
vnet's interfaces, tables and counter dataclasses) into Prometheus metric
families, and serve them as text on ``GET /metrics`` from an asyncio server
on the daemon's own loop.

Guarantees:

- Nothing is counted here.  The data path keeps plain integers on its
  objects; :class:`VrouterCollector` reads them when a scrape arrives, on the
  loop thread, so it never races the single-threaded core.
- Only live state is read: a destroyed vnet or removed interface is simply
  absent from the next scrape.
- Each family comes from one *source* function per subsystem
  (``Source``: vnets in, families out; see ``SOURCES``).  A new subsystem
  adds its function to ``SOURCES``; sources may yield a family name another
  source also yields (``vrouter_neighbours`` from inet and inet6), and the
  collector merges their samples under one HELP/TYPE header.
- The HELP text of a counter taken from a stats dataclass (``IpStats`` …) or
  from ``IfCounters`` is that field's docstring, read once from the source at
  import: the dataclass stays the one place a counter is described.
- Names follow Prometheus conventions: ``vrouter_`` prefix, ``_total`` on
  counters (never twice), base units at the end (``_bytes``, ``_seconds``),
  labels ``vnet``, ``interface``, ``reason``, ``family``, ``state`` and
  ``rule`` (a firewall rule's ``label``) carrying names, never numbers.
- Each daemon gets its own :class:`~prometheus_client.CollectorRegistry`
  (with the process and platform collectors); the global one is untouched.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import logging
import textwrap
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from vrouter import __version__
from vrouter.firewall.engine import FirewallStats
from vrouter.firewall.nat import NatStats
from vrouter.firewall.rules import Ruleset
from vrouter.firewall.states import StateStats
from vrouter.inet import arp
from vrouter.inet.fragment import ReassStats
from vrouter.inet.state import ArpStats, IcmpStats, IpStats
from vrouter.inet6 import nd
from vrouter.inet6.state import Icmp6Stats, Ip6Stats
from vrouter.link.ifnet import IfCounters
from vrouter.transport.sockets import TransportStats
from vrouter.transport.tcp.conn import State as TcpState
from vrouter.transport.tcp.stats import TcpStats

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet, VnetTree

log = logging.getLogger("vrouter.metrics")

__all__ = [
    "SOURCES",
    "MetricsServer",
    "Scraped",
    "Source",
    "VrouterCollector",
    "field_docs",
    "make_registry",
    "reload_metrics",
]

INET = "inet"
INET6 = "inet6"
"""Values of the ``family`` label (the subsystem names)."""

REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its request line and headers."""
MAX_HEADERS = 100
"""Header lines read from one request at most."""
LINE_LIMIT = 8192
"""Longest request or header line accepted, in bytes."""


class Scraped(Protocol):
    """What the collector reads from the daemon (``Daemon`` satisfies it)."""

    tree: VnetTree | None
    started: float


Source = Callable[[Sequence["Vnet"]], Iterable[Metric]]
"""A subsystem's metrics: the live vnets in, metric families out."""


# --------------------------------------------------------------------------
# Field docstrings: the HELP text of dataclass counters
# --------------------------------------------------------------------------


def field_docs(cls: type) -> dict[str, str]:
    """Return the docstring written under each field of class *cls*, on one line.

    Fields without a docstring are absent; so is everything when the source
    cannot be read (then HELP falls back to a generic text).
    """
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    node = ast.parse(source).body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    docs: dict[str, str] = {}
    for stmt, following in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(following.value.value.split())
    return docs


@dataclass(frozen=True, slots=True)
class _CounterSet:
    """How one stats dataclass becomes ``<prefix>_<field>_total`` counters."""

    prefix: str
    names: tuple[tuple[str, str, str], ...]
    """(field, metric name without ``_total``, HELP) per field, in field order."""


_RENAMED = {
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
    "memory": "evicted",
    "in_ns": "in_neighbour_solicitations",
    "out_ns": "out_neighbour_solicitations",
    "in_na": "in_neighbour_advertisements",
    "out_na": "out_neighbour_advertisements",
    "in_rs": "in_router_solicitations",
    "in_ra": "in_router_advertisements",
    "out_ra": "out_router_advertisements",
}
"""Metric stems of fields whose own name reads badly as a metric: a ``total`` field
would give ``…_total_total``; a count of bytes ends in its unit (``sndbyte`` →
``snd_bytes``); the reassembly datagrams evicted by the memory limit (``memory``)
must not read like the memory gauge; ``ns`` is nanoseconds to Prometheus linters
(the ND message abbreviations are all spelt out, to stay alike, and "neighbour"
is spelt as in ``vrouter_neighbours``)."""


def _help_texts(cls: type) -> dict[str, str]:
    """Return HELP per field of *cls*: its docstring without reST literal quotes."""
    return {name: doc.replace("``", "") for name, doc in field_docs(cls).items()}


def _counter_set(prefix: str, cls: type) -> _CounterSet:
    """Describe the counters of stats dataclass *cls* under metric *prefix*."""
    docs = _help_texts(cls)
    names = tuple(
        (
            f.name,
            f"{prefix}_{_RENAMED.get(f.name, f.name)}",
            docs.get(f.name, f"{cls.__name__}.{f.name}"),
        )
        for f in fields(cls)
    )
    return _CounterSet(prefix, names)


# Built once at import, like FreeBSD's stateless ip_init tables.
IP = _counter_set("vrouter_ip", IpStats)
ICMP = _counter_set("vrouter_icmp", IcmpStats)
ARP = _counter_set("vrouter_arp", ArpStats)
IP6 = _counter_set("vrouter_ip6", Ip6Stats)
ICMP6 = _counter_set("vrouter_icmp6", Icmp6Stats)
IP_REASS = _counter_set("vrouter_ip_reass", ReassStats)
IP6_REASS = _counter_set("vrouter_ip6_reass", ReassStats)
PF = _counter_set("vrouter_pf", FirewallStats)
SOCK = _counter_set("vrouter_socket", TransportStats)
PF_STATES = _counter_set("vrouter_pf_state", StateStats)
PF_NAT = _counter_set("vrouter_pf_nat", NatStats)
TCP = _counter_set("vrouter_tcp", TcpStats)
_IF_DOCS = _help_texts(IfCounters)


def _counters(spec: _CounterSet, rows: Sequence[tuple[str, object]]) -> Iterator[Metric]:
    """Yield one counter family per field of *spec*; *rows* are (vnet name, stats)."""
    for attr, name, doc in spec.names:
        family = CounterMetricFamily(name, doc, labels=("vnet",))
        for vnet_name, stats in rows:
            family.add_metric((vnet_name,), getattr(stats, attr))
        yield family


def _attached(vnets: Sequence[Vnet], subsystem: str) -> list[Vnet]:
    """Return the vnets *subsystem* is attached to (it may be loaded or unloaded live)."""
    return [v for v in vnets if hasattr(v, subsystem)]


# --------------------------------------------------------------------------
# Sources, one per subsystem
# --------------------------------------------------------------------------


def link_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """Per-interface counters, drops by reason, state and MTU."""
    labels = ("vnet", "interface")
    plain = (
        ("rx_packets", "vrouter_interface_receive_packets"),
        ("rx_bytes", "vrouter_interface_receive_bytes"),
        ("rx_errors", "vrouter_interface_receive_errors"),
        ("tx_packets", "vrouter_interface_transmit_packets"),
        ("tx_bytes", "vrouter_interface_transmit_bytes"),
        ("tx_errors", "vrouter_interface_transmit_errors"),
    )
    families = {
        attr: CounterMetricFamily(name, _IF_DOCS.get(attr, attr), labels=labels)
        for attr, name in plain
    }
    rx_drops = CounterMetricFamily(
        "vrouter_interface_receive_drops",
        _IF_DOCS.get("rx_drops", "Received frames dropped, by reason."),
        labels=(*labels, "reason"),
    )
    tx_drops = CounterMetricFamily(
        "vrouter_interface_transmit_drops",
        _IF_DOCS.get("tx_drops", "Frames dropped on the way out, by reason."),
        labels=(*labels, "reason"),
    )
    up = GaugeMetricFamily(
        "vrouter_interface_up", "1 if the interface is administratively up, else 0.", labels=labels
    )
    mtu = GaugeMetricFamily(
        "vrouter_interface_mtu_bytes", "The interface's IP MTU in bytes.", labels=labels
    )
    for vnet in _attached(vnets, "link"):
        for ifp in list(vnet.link.interfaces.values()):
            key = (vnet.name, ifp.name)
            c = ifp.counters
            for attr, family in families.items():
                family.add_metric(key, getattr(c, attr))
            for reason, count in sorted(c.rx_drops.items()):
                rx_drops.add_metric((*key, reason), count)
            for reason, count in sorted(c.tx_drops.items()):
                tx_drops.add_metric((*key, reason), count)
            up.add_metric(key, 1 if ifp.up else 0)
            mtu.add_metric(key, ifp.mtu)
    yield from families.values()
    yield from (rx_drops, tx_drops, up, mtu)


def bridge_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """Per-bridge FDB size and events, per-port forwarding counters and drops by reason."""
    labels = ("vnet", "interface")
    port_labels = (*labels, "port")
    fdb = GaugeMetricFamily(
        "vrouter_bridge_fdb_entries",
        "Entries in the bridge's FDB (static ones too).",
        labels=labels,
    )
    events = {
        attr: CounterMetricFamily(f"vrouter_bridge_{stem}", doc, labels=labels)
        for attr, stem, doc in (
            ("learned", "fdb_learned", "MACs learnt."),
            ("moved", "fdb_moved", "MACs seen on another port than their entry's, relearnt."),
            ("aged", "fdb_aged", "Learnt MACs removed after the ageing time."),
            ("fdb_full", "fdb_full", "Source MACs not learnt because the vnet's FDB was full."),
        )
    }
    port_counters = {
        attr: CounterMetricFamily(f"vrouter_bridge_port_{attr}_frames", doc, labels=port_labels)
        for attr, doc in (
            ("forwarded", "Frames received on the port and sent to one port or the bridge."),
            ("flooded", "Frames received on the port and flooded."),
            ("sent", "Frames the bridge sent out of the port."),
        )
    }
    drops = CounterMetricFamily(
        "vrouter_bridge_port_drops",
        "Frames the port refused, by reason.",
        labels=(*port_labels, "reason"),
    )
    for vnet in _attached(vnets, "link"):
        for name, bridge in list(vnet.link.bridge.bridges.items()):
            key = (vnet.name, name)
            fdb.add_metric(key, sum(len(t) for t in bridge.tables.values()))
            for attr, family in events.items():
                family.add_metric(key, getattr(bridge.stats, attr))
            for port in list(bridge.ports.values()):
                pkey = (*key, port.ifnet.name)
                for attr, family in port_counters.items():
                    family.add_metric(pkey, getattr(port.counters, attr))
                for reason, count in sorted(port.counters.drops.items()):
                    drops.add_metric((*pkey, reason), count)
    yield fdb
    yield from events.values()
    yield from port_counters.values()
    yield drops


def route_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """Routes in each vnet's IPv4 and IPv6 tables, in all and per source and state."""
    routes = GaugeMetricFamily(
        "vrouter_routes",
        "Routes in the vnet's table, of every source, installed or held "
        "(what the routes limit counts).",
        labels=("vnet", "family"),
    )
    by_source = GaugeMetricFamily(
        "vrouter_routes_by_source",
        "Routes in the vnet's table by source (connected, static, rip ...) and state "
        "(installed: forwarding; held: kept while another source's route is preferred).",
        labels=("vnet", "family", "source", "state"),
    )
    for vnet in _attached(vnets, "route"):
        for family, fib in ((INET, vnet.route.fib), (INET6, vnet.route.fib6)):
            routes.add_metric((vnet.name, family), len(fib))
            for source, (installed, held) in fib.counts().items():
                by_source.add_metric((vnet.name, family, source, "installed"), installed)
                by_source.add_metric((vnet.name, family, source, "held"), held)
    yield routes
    yield by_source


def _neighbours(
    family: str, states: Sequence[str], rows: Iterable[tuple[str, Iterable[str]]]
) -> Metric:
    """Return ``vrouter_neighbours`` for one family: entries per vnet and state.

    Every state in *states* is reported (0 when empty) so a series does not
    vanish when a table drains; a state outside it is reported as found.
    """
    gauge = GaugeMetricFamily(
        "vrouter_neighbours",
        "Neighbour cache entries (ARP for inet, ND for inet6) by state.",
        labels=("vnet", "family", "state"),
    )
    for vnet_name, entry_states in rows:
        counts = dict.fromkeys(states, 0)
        for state in entry_states:
            counts[state] = counts.get(state, 0) + 1
        for state, count in counts.items():
            gauge.add_metric((vnet_name, family, state), count)
    return gauge


def _reass_memory(family: str, rows: Iterable[tuple[str, int]]) -> Metric:
    gauge = GaugeMetricFamily(
        "vrouter_ip_reass_memory_bytes",
        "Bytes held by fragments waiting for reassembly (data plus per-fragment overhead).",
        labels=("vnet", "family"),
    )
    for vnet_name, value in rows:
        gauge.add_metric((vnet_name, family), value)
    return gauge


def inet_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """IPv4, ICMP, ARP and IPv4 reassembly counters; ARP entries; reassembly memory."""
    attached = _attached(vnets, "inet")
    yield from _counters(IP, [(v.name, v.inet.stats) for v in attached])
    yield from _counters(ICMP, [(v.name, v.inet.icmp) for v in attached])
    yield from _counters(ARP, [(v.name, v.inet.arpstat) for v in attached])
    yield from _counters(IP_REASS, [(v.name, v.inet.reass.stats) for v in attached])
    yield _neighbours(
        INET,
        arp.STATES,
        [(v.name, [e.state for e in v.inet.arp.entries.values()]) for v in attached],
    )
    yield _reass_memory(INET, [(v.name, v.inet.reass.memory()) for v in attached])


def inet6_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """IPv6, ICMPv6/ND and IPv6 reassembly counters; ND entries; reassembly memory."""
    attached = _attached(vnets, "inet6")
    yield from _counters(IP6, [(v.name, v.inet6.stats) for v in attached])
    yield from _counters(ICMP6, [(v.name, v.inet6.icmp) for v in attached])
    yield from _counters(IP6_REASS, [(v.name, v.inet6.reass.stats) for v in attached])
    yield _neighbours(
        INET6,
        nd.STATES,
        [(v.name, [e.state for e in v.inet6.nd.entries.values()]) for v in attached],
    )
    yield _reass_memory(INET6, [(v.name, v.inet6.reass.memory()) for v in attached])


def firewall_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """Firewall verdicts, state-table counters, states in use and per-rule counters."""
    attached = _attached(vnets, "firewall")
    yield from _counters(PF, [(v.name, v.firewall.fw.stats) for v in attached])
    yield from _counters(PF_STATES, [(v.name, v.firewall.fw.states.stats) for v in attached])
    yield from _counters(PF_NAT, [(v.name, v.firewall.fw.nat.stats) for v in attached])
    states = GaugeMetricFamily("vrouter_pf_states", "Firewall states in use", labels=("vnet",))
    mappings = GaugeMetricFamily(
        "vrouter_pf_nat_mappings", "NAT mappings in use (they count as states)", labels=("vnet",)
    )
    limit = GaugeMetricFamily(
        "vrouter_pf_states_limit", "Firewall states allowed (net.pf.states_max)", labels=("vnet",)
    )
    enabled = GaugeMetricFamily(
        "vrouter_pf_enabled", "1 if the vnet's firewall filters (net.pf.enable)", labels=("vnet",)
    )
    labels = ("vnet", "rule")
    packets = CounterMetricFamily(
        "vrouter_pf_rule_packets",
        "Packets that met the rule (decided by it or its states)",
        labels=labels,
    )
    octets = CounterMetricFamily(
        "vrouter_pf_rule_bytes", "IP bytes of the packets that met the rule", labels=labels
    )
    created = CounterMetricFamily(
        "vrouter_pf_rule_states_created", "States the rule created", labels=labels
    )
    for vnet in attached:
        fw = vnet.firewall.fw
        states.add_metric((vnet.name,), len(fw.states))
        mappings.add_metric((vnet.name,), len(fw.nat))
        limit.add_metric((vnet.name,), fw.states.max_states)
        enabled.add_metric((vnet.name,), 1 if fw.enabled else 0)
        for rule, (npackets, nbytes, nstates) in _rule_counters(fw.ruleset).items():
            packets.add_metric((vnet.name, rule), npackets)
            octets.add_metric((vnet.name, rule), nbytes)
            created.add_metric((vnet.name, rule), nstates)
    yield from (states, mappings, limit, enabled, packets, octets, created)


def _rule_counters(ruleset: Ruleset) -> dict[str, tuple[int, int, int]]:
    """Return (packets, bytes, states created) by ``rule`` label value.

    The value is the rule's ``label``, so a series survives rules inserted
    before it; a rule without one is ``rule<N>`` (its position), the default
    action ``default``, a ``[[nat]]`` entry without one ``nat<N>`` (its
    mappings made count as states).  Rules sharing a label are one series,
    their sum.
    """
    rows = [
        (r.label or f"rule{i}", c)
        for i, (r, c) in enumerate(zip(ruleset.rules, ruleset.counters, strict=True))
    ]
    rows.append(("default", ruleset.default_counters))
    rows.extend(
        (n.label or f"nat{i}", c)
        for i, (n, c) in enumerate(zip(ruleset.nat, ruleset.nat_counters, strict=True))
    )
    sums: dict[str, tuple[int, int, int]] = {}
    for rule, c in rows:
        npackets, nbytes, nstates = sums.get(rule, (0, 0, 0))
        sums[rule] = (npackets + c.packets, nbytes + c.bytes, nstates + c.states)
    return sums


def transport_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """Sockets programs hold, by kind and family, and the socket layer's counters."""
    attached = _attached(vnets, "transport")
    yield from _counters(SOCK, [(v.name, v.transport.stats) for v in attached])
    gauge = GaugeMetricFamily(
        "vrouter_sockets", "Sockets programs hold in the vnet", labels=("vnet", "kind", "family")
    )
    for vnet in attached:
        counts: dict[tuple[str, str], int] = {}
        for sock in vnet.transport.sockets:
            key = (sock.kind, INET if sock.family == 4 else INET6)
            counts[key] = counts.get(key, 0) + 1
        for kind in ("udp", "raw"):
            for family in (INET, INET6):
                gauge.add_metric((vnet.name, kind, family), counts.get((kind, family), 0))
    yield gauge


def tcp_metrics(vnets: Sequence[Vnet]) -> Iterator[Metric]:
    """TCP counters, connections by state and listeners."""
    attached = _attached(vnets, "tcp")
    yield from _counters(TCP, [(v.name, v.tcp.stats) for v in attached])
    conns = GaugeMetricFamily(
        "vrouter_tcp_connections", "TCP connections by state", labels=("vnet", "state")
    )
    listeners = GaugeMetricFamily("vrouter_tcp_listeners", "TCP listeners", labels=("vnet",))
    for vnet in attached:
        counts = dict.fromkeys(TcpState, 0)
        for conn in vnet.tcp.table.connections():
            counts[conn.state] += 1
        for state, count in counts.items():
            if state is not TcpState.CLOSED:
                conns.add_metric((vnet.name, state.value), count)
        listeners.add_metric((vnet.name,), len(vnet.tcp.table.listeners))
    yield from (conns, listeners)


SOURCES: tuple[Source, ...] = (
    link_metrics,
    bridge_metrics,
    route_metrics,
    inet_metrics,
    inet6_metrics,
    firewall_metrics,
    transport_metrics,
    tcp_metrics,
)
"""The per-subsystem sources every daemon exports, in output order."""


# --------------------------------------------------------------------------
# Daemon-wide metrics
# --------------------------------------------------------------------------


def daemon_metrics(started: float, vnets: int) -> Iterator[Metric]:
    """Build information, start time (Unix time ``started``) and the number of vnets."""
    info = GaugeMetricFamily(
        "vrouter_build_info", "Always 1; the vrouter version as a label.", labels=("version",)
    )
    info.add_metric((__version__,), 1)
    yield info
    yield GaugeMetricFamily(
        "vrouter_start_time_seconds",
        "When the daemon started, in seconds since the Unix epoch.",
        value=started,
    )
    yield GaugeMetricFamily("vrouter_vnets", "Vnets running in this daemon.", value=vnets)


def reload_metrics(daemon: object) -> Iterator[Metric]:
    """Config reload outcomes, once the daemon keeps them (hook for live reload).

    Reads two optional attributes of the daemon and exports nothing while
    they are absent:

    - ``reloads``: a mapping from result (``"success"``, ``"failure"``) to the
      number of reloads that ended so -> ``vrouter_config_reloads_total{result}``;
    - ``last_reload_success``: Unix time of the last successful reload, or
      None -> ``vrouter_config_last_reload_success_timestamp_seconds``.
    """
    reloads = getattr(daemon, "reloads", None)
    if isinstance(reloads, Mapping):
        total = CounterMetricFamily(
            "vrouter_config_reloads",
            "Configuration reloads, by result.",
            labels=("result",),
        )
        for result, count in sorted(reloads.items()):
            total.add_metric((str(result),), count)
        yield total
    last = getattr(daemon, "last_reload_success", None)
    if isinstance(last, int | float):
        yield GaugeMetricFamily(
            "vrouter_config_last_reload_success_timestamp_seconds",
            "When the configuration was last reloaded successfully, in seconds since the epoch.",
            value=last,
        )


class VrouterCollector:
    """A prometheus-client collector reading a daemon's live state at scrape time."""

    def __init__(self, daemon: Scraped, sources: Sequence[Source] = SOURCES) -> None:
        self.daemon = daemon
        self.sources = tuple(sources)

    def collect(self) -> Iterator[Metric]:
        """Return every family; samples of families sharing a name are merged."""
        tree = self.daemon.tree
        vnets = list(tree) if tree is not None else []
        merged: dict[str, Metric] = {}
        produced: list[Iterable[Metric]] = [
            daemon_metrics(self.daemon.started, len(vnets)),
            reload_metrics(self.daemon),
        ]
        produced.extend(source(vnets) for source in self.sources)
        for families in produced:
            for family in families:
                first = merged.setdefault(family.name, family)
                if first is family:
                    continue
                if first.type != family.type:
                    raise ValueError(
                        f"metric {family.name} is both a {first.type} and a {family.type}"
                    )
                first.samples.extend(family.samples)
        return iter(merged.values())


def make_registry(daemon: Scraped, sources: Sequence[Source] = SOURCES) -> CollectorRegistry:
    """Return a new registry with the vrouter, process and platform collectors."""
    registry = CollectorRegistry()
    registry.register(VrouterCollector(daemon, sources))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


# --------------------------------------------------------------------------
# The HTTP endpoint
# --------------------------------------------------------------------------


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


class MetricsServer:
    """Answers ``GET /metrics`` (and ``HEAD``) on the daemon's loop; 404 elsewhere.

    One request per connection (``Connection: close``); a client gets
    ``REQUEST_TIMEOUT`` seconds to send its request.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.registry = registry
        self.refresh = refresh
        """Awaited before each scrape (a front gathers its workers' metrics)."""
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on *host*:*port* and log where; OSError names the address if it cannot."""
        try:
            self._server = await asyncio.start_server(self._serve, host, port, limit=LINE_LIMIT)
        except OSError as err:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            reason = err.strerror or str(err)
            raise OSError(
                err.errno, f"metrics exporter cannot listen on {where}: {reason}"
            ) from err
        log.info("metrics exporter listening on %s", ", ".join(self.urls()))

    def urls(self) -> list[str]:
        """Return the scrape URL of every listening socket."""
        if self._server is None:
            return []
        urls = []
        for sock in self._server.sockets:
            address, port = sock.getsockname()[:2]
            host = f"[{address}]" if ":" in address else address
            urls.append(f"http://{host}:{port}/metrics")
        return urls

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    request = await self._read_request(reader)
            except ValueError:  # a line longer than LINE_LIMIT
                request = None
            if request is not None and request[1] == b"/metrics" and self.refresh is not None:
                await self.refresh()
            writer.write(self.respond(request))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
        """Return (method, path) after reading the headers, or None if malformed."""
        line = await reader.readline()
        for _ in range(MAX_HEADERS):
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
        else:
            return None
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return None
        method, target = parts[0], parts[1]
        return method, target.split(b"?", 1)[0]

    def respond(self, request: tuple[bytes, bytes] | None) -> bytes:
        """Return the whole HTTP response to *request* (None: malformed)."""
        if request is None:
            return _response(400, b"bad request\n")
        method, path = request
        if path != b"/metrics":
            return _response(404, b"not found; metrics are at /metrics\n")
        if method not in (b"GET", b"HEAD"):
            return _response(405, b"method not allowed\n", extra=b"Allow: GET, HEAD\r\n")
        try:
            body = generate_latest(self.registry)
        except Exception:
            log.exception("metrics scrape failed")
            return _response(500, b"metrics collection failed; see the daemon log\n")
        return _response(200, body, CONTENT_TYPE_LATEST, head=method == b"HEAD")


def _response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    extra: bytes = b"",
    head: bool = False,
) -> bytes:
    """Return an HTTP/1.1 response with *body* (only its length if *head*)."""
    header = (
        (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n"
        ).encode()
        + extra
        + b"\r\n"
    )
    return header if head else header + body
