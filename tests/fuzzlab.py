"""Fuzz targets over vrouter's parsers and protocol input functions, seeded with captures.

A target is a function of one ``bytes`` input.  It feeds the input to one
parser or input function and checks what vrouter promises of it:

- a ``wire/`` parser returns a value or raises one of its documented errors
  (:class:`~vrouter.wire.errors.WireError`; RIP's ``AuthError`` is one);
- a protocol input function (``ether.input`` into a vnet built in memory
  with a fake clock, RIP's ``Instance.receive``) raises nothing at all, the
  interface counts the frame, no ``internal_error`` drop appears anywhere
  (epairs deliver through ``ether.receive``, which turns an exception into
  that drop), and the frame is accounted for: it was answered, forwarded,
  delivered or dropped with a reason, so some counter other than the
  arrival counters moved, or a frame left;
- the control server answers any line with a reply, never an internal
  error, and logs no traceback;
- the SOCKS5 handshake reader ends with a request, a refusal or one of the
  exceptions its caller handles (end of stream, ``ValueError``).

Anything else raised is a finding: :class:`Finding` with the input.

Seeds are the captured packets of the unit tests (``tests/unit/wire``,
``tests/unit/inet``, ``tests/unit/inet6``, ``tests/unit/rip``: their
module-level byte constants), sorted by what they parse as, plus frames
built for the lab's addresses (ping, UDP, TCP SYN, ND, RS, fragments) and a
request for every control operation.

Two engines drive the targets: :func:`run` mutates seeds with a seeded
``random.Random`` in-process, for a number of inputs or a time budget (the
CI test and ``bench/fuzz.py``'s default), and ``python tests/fuzzlab.py
TARGET [libFuzzer flags]`` runs one target under atheris, coverage-guided,
when atheris is installed (``bench/fuzz.py --engine atheris``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import ipaddress
import json
import logging
import operator
import random
import re
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Target = Callable[[bytes], None]


class Finding(AssertionError):
    """An input broke a target's promise."""

    def __init__(self, target: str, data: bytes, what: str) -> None:
        super().__init__(f"{target}: {what}\ninput: {data.hex()}")
        self.target = target
        self.data = data
        self.what = what


# -- seeds from the unit tests' captures ---------------------------------------------------

CAPTURE_FILES = (
    "unit/wire/test_arp.py",
    "unit/wire/test_checksum.py",
    "unit/wire/test_ethernet.py",
    "unit/wire/test_icmp4.py",
    "unit/wire/test_icmp6.py",
    "unit/wire/test_ipv4.py",
    "unit/wire/test_ipv6.py",
    "unit/wire/test_ndp.py",
    "unit/wire/test_udp.py",
    "unit/inet/test_fragment.py",
    "unit/inet6/test_fragment.py",
    "unit/rip/test_packet.py",
    "unit/rip/test_instance.py",
)


def _captures() -> list[bytes]:
    """Return every module-level bytes constant (8 bytes or more) of the capture files."""
    found: list[bytes] = []
    for rel in CAPTURE_FILES:
        path = HERE / rel
        if not path.exists():
            continue
        spec = importlib.util.spec_from_file_location(f"_fuzz_seed_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception:  # a test file that no longer imports gives no seeds
            continue
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, bytes) and len(value) >= 8:
                found.append(value)
    return found


@dataclass
class Seeds:
    """Captured packets sorted by layer."""

    frames: list[bytes] = field(default_factory=list)
    arp: list[bytes] = field(default_factory=list)
    ipv4: list[bytes] = field(default_factory=list)
    ipv6: list[bytes] = field(default_factory=list)
    icmp4: list[bytes] = field(default_factory=list)
    icmp6: list[bytes] = field(default_factory=list)
    udp: list[bytes] = field(default_factory=list)
    tcp: list[bytes] = field(default_factory=list)
    rip: list[bytes] = field(default_factory=list)
    ripng: list[bytes] = field(default_factory=list)

    def add_ip(self, packet: bytes) -> None:
        """Sort ``packet`` (IPv4 or IPv6) and its payload."""
        from vrouter.wire import ipv4, ipv6
        from vrouter.wire.errors import WireError

        if packet and packet[0] >> 4 == 4:
            try:
                hlen, total = ipv4.check(packet)
            except WireError:
                return
            self.ipv4.append(packet)
            payload, proto = packet[hlen:total], packet[9]
            src, dst = packet[12:16], packet[16:20]
        elif packet and packet[0] >> 4 == 6:
            try:
                ipv6.check(packet)
                chain = ipv6.walk(packet, len(packet), local=True)
            except WireError:
                return
            self.ipv6.append(packet)
            payload, proto = packet[chain.offset :], chain.proto
            src, dst = packet[8:24], packet[24:40]
        else:
            return
        if proto == 1:
            self.icmp4.append(payload)
        elif proto == 58:
            self.icmp6.append(src + dst + payload)
        elif proto == 17:
            self.udp.append(src + dst + payload)
            if payload[2:4] in (b"\x02\x08", b"\x02\x09"):  # to port 520 or 521
                (self.rip if len(src) == 4 else self.ripng).append(payload[8:])
        elif proto == 6:
            self.tcp.append(src + dst + payload)

    def add(self, blob: bytes) -> None:
        """Sort one capture by what it parses as."""
        if len(blob) >= 14 and blob[12:14] in (b"\x08\x00", b"\x08\x06", b"\x86\xdd"):
            self.frames.append(blob)
            if blob[12:14] == b"\x08\x06":
                self.arp.append(blob[14:])
            else:
                self.add_ip(blob[14:])
        elif blob[:6] == b"\x00\x01\x08\x00\x06\x04":
            self.arp.append(blob)
        elif blob[0] >> 4 in (4, 6):
            self.add_ip(blob)
        if len(blob) >= 4 and blob[0] in (1, 2) and blob[1] in (1, 2) and blob[2:4] == b"\0\0":
            self.rip.append(blob)
            if blob[1] == 1:
                self.ripng.append(blob)


_SEEDS: Seeds | None = None


def seeds() -> Seeds:
    """Return the captures of the unit tests and the lab's own frames, sorted (made once)."""
    global _SEEDS
    if _SEEDS is None:
        found = Seeds()
        for blob in _captures():
            found.add(blob)
        for frame in _lab_frames():
            found.add(frame)
        _SEEDS = found
    return _SEEDS


# -- checksums, so mutated packets get past the checks -------------------------------------


def fix_checksums(packet: bytearray, header: bool, upper: bool) -> None:
    """Recompute the IPv4 header checksum and the ICMP/ICMPv6/UDP/TCP checksum, where they fit."""
    from vrouter.wire.checksum import checksum, pseudo_header_sum

    if len(packet) < 20:
        return
    version = packet[0] >> 4
    if version == 4:
        hlen = (packet[0] & 0x0F) * 4
        if hlen < 20 or hlen > len(packet):
            return
        if header:
            packet[10:12] = b"\0\0"
            struct.pack_into("!H", packet, 10, checksum(packet[:hlen]))
        total = min(int.from_bytes(packet[2:4], "big"), len(packet))
        if not upper or total < hlen or int.from_bytes(packet[6:8], "big") & 0x3FFF:
            return
        proto, src, dst, start = packet[9], bytes(packet[12:16]), bytes(packet[16:20]), hlen
    elif version == 6 and len(packet) >= 40:
        if not upper:
            return
        total = min(40 + int.from_bytes(packet[4:6], "big"), len(packet))
        proto, start = packet[6], 40
        while proto in (0, 43, 60, 44) and start + 8 <= total:
            if proto == 44:
                if int.from_bytes(packet[start + 2 : start + 4], "big") & 0xFFF9:
                    return  # a later fragment: no upper header here
                proto, start = packet[start], start + 8
            else:
                proto, start = packet[start], start + (packet[start + 1] + 1) * 8
        src, dst = bytes(packet[8:24]), bytes(packet[24:40])
    else:
        return
    at = {1: 2, 58: 2, 17: 6, 6: 16}.get(proto)
    if at is None or start + at + 2 > total:
        return
    body = packet[start:total]
    body[at : at + 2] = b"\0\0"
    initial = 0 if proto == 1 else pseudo_header_sum(src, dst, proto, len(body))
    value = checksum(body, initial)
    if proto == 17 and value == 0:
        value = 0xFFFF
    struct.pack_into("!H", packet, start + at, value)


# -- the mutator ---------------------------------------------------------------------------

_INTERESTING8 = (0, 1, 0x7F, 0x80, 0xFF, 0x40, 0x45, 0x60, 0x06, 0x11, 0x3A, 0x2C, 0x2B, 0x00)
_INTERESTING16 = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 8, 20, 40, 1280, 1500, 65535, 0x0800, 0x86DD)


def mutate(rng: random.Random, data: bytes, pool: list[bytes], max_len: int = 4096) -> bytes:
    """Return ``data`` changed by one to four random edits (flips, sets, splices, cuts)."""
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        n = len(out)
        op = rng.randrange(10)
        if op == 0 and n:
            i = rng.randrange(n)
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[rng.randrange(n)] = rng.choice(_INTERESTING8)
        elif op == 2 and n:
            out[rng.randrange(n)] = rng.randrange(256)
        elif op == 3 and n >= 2:
            i = rng.randrange(n - 1)
            value = rng.choice((*_INTERESTING16, n, n - i, n + 1, n - 1))
            out[i : i + 2] = struct.pack("!H", value & 0xFFFF)
        elif op == 4 and n:
            del out[rng.randrange(n) :]
        elif op == 5:
            i = rng.randrange(n + 1)
            out[i:i] = rng.randbytes(rng.choice((1, 2, 4, 8, 16, 64)))
        elif op == 6 and n:
            i = rng.randrange(n)
            del out[i : i + rng.choice((1, 2, 4, 8, 16))]
        elif op == 7 and pool:
            other = rng.choice(pool)
            if other:
                i, j = rng.randrange(n + 1), rng.randrange(len(other))
                out[i:] = other[j:]
        elif op == 8 and n >= 2:
            i, j = rng.randrange(n), rng.randrange(n)
            k = rng.randrange(1, 17)
            out[j : j + k] = out[i : i + k]
        elif op == 9 and n:
            i = rng.randrange(n)
            out[i : i + 4] = rng.randbytes(4)
    return bytes(out[:max_len])


_JSON_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 65535, 65536, 2**31, 2**64, 10**400, -(10**400), 0.5, 1e308,
    float("inf"), float("-inf"), float("nan"), "", "red", "red/x", "../../etc", "\u0000", "x" * 300,
    "192.0.2.1", "2001:db8::1/64", "198.18.0.0/15", "fz0", "red:ep0", "inet6", "tcp", [], [4],
    ["a", 1], {}, {"a": [1]}, {"net.inet.ip.ttl": 1e999}, [[[[[]]]]],
)  # fmt: skip


_OP = re.compile(rb'"op": "([a-z0-9.]+)"')


def _json_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_paths(item, (*path, i))


def mutate_json(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """Return a JSON request with one value, key or the op replaced (bytes mutation otherwise)."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return mutate(rng, data, pool)
    if not isinstance(message, dict) or rng.random() < 0.2:
        return mutate(rng, data, pool)
    paths = list(_json_paths(message))[1:]
    if not paths:
        return mutate(rng, data, pool)
    path = rng.choice(paths)
    parent = message
    for step in path[:-1]:
        parent = parent[step]
    choice = rng.randrange(4)
    if choice == 0 and isinstance(parent, dict):  # rename a key (an unknown or a private one)
        parent[rng.choice(("_privileged", "_text", "_tops", "_check", "x", path[-1] + "s"))] = (
            parent.pop(path[-1])
        )
    elif choice == 1 and path == ("op",):
        ops = [m.group(1) for m in (_OP.search(p) for p in pool) if m]
        parent["op"] = rng.choice(ops).decode() if ops else "status"
    else:
        parent[path[-1]] = rng.choice(_JSON_VALUES)
    try:
        return json.dumps(message).encode()
    except ValueError:
        return data


# -- the in-memory lab for the input functions ---------------------------------------------

MAC_RED = bytes.fromhex("00005e005301")  # the captures' 192.0.2.1 / 2001:db8:1::1
MAC_BLUE = bytes.fromhex("02005e005311")
MAC_HOST = bytes.fromhex("00005e005302")

LAB_CONFIG = """
[daemon]
control_socket = "{dir}/control.sock"
state_dir = "{dir}/state"

[vnets.red.interfaces.fz0]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
mac = "00:00:5e:00:53:01"
ra = {{ interval = 30, lifetime = 1800, mtu = true, rdnss = ["2001:db8:1::53"] }}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
mtu = 1280
addresses = ["203.0.113.1/30", "2001:db8:ff::1/64"]

[[vnets.red.routes]]
to = "198.51.100.0/24"
via = "203.0.113.2"

[[vnets.red.routes]]
to = "2001:db8:2::/64"
via = "2001:db8:ff::2"

[[vnets.red.routes]]
to = "203.0.113.128/25"
type = "reject"

[vnets.blue.interfaces.fz1]
type = "tap"
addresses = ["198.51.100.1/24", "2001:db8:2::1/64"]
mac = "02:00:5e:00:53:11"

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
mtu = 1280
addresses = ["203.0.113.2/30", "2001:db8:ff::2/64"]

[[vnets.blue.routes]]
to = "192.0.2.0/24"
via = "203.0.113.1"

[[vnets.blue.routes]]
to = "2001:db8:1::/64"
via = "2001:db8:ff::1"

[vnets.blue.firewall]
enable = true
default = "block"

[[vnets.blue.firewall.rules]]
action = "reject"
proto = "tcp"
to_port = 23

[[vnets.blue.firewall.rules]]
action = "pass"
proto = "tcp"
flags = "S/SA"

[[vnets.blue.firewall.rules]]
action = "pass"
proto = "udp"

[[vnets.blue.firewall.rules]]
action = "pass"
proto = "icmp"

[[vnets.blue.firewall.rules]]
action = "pass"
proto = "icmp6"

[vnets.green]
forwarding = false

[vnets.green.interfaces.fz2]
type = "tap"
addresses = ["192.0.2.1/24", "2001:db8:1::1/64"]
mac = "00:00:5e:00:53:01"
"""

ARRIVALS = frozenset({"rx_packets", "rx_bytes", "total", "received", "rcvtotal", "rcvpack",
                      "rcvbyte", "input", "in_msgs", "in_packets"})  # fmt: skip
"""Counters that only say something arrived: moving them alone accounts for nothing."""


_GETTERS: dict[type, tuple[Callable[[Any], tuple[Any, ...]], Callable[[Any], tuple[Any, ...]]]] = {}


def _counted(stats: Any) -> int:
    """Return the sum of the counters of dataclass ``stats`` (by-reason dicts included).

    The arrival counters (:data:`ARRIVALS`) are left out.
    """
    getters = _GETTERS.get(type(stats))
    if getters is None:
        names = [f.name for f in fields(stats) if f.name not in ARRIVALS]
        ints = [n for n in names if type(getattr(stats, n)) is int]
        dicts = [n for n in names if isinstance(getattr(stats, n), dict)]
        getters = _GETTERS[type(stats)] = (
            operator.attrgetter(*ints, "__class__") if ints else lambda _: (),
            operator.attrgetter(*dicts, "__class__") if dicts else lambda _: (),
        )
    *numbers, _ = getters[0](stats) or (None,)
    *tables, _ = getters[1](stats) or (None,)
    return sum(numbers) + sum(sum(t.values()) for t in tables)


class StackLab:
    """Three vnets built from :data:`LAB_CONFIG` as vrouterd builds them, in memory.

    red (router, RAs on fz0, a UDP socket on port 9 and TCP listeners on
    port 80) ═ep0═ blue (router, stateful firewall) and green (a host: no
    forwarding, the same addresses as red).  The TAP-kind interfaces have no
    device: what they transmit is counted.  Time is a number moved on by
    every input; due timers run every 64 inputs.
    """

    def __init__(self) -> None:
        from vrouter.daemon import build
        from vrouter.daemon.config.parse import parse
        from vrouter.link.epair import Epair
        from vrouter.transport import sockets

        # Only parsed: nothing is written to the daemon's directories.
        config = parse(LAB_CONFIG.format(dir="/nonexistent/vrouter-fuzz"), "fuzz.toml")
        self.now = 1000.0
        built = build.build(config, self.now)
        self.tree = built.tree
        self.vnets = [self.tree.get(name) for name in ("red", "blue", "green")]
        self.sent = 0
        where = (("red", "fz0"), ("blue", "fz1"), ("green", "fz2"), ("red", "ep0"))
        self.ifaces = [self.tree.get(v).link.get(i) for v, i in where]
        for ifp, _ in built.taps:
            ifp.transmit = self._transmit
        self.epairs = [Epair(a, b) for a, b in built.epairs]
        for vcfg in config.vnets:
            build.bring_up(self.tree.get(vcfg.name), list(vcfg.interfaces), self.now)
        red = self.tree.get("red")
        self.delivered = 0
        for family in (4, 6):
            sock = sockets.open_socket(red, family, sockets.UDP)
            sock.deliver = self._deliver
            sock.privileged = True
            sockets.bind(sock, None, 9)
            red.tcp.listen(family, b"", 80)
        self.inputs = 0
        self.last_tally = 0
        self.settle()
        for _ in range(3):  # past DAD
            self.advance(1.0)

    def _transmit(self, frame: bytes | bytearray) -> None:
        self.sent += 1

    def _deliver(self, data: bytes) -> bool:
        self.delivered += 1
        return True

    def settle(self) -> None:
        """Carry frames across the epairs until none moves (bounded)."""
        for _ in range(64):
            if not sum(pair.pump(self.now) for pair in self.epairs):
                return

    def advance(self, seconds: float) -> None:
        """Move the clock and run every vnet's due timers."""
        self.now += seconds
        for vnet in self.vnets:
            vnet.timers.run(self.now)
        self.settle()
        self.last_tally = self.tally()

    def tally(self) -> int:
        """Return a sum that moves whenever a frame is answered, forwarded, delivered or dropped."""
        total = self.sent + self.delivered
        for vnet in self.vnets:
            inet, inet6 = vnet.inet, vnet.inet6
            stats = [inet.stats, inet.reass.stats, inet.icmp, inet.arpstat, inet6.stats,
                     inet6.reass.stats, inet6.icmp, vnet.tcp.stats,
                     vnet.transport.stats]  # fmt: skip
            firewall = getattr(vnet, "firewall", None)
            if firewall is not None:
                stats += [firewall.fw.stats, firewall.fw.states.stats]
                total += firewall.rejects_sent
            stats += [ifp.counters for ifp in vnet.link.interfaces.values()]
            total += sum(_counted(s) for s in stats)
        return total

    def internal_errors(self) -> int:
        """Return how many frames failed with an exception anywhere (ether.receive's count)."""
        return sum(
            ifp.counters.rx_drops.get("internal_error", 0)
            for vnet in self.vnets
            for ifp in vnet.link.interfaces.values()
        )

    def inject(self, ifp: Any, frame: bytes) -> None:
        """Deliver ``frame`` on ``ifp`` as its device would, and check the invariants."""
        from vrouter.link import ether

        counters = ifp.counters
        before_rx, before = counters.rx_packets, self.last_tally
        ether.input(ifp, frame, self.now)  # raises: a finding (the caller reports it)
        self.settle()
        if counters.rx_packets <= before_rx:  # more, when an answer came back over the epair
            raise AssertionError("the interface did not count the frame")
        if self.internal_errors():
            raise AssertionError("a frame failed with an exception behind an epair")
        self.last_tally = self.tally()
        if self.last_tally == before:
            raise AssertionError("the frame left no trace: not answered, forwarded or counted")
        self.inputs += 1
        self.now += 0.001
        if self.inputs % 64 == 0:
            self.advance(0.5)


@dataclass
class _ViewHost:
    tree: Any


def _lab_frames() -> list[bytes]:
    """Return frames aimed at the lab's addresses: the paths a capture may not reach."""
    from vrouter.wire import ethernet, ipv4, ipv6, tcp, udp
    from vrouter.wire import icmp6 as w_icmp6
    from vrouter.wire.checksum import checksum

    h4, r4, far4 = bytes([192, 0, 2, 2]), bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
    h6 = ipaddress.IPv6Address("2001:db8:1::2").packed
    r6 = ipaddress.IPv6Address("2001:db8:1::1").packed
    far6 = ipaddress.IPv6Address("2001:db8:2::2").packed
    ll6 = ipaddress.IPv6Address("fe80::200:5eff:fe00:5302").packed

    def eth4(packet: bytes) -> bytes:
        return ethernet.build(MAC_RED, MAC_HOST, ethernet.ETHERTYPE_IPV4, packet)

    def eth6(packet: bytes, dst: bytes = MAC_RED) -> bytes:
        return ethernet.build(dst, MAC_HOST, ethernet.ETHERTYPE_IPV6, packet)

    def icmp4(type_: int, body: bytes) -> bytes:
        raw = bytearray(bytes([type_, 0, 0, 0]) + body)
        struct.pack_into("!H", raw, 2, checksum(raw))
        return bytes(raw)

    syn = tcp.build(h4, r4, 40000, 80, 1000, 0, tcp.SYN, 65535, b"\x02\x04\x05\xb4")
    syn6 = tcp.build(h6, r6, 40000, 80, 1000, 0, tcp.SYN, 65535)
    big = udp.build(h4, far4, 40000, 9, bytes(range(256)) * 8)
    whole = ipv4.build(h4, far4, ipv4.PROTO_UDP, big, ident=7)
    frag1 = bytearray(whole[:20] + whole[20:1500])
    struct.pack_into("!HH", frag1, 2, len(frag1), ipv4.FLAG_MF)
    frag2 = bytearray(whole[:20] + whole[1500:])
    struct.pack_into("!HH", frag2, 2, len(frag2), (1480 // 8))
    for f in (frag1, frag2):
        fix_checksums(f, header=True, upper=False)
    frag6 = bytes([17, 0, 0, 1, 0, 0, 0, 9]) + udp.build(h6, r6, 40000, 9, b"x" * 24)[:16]
    hbh = bytes([17, 0, 5, 2, 0, 0, 1, 0])  # router alert, then UDP
    ns = w_icmp6.build(135, 0, bytes(4) + r6 + bytes([1, 1]) + MAC_HOST, ll6,
                       ipv6.solicited_node(r6))  # fmt: skip
    rs = w_icmp6.build(133, 0, bytes(4) + bytes([1, 1]) + MAC_HOST, ll6, ipv6.ALL_ROUTERS)
    na = w_icmp6.build(136, 0, b"\x60\0\0\0" + h6 + bytes([2, 1]) + MAC_HOST, h6, r6)
    echo6 = w_icmp6.build(128, 0, b"\x42\x42\0\1vrouter", h6, far6)
    ptb = w_icmp6.build(2, 0, struct.pack("!I", 1280) + ipv6.build(r6, far6, 17, bytes(16)), h6, r6)
    return [
        eth4(ipv4.build(h4, r4, 1, icmp4(8, b"\x42\x42\0\1vrouter ping"))),
        eth4(ipv4.build(h4, far4, 1, icmp4(8, b"\x42\x42\0\2vrouter ping"))),
        eth4(ipv4.build(h4, r4, 17, udp.build(h4, r4, 40000, 9, b"datagram"))),
        eth4(ipv4.build(h4, r4, 17, udp.build(h4, r4, 40000, 520, b"\x02\x02\0\0" + bytes(20)))),
        eth4(ipv4.build(h4, far4, 17, udp.build(h4, far4, 40000, 33434, b"probe"), ttl=1)),
        eth4(ipv4.build(h4, bytes([203, 0, 113, 200]), 17, udp.build(h4, r4, 1, 2, b""))),
        eth4(ipv4.build(h4, r4, 6, syn)),
        eth4(ipv4.build(h4, far4, 6, tcp.build(h4, far4, 40000, 23, 1, 0, tcp.SYN, 1024))),
        eth4(bytes(frag1)),
        eth4(bytes(frag2)),
        eth6(ipv6.build(h6, r6, 6, syn6)),
        eth6(ipv6.build(h6, r6, 17, udp.build(h6, r6, 40000, 9, b"datagram6"))),
        eth6(ipv6.build(h6, far6, 58, echo6)),
        eth6(ipv6.build(h6, r6, 44, frag6)),
        eth6(ipv6.build(h6, r6, 0, hbh + udp.build(h6, r6, 40000, 9, b"hbh"))),
        eth6(ipv6.build(ll6, ipv6.solicited_node(r6), 58, ns, hop_limit=255),
             ipv6.multicast_mac(ipv6.solicited_node(r6))),
        eth6(ipv6.build(ll6, ipv6.ALL_ROUTERS, 58, rs, hop_limit=255),
             ipv6.multicast_mac(ipv6.ALL_ROUTERS)),
        eth6(ipv6.build(h6, r6, 58, na, hop_limit=255)),
        eth6(ipv6.build(h6, r6, 58, ptb)),
        ethernet.build(b"\xff" * 6, MAC_HOST, ethernet.ETHERTYPE_ARP,
                       bytes.fromhex("0001080006040001") + MAC_HOST + h4 + bytes(6) + r4),
    ]


# -- the targets ---------------------------------------------------------------------------


def _wire(parse: Callable[[bytes], object]) -> Callable[[], Target]:
    def setup() -> Target:
        from vrouter.wire.errors import WireError

        def target(data: bytes) -> None:
            with contextlib.suppress(WireError):
                parse(data)

        return target

    return setup


def _parse_ethernet(data: bytes) -> None:
    from vrouter.wire import ethernet

    ethernet.EthernetHeader.parse(data)


def _parse_arp(data: bytes) -> None:
    from vrouter.wire import arp

    packet = arp.ArpPacket.parse(data)
    assert packet.emit() == data[:28], "ARP does not emit what it parsed"


def _parse_ipv4(data: bytes) -> None:
    from vrouter.wire import ipv4

    header = ipv4.Ipv4Header.parse(data)
    if header.header_len % 4 == 0:
        assert header.emit() == bytes(data[: header.header_len]), "IPv4 header round trip"


def _parse_ipv6(data: bytes) -> None:
    from vrouter.wire import ipv6
    from vrouter.wire.errors import WireError

    ipv6.Ipv6Header.parse(data)
    total = ipv6.check(data)
    with contextlib.suppress(WireError):
        ipv6.walk(data, total, local=False)
    ipv6.walk(data, total, local=True)


def _parse_icmp4(data: bytes) -> None:
    from vrouter.wire import icmp4

    message = icmp4.IcmpMessage.parse(data)
    if message.type == icmp4.ECHO_REQUEST:
        icmp4.echo_reply(message)


def _parse_icmp6(data: bytes) -> None:
    from vrouter.wire import icmp6

    src, dst = data[:16], data[16:32]
    if len(src) < 16 or len(dst) < 16:
        return
    icmp6.Icmp6Message.parse(src, dst, data[32:])


def _parse_ndp(data: bytes) -> None:
    from vrouter.wire import ndp
    from vrouter.wire.errors import WireError

    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    with contextlib.suppress(WireError):
        for type_, value in ndp.parse_options(body):
            if type_ == 3:
                ndp.PrefixInfo.parse(value)
    parser = (ndp.RouterSolicitation, ndp.RouterAdvertisement, ndp.NeighborSolicitation,
              ndp.NeighborAdvertisement)[kind]  # fmt: skip
    parser.parse(body)


def _parse_udp(data: bytes) -> None:
    from vrouter.wire import udp

    family = 16 if data[:1] and data[0] >> 4 in (2, 15) else 4
    src, dst, datagram = data[:family], data[family : 2 * family], data[2 * family :]
    if len(dst) < family:
        return
    header = udp.UdpHeader.parse(datagram)
    udp.verify(src, dst, datagram[: header.length])


def _parse_tcp(data: bytes) -> None:
    from vrouter.wire import tcp

    family = 16 if data[:1] and data[0] >> 4 in (2, 15) else 4
    src, dst, segment = data[:family], data[family : 2 * family], data[2 * family :]
    if len(dst) < family:
        return
    header = tcp.TcpHeader.parse(segment)
    tcp.verify(src, dst, segment)
    tcp.reset_for(dst, src, header)


def _parse_rip(data: bytes) -> None:
    from vrouter.rip import packet as rip

    pkt = rip.parse_v2(data)
    for auth in (rip.Auth(), rip.Auth("plain", b"vrouter-plain"), rip.Auth("md5", b"vrouter-md5")):
        with contextlib.suppress(rip.AuthError):
            rip.check_auth(pkt, auth)


def _parse_ripng(data: bytes) -> None:
    from vrouter.rip import packet as rip

    rip.parse_ng(data)


def _stack_target(ethertype: int | None) -> Callable[[], Target]:
    """Return the setup of a target feeding frames to ``ether.input`` of the lab.

    Byte 0 of the input is a control byte: bit 0 fixes the IPv4 header
    checksum, bit 1 the upper-layer checksum, bits 2-3 choose the interface
    (red's fz0, blue's firewalled fz1, green's host fz2, red's epair end).
    With ``ethertype`` given, the rest is what follows an Ethernet header of
    that type to the interface's MAC; otherwise it is the whole frame.
    """

    def setup() -> Target:
        lab = StackLab()
        rebuild = 20000

        def target(data: bytes) -> None:
            nonlocal lab
            if not data:
                return
            control, rest = data[0], bytearray(data[1:])
            ifp = lab.ifaces[(control >> 2) & 3]
            if ethertype is None:
                frame = rest
                if len(frame) >= 14 and frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
                    payload = frame[14:]
                    fix_checksums(payload, bool(control & 1), bool(control & 2))
                    frame[14:] = payload
            else:
                fix_checksums(rest, bool(control & 1), bool(control & 2))
                dst = ifp.mac if not control & 0x10 else b"\xff" * 6
                frame = bytearray(dst + MAC_HOST + struct.pack("!H", ethertype)) + rest
            lab.inject(ifp, bytes(frame))
            if lab.inputs >= rebuild:  # a long-lived lab, but not one input's whole history
                lab = StackLab()

        return target

    return setup


def _with_control(frames: list[bytes], ethertype: int | None) -> list[bytes]:
    """Return stack-target inputs for ``frames``: control byte 3 (fix both checksums)."""
    out = []
    for frame in frames:
        if ethertype is None:
            out.append(b"\x03" + frame)
        elif len(frame) >= 14 and int.from_bytes(frame[12:14], "big") == ethertype:
            out.append(b"\x03" + frame[14:])
            out.append(b"\x07" + frame[14:])  # the same on blue's firewalled side
    return out


def _rip_instance() -> Target:
    from vrouter.rip import packet as rip
    from vrouter.rip.instance import Instance

    made = {
        4: Instance(4, rng=random.Random(7), auth=rip.Auth("md5", b"vrouter-md5")),
        6: Instance(6, rng=random.Random(7)),
    }
    v4, v6 = made[4], made[6]
    v4.set_interface("eth0", [ipaddress.ip_interface("192.0.2.1/26")], 1000.0)
    v6.set_interface("eth0", [ipaddress.ip_interface("fe80::1/64"),
                              ipaddress.ip_interface("2001:db8::1/64")], 1000.0)  # fmt: skip
    sources = (ipaddress.ip_address("192.0.2.2"), ipaddress.ip_address("fe80::2"))
    clock = [1000.0]

    def target(data: bytes) -> None:
        if not data:
            return
        family = 4 if data[0] & 1 else 6
        instance = v4 if family == 4 else v6
        before = _counted(instance.stats)
        ops, replies = instance.receive("eth0", sources[family == 6], 520 if family == 4 else 521,
                                        data[1:], clock[0], ttl=255)  # fmt: skip
        clock[0] += 0.01
        instance.tick(clock[0])
        if not ops and not replies and _counted(instance.stats) == before:
            raise AssertionError("the RIP packet left no trace")

    return target


def _dhcp_server() -> Target:
    """Parse a DHCP message; one that parses goes to a server with pools, static leases and
    leases already handed out, which answers or drops it with a counted reason."""
    from vrouter.services.dhcp.server import Arrival, PoolSettings, Server, StaticLease
    from vrouter.wire import dhcp
    from vrouter.wire.errors import WireError

    a = ipaddress.IPv4Address
    pool = PoolSettings(
        ipaddress.IPv4Network("192.0.2.0/26"), a("192.0.2.10"), a("192.0.2.13"), 600,
        a("192.0.2.1"), (a("192.0.2.53"),), "lan.example", 1400,
        ((ipaddress.IPv4Network("198.51.100.0/24"), a("192.0.2.1")),),
        (StaticLease(bytes.fromhex("02005e005301"), a("192.0.2.40")),),
    )  # fmt: skip
    server = Server((pool,))
    arrivals = (
        Arrival((ipaddress.IPv4Interface("192.0.2.1/26"),), None, {a("192.0.2.1").packed}),
        Arrival((), a("203.0.113.1").packed),
    )
    clock = [1000.0]

    def target(data: bytes) -> None:
        try:
            message = dhcp.DhcpMessage.parse(data)
        except WireError:
            return
        routes = message.options.get(dhcp.OPT_CLASSLESS_ROUTES)
        if routes is not None:
            with contextlib.suppress(WireError):
                dhcp.parse_classless_routes(routes)
        clock[0] += 7.0
        drops = sum(server.stats.drops.values())
        reply = server.handle(message, arrivals[data[0] & 1], clock[0])
        if reply is not None:
            dhcp.DhcpMessage.parse(reply.emit())  # what goes out parses
        elif not server.changed and sum(server.stats.drops.values()) == drops:
            raise Finding(f"a DHCP message got no reply, no lease change, no drop: {data.hex()}")
        server.changed = False
        if len(server.by_address) > 64:
            raise Finding("the DHCP server holds more leases than its pool has addresses")

    return target


def _dhcp_seeds() -> list[bytes]:
    from vrouter.wire import dhcp

    out = []
    for kind in range(1, 9):
        for flags, giaddr, ciaddr in ((0, dhcp.ZERO, dhcp.ZERO), (0x8000, dhcp.ZERO, dhcp.ZERO),
                                      (0, bytes([192, 0, 2, 62]), dhcp.ZERO),
                                      (0, dhcp.ZERO, bytes([192, 0, 2, 10]))):  # fmt: skip
            mac = bytes.fromhex(f"02005e0053{kind:02x}")
            message = dhcp.DhcpMessage(dhcp.BOOTREQUEST, kind * 77, mac, flags=flags,
                                       giaddr=giaddr, ciaddr=ciaddr)  # fmt: skip
            message.set(dhcp.OPT_MESSAGE_TYPE, bytes((kind,)))
            message.set(dhcp.OPT_PARAMS, bytes([1, 3, 6, 15, 26, 28, 121]))
            message.set(dhcp.OPT_REQUESTED_IP, bytes([192, 0, 2, 10 + kind % 4]))
            message.set(dhcp.OPT_SERVER_ID, bytes([192, 0, 2, 1]))
            message.set(dhcp.OPT_RELAY_AGENT, bytes.fromhex("010365703002037272"))
            out.append(message.emit(0))
    return out


def _rip_instance_seeds() -> list[bytes]:
    s = seeds()
    return [b"\x01" + p for p in s.rip] + [b"\x00" + p for p in s.ripng]


# -- the control protocol ------------------------------------------------------------------


class _Recorder(logging.Handler):
    """Keep every log record that carries a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks.append(record)


@contextlib.contextmanager
def _quiet_vrouter_logs() -> Iterator[_Recorder]:
    """Route vrouter's log records to a recorder (not stderr) while fuzzing."""
    logger = logging.getLogger("vrouter")
    recorder = _Recorder()
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = [recorder]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield recorder
    finally:
        logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def _control_host(directory: str, loop: asyncio.AbstractEventLoop) -> Any:
    """Return a daemon built from the lab config with no devices: TAP creation is refused."""
    from vrouter.daemon import build, hostns
    from vrouter.daemon.config.parse import parse
    from vrouter.daemon.main import Daemon
    from vrouter.daemon.ops import Ops

    path = Path(directory) / "vrouter.toml"
    text = LAB_CONFIG.format(dir=directory)
    path.write_text(text)
    config = parse(text, str(path))
    daemon = Daemon(config, loop)
    now = daemon.driver.now()
    built = build.build(config, now)
    daemon.tree = built.tree
    daemon.ownership = hostns.Ownership(Path(config.daemon.state_dir))
    daemon.ops = Ops(built.tree, daemon.driver, daemon.ownership)

    def no_taps(ifnet: Any) -> Any:
        raise PermissionError(errno.EPERM, "TAP devices are not created while fuzzing")

    daemon.driver.add_tap = no_taps  # type: ignore[method-assign]
    for vnet in built.tree:
        daemon.driver.attach_vnet(vnet)
    for a, b in built.epairs:
        daemon.driver.add_epair(a, b)
    for vcfg in config.vnets:
        build.bring_up(built.tree.get(vcfg.name), list(vcfg.interfaces), now)
    return daemon


def _control_answer() -> Target:
    from vrouter.api.server import ControlServer
    from vrouter.core.perms import Cred

    loop = asyncio.new_event_loop()
    workdir = tempfile.TemporaryDirectory(prefix="vrouter-fuzz-control-")
    creds = (None, Cred(4242, 0, 0), Cred(4343, 1000, 1000, frozenset({100})))
    state: dict[str, Any] = {"answered": 0}

    def fresh() -> None:
        state["daemon"] = _control_host(workdir.name, loop)
        state["server"] = ControlServer(state["daemon"])

    fresh()

    def target(data: bytes) -> None:
        server = state["server"]
        cred = creds[len(data) % 3]
        with _quiet_vrouter_logs() as recorder:
            try:
                reply, passing = loop.run_until_complete(
                    asyncio.wait_for(server.answer(data, cred), 2.0)
                )
            except TimeoutError:  # an operation waiting on the network (tcp.connect)
                return
            if passing is not None:
                passing.sock.close()
                passing.failed()
        if recorder.tracebacks:
            record = recorder.tracebacks[0]
            raise AssertionError(f"logged a traceback: {record.getMessage()}: {record.exc_info!r}")
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise AssertionError(f"not a reply: {reply!r}")
        if not reply["ok"]:
            error = reply.get("error")
            if not isinstance(error, str) or error.startswith("internal error"):
                raise AssertionError(f"reply {reply!r}")
        state["answered"] += 1
        if state["answered"] % 2000 == 0:  # destroyed vnets and unloaded modules come back
            fresh()

    return target


_SAMPLE_VALUES: dict[str, Any] = {
    "vnet": "red", "name": "red/x", "interface": "fz0", "a": "red:ep9", "b": "blue:ep9",
    "address": "192.0.2.9/24", "prefix": "198.18.0.0/15", "via": "203.0.113.2",
    "family": "inet", "port": 8080, "text": "default = \"pass\"\n", "filter": "icmp",
    "to": "green", "type": "static",
}  # fmt: skip


def _control_seeds() -> list[bytes]:
    from vrouter.api.operations import TABLE

    out = []
    for name, op in TABLE.items():
        args: dict[str, Any] = {}
        for arg in op.args:
            if arg.name in _SAMPLE_VALUES:
                value = _SAMPLE_VALUES[arg.name]
            elif arg.choices:
                value = arg.choices[0]
            else:
                value = {"text": "red", "str": "", "bool": True, "int": int(arg.low or 1),
                         "number": float(arg.low or 1.0), "texts": ["192.0.2.7/24"],
                         "scalars": {"net.inet.ip.ttl": 32}, "ints": [10]}[arg.kind]  # fmt: skip
            if arg.kind == "texts" and not isinstance(value, list):
                value = [str(value)]
            if arg.kind in ("int", "number") and not isinstance(value, int | float):
                value = 1
            args[arg.name] = value
        out.append(json.dumps({"op": name, "args": args}).encode() + b"\n")
    out += [
        b"[" * 64 + b"]" * 64,
        b'{"op": "socket.open", "args": {"vnet": "red", "family": [4]}}',
        b'{"op": "route.show", "args": {"vnet": "red", "limit": 12345678901234567890}}',
        b'{"op": "vnet.show", "args": "red"}',
        b"not json at all",
        b'{"op": 7}',
        b'{"op": "status", "args": {"_privileged": true}}',
    ]
    return out


def _control_decode() -> Target:
    from vrouter.api.protocol import ApiError, caller_of, decode_request

    def target(data: bytes) -> None:
        with contextlib.suppress(ApiError):
            decode_request(data)
        caller_of(data)

    return target


# -- SOCKS5 --------------------------------------------------------------------------------


class _Writer:
    """What the handshake writes to, kept in memory."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def _socks_handshake() -> Target:
    from vrouter.api import socks
    from vrouter.daemon.config import SocksConfig

    loop = asyncio.new_event_loop()
    gateways = (
        socks.Gateway(None, SocksConfig("red", ("127.0.0.1", 0))),  # type: ignore[arg-type]
        socks.Gateway(None, SocksConfig("red", ("127.0.0.1", 0), "ops", "secret")),  # type: ignore[arg-type]
    )

    async def handshake(gateway: Any, data: bytes) -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        with contextlib.suppress(asyncio.IncompleteReadError, ValueError, ConnectionError):
            await gateway._handshake(reader, _Writer())

    def target(data: bytes) -> None:
        with _quiet_vrouter_logs():
            loop.run_until_complete(handshake(gateways[len(data) & 1], data))

    return target


def _socks_udp() -> Target:
    from vrouter.api import socks_udp

    def target(data: bytes) -> None:
        parsed = socks_udp.parse(data)
        if parsed is not None:
            address, port, payload = parsed
            assert socks_udp.build(address, port, payload)[-len(payload) or len(data) :] is not None

    return target


def _socks_seeds() -> list[bytes]:
    v4 = bytes([5, 1, 0, 1, 198, 51, 100, 2, 0, 80])
    v6 = bytes([5, 1, 0, 4]) + ipaddress.IPv6Address("2001:db8:2::2").packed + b"\x1f\x90"
    name = b"[2001:db8::1]"
    domain = bytes([5, 3, 0, 3, len(name)]) + name + b"\x00\x35"
    auth = b"\x01\x03ops\x06secret"
    return [
        b"\x05\x01\x00" + v4, b"\x05\x01\x00" + v6, b"\x05\x01\x00" + domain,
        b"\x05\x01\x02" + auth + v4, b"\x05\x02\x00\x02" + auth + v6 + b"early data",
        b"\x04\x01\x00\x50\x7f\x00\x00\x01\x00", b"\x05\x01\x00\x05\x02\x00\x01" + bytes(6),
    ]  # fmt: skip


def _socks_udp_seeds() -> list[bytes]:
    name = b"198.51.100.2"
    return [
        bytes([0, 0, 0, 1, 198, 51, 100, 2, 0, 53]) + b"query",
        bytes([0, 0, 0, 4]) + ipaddress.IPv6Address("2001:db8:2::2").packed + b"\0\x35q",
        bytes([0, 0, 0, 3, len(name)]) + name + b"\0\x35q",
        bytes([0, 0, 1, 1, 198, 51, 100, 2, 0, 53]),
    ]


# -- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One fuzz target: how to set it up and what to seed it with."""

    setup: Callable[[], Target]
    seeds: Callable[[], list[bytes]]
    what: str
    mutator: Callable[[random.Random, bytes, list[bytes]], bytes] = mutate


def _frames_of(ethertype: int | None) -> Callable[[], list[bytes]]:
    return lambda: _with_control(seeds().frames, ethertype)


TARGETS: dict[str, Spec] = {
    "wire.ethernet": Spec(_wire(_parse_ethernet), lambda: seeds().frames, "EthernetHeader.parse"),
    "wire.arp": Spec(_wire(_parse_arp), lambda: seeds().arp, "ArpPacket.parse"),
    "wire.ipv4": Spec(_wire(_parse_ipv4), lambda: seeds().ipv4, "ipv4.check, Ipv4Header.parse"),
    "wire.ipv6": Spec(_wire(_parse_ipv6), lambda: seeds().ipv6,
                      "ipv6.check, Ipv6Header.parse, the extension-header walk"),
    "wire.icmp4": Spec(_wire(_parse_icmp4), lambda: seeds().icmp4, "IcmpMessage.parse"),
    "wire.icmp6": Spec(_wire(_parse_icmp6), lambda: seeds().icmp6, "Icmp6Message.parse"),
    "wire.ndp": Spec(_wire(_parse_ndp),
                     lambda: [bytes([p[32] - 133]) + p[32 + 4 :] for p in seeds().icmp6
                              if 133 <= p[32] <= 136],
                     "ND options, RS/RA/NS/NA parse"),
    "wire.udp": Spec(_wire(_parse_udp), lambda: seeds().udp, "UdpHeader.parse, udp.verify"),
    "wire.tcp": Spec(_wire(_parse_tcp), lambda: seeds().tcp,
                     "TcpHeader.parse, tcp.verify, tcp.reset_for"),
    "rip.packet": Spec(_wire(_parse_rip), lambda: seeds().rip, "rip.parse_v2, rip.check_auth"),
    "rip.packet_ng": Spec(_wire(_parse_ripng), lambda: seeds().ripng, "rip.parse_ng"),
    "rip.instance": Spec(_rip_instance, _rip_instance_seeds, "Instance.receive (RIPv2, RIPng)"),
    "dhcp.server": Spec(_dhcp_server, _dhcp_seeds,
                        "DhcpMessage.parse, option 121, Server.handle (pools, static, relay)"),
    "input.ether": Spec(_stack_target(None), _frames_of(None),
                        "ether.input: any frame into the lab's vnets"),
    "input.arp": Spec(_stack_target(0x0806), _frames_of(0x0806), "ether.input: ARP"),
    "input.ipv4": Spec(_stack_target(0x0800), _frames_of(0x0800),
                       "ether.input: IPv4, fragments, ICMP, UDP, TCP, firewall"),
    "input.ipv6": Spec(_stack_target(0x86DD), _frames_of(0x86DD),
                       "ether.input: IPv6, extension headers, fragments, ICMPv6, ND, UDP, TCP"),
    "control.decode": Spec(_control_decode, _control_seeds, "protocol.decode_request, caller_of",
                           mutate_json),
    "control.answer": Spec(_control_answer, _control_seeds,
                           "ControlServer.answer: the operations table", mutate_json),
    "socks.handshake": Spec(_socks_handshake, _socks_seeds, "SOCKS5 negotiation and request"),
    "socks.udp": Spec(_socks_udp, _socks_udp_seeds, "SOCKS5 UDP request header"),
}  # fmt: skip


# -- the in-process engine -----------------------------------------------------------------


@dataclass
class Result:
    """What one run of a target did."""

    target: str
    inputs: int
    seconds: float
    findings: list[Finding]

    @property
    def rate(self) -> float:
        """Return inputs per second."""
        return self.inputs / self.seconds if self.seconds > 0 else 0.0


def run(
    name: str,
    *,
    count: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    stop_at_first: bool = True,
    max_findings: int = 20,
) -> Result:
    """Run target ``name`` on mutated seeds until ``count`` inputs or ``seconds`` have passed.

    Every seed runs first, unmutated.  An exception from the target is a
    :class:`Finding`; with ``stop_at_first`` the run ends there.
    """
    if count is None and seconds is None:
        raise ValueError("give a count, a time budget or both")
    spec = TARGETS[name]
    pool = [s for s in spec.seeds() if s] or [b"\0"]
    rng = random.Random(seed)
    findings: list[Finding] = []
    with _quiet_vrouter_logs():
        target = spec.setup()
    start = time.perf_counter()
    deadline = start + seconds if seconds is not None else None
    done = 0
    queue = list(pool)
    with _quiet_vrouter_logs():
        while count is None or done < count:
            if deadline is not None and done % 16 == 0 and time.perf_counter() >= deadline:
                break
            data = queue.pop() if queue else spec.mutator(rng, rng.choice(pool), pool)
            try:
                target(data)
            except Exception as err:  # anything: the target caught what it may raise
                what = f"{type(err).__name__}: {err}"
                findings.append(Finding(name, data, what))
                if stop_at_first or len(findings) >= max_findings:
                    done += 1
                    break
                with _quiet_vrouter_logs():
                    target = spec.setup()  # state may be broken after a finding
            done += 1
    return Result(name, done, time.perf_counter() - start, findings)


# -- atheris -------------------------------------------------------------------------------


def atheris_main(argv: list[str]) -> None:
    """``fuzzlab.py TARGET [libFuzzer flags] [CORPUS_DIR]``: run one target under atheris.

    The corpus directory, if given, is filled with the seeds first.  An
    exception ends the run with libFuzzer's crash report and the input
    written to ``crash-*``; the final line says how many inputs ran.
    """
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["vrouter"]):  # before anything imports them
        import vrouter.api.server
        import vrouter.daemon.main
        import vrouter.link.ether
        import vrouter.rip.instance  # noqa: F401
    name = argv[1]
    spec = TARGETS[name]
    for arg in argv[2:]:
        if not arg.startswith("-"):
            corpus = Path(arg)
            corpus.mkdir(parents=True, exist_ok=True)
            for i, seed in enumerate(spec.seeds()):
                (corpus / f"seed-{i:04d}").write_bytes(seed)
    with _quiet_vrouter_logs():
        target = spec.setup()

    def one(data: bytes) -> None:
        with _quiet_vrouter_logs():
            target(data)

    atheris.Setup([argv[0], *argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    atheris_main(sys.argv)
