"""UDP-tunnel segmentation offload for a VXLAN interface: TCP super-frames leave whole.

With ``tunnel_gso = true`` a VXLAN interface whose device is the host's
UDP socket (:mod:`vrouter.io.vxlan`) also opens a TAP of its own in the
daemon's network namespace (kernel name ``vxgso<n>``) whose virtio-net
header carries UDP-tunnel GSO (``TUN_F_UDP_TUNNEL_GSO``, Linux 6.17 and
later).  A TCP super-frame for the overlay is then written there as one
outer packet: Ethernet, IPv4 or IPv6 from the local to the remote VTEP,
UDP, the VXLAN header, and the whole inner super-frame, with a header
that tells the kernel to cut it into segments (inner IP and TCP headers,
checksums, outer IP identification, payload and UDP lengths) as late as
it can, at the underlay's device or not at all when that device takes
such packets too (a veth does).  Over IPv6 the outer UDP checksum is
not optional (a Linux VTEP drops zero ones unless told otherwise): the
header asks the kernel to finish it per segment
(``TUN_F_UDP_TUNNEL_GSO_CSUM``, ``VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM``)
from the pseudo-header sum written in its place.

The kernel receives the outer packet on the TAP and routes it like a
forwarded one.  Over IPv4 the TAP takes packets whose source is a local
address (``accept_local``), forwards (``forwarding``, on this device
only) and is left out of reverse-path filtering (``rp_filter`` 0; with
``net.ipv4.conf.all.rp_filter = 1``, strict for every device, the kernel
would drop them and the TAP is not opened).  It holds ``local`` again as
a /32 (no route comes of it): the loose filter (``rp_filter = 2``, which
counts when ``all`` says so) passes a local source only on a device with
an address.  Over IPv6, which has no such filter in the kernel's own
input and no check of a local source, the TAP forwards on its own
(``force_forwarding``, Linux 6.17+; ``net.ipv6.conf.all.forwarding``
otherwise), makes no address or router solicitation of its own, and
holds ``local`` as a /128 without DAD or prefix route, as over IPv4.

Everything else sent (frames without GSO, broadcasts) stays on the
socket.  Where the kernel refuses the offload (an older kernel:
``TUNSETOFFLOAD`` or ``TUNSETVNETHDRSZ`` fails) or a multicast group is
configured, the interface keeps the socket path alone: the log says why
once, and ``vrouterctl vxlan VNET show`` tells which path carries it.

Receiving: a tc filter on the ingress of the device holding ``local``
redirects UDP to ``local``:``port`` to the TAP (:meth:`TunnelTap.redirect`),
whose transmit hands the daemon a VTEP's tunnel super-frame whole (64 KiB,
``gso_type`` TCPV4 | ``UDP_TUNNEL_IPV4`` and the outer and inner offsets)
since the TAP has UDP-tunnel GSO with the outer checksum: a Linux VTEP's
super-frames carry one (``SKB_GSO_UDP_TUNNEL_CSUM``), and without that
feature the kernel cuts them before the TAP.  :func:`unwrap` checks and
strips the outer headers; the inner frame goes on with a plain TCP offload
header.  Datagrams the underlay's GRO joined for the socket (a VTEP that
sends one segment a datagram) come as one UDP segmentation offload packet
(``TUN_F_USO4``, ``TUN_F_USO6``; ``gso_type`` UDP_L4) and are taken as a
``UDP_GRO`` read of the socket is.  What the filter does not take (fragments, a
group, another device) still reaches the socket; where tc refuses, the socket
receives it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import struct
import subprocess
from collections.abc import Callable

import pytun  # type: ignore[import-not-found]

from vrouter.io.tap import (
    RX_BUDGET,
    TUN_F_CSUM,
    TUN_F_TSO4,
    TUN_F_TSO6,
    TUN_F_TSO_ECN,
    TUNSETOFFLOAD,
    TUNSETVNETHDRSZ,
)
from vrouter.link.offload import (
    F_NEEDS_CSUM,
    GSO_ECN,
    GSO_TCPV4,
    GSO_TCPV6,
    VirtioHdr,
    headers_len,
    tcp_offset,
)
from vrouter.wire.checksum import checksum, pseudo_header_sum

log = logging.getLogger("vrouter.vxlan")

TUN_F_UDP_TUNNEL_GSO = 0x080
"""The TAP takes (and hands over) GSO packets inside a UDP tunnel (Linux 6.17+)."""
TUN_F_UDP_TUNNEL_GSO_CSUM = 0x100
"""... and finishes the outer UDP checksum of each segment (Linux 6.17+)."""
TUN_F_USO4 = 0x20
"""The TAP takes (and hands over) UDP segmentation offload packets over IPv4 (Linux 6.2+)."""
TUN_F_USO6 = 0x40
"""... and over IPv6."""
GSO_UDP_L4 = 5
"""virtio-net ``gso_type``: datagrams of one size (``gso_size``) joined into one packet."""
GSO_UDP_TUNNEL_IPV4 = 0x20
"""virtio-net ``gso_type`` bit: a UDP tunnel over IPv4 wraps the inner GSO packet."""
GSO_UDP_TUNNEL_IPV6 = 0x40
"""virtio-net ``gso_type`` bit: a UDP tunnel over IPv6 wraps the inner GSO packet."""
F_UDP_TUNNEL_CSUM = 0x08
"""virtio-net ``flags`` bit: the outer UDP checksum is to be finished per segment."""
HEADER = struct.Struct("<BBHHHHHIHHHH")
"""``struct virtio_net_hdr_v1_hash_tunnel``: the v1 header, hash value and report,
padding, then the outer transport and inner network header offsets."""
HEADER_LEN = HEADER.size
_VHDR = struct.Struct("<BBHHHH")
_OUTER_IP = struct.Struct("!BBHHHBBH4s4s")
_OUTER_IP6 = struct.Struct("!IHBB16s16s")
_UDP = struct.Struct("!HHHH")
_ETH = 14
_IP4 = 20
_IP6 = 40
OUTER_LEN = _ETH + _IP4 + 8 + 8
"""Outer Ethernet, IPv4, UDP and VXLAN before the inner frame."""
OUTER_LEN6 = _ETH + _IP6 + 8 + 8
"""Outer Ethernet, IPv6, UDP and VXLAN before the inner frame."""
MAX_IP = 65535
"""The most an IPv4 packet's total length or an IPv6 packet's payload length says."""
_INNER_TYPES = (b"\x08\x00", b"\x86\xdd")
READ_SIZE = HEADER_LEN + _ETH + _IP6 + MAX_IP
"""The longest read of the TAP: an outer IPv6 packet of the largest payload."""
PREF_BASE = 0x7000
"""The tc filter's preference: this plus the TAP's number."""
PREF_SPAN = 0x1000
"""The preferences from :data:`PREF_BASE` on that the daemon's filters may have."""
SIOCGIFHWADDR = 0x8927
NAME = "vxgso%d"


class TunnelUnavailable(Exception):
    """The kernel or the host's settings do not allow the tunnel offload."""


class TunnelTap:
    """The TAP that hands TCP super-frames, already VXLAN-encapsulated, to the kernel."""

    def __init__(
        self, local: str, port: int, header: bytes, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._v6 = ":" in local
        if not self._v6 and rp_filter("all") == 1:
            raise TunnelUnavailable(
                "net.ipv4.conf.all.rp_filter is 1 (strict): the kernel would drop "
                "the encapsulated packets as martians"
            )
        if (
            self._v6
            and not _ipv6_forwards("all")
            and not os.path.exists("/proc/sys/net/ipv6/conf/all/force_forwarding")
        ):
            raise TunnelUnavailable(
                "net.ipv6.conf.all.forwarding is 0 and this kernel has no per-device "
                "force_forwarding (Linux 6.17+): the kernel would not forward the "
                "encapsulated packets"
            )
        self._loop = loop
        try:
            self._tun = pytun.TunTapDevice(
                name=NAME, flags=pytun.IFF_TAP | pytun.IFF_NO_PI | pytun.IFF_VNET_HDR
            )
        except (OSError, pytun.Error) as err:
            raise TunnelUnavailable(f"cannot create its TAP: {err}") from None
        self.name: str = self._tun.name
        self.fd: int = self._tun.fileno()
        try:
            self._setup(local)
        except OSError as err:
            self._tun.close()
            if err.errno in (errno.EINVAL, errno.ENOTTY, errno.EOPNOTSUPP):
                raise TunnelUnavailable(
                    f"this kernel has no UDP-tunnel GSO on TAPs (Linux 6.17+): {err}"
                ) from None
            raise TunnelUnavailable(f"cannot set up its TAP {self.name}: {err}") from None
        family = socket.AF_INET6 if self._v6 else socket.AF_INET
        self._local = socket.inet_pton(family, local)
        self._family = family
        self._port = port
        self._header = header
        ethertype = b"\x86\xdd" if self._v6 else b"\x08\x00"
        self._eth = self._mac + bytes.fromhex("020000000001") + ethertype
        self.receive: Callable[[bytes, int, str, VirtioHdr | None], None] = _ignore
        """Takes what :func:`unwrap` found in a read (the read, then its results)."""
        self.malformed: Callable[[str], None] = _ignore_reason
        """Takes why a read redirected here was dropped (see :func:`unwrap`)."""
        self.drained: Callable[[], None] = _nothing
        """Called when a wake-up's reads are done (a train's joined frame may be held)."""
        self.failed: Callable[[OSError], None] = _ignore_error
        """Takes a read of the TAP that failed other than for want of frames."""
        self._filter: tuple[str, str] | None = None
        """The device and preference of the tc filter redirecting to the TAP."""
        self._own_qdisc = False
        """Whether the device's ``clsact`` qdisc was added for the filter."""
        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, self._drain)

    def _setup(self, local: str) -> None:
        fd = self.fd
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, HEADER_LEN.to_bytes(4, "little"))
        # Tunnel GSO with the outer checksum too, also over IPv4: a Linux VTEP's
        # super-frames carry a UDP checksum (SKB_GSO_UDP_TUNNEL_CSUM), and a TAP without
        # that feature has them cut into segments before its transmit.
        # UDP segmentation offload: what the underlay's GRO joined for the socket
        # (datagrams of one flow and size, a peer's unsegmented ones) is read as one train
        # instead of one datagram a read.
        offloads = (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4
                    | TUN_F_USO6 | TUN_F_UDP_TUNNEL_GSO | TUN_F_UDP_TUNNEL_GSO_CSUM)  # fmt: skip
        fcntl.ioctl(fd, TUNSETOFFLOAD, offloads)
        if self._v6:
            # Forwarding on this device only; no link-local address, autoconfiguration,
            # router solicitation or DAD of its own (nothing is meant to reach it).
            settings = [("addr_gen_mode", "1"), ("accept_ra", "0"), ("autoconf", "0"),
                        ("dad_transmits", "0"), ("router_solicitations", "0")]  # fmt: skip
            if not _ipv6_forwards("all"):
                settings.append(("force_forwarding", "1"))
            for key, value in [*settings, ("disable_ipv6", "0")]:
                _write_sysctl(f"/proc/sys/net/ipv6/conf/{self.name}/{key}", value)
        else:
            for key, value in (("accept_local", "1"), ("forwarding", "1"), ("rp_filter", "0")):
                _write_sysctl(f"/proc/sys/net/ipv4/conf/{self.name}/{key}", value)
            with contextlib.suppress(FileNotFoundError):  # a kernel without IPv6
                _write_sysctl(f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6", "1")
        name = self.name.encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            ifreq = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, struct.pack("16s16x", name))
        # Loose reverse-path filtering (rp_filter 2, as systemd sets it) takes a local
        # source only on a device with an address: local again, as a host address.
        if self._v6:
            address = ["-6", "addr", "add", f"{local}/128", "dev", self.name, "nodad"]
        else:
            address = ["-4", "addr", "add", f"{local}/32", "dev", self.name]
        added = subprocess.run(
            ["ip", *address, "noprefixroute"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if added.returncode != 0:
            raise OSError(errno.EIO, f"ip addr add: {added.stderr.strip()}")
        self._mac = bytes(ifreq[18:24])
        self._tun.up()

    def send(self, address: str, frame: bytes | bytearray, vhdr: VirtioHdr) -> bool:
        """Write TCP super-frame ``frame`` (its offload header ``vhdr``) VXLAN-encapsulated
        towards VTEP ``address``; False if it cannot leave this way (too long for one
        outer packet, or its inner frame tagged): the caller sends it another way.
        Raises OSError if the kernel refused it."""
        remote = socket.inet_pton(self._family, address)
        headers = outer_headers(self._local, remote, self._port, self._header, frame, vhdr)
        if headers is None:
            return False
        os.writev(self.fd, (headers[0], self._eth, headers[1], frame))
        return True

    def _drain(self) -> None:
        """Read what the kernel redirected to the TAP (the outer packets from the VTEPs,
        tunnel super-frames whole) and pass on the inner frames; drop anything else."""
        receive = self.receive
        read = os.read
        try:
            for _ in range(RX_BUDGET):
                try:
                    data = read(self.fd, READ_SIZE)
                except BlockingIOError:
                    return
                except OSError as err:
                    self.failed(err)
                    return
                inner = unwrap(data, self._local, self._port)
                if isinstance(inner, str):
                    if inner:
                        self.malformed(inner)
                    continue
                receive(data, *inner)
        finally:
            self.drained()

    def redirect(self) -> str:
        """Have the kernel redirect UDP to ``local``:``port`` arriving on the device that
        holds ``local`` to this TAP (a tc ``u32`` filter on its ingress); return that
        device.  Raises OSError if tc refused."""
        local, port = socket.inet_ntop(self._family, self._local), self._port
        device = holder(local)
        if device is None:
            raise OSError(errno.ENODEV, f"no device holds {local}")
        if _tc("qdisc", "add", "dev", device, "clsact") == "":
            self._own_qdisc = True
        pref = str(PREF_BASE + int(self.name[len(NAME) - 2 :]))
        if self._v6:
            match = ["protocol", "ipv6", "u32", "match", "ip6", "dst", f"{local}/128",
                     "match", "ip6", "protocol", "17", "0xff",
                     "match", "ip6", "dport", str(port), "0xffff"]  # fmt: skip
        else:
            # No options (ihl 5), not a fragment: the ports are where u32 looks for them.
            match = ["protocol", "ip", "u32", "match", "ip", "dst", f"{local}/32",
                     "match", "u8", "0x45", "0xff", "at", "0",
                     "match", "u16", "0", "0x3fff", "at", "6",
                     "match", "ip", "protocol", "17", "0xff",
                     "match", "ip", "dport", str(port), "0xffff"]  # fmt: skip
        if int(pref) in _sweep(device):
            self._drop_qdisc(device)
            raise OSError(errno.EEXIST, f"preference {pref} on {device} is taken")
        error = _tc("filter", "add", "dev", device, "ingress", "pref", pref, *match,
                    "action", "mirred", "egress", "redirect", "dev", self.name)  # fmt: skip
        if error:
            self._drop_qdisc(device)
            raise OSError(errno.EIO, f"tc filter add: {error}")
        self._filter = (device, pref)
        return device

    def _drop_qdisc(self, device: str) -> None:
        """Remove the ``clsact`` qdisc added for the filter, unless filters of others
        have been added to it since."""
        if not self._own_qdisc:
            return
        self._own_qdisc = False
        for direction in ("ingress", "egress"):
            shown = _tc_shown("filter", "show", "dev", device, direction)
            if shown is None or shown.strip():
                return
        _tc("qdisc", "del", "dev", device, "clsact")

    def close(self) -> None:
        """Remove the redirect and close the TAP (the kernel interface goes)."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self.fd)
        if self._filter is not None:
            device, pref = self._filter
            self._filter = None
            _tc("filter", "del", "dev", device, "ingress", "pref", pref)
            self._drop_qdisc(device)
        self._tun.close()


def unwrap(data: bytes, local: bytes, port: int) -> tuple[int, str, VirtioHdr | None] | str:
    """Check one read of the tunnel TAP: its header, then Ethernet, IPv4 or IPv6 to
    ``local`` (packed), UDP to ``port``.  Return (where the VXLAN header starts, the
    source VTEP's address, the inner frame's offload header or None), or why it is
    dropped ("" for a frame that is not for the tunnel at all: not counted).  A train of
    datagrams the kernel's GRO joined (``gso_type`` :data:`GSO_UDP_L4`) comes with an
    offload header of that type whose ``gso_size`` is the size of each VXLAN datagram but
    the last; the kernel checked their UDP checksums when it joined them."""
    if len(data) < HEADER_LEN + OUTER_LEN:
        return "" if len(data) < HEADER_LEN + _ETH + 1 else "truncated"
    flags, gso_type, _hint, gso_size, csum_start, csum_offset = _VHDR.unpack_from(data)
    eth = HEADER_LEN + _ETH
    ethertype = data[eth - 2 : eth]
    if ethertype == b"\x08\x00":
        if data[eth] != 0x45 or data[eth + 9] != 17 or data[eth + 16 : eth + 20] != local:
            return ""
        if int.from_bytes(data[eth + 2 : eth + 4], "big") != len(data) - eth:
            return "bad length"
        if data[eth + 6] & 0x3F or data[eth + 7]:
            return ""  # a fragment: only whole datagrams are redirected
        if checksum(memoryview(data)[eth : eth + _IP4]):
            return "bad IPv4 checksum"
        src = data[eth + 12 : eth + 16]
        udp = eth + _IP4
        family = socket.AF_INET
    elif ethertype == b"\x86\xdd":
        if data[eth + 6] != 17 or data[eth + 24 : eth + 40] != local:
            return ""
        if int.from_bytes(data[eth + 4 : eth + 6], "big") != len(data) - eth - _IP6:
            return "bad length"
        src = data[eth + 8 : eth + 24]
        udp = eth + _IP6
        family = socket.AF_INET6
    else:
        return ""
    if int.from_bytes(data[udp + 2 : udp + 4], "big") != port:
        return ""
    if int.from_bytes(data[udp + 4 : udp + 6], "big") != len(data) - udp:
        return "bad length"
    start = udp + 8
    if len(data) < start + 8 + _ETH:
        return "truncated"
    outer = start + 8 - HEADER_LEN
    """Bytes before the inner frame, counted as the kernel counts its offsets."""
    inner_partial = flags & F_NEEDS_CSUM and csum_start >= outer + _ETH
    vhdr: VirtioHdr | None = None
    if gso_type == GSO_UDP_L4:
        if gso_size < 8 + _ETH:
            return "unsupported offload"
        return start, socket.inet_ntop(family, src), VirtioHdr(0, GSO_UDP_L4, 0, gso_size, 0, 0)
    if gso_type:
        inner_type = gso_type & ~(GSO_UDP_TUNNEL_IPV4 | GSO_UDP_TUNNEL_IPV6)
        if inner_type & ~GSO_ECN not in (GSO_TCPV4, GSO_TCPV6) or not inner_partial:
            return "unsupported offload"
        # The kernel's hdr_len is a hint, its packet's linear part (shorter than the outer
        # headers, or all of it): the inner frame's headers end where its TCP header says.
        tcp = HEADER_LEN + csum_start
        if len(data) < tcp + 20:
            return "truncated"
        inner_headers = csum_start - outer + (data[tcp + 12] >> 4) * 4
        vhdr = VirtioHdr(
            F_NEEDS_CSUM, inner_type, inner_headers, gso_size, csum_start - outer, csum_offset
        )
    elif inner_partial:
        vhdr = VirtioHdr(F_NEEDS_CSUM, 0, 0, 0, csum_start - outer, csum_offset)
    elif not flags and (data[udp + 6] or data[udp + 7] or family == socket.AF_INET6):
        # Neither partial nor checked by the kernel: the UDP checksum is checked here.
        pseudo = pseudo_header_sum(src, local, 17, len(data) - udp)
        if checksum(memoryview(data)[udp:], pseudo):
            return "bad UDP checksum"
    return start, socket.inet_ntop(family, src), vhdr


def _ignore(data: bytes, start: int, source: str, vhdr: VirtioHdr | None) -> None:
    """The receiver until the interface sets its own."""


def _ignore_reason(reason: str) -> None:
    """The counter of malformed reads until the interface sets its own."""


def _ignore_error(err: OSError) -> None:
    """The counter of failed reads until the interface sets its own."""


def _nothing() -> None:
    """The end of a wake-up's reads until the interface says what to do then."""


def holder(address: str) -> str | None:
    """Return the device that holds ``address`` (None if none does).  Raises OSError if
    ``ip`` cannot tell (missing, or hung)."""
    try:
        shown = subprocess.run(
            ["ip", "-j", "addr", "show", "to", address],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        raise OSError(errno.ETIMEDOUT, f"ip addr show: {err}") from err
    try:
        devices = json.loads(shown.stdout or "[]")
    except ValueError:
        return None
    for device in devices:
        name = device.get("ifname")
        if name and not name.startswith(NAME[:-2]):
            return str(name)
    return None


def sweep_stale(local: str) -> None:
    """Remove what a daemon that ended without removing its filters left on the ingress of
    the device holding ``local`` (see :func:`_sweep`): an interface receiving on its
    socket would get nothing while they drop its datagrams."""
    try:
        device = holder(local)
    except OSError:
        return
    if device is not None:
        _sweep(device)


def _sweep(device: str) -> set[int]:
    """Remove the filters of the daemon's preferences on the ingress of ``device`` that
    redirect to a TAP that is gone (a daemon that ended without removing them left them:
    the kernel drops what they match); return the preferences of the others there."""
    shown = _tc_shown("-j", "filter", "show", "dev", device, "ingress")
    try:
        filters = json.loads(shown or "[]")
    except ValueError:
        return set()
    present: set[int] = set()
    stale: set[int] = set()
    for entry in filters:
        pref = entry.get("pref")
        if not isinstance(pref, int) or not PREF_BASE <= pref < PREF_BASE + PREF_SPAN:
            continue
        present.add(pref)
        for action in entry.get("options", {}).get("actions", ()):
            if action.get("kind") == "mirred" and action.get("to_dev") == "*":
                stale.add(pref)
    for pref in stale:
        _tc("filter", "del", "dev", device, "ingress", "pref", str(pref))
    return present - stale


def _tc(*args: str) -> str:
    """Run tc; return its complaint ("" if it succeeded)."""
    try:
        done = subprocess.run(
            ["tc", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:  # no tc, or it hung
        return str(err)
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def _tc_shown(*args: str) -> str | None:
    """Run tc; return what it printed (None if it failed, is missing or hung)."""
    try:
        done = subprocess.run(
            ["tc", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def outer_headers(
    local: bytes, remote: bytes, port: int, vxlan: bytes, frame: bytes | bytearray, vhdr: VirtioHdr
) -> tuple[bytes, bytes] | None:
    """Return the TAP's header and the outer IP, UDP and VXLAN headers (the Ethernet
    header goes between them) that carry TCP super-frame ``frame`` from ``local`` to
    ``remote`` (both packed: 4 bytes IPv4, 16 IPv6) for the kernel to segment; None if
    it would exceed one IP packet or the inner frame is not plain IPv4 or IPv6 over
    Ethernet (a VLAN tag would move the inner network header the kernel is told of)."""
    if frame[12:14] not in _INNER_TYPES:
        return None
    udp_len = 8 + 8 + len(frame)
    if len(local) == 4:
        total = _IP4 + udp_len
        if total > MAX_IP:
            return None
        ip = _OUTER_IP.pack(0x45, 0, total, 0, 0x4000, 64, 17, 0, local, remote)
        ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
        udp = _UDP.pack(port, port, udp_len, 0)
        flags = F_NEEDS_CSUM
        tunnel = GSO_UDP_TUNNEL_IPV4
        outer = OUTER_LEN
    else:
        if udp_len > MAX_IP:
            return None
        ip = _OUTER_IP6.pack(0x60000000, udp_len, 17, 64, local, remote)
        # The checksum field holds the pseudo-header's sum: the kernel adds each
        # segment's own length and data to it (SKB_GSO_UDP_TUNNEL_CSUM).
        udp = _UDP.pack(port, port, udp_len, pseudo_header_sum(local, remote, 17, udp_len))
        flags = F_NEEDS_CSUM | F_UDP_TUNNEL_CSUM
        tunnel = GSO_UDP_TUNNEL_IPV6
        outer = OUTER_LEN6
    gso = HEADER.pack(
        flags,
        vhdr.gso_type | tunnel,
        outer + headers_len(frame, vhdr),
        vhdr.gso_size,
        outer + tcp_offset(frame, vhdr),
        16,
        0,
        0,
        0,
        0,
        outer - 16,
        outer + _ETH,
    )
    return gso, ip + udp + vxlan


def rp_filter(device: str) -> int:
    """Return ``net.ipv4.conf.DEVICE.rp_filter`` (0 if it cannot be read)."""
    try:
        with open(f"/proc/sys/net/ipv4/conf/{device}/rp_filter") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _ipv6_forwards(device: str) -> bool:
    """Return whether ``net.ipv6.conf.DEVICE.forwarding`` is on."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{device}/forwarding") as f:
            return int(f.read()) != 0
    except (OSError, ValueError):
        return False


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
