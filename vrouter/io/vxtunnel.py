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

Everything else (frames without GSO, broadcasts, what is received) stays
on the socket.  Where the kernel refuses the offload (an older kernel:
``TUNSETOFFLOAD`` or ``TUNSETVNETHDRSZ`` fails) or a multicast group is
configured, the interface keeps the socket path alone: the log says why
once, and ``vrouterctl vxlan VNET show`` tells which path carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import socket
import struct
import subprocess

import pytun  # type: ignore[import-not-found]

from vrouter.io.tap import (
    TUN_F_CSUM,
    TUN_F_TSO4,
    TUN_F_TSO6,
    TUN_F_TSO_ECN,
    TUNSETOFFLOAD,
    TUNSETVNETHDRSZ,
)
from vrouter.link.offload import F_NEEDS_CSUM, VirtioHdr, headers_len, tcp_offset
from vrouter.wire.checksum import checksum, pseudo_header_sum

log = logging.getLogger("vrouter.vxlan")

TUN_F_UDP_TUNNEL_GSO = 0x080
"""The TAP takes (and hands over) GSO packets inside a UDP tunnel (Linux 6.17+)."""
TUN_F_UDP_TUNNEL_GSO_CSUM = 0x100
"""... and finishes the outer UDP checksum of each segment (Linux 6.17+)."""
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
DRAIN = 64
"""Frames read per turn from the TAP (the kernel sends it nothing it routes)."""
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
        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, self._drain)

    def _setup(self, local: str) -> None:
        fd = self.fd
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, HEADER_LEN.to_bytes(4, "little"))
        offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UDP_TUNNEL_GSO
        if self._v6:
            offloads |= TUN_F_UDP_TUNNEL_GSO_CSUM
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
        """Read and drop what the kernel sends the TAP (nothing is routed to it)."""
        for _ in range(DRAIN):
            try:
                os.read(self.fd, 65536 + HEADER_LEN)
            except OSError:
                return

    def close(self) -> None:
        """Close the TAP (the kernel interface goes)."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self.fd)
        self._tun.close()


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
