"""The Prometheus exporter: every vnet's counters as metrics, built without holding the loop.

Responsibility: turn the live state of a running daemon (its vnet tree, each
vnet's interfaces, tables and counter dataclasses) into the Prometheus text
format or OpenMetrics, and serve it on ``GET /metrics`` from an asyncio
server on the daemon's own loop.

Guarantees:

- Nothing is counted here.  The data path keeps plain integers on its
  objects; a scrape reads them on the loop thread, so it never races the
  single-threaded core.
- A scrape of any size leaves the data path running.  It is built in
  *steps* (a snapshot of a few vnets, or one family over a few thousand
  samples), and a :class:`Pacer` hands the loop back whenever one pass has
  spent ``SLICE_SECONDS`` on it.  The snapshot copies each vnet's counters
  into tuples within one step (``operator.attrgetter``: a vnet's counters
  agree with each other); the text is then written family by family from
  the snapshot, never from the live objects.  The cyclic garbage collector
  waits while a scrape runs (:func:`gc_held`): the snapshot is millions of
  short-lived tuples, freed by reference counting, that would otherwise set
  off full collections of a heap of thousands of vnets, each one a pause
  of the whole loop far longer than a slice.
- Each family's metadata (name, type, HELP, the header lines of both
  formats) is built once at import, never per scrape or per vnet.
- Only live state is read: a vnet or interface gone before its snapshot
  step is absent from the scrape.
- Each subsystem is one :class:`Source` (its families, and a function
  reading one vnet's values for them); ``SOURCES`` lists them, and their
  names are what ``collect[]=`` and ``metrics_collectors`` select.
  Sources may share a family name (``vrouter_neighbours`` from inet and
  inet6): its samples are written under one HELP/TYPE header.
- The HELP text of a counter taken from a stats dataclass (``IpStats`` …) or
  from ``IfCounters`` is that field's docstring, read once from the source at
  import: the dataclass stays the one place a counter is described.
- Names follow Prometheus conventions: ``vrouter_`` prefix, ``_total`` on
  counters (never twice), base units at the end (``_bytes``, ``_seconds``),
  labels ``vnet``, ``interface``, ``reason``, ``family``, ``state``, ``kind``
  and ``rule`` (a firewall rule's ``label``) carrying names, never numbers.
- The daemon-wide and process families come from prometheus-client
  collectors on registries of the daemon's own; the global one is untouched.

The module is long on purpose, for now: one source per subsystem (the
larger half), the stepped builder that reads them and the HTTP endpoint
that paces it share the :class:`Family`/:class:`Source` records and
:class:`Pacer`.  The sources are the part to move out first (into a module
of their own, or beside each subsystem) when it grows further.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fnmatch
import inspect
import ipaddress
import logging
import textwrap
import time
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.openmetrics import exposition as openmetrics

from vrouter import __version__
from vrouter.core import gcpause
from vrouter.firewall.engine import FirewallStats
from vrouter.firewall.nat import NatStats
from vrouter.firewall.rules import Ruleset
from vrouter.firewall.states import StateStats
from vrouter.inet import arp
from vrouter.inet.fragment import ReassStats
from vrouter.inet.state import ArpStats, IcmpStats, IgmpStats, IpStats
from vrouter.inet6 import nd
from vrouter.inet6.state import Dhcp6Stats, Icmp6Stats, Ip6Stats
from vrouter.link.ifnet import IfCounters
from vrouter.transport.sockets import TransportStats
from vrouter.transport.tcp.conn import State as TcpState
from vrouter.transport.tcp.stats import TcpStats

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet, VnetTree
    from vrouter.route.fib import Nexthop, Route

log = logging.getLogger("vrouter.metrics")

__all__ = [
    "CONTENT_TYPE_LATEST",
    "DAEMON",
    "NAMES",
    "OPENMETRICS_CONTENT_TYPE",
    "PROCESS",
    "SLICE_SECONDS",
    "SOURCES",
    "Exporter",
    "Family",
    "MetricsServer",
    "Pacer",
    "Query",
    "Scraped",
    "Selection",
    "Source",
    "field_docs",
    "reload_metrics",
]

INET = "inet"
INET6 = "inet6"
"""Values of the ``family`` label (the subsystem names)."""

SLICE_SECONDS = 0.001
"""Longest a loop pass spends building a scrape before the data path runs again.

A loop pass costs microseconds, so short slices hardly slow a scrape (10,000
vnets: about 4 s with 1 ms or 4 ms slices in bench/scale.py) while a packet
waits less behind one; on a busy machine a slice can also be preempted, which
makes its wall-clock length the one that matters."""
STEP_VNETS = 16
"""Vnets snapshotted per step."""
STEP_SAMPLES = 1024
"""Vnets written per step of a family with one sample per vnet."""
STEP_LABELLED = 64
"""Vnets written per step of a family with labels after ``vnet`` (a sample per
interface, state, rule …)."""
GZIP_LEVEL = 1
"""zlib level of a gzip body: the text repeats itself so much that level 1 shrinks
it about as well as level 6, at a fraction of the CPU."""

OPENMETRICS_CONTENT_TYPE = openmetrics.CONTENT_TYPE_LATEST
REQUEST_TIMEOUT = 10.0
"""Seconds a client has to send its request line and headers."""
MAX_HEADERS = 100
"""Header lines read from one request at most."""
LINE_LIMIT = 8192
"""Longest request or header line accepted, in bytes."""


class Scraped(Protocol):
    """What the exporter reads from the daemon (``Daemon`` satisfies it)."""

    tree: VnetTree | None
    started: float


# --------------------------------------------------------------------------
# Families and sources: the metadata, built once
# --------------------------------------------------------------------------


def _escape_help(text: str, openmetrics: bool) -> str:
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if openmetrics else text


def label(name: str, value: str) -> str:
    """Return ``,name="value"``: one label as it follows another in a sample line."""
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
    return f',{name}="{value}"'


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family a source writes for every vnet: its name, type and HELP.

    ``labels`` are the labels after ``vnet``; with none, a source reads one
    number per vnet for it, else a list of (label text, number) pairs, the
    label text made by :func:`label` (``,interface="ep0"``).
    """

    name: str
    """Without ``_total`` for a counter."""
    kind: str
    """``counter`` or ``gauge``."""
    help: str
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("counter", "gauge"):
            raise ValueError(f"metric {self.name}: unknown type {self.kind!r}")

    @property
    def sample(self) -> str:
        """Return the name its samples carry."""
        return f"{self.name}_total" if self.kind == "counter" else self.name

    def header(self, openmetrics: bool) -> str:
        """Return its HELP and TYPE lines in either format."""
        name = self.name if openmetrics else self.sample
        return f"# HELP {name} {_escape_help(self.help, openmetrics)}\n# TYPE {name} {self.kind}\n"


Entry = int | float | list[tuple[str, int | float]]
"""One family's value(s) in one vnet: a number, or (label text, number) pairs."""


@dataclass(frozen=True, slots=True)
class Source:
    """A subsystem's metrics: its families, and what one vnet holds for each.

    ``read`` returns one entry per family, in order, or None when the
    subsystem is not attached to the vnet (it may be loaded or unloaded live).
    """

    name: str
    families: tuple[Family, ...]
    read: Callable[[Vnet], Sequence[Entry] | None]


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
    families: tuple[Family, ...]
    get: Callable[[object], tuple[int, ...]]
    """Every field's value, in field order, in one call."""


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
    "out_rs": "out_router_solicitations",
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


def _counter_set(prefix: str, cls: type, renamed: Mapping[str, str] | None = None) -> _CounterSet:
    """Describe the counters of stats dataclass *cls* under metric *prefix* (*renamed*:
    stems of its own, over ``_RENAMED``)."""
    docs = _help_texts(cls)
    stems = {**_RENAMED, **(renamed or {})}
    names = tuple(
        (
            f.name,
            f"{prefix}_{stems.get(f.name, f.name)}",
            docs.get(f.name, f"{cls.__name__}.{f.name}"),
        )
        for f in fields(cls)
    )
    families = tuple(Family(name, "counter", doc) for _, name, doc in names)
    getter = attrgetter(*(f for f, _, _ in names))

    def get(stats: object) -> tuple[int, ...]:
        values = getter(stats)
        return values if len(names) > 1 else (values,)

    return _CounterSet(prefix, names, families, get)


# Built once at import, like FreeBSD's stateless ip_init tables.
IP = _counter_set("vrouter_ip", IpStats)
ICMP = _counter_set("vrouter_icmp", IcmpStats)
IGMP = _counter_set("vrouter_igmp", IgmpStats)
ARP = _counter_set("vrouter_arp", ArpStats)
IP6 = _counter_set("vrouter_ip6", Ip6Stats)
ICMP6 = _counter_set("vrouter_icmp6", Icmp6Stats)
DHCP6 = _counter_set("vrouter_dhcp6", Dhcp6Stats)
IP_REASS = _counter_set("vrouter_ip_reass", ReassStats)
IP6_REASS = _counter_set("vrouter_ip6_reass", ReassStats)
PF = _counter_set("vrouter_pf", FirewallStats)
SOCK = _counter_set("vrouter_socket", TransportStats)
PF_STATES = _counter_set("vrouter_pf_state", StateStats, {"limit": "table_full"})
"""``StateStats.limit`` is ``vrouter_pf_state_table_full_total``: as ``limit`` it
would be ``vrouter_pf_state_limit_total``, the name of ``FirewallStats.state_limit``
(the packets dropped for it), so the two series would collide."""
PF_NAT = _counter_set("vrouter_pf_nat", NatStats)
TCP = _counter_set("vrouter_tcp", TcpStats)
_IF_DOCS = _help_texts(IfCounters)


# --------------------------------------------------------------------------
# Sources, one per subsystem
# --------------------------------------------------------------------------

_IF_PLAIN = (
    ("rx_packets", "vrouter_interface_receive_packets"),
    ("rx_bytes", "vrouter_interface_receive_bytes"),
    ("rx_errors", "vrouter_interface_receive_errors"),
    ("tx_packets", "vrouter_interface_transmit_packets"),
    ("tx_bytes", "vrouter_interface_transmit_bytes"),
    ("tx_errors", "vrouter_interface_transmit_errors"),
)
_IF_GET = attrgetter(*(attr for attr, _ in _IF_PLAIN))


def _read_link(vnet: Vnet) -> list[Entry] | None:
    """Per-interface counters, drops by reason, state and MTU."""
    link = getattr(vnet, "link", None)
    if link is None:
        return None
    plain: list[list[tuple[str, int | float]]] = [[] for _ in _IF_PLAIN]
    rx_drops: list[tuple[str, int | float]] = []
    tx_drops: list[tuple[str, int | float]] = []
    up: list[tuple[str, int | float]] = []
    mtu: list[tuple[str, int | float]] = []
    for ifp in list(link.interfaces.values()):
        key = label("interface", ifp.name)
        c = ifp.counters
        for column, count in zip(plain, _IF_GET(c), strict=True):
            column.append((key, count))
        for reason, count in sorted(c.rx_drops.items()):
            rx_drops.append((key + label("reason", reason), count))
        for reason, count in sorted(c.tx_drops.items()):
            tx_drops.append((key + label("reason", reason), count))
        up.append((key, 1 if ifp.up else 0))
        mtu.append((key, ifp.mtu))
    return [*plain, rx_drops, tx_drops, up, mtu]


_BY_INTERFACE = ("interface",)
LINK = Source(
    "link",
    (
        *(
            Family(name, "counter", _IF_DOCS.get(attr, attr), _BY_INTERFACE)
            for attr, name in _IF_PLAIN
        ),
        Family(
            "vrouter_interface_receive_drops",
            "counter",
            _IF_DOCS.get("rx_drops", "Received frames dropped, by reason."),
            ("interface", "reason"),
        ),
        Family(
            "vrouter_interface_transmit_drops",
            "counter",
            _IF_DOCS.get("tx_drops", "Frames dropped on the way out, by reason."),
            ("interface", "reason"),
        ),
        Family(
            "vrouter_interface_up",
            "gauge",
            "1 if the interface is administratively up, else 0.",
            _BY_INTERFACE,
        ),
        Family(
            "vrouter_interface_mtu_bytes",
            "gauge",
            "The interface's IP MTU in bytes.",
            _BY_INTERFACE,
        ),
    ),
    _read_link,
)


_BRIDGE_EVENTS = (
    ("learned", "fdb_learned", "MACs learnt."),
    ("moved", "fdb_moved", "MACs seen on another port than their entry's, relearnt."),
    ("aged", "fdb_aged", "Learnt MACs removed after the ageing time."),
    ("fdb_full", "fdb_full", "Source MACs not learnt because the vnet's FDB was full."),
    ("too_big", "too_big_frames", "Frames too big for a port whose sender got ICMP back."),
)
_BRIDGE_EVENTS_GET = attrgetter(*(attr for attr, _, _ in _BRIDGE_EVENTS))
_PORT_COUNTERS = (
    ("forwarded", "Frames received on the port and sent to one port or the bridge."),
    ("flooded", "Frames received on the port and flooded."),
    ("sent", "Frames the bridge sent out of the port."),
)
_PORT_GET = attrgetter(*(attr for attr, _ in _PORT_COUNTERS))


def _read_bridge(vnet: Vnet) -> list[Entry] | None:
    """Per-bridge FDB size and events, per-port forwarding counters and drops by reason."""
    link = getattr(vnet, "link", None)
    if link is None:
        return None
    fdb: list[tuple[str, int | float]] = []
    events: list[list[tuple[str, int | float]]] = [[] for _ in _BRIDGE_EVENTS]
    ports: list[list[tuple[str, int | float]]] = [[] for _ in _PORT_COUNTERS]
    drops: list[tuple[str, int | float]] = []
    root: list[tuple[str, int | float]] = []
    cost: list[tuple[str, int | float]] = []
    changes: list[tuple[str, int | float]] = []
    state: list[tuple[str, int | float]] = []
    bpdu_in: list[tuple[str, int | float]] = []
    bpdu_out: list[tuple[str, int | float]] = []
    bpdu_drops: list[tuple[str, int | float]] = []
    role: list[tuple[str, int | float]] = []
    edge: list[tuple[str, int | float]] = []
    proto: list[tuple[str, int | float]] = []
    migrations: list[tuple[str, int | float]] = []
    flushes: list[tuple[str, int | float]] = []
    for name, bridge in list(link.bridge.bridges.items()):
        key = label("interface", name)
        fdb.append((key, sum(len(t) for t in bridge.tables.values())))
        for column, count in zip(events, _BRIDGE_EVENTS_GET(bridge.stats), strict=True):
            column.append((key, count))
        for port in list(bridge.ports.values()):
            pkey = key + label("port", port.ifnet.name)
            for column, count in zip(ports, _PORT_GET(port.counters), strict=True):
                column.append((pkey, count))
            for reason, count in sorted(port.counters.drops.items()):
                drops.append((pkey + label("reason", reason), count))
        stp = bridge.stp
        if stp is None:
            continue
        root.append((key, int(stp.is_root())))
        cost.append((key, stp.root_cost))
        changes.append((key, stp.topology_changes))
        for sp in list(stp.ports.values()):
            pkey = key + label("port", sp.name)
            state.append((pkey, int(sp.state)))
            bpdu_in.append((pkey, sp.counters.bpdu_in))
            bpdu_out.append((pkey, sp.counters.bpdu_out))
            for reason, count in sorted(sp.counters.drops.items()):
                bpdu_drops.append((pkey + label("reason", reason), count))
            role.append((pkey + label("role", sp.role_name()), 1))
            edge.append((pkey, int(sp.oper_edge)))
            proto.append((pkey + label("protocol", "rstp" if sp.send_rstp else "stp"), 1))
            migrations.append((pkey, sp.counters.migrations))
            flushes.append((pkey, sp.counters.flushes))
    return [
        fdb, *events, *ports, drops, root, cost, changes, state, bpdu_in, bpdu_out, bpdu_drops,
        role, edge, proto, migrations, flushes,
    ]  # fmt: skip


BRIDGE = Source(
    "bridge",
    (
        Family(
            "vrouter_bridge_fdb_entries",
            "gauge",
            "Entries in the bridge's FDB (static ones too).",
            ("interface",),
        ),
        *(
            Family(f"vrouter_bridge_{stem}", "counter", doc, ("interface",))
            for _, stem, doc in _BRIDGE_EVENTS
        ),
        *(
            Family(f"vrouter_bridge_port_{attr}_frames", "counter", doc, ("interface", "port"))
            for attr, doc in _PORT_COUNTERS
        ),
        Family(
            "vrouter_bridge_port_drops",
            "counter",
            "Frames the port refused, by reason.",
            ("interface", "port", "reason"),
        ),
        Family(
            "vrouter_bridge_stp_root",
            "gauge",
            "1 if the bridge is the spanning tree's root, else 0 (bridges with STP on).",
            ("interface",),
        ),
        Family(
            "vrouter_bridge_stp_root_path_cost",
            "gauge",
            "The bridge's path cost to the root.",
            ("interface",),
        ),
        Family(
            "vrouter_bridge_stp_topology_changes",
            "counter",
            "Times a topology change began (the TC flag came on).",
            ("interface",),
        ),
        Family(
            "vrouter_bridge_stp_port_state",
            "gauge",
            "The port's STP state: 0 disabled, 1 listening, 2 learning, 3 forwarding, "
            "4 blocking (RSTP: discarding) (Linux's BR_STATE_* numbers).",
            ("interface", "port"),
        ),
        Family(
            "vrouter_bridge_stp_port_bpdus_received",
            "counter",
            "BPDUs (Configuration, RST and TCN) the port took.",
            ("interface", "port"),
        ),
        Family(
            "vrouter_bridge_stp_port_bpdus_sent",
            "counter",
            "BPDUs (Configuration, RST and TCN) the port sent.",
            ("interface", "port"),
        ),
        Family(
            "vrouter_bridge_stp_port_bpdu_drops",
            "counter",
            "BPDUs the port refused, by reason (malformed, its own, port disabled).",
            ("interface", "port", "reason"),
        ),
        Family(
            "vrouter_bridge_stp_port_role",
            "gauge",
            "1 for the port's role: root, designated, alternate, backup, disabled "
            "(STP: blocked for alternate).",
            ("interface", "port", "role"),
        ),
        Family(
            "vrouter_bridge_stp_port_edge",
            "gauge",
            "1 if the port is an RSTP edge port (configured, or no BPDU heard), else 0.",
            ("interface", "port"),
        ),
        Family(
            "vrouter_bridge_stp_port_protocol",
            "gauge",
            "1 for the protocol the port speaks: rstp, or stp (an STP bridge behind it).",
            ("interface", "port", "protocol"),
        ),
        Family(
            "vrouter_bridge_stp_port_migrations",
            "counter",
            "Times the port changed the protocol it speaks (RSTP <-> STP).",
            ("interface", "port"),
        ),
        Family(
            "vrouter_bridge_stp_port_flushes",
            "counter",
            "Times an RSTP topology change flushed the MACs learnt on the port.",
            ("interface", "port"),
        ),
    ),
    _read_bridge,
)


_VXLAN_EVENTS = (
    ("learned", "fdb_learned", "Inner MACs learnt behind a remote VTEP."),
    ("moved", "fdb_moved", "Inner MACs seen behind another VTEP than their entry's."),
    ("aged", "fdb_aged", "Learnt inner MACs removed after the ageing time."),
    ("fdb_full", "fdb_full", "Inner MACs not learnt because the vnet's FDB was full."),
    ("flooded", "flooded_frames", "BUM frames sent to every remote VTEP or the group."),
    ("batches", "batched_reads", "Reads that brought several datagrams (the underlay's GRO)."),
    ("coalesced", "coalesced_frames", "Inner TCP segments received joined into super-frames."),
    ("whole", "tunnel_gso_frames",
     "TCP super-frames handed whole to the kernel to segment (tunnel_gso)."),
    ("tunnel_refused", "tunnel_gso_refused_frames",
     "TCP super-frames the kernel refused to take whole, sent by the socket instead."),
    ("received_whole", "tunnel_gso_received_frames",
     "TCP super-frames received whole through the tunnel TAP (tunnel_gso)."),
    ("received_tunnel", "tunnel_gso_received_all_frames",
     "Frames of any kind received through the tunnel TAP (tunnel_gso)."),
    ("small_sends", "small_sends",
     "Sends of the frames queued in a loop pass (ACKs...), one per VTEP and size."),
    ("small_datagrams", "small_datagrams", "Datagrams those sends carried."),
)
_VXLAN_EVENTS_GET = attrgetter(*(attr for attr, _, _ in _VXLAN_EVENTS))
_VTEP_COUNTERS = (
    ("rx_packets", "received_packets", "VXLAN datagrams received from the VTEP."),
    ("rx_bytes", "received_bytes", "Bytes of those datagrams (UDP payload)."),
    ("tx_packets", "sent_packets", "VXLAN datagrams sent to the VTEP."),
    ("tx_bytes", "sent_bytes", "Bytes of those datagrams (UDP payload)."),
)
_VTEP_GET = attrgetter(*(attr for attr, _, _ in _VTEP_COUNTERS))


def _read_vxlan(vnet: Vnet) -> list[Entry] | None:
    """Per VXLAN interface: MACs learnt, table events; per remote VTEP: datagrams and bytes."""
    link = getattr(vnet, "link", None)
    if link is None:
        return None
    macs: list[tuple[str, int | float]] = []
    events: list[list[tuple[str, int | float]]] = [[] for _ in _VXLAN_EVENTS]
    vteps: list[list[tuple[str, int | float]]] = [[] for _ in _VTEP_COUNTERS]
    for name, vx in list(link.vxlans.items()):
        key = label("interface", name) + label("vni", str(vx.vni))
        macs.append((key, len(vx.macs)))
        for column, count in zip(events, _VXLAN_EVENTS_GET(vx.stats), strict=True):
            column.append((key, count))
        for vtep in list(vx.vteps.values()):
            vkey = key + label("vtep", vtep.address)
            for column, count in zip(vteps, _VTEP_GET(vtep), strict=True):
                column.append((vkey, count))
    return [macs, *events, *vteps]


VXLAN = Source(
    "vxlan",
    (
        Family(
            "vrouter_vxlan_fdb_entries",
            "gauge",
            "Inner MACs learnt behind remote VTEPs.",
            ("interface", "vni"),
        ),
        *(
            Family(f"vrouter_vxlan_{stem}", "counter", doc, ("interface", "vni"))
            for _, stem, doc in _VXLAN_EVENTS
        ),
        *(
            Family(f"vrouter_vxlan_vtep_{stem}", "counter", doc, ("interface", "vni", "vtep"))
            for _, stem, doc in _VTEP_COUNTERS
        ),
    ),
    _read_vxlan,
)


_FAMILY_INET = label("family", INET)
_FAMILY_INET6 = label("family", INET6)


_ROUTE_STATES = (label("state", "installed"), label("state", "held"))


def _read_route(vnet: Vnet) -> list[Entry] | None:
    route = getattr(vnet, "route", None)
    if route is None:
        return None
    by_source: list[tuple[str, int | float]] = []
    for family, fib in ((_FAMILY_INET, route.fib), (_FAMILY_INET6, route.fib6)):
        for source, counts in fib.counts().items():
            key = family + label("source", source)
            by_source.extend(
                (key + state, n) for state, n in zip(_ROUTE_STATES, counts, strict=True)
            )
    paths = [
        (_path_labels(r, nexthop), nexthop.use)
        for r in route.multipath.values()
        for nexthop in r.nexthops
    ]
    return [[(_FAMILY_INET, len(route.fib)), (_FAMILY_INET6, len(route.fib6))], by_source, paths]


def _path_labels(route: Route, nexthop: Nexthop) -> str:
    gateway = str(ipaddress.ip_address(nexthop.gateway)) if nexthop.gateway else ""
    return (
        (_FAMILY_INET if route.prefix.version == 4 else _FAMILY_INET6)
        + label("prefix", str(route.prefix))
        + label("source", route.source.name)
        + label("gateway", gateway)
        + label("interface", nexthop.ifnet.name)
    )


ROUTE = Source(
    "route",
    (
        Family(
            "vrouter_routes",
            "gauge",
            "Routes in the vnet's table, of every source, installed or held "
            "(what the routes limit counts).",
            ("family",),
        ),
        Family(
            "vrouter_routes_by_source",
            "gauge",
            "Routes in the vnet's table by source (connected, static, rip ...) and state "
            "(installed: forwarding; held: kept while another source's route is preferred).",
            ("family", "source", "state"),
        ),
        Family(
            "vrouter_route_path_packets",
            "counter",
            "Packets forwarded by each path of a multipath (ECMP) route (counted since the "
            "route was last changed).",
            ("family", "prefix", "source", "gateway", "interface"),
        ),
    ),
    _read_route,
)

NEIGHBOURS = Family(
    "vrouter_neighbours",
    "gauge",
    "Neighbour cache entries (ARP for inet, ND for inet6) by state.",
    ("family", "state"),
)
REASS_MEMORY = Family(
    "vrouter_ip_reass_memory_bytes",
    "gauge",
    "Bytes held by fragments waiting for reassembly (data plus per-fragment overhead).",
    ("family",),
)


def _neighbours(family: str, states: Sequence[str], entries: Iterable[str]) -> Entry:
    """Return neighbour entries by state: every state in *states* (0 when empty, so a
    series does not vanish when a table drains), and any other state found."""
    counts = dict.fromkeys(states, 0)
    for state in entries:
        counts[state] = counts.get(state, 0) + 1
    prefix = label("family", family)
    return [(prefix + label("state", state), count) for state, count in counts.items()]


def _read_inet(vnet: Vnet) -> list[Entry] | None:
    inet = getattr(vnet, "inet", None)
    if inet is None:
        return None
    return [
        *IP.get(inet.stats),
        *ICMP.get(inet.icmp),
        *IGMP.get(inet.igmp),
        *ARP.get(inet.arpstat),
        *IP_REASS.get(inet.reass.stats),
        _neighbours(INET, arp.STATES, [e.state for e in inet.arp.entries.values()]),
        [(_FAMILY_INET, inet.reass.memory())],
    ]


INET_SOURCE = Source(
    "inet",
    (
        *IP.families,
        *ICMP.families,
        *IGMP.families,
        *ARP.families,
        *IP_REASS.families,
        NEIGHBOURS,
        REASS_MEMORY,
    ),
    _read_inet,
)


def _read_inet6(vnet: Vnet) -> list[Entry] | None:
    inet6 = getattr(vnet, "inet6", None)
    if inet6 is None:
        return None
    return [
        *IP6.get(inet6.stats),
        *ICMP6.get(inet6.icmp),
        *DHCP6.get(inet6.dhcp6_stats),
        *IP6_REASS.get(inet6.reass.stats),
        _neighbours(INET6, nd.STATES, [e.state for e in inet6.nd.entries.values()]),
        [(_FAMILY_INET6, inet6.reass.memory())],
    ]


INET6_SOURCE = Source(
    "inet6",
    (
        *IP6.families,
        *ICMP6.families,
        *DHCP6.families,
        *IP6_REASS.families,
        NEIGHBOURS,
        REASS_MEMORY,
    ),
    _read_inet6,
)


def _read_firewall(vnet: Vnet) -> list[Entry] | None:
    firewall = vnet.view("firewall")
    if firewall is None:
        return None
    fw = firewall.fw
    packets: list[tuple[str, int | float]] = []
    octets: list[tuple[str, int | float]] = []
    created: list[tuple[str, int | float]] = []
    for rule, (npackets, nbytes, nstates) in _rule_counters(fw.ruleset).items():
        key = label("rule", rule)
        packets.append((key, npackets))
        octets.append((key, nbytes))
        created.append((key, nstates))
    return [
        *PF.get(fw.stats),
        *PF_STATES.get(fw.states.stats),
        *PF_NAT.get(fw.nat.stats),
        len(fw.states),
        len(fw.nat),
        fw.states.max_states,
        1 if fw.enabled else 0,
        packets,
        octets,
        created,
    ]


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


FIREWALL = Source(
    "firewall",
    (
        *PF.families,
        *PF_STATES.families,
        *PF_NAT.families,
        Family("vrouter_pf_states", "gauge", "Firewall states in use"),
        Family("vrouter_pf_nat_mappings", "gauge", "NAT mappings in use (they count as states)"),
        Family("vrouter_pf_states_limit", "gauge", "Firewall states allowed (net.pf.states_max)"),
        Family("vrouter_pf_enabled", "gauge", "1 if the vnet's firewall filters (net.pf.enable)"),
        Family(
            "vrouter_pf_rule_packets",
            "counter",
            "Packets that met the rule (decided by it or its states)",
            ("rule",),
        ),
        Family(
            "vrouter_pf_rule_bytes",
            "counter",
            "IP bytes of the packets that met the rule",
            ("rule",),
        ),
        Family("vrouter_pf_rule_states_created", "counter", "States the rule created", ("rule",)),
    ),
    _read_firewall,
)

_SOCKET_KINDS = tuple(
    ((kind, family), label("kind", kind) + label("family", family))
    for kind in ("udp", "raw")
    for family in (INET, INET6)
)


def _read_transport(vnet: Vnet) -> list[Entry] | None:
    transport = vnet.view("transport")
    if transport is None:
        return None
    counts: dict[tuple[str, str], int] = {}
    for sock in transport.sockets:
        key = (sock.kind, INET if sock.family == 4 else INET6)
        counts[key] = counts.get(key, 0) + 1
    return [
        *SOCK.get(transport.stats),
        [(text, counts.get(key, 0)) for key, text in _SOCKET_KINDS],
    ]


TRANSPORT = Source(
    "transport",
    (
        *SOCK.families,
        Family("vrouter_sockets", "gauge", "Sockets programs hold in the vnet", ("kind", "family")),
    ),
    _read_transport,
)

_TCP_STATES = tuple(
    (state, label("state", state.value)) for state in TcpState if state is not TcpState.CLOSED
)


def _read_tcp(vnet: Vnet) -> list[Entry] | None:
    tcp = vnet.view("tcp")
    if tcp is None:
        return None
    counts = dict.fromkeys(TcpState, 0)
    for conn in tcp.table.connections():
        counts[conn.state] += 1
    return [
        *TCP.get(tcp.stats),
        [(text, counts[state]) for state, text in _TCP_STATES],
        len(tcp.table.listeners),
    ]


TCP_SOURCE = Source(
    "tcp",
    (
        *TCP.families,
        Family("vrouter_tcp_connections", "gauge", "TCP connections by state", ("state",)),
        Family("vrouter_tcp_listeners", "gauge", "TCP listeners"),
    ),
    _read_tcp,
)


def _by(label_name: str, counts: Mapping[str, int]) -> list[tuple[str, int | float]]:
    return [(label(label_name, key), n) for key, n in sorted(counts.items())]


def _read_dhcp(vnet: Vnet) -> list[Entry] | None:
    """A DHCP server's leases and messages (None: the vnet serves no DHCP)."""
    state = vnet.view("dhcp")
    if state is None or state.server is None:
        return None
    stats = state.stats
    return [
        state.server.active(time.monotonic()),  # the loop's clock
        _by("type", stats.received),
        _by("type", stats.sent),
        _by("reason", stats.drops),
        stats.expired,
        state.write_errors,
    ]


DHCP = Source(
    "dhcp",
    (
        Family("vrouter_dhcp_leases", "gauge", "DHCP leases bound and not expired."),
        Family("vrouter_dhcp_received_messages", "counter",
               "DHCP requests received, by message type (discover, request ...).", ("type",)),
        Family("vrouter_dhcp_sent_messages", "counter",
               "DHCP replies sent, by message type (offer, ack, nak).", ("type",)),
        Family("vrouter_dhcp_drops", "counter",
               "DHCP requests dropped without a reply, by reason (malformed ones by their "
               "parse error).", ("reason",)),
        Family("vrouter_dhcp_expired_leases", "counter", "Bound DHCP leases that ran out."),
        Family("vrouter_dhcp_lease_write_errors", "counter",
               "Lease file writes that failed (the server goes on answering)."),
    ),
    _read_dhcp,
)  # fmt: skip


SOURCES: tuple[Source, ...] = (
    LINK,
    BRIDGE,
    VXLAN,
    ROUTE,
    INET_SOURCE,
    INET6_SOURCE,
    FIREWALL,
    TRANSPORT,
    TCP_SOURCE,
    DHCP,
)
"""The per-vnet sources every daemon exports, in output order."""


DAEMON = "daemon"
"""The source of the daemon-wide families (build, start time, vnets, reloads)."""
PROCESS = "process"
"""The source of ``process_*`` and ``python_info`` (prometheus-client's collectors)."""
NAMES: tuple[str, ...] = (DAEMON, PROCESS, *(s.name for s in SOURCES))
"""Every source's name, as ``collect[]=`` and ``metrics_collectors`` take them."""


# --------------------------------------------------------------------------
# Daemon-wide metrics (prometheus-client families: a handful, once per scrape)
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


def process_metrics() -> Iterator[Metric]:
    """The process's CPU, memory and descriptors, and the Python version (prometheus-client)."""
    yield from ProcessCollector(registry=None).collect()
    yield from PlatformCollector(registry=None).collect()


def excluded(name: str, patterns: Sequence[str]) -> bool:
    """Return whether family ``name`` (or its ``_total`` samples' name) matches a pattern."""
    return any(
        fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(f"{name}_total", p) for p in patterns
    )


class _Families:
    """A prometheus-client collector over a fixed list of families."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def encode(
    families: Iterable[Metric], openmetrics_format: bool, exclude: Sequence[str] = ()
) -> str:
    """Return *families* in either format, without OpenMetrics' closing ``# EOF``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(f for f in families if not excluded(f.name, exclude)))
    if not openmetrics_format:
        return generate_latest(registry).decode()
    text: str = openmetrics.generate_latest(registry).decode()  # type: ignore[no-untyped-call]
    return text.removesuffix("# EOF\n")


# --------------------------------------------------------------------------
# Selection: which sources and families a scrape holds
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """One scrape's choices: the sources to run, family patterns left out, the format."""

    sources: frozenset[str]
    exclude: tuple[str, ...] = ()
    openmetrics: bool = False


@dataclass(frozen=True, slots=True)
class Selection:
    """What a daemon serves (``metrics_collectors``, ``metrics_exclude``), narrowed per
    request by node_exporter's ``collect[]=``/``exclude[]=`` query parameters."""

    known: tuple[str, ...] = NAMES
    enabled: tuple[str, ...] | None = None
    """Sources served (None: all of ``known``)."""
    exclude: tuple[str, ...] = ()
    """Family name patterns (shell-style: ``vrouter_tcp_*``) never served."""

    def query(self, params: Mapping[str, Sequence[str]], openmetrics_format: bool) -> Query:
        """Return the scrape ``params`` ask for; ValueError saying why it cannot be served."""
        enabled = self.known if self.enabled is None else self.enabled
        collect = list(params.get("collect[]", ()))
        drop = list(params.get("exclude[]", ()))
        for name in (*collect, *drop):
            if name not in self.known:
                raise ValueError(f"unknown collector {name!r}; known: {', '.join(self.known)}")
        if collect and drop:
            raise ValueError("collect[] and exclude[] cannot be used together")
        for name in collect:
            if name not in enabled:
                raise ValueError(f"collector {name!r} is turned off (daemon.metrics_collectors)")
        chosen = frozenset(n for n in enabled if (not collect or n in collect) and n not in drop)
        return Query(chosen, self.exclude, openmetrics_format)


# --------------------------------------------------------------------------
# Building a scrape in steps
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """The sources a query reads and the families it writes, each with its parts:
    (source position, entry position) in the order they are written."""

    sources: tuple[Source, ...]
    families: tuple[tuple[Family, tuple[tuple[int, int], ...]], ...]


def _layout(sources: Sequence[Source], exclude: Sequence[str]) -> _Layout:
    """Merge the families of *sources* by name, leaving out the *exclude*-d ones."""
    kept: list[Source] = []
    merged: dict[str, tuple[Family, list[tuple[int, int]]]] = {}
    for source in sources:
        parts = [
            (i, family)
            for i, family in enumerate(source.families)
            if not excluded(family.name, exclude)
        ]
        if not parts:
            continue
        position = len(kept)
        kept.append(source)
        for i, family in parts:
            first, where = merged.setdefault(family.name, (family, []))
            if first.kind != family.kind:
                raise ValueError(f"metric {family.name} is both a {first.kind} and a {family.kind}")
            where.append((position, i))
    return _Layout(tuple(kept), tuple((family, tuple(where)) for family, where in merged.values()))


Rows = list[tuple[str, Sequence[Entry]]]
"""One source's snapshot: (``{vnet="NAME"``, its entries) per vnet it is attached to."""


def _write(layout: _Layout, snapshot: Sequence[Rows], openmetrics_format: bool) -> Iterator[str]:
    """Yield the text of every family, a step at a time: ``STEP_SAMPLES`` vnets of a
    family with a sample per vnet, ``STEP_LABELLED`` of one with more."""
    for family, parts in layout.families:
        yield family.header(openmetrics_format)
        name = family.sample
        for source, index in parts:
            rows = snapshot[source]
            size = STEP_LABELLED if family.labels else STEP_SAMPLES
            for start in range(0, len(rows), size):
                step = rows[start : start + size]
                if family.labels:
                    yield "".join(
                        [
                            f"{name}{vnet}{text}}} {value}\n"
                            for vnet, entries in step
                            for text, value in entries[index]  # type: ignore[union-attr]  # pairs
                        ]
                    )
                else:
                    yield "".join([f"{name}{vnet}}} {entries[index]}\n" for vnet, entries in step])


class Exporter:
    """A daemon's metrics: what a scrape of it holds, built in steps."""

    def __init__(self, daemon: Scraped, sources: Sequence[Source] = SOURCES) -> None:
        self.daemon = daemon
        self.sources = tuple(sources)
        self.names = (DAEMON, PROCESS, *(s.name for s in self.sources))
        """Every source's name, as ``collect[]=`` takes them."""
        self._layouts: dict[tuple[frozenset[str], tuple[str, ...]], _Layout] = {}
        self.last: Pacer | None = None
        """The pacing of the last scrape finished (:meth:`record`)."""

    def record(self, pacer: Pacer) -> None:
        """Keep how a finished scrape went, for the next one to report."""
        self.last = pacer

    def layout(self, query: Query) -> _Layout:
        """Return (and keep) what *query* reads and writes."""
        key = (query.sources, query.exclude)
        found = self._layouts.get(key)
        if found is None:
            chosen = [s for s in self.sources if s.name in query.sources]
            found = self._layouts[key] = _layout(chosen, query.exclude)
        return found

    def steps(self, query: Query) -> Iterator[str]:
        """Yield the exposition text in pieces, each a bounded amount of work.

        First the snapshot (empty pieces, ``STEP_VNETS`` vnets each), then the
        daemon-wide and process families, then the vnets' families written
        from the snapshot, then ``# EOF`` in OpenMetrics; last, the snapshot
        is dropped a few vnets per (empty) piece.
        """
        layout = self.layout(query)
        tree = self.daemon.tree
        vnets = list(tree) if tree is not None else []
        snapshot: list[Rows] = [[] for _ in layout.sources]
        for start in range(0, len(vnets), STEP_VNETS):
            for vnet in vnets[start : start + STEP_VNETS]:
                key = f'{{vnet="{vnet.name}"'  # vnet names need no escaping (check_name)
                for rows, source in zip(snapshot, layout.sources, strict=True):
                    entries = source.read(vnet)
                    if entries is not None:
                        rows.append((key, entries))
            yield ""
        yield self.prelude(query, len(vnets))
        yield from _write(layout, snapshot, query.openmetrics)
        if query.openmetrics:
            yield "# EOF\n"
        for rows in snapshot:  # freed in steps too: at once, it is a pause of its own
            while rows:
                del rows[-STEP_VNETS * 4 :]
                yield ""

    def prelude(self, query: Query, vnets: int) -> str:
        """Return the daemon-wide and process families *query* asks for."""
        families: list[Metric] = []
        if DAEMON in query.sources:
            families.extend(daemon_metrics(self.daemon.started, vnets))
            families.extend(reload_metrics(self.daemon))
            if self.last is not None:
                families.extend(pacing_metrics(self.last))
        if PROCESS in query.sources:
            families.extend(process_metrics())
        return encode(families, query.openmetrics, query.exclude)

    def text(self, query: Query | None = None) -> str:
        """Return a whole scrape at once (tests and tools; the exporter paces it)."""
        return "".join(self.steps(query or Query(frozenset(self.names))))


# --------------------------------------------------------------------------
# Pacing: the loop runs between slices
# --------------------------------------------------------------------------


CHUNK_CHARS = 1 << 16
"""Text gathered before it is handed on (written, compressed, or sent to a front)."""


class Pacer:
    """Hands the loop back once a pass has spent ``budget`` seconds on a scrape, and
    keeps how the scrape went (reported by the next one: ``vrouter_scrape_*``)."""

    def __init__(self, budget: float | None = None) -> None:
        self.budget = SLICE_SECONDS if budget is None else budget
        self.passes = 1
        """Loop passes the scrape has taken so far."""
        self.longest = 0.0
        """The longest time one of them spent on it, in seconds (wall clock)."""
        self.longest_cpu = 0.0
        """The most CPU time one of them spent on it, in seconds."""
        self.started = time.perf_counter()
        self.duration: float | None = None
        """Seconds from start to end, once :meth:`done`."""
        self._since = self.started
        self._since_cpu = time.thread_time()

    async def tick(self) -> None:
        """Yield to the loop if this pass's budget is spent."""
        if time.perf_counter() - self._since >= self.budget:
            self._end_pass()
            await asyncio.sleep(0)
            self.passes += 1
            self._since = time.perf_counter()
            self._since_cpu = time.thread_time()

    def _end_pass(self) -> None:
        self.longest = max(self.longest, time.perf_counter() - self._since)
        self.longest_cpu = max(self.longest_cpu, time.thread_time() - self._since_cpu)

    def done(self) -> None:
        """End the last pass and the scrape."""
        self._end_pass()
        self.duration = time.perf_counter() - self.started


def pacing_metrics(pacer: Pacer) -> Iterator[Metric]:
    """How the previous scrape went: its duration, passes and longest pass."""
    yield GaugeMetricFamily(
        "vrouter_scrape_duration_seconds",
        "How long the previous scrape took to build and send, in seconds.",
        value=pacer.duration or 0.0,
    )
    yield GaugeMetricFamily(
        "vrouter_scrape_loop_passes",
        "Event-loop passes the previous scrape was spread over (the data path ran between).",
        value=pacer.passes,
    )
    yield GaugeMetricFamily(
        "vrouter_scrape_longest_pass_seconds",
        "The longest time one loop pass spent on the previous scrape (wall clock), in seconds.",
        value=pacer.longest,
    )
    yield GaugeMetricFamily(
        "vrouter_scrape_longest_pass_cpu_seconds",
        "The most CPU time one loop pass spent on the previous scrape, in seconds.",
        value=pacer.longest_cpu,
    )


gc_held = gcpause.held
"""Keep the cyclic garbage collector off during a scrape (:mod:`vrouter.core.gcpause`)."""


async def paced(steps: Iterable[str], pacer: Pacer | None = None) -> list[str]:
    """Run *steps* a slice per loop pass; return the text in chunks of ``CHUNK_CHARS``."""
    pacer = pacer or Pacer()
    chunks: list[str] = []
    held: list[str] = []
    size = 0
    with gc_held():
        for piece in steps:
            if piece:
                held.append(piece)
                size += len(piece)
                if size >= CHUNK_CHARS:
                    chunks.append("".join(held))
                    held.clear()
                    size = 0
            await pacer.tick()
    if held:
        chunks.append("".join(held))
    pacer.done()
    return chunks


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

Expose = Callable[[Query], Awaitable[Iterable[str]]]
"""What a scrape is: the query in, the exposition's steps out (awaited first: a
front fetches its workers' metrics there)."""


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request line and the headers the exporter reads."""

    method: bytes
    path: bytes
    params: dict[str, list[str]]
    headers: dict[bytes, bytes]

    @property
    def openmetrics(self) -> bool:
        """Return whether the client takes OpenMetrics (``Accept``), as Prometheus does."""
        return b"application/openmetrics-text" in self.headers.get(b"accept", b"")

    @property
    def gzip(self) -> bool:
        """Return whether ``Accept-Encoding`` allows gzip (a ``q=0`` refuses it)."""
        for coding in self.headers.get(b"accept-encoding", b"").split(b","):
            name, _, params = coding.strip().partition(b";")
            if name.strip().lower() in (b"gzip", b"*"):
                q = params.strip().lower()
                try:
                    return not (q.startswith(b"q=") and float(q[2:] or 0) == 0)
                except ValueError:  # a weight that is no number: as if none were given
                    return True
        return False


class MetricsServer:
    """Answers ``GET /metrics`` (and ``HEAD``) on the daemon's loop; 404 elsewhere.

    The body is written as it is built, a slice per loop pass (chunked
    transfer coding, gzip if the client accepts it); one request per
    connection (``Connection: close``); a client gets ``REQUEST_TIMEOUT``
    seconds to send its request.  A failure before the first byte of the
    body is a 500; after it, the connection is cut so the scrape fails.
    """

    def __init__(
        self,
        expose: Expose,
        selection: Callable[[], Selection],
        record: Callable[[Pacer], None] | None = None,
    ) -> None:
        self.expose = expose
        self.selection = selection
        """What the config serves now (a reload may change it)."""
        self.record = record
        """Called with the pacing of every scrape served whole."""
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
                    request = await _read_request(reader)
            except ValueError:  # a line longer than LINE_LIMIT
                request = None
            await self.respond(request, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def respond(self, request: Request | None, writer: asyncio.StreamWriter) -> None:
        """Write the whole response to *request* (None: malformed)."""
        if request is None:
            writer.write(_response(400, b"bad request\n"))
            return
        if request.path != b"/metrics":
            writer.write(_response(404, b"not found; metrics are at /metrics\n"))
            return
        if request.method not in (b"GET", b"HEAD"):
            writer.write(_response(405, b"method not allowed\n", extra=b"Allow: GET, HEAD\r\n"))
            return
        try:
            query = self.selection().query(request.params, request.openmetrics)
        except ValueError as err:
            writer.write(_response(400, f"{err}\n".encode()))
            return
        compress = request.gzip
        content_type = OPENMETRICS_CONTENT_TYPE if query.openmetrics else CONTENT_TYPE_LATEST
        header = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Type: {content_type}\r\n"
            + ("Content-Encoding: gzip\r\n" if compress else "")
            + "Transfer-Encoding: chunked\r\nVary: Accept, Accept-Encoding\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        if request.method == b"HEAD":
            writer.write(header)
            return
        await self._body(query, header, compress, writer)

    async def _body(
        self, query: Query, header: bytes, compress: bool, writer: asyncio.StreamWriter
    ) -> None:
        pacer = Pacer()
        gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if compress else None
        held: list[str] = []
        size = 0
        started = False

        async def send(text: str, final: bool = False) -> None:
            data = text.encode()
            if gzip is not None:
                data = gzip.compress(data) + (gzip.flush() if final else b"")
            if data:
                writer.write(b"%x\r\n%b\r\n" % (len(data), data))
            if final:
                writer.write(b"0\r\n\r\n")
            await writer.drain()

        try:
            with gc_held():
                for piece in await self.expose(query):
                    if piece:
                        if not started:
                            writer.write(header)
                            started = True
                        held.append(piece)
                        size += len(piece)
                        if size >= CHUNK_CHARS:
                            await send("".join(held))
                            held.clear()
                            size = 0
                    await pacer.tick()
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("metrics scrape failed")
            if not started:
                writer.write(_response(500, b"metrics collection failed; see the daemon log\n"))
            else:
                writer.transport.abort()  # the client sees a cut body, not a short scrape
            return
        if not started:
            writer.write(header)
        await send("".join(held), final=True)
        pacer.done()
        if self.record is not None:
            self.record(pacer)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """Return the request after reading its headers, or None if malformed."""
    line = await reader.readline()
    headers: dict[bytes, bytes] = {}
    for _ in range(MAX_HEADERS):
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, colon, value = header.partition(b":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    else:
        return None
    parts = line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    path, _, query = parts[1].partition(b"?")
    params = urllib.parse.parse_qs(query.decode("latin-1"))
    return Request(parts[0], path, params, headers)


def _response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    extra: bytes = b"",
) -> bytes:
    """Return a whole HTTP/1.1 response with *body*."""
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
    return header + body
