"""UDP-tunnel segmentation offload for a VXLAN interface: TCP super-frames leave whole.

With ``tunnel_gso = true`` a VXLAN interface whose device is the host's
UDP socket (:mod:`vrouter.io.vxlan`) also opens a TAP of its own in the
daemon's network namespace (kernel name ``vxgso<n>``) whose virtio-net
header carries UDP-tunnel GSO (``TUN_F_UDP_TUNNEL_GSO``, Linux 6.17 and
later).  A TCP super-frame for the overlay is then written there as one
outer packet: Ethernet, IPv4 from the local to the remote VTEP, UDP, the
VXLAN header, and the whole inner super-frame, with a header that tells
the kernel to cut it into segments (inner IP and TCP headers, checksums,
outer IP identification and UDP lengths) as late as it can, at the
underlay's device or not at all when that device takes such packets too
(a veth does).  The kernel receives the outer packet on the TAP and routes
it like a forwarded one: the TAP takes packets whose
source is a local address (``accept_local``), forwards (``forwarding``,
on this device only) and is left out of reverse-path filtering
(``rp_filter`` 0; with ``net.ipv4.conf.all.rp_filter = 1``, strict for
every device, the kernel would drop them and the TAP is not opened).  It
holds ``local`` again as a /32 (no route comes of it): the loose filter
(``rp_filter = 2``, which counts when ``all`` says so) passes a local
source only on a device with an address.

Everything else (frames without GSO, broadcasts, what is received) stays
on the socket.  Where the kernel refuses the offload (an older kernel:
``TUNSETOFFLOAD`` or ``TUNSETVNETHDRSZ`` fails), an IPv6 underlay (its UDP
checksum would need ``TUN_F_UDP_TUNNEL_GSO_CSUM``, not done here) or a
multicast group, the interface keeps the socket path alone: the log says
why once, and ``vrouterctl vxlan VNET show`` tells which path carries it.
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
from vrouter.wire.checksum import checksum

log = logging.getLogger("vrouter.vxlan")

TUN_F_UDP_TUNNEL_GSO = 0x080
"""The TAP takes (and hands over) GSO packets inside a UDP tunnel (Linux 6.17+)."""
GSO_UDP_TUNNEL_IPV4 = 0x20
"""virtio-net ``gso_type`` bit: a UDP tunnel over IPv4 wraps the inner GSO packet."""
HEADER = struct.Struct("<BBHHHHHIHHHH")
"""``struct virtio_net_hdr_v1_hash_tunnel``: the v1 header, hash value and report,
padding, then the outer transport and inner network header offsets."""
HEADER_LEN = HEADER.size
_OUTER_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_ETH = 14
_IP4 = 20
OUTER_LEN = _ETH + _IP4 + 8 + 8
"""Outer Ethernet, IPv4, UDP and VXLAN before the inner frame."""
MAX_IP = 65535
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
        if rp_filter("all") == 1:
            raise TunnelUnavailable(
                "net.ipv4.conf.all.rp_filter is 1 (strict): the kernel would drop "
                "the encapsulated packets as martians"
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
        self._local = socket.inet_aton(local)
        self._port = port
        self._header = header
        self._eth = self._mac + bytes.fromhex("020000000001") + b"\x08\x00"
        self.sent = 0
        """Super-frames handed to the kernel."""
        self.errors = 0
        """Writes the kernel refused."""
        os.set_blocking(self.fd, False)
        loop.add_reader(self.fd, self._drain)

    def _setup(self, local: str) -> None:
        fd = self.fd
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, HEADER_LEN.to_bytes(4, "little"))
        offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UDP_TUNNEL_GSO
        fcntl.ioctl(fd, TUNSETOFFLOAD, offloads)
        for key, value in (("accept_local", "1"), ("forwarding", "1"), ("rp_filter", "0")):
            _write_sysctl(f"/proc/sys/net/ipv4/conf/{self.name}/{key}", value)
        _write_sysctl(f"/proc/sys/net/ipv6/conf/{self.name}/disable_ipv6", "1")
        name = self.name.encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            ifreq = fcntl.ioctl(probe.fileno(), SIOCGIFHWADDR, struct.pack("16s16x", name))
        # Loose reverse-path filtering (rp_filter 2, as systemd sets it) takes a local
        # source only on a device with an address: local again, as a /32.
        added = subprocess.run(
            ["ip", "-4", "addr", "add", f"{local}/32", "dev", self.name, "noprefixroute"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if added.returncode != 0:
            raise OSError(errno.EIO, f"ip addr add: {added.stderr.strip()}")
        self._mac = bytes(ifreq[18:24])
        self._tun.up()

    def send(self, address: str, frame: bytes | bytearray, vhdr: VirtioHdr) -> bool:
        """Write TCP super-frame ``frame`` (its offload header ``vhdr``) VXLAN-encapsulated
        towards VTEP ``address``; False if it cannot leave this way (too long for one
        outer IPv4 packet, the kernel refused it): the caller sends it another way."""
        headers = outer_headers(self._local, address, self._port, self._header, frame, vhdr)
        if headers is None:
            return False
        try:
            os.writev(self.fd, (headers[0], self._eth, headers[1], frame))
        except OSError as err:
            self.errors += 1
            if self.errors == 1:
                log.warning("vxlan: %s refused a super-frame: %s", self.name, err)
            return False
        self.sent += 1
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
    local: bytes, address: str, port: int, vxlan: bytes, frame: bytes | bytearray, vhdr: VirtioHdr
) -> tuple[bytes, bytes] | None:
    """Return the TAP's header and the outer IPv4, UDP and VXLAN headers (the Ethernet
    header goes between them) that carry TCP super-frame ``frame`` from ``local`` to
    ``address`` for the kernel to segment; None if it would exceed one IPv4 packet or
    the inner frame is not plain IPv4 or IPv6 over Ethernet (a VLAN tag would move the
    inner network header the kernel is told of)."""
    total = OUTER_LEN - _ETH + len(frame)
    if total > MAX_IP or frame[12:14] not in _INNER_TYPES:
        return None
    ip = _OUTER_IP.pack(0x45, 0, total, 0, 0x4000, 64, 17, 0, local, socket.inet_aton(address))
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    udp = _UDP.pack(port, port, total - _IP4, 0)
    gso = HEADER.pack(
        F_NEEDS_CSUM,
        vhdr.gso_type | GSO_UDP_TUNNEL_IPV4,
        OUTER_LEN + headers_len(frame, vhdr),
        vhdr.gso_size,
        OUTER_LEN + tcp_offset(frame, vhdr),
        16,
        0,
        0,
        0,
        0,
        _ETH + _IP4,
        OUTER_LEN + _ETH,
    )
    return gso, ip + udp + vxlan


def rp_filter(device: str) -> int:
    """Return ``net.ipv4.conf.DEVICE.rp_filter`` (0 if it cannot be read)."""
    try:
        with open(f"/proc/sys/net/ipv4/conf/{device}/rp_filter") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def _write_sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
