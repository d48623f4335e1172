"""Packet capture: captures on interfaces, libpcap filters run by the kernel, pcap files.

A capture is one :class:`Capture` on one :class:`~vrouter.link.ifnet.Ifnet`
feeding one end of an ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair; the reader
(``vrouterctl capture``) holds the other end, passed to it by the control
server.  Each tapped frame becomes one datagram: a :data:`HEADER` (wall-clock
timestamp, original length, frames dropped so far, direction) followed by the
frame.

Filters.  A tcpdump expression is compiled to classic BPF by libpcap's own
compiler (``pcap_open_dead(DLT_EN10MB)`` + ``pcap_compile``, loaded with
ctypes; an empty expression needs no libpcap).  The program is attached with
``SO_ATTACH_FILTER`` to the *reader's* end of the pair, so the kernel runs it
in ``unix_dgram_sendmsg`` (``sk_filter``) on every datagram the daemon sends,
exactly as it runs tcpdump's programs on a packet socket:

- the kernel's cBPF interpreter/JIT decides, not a re-implementation in
  Python, so the semantics are libpcap's and the daemon spends no Python
  time per instruction;
- the program's ``ret #snaplen`` makes the kernel trim the datagram, so
  snap length costs nothing either;
- a rejected frame is freed by the kernel and the send still succeeds, so
  it never counts as a drop.

The price is one ``sendmsg`` per tapped frame whether the filter wants it
or not, and one fix-up: the datagram starts with our header, so
:func:`relocate` moves the program's packet offsets by :data:`HEADER_LEN`
(absolute and indexed loads, ``ldx 4*([k]&0xf)``), subtracts it again after
``ld len`` (one inserted ``sub``, jumps re-aimed) and grows every non-zero
``ret #k`` by it.  Programs using instructions libpcap does not emit for
Ethernet (``ldx len``, ``ret a``, Linux ancillary loads) are refused rather
than guessed at.

Lifecycle.  Sending never blocks: when the reader is slow and the socket
buffer is full the frame is dropped and counted (:attr:`Capture.dropped`, also
carried in each header), so capturing never slows forwarding.  When the
reader closes its end, the next send fails with ``EPIPE`` and the capture
detaches itself.  Taps live on the interface, so an interface or vnet that
goes away takes its captures with it.  No event loop here: a capture only calls the
send function it was given.

Files.  :class:`PcapWriter` writes classic pcap (microsecond timestamps,
``LINKTYPE_ETHERNET``); :func:`summarize` gives one ``tcpdump -n`` style
line per frame.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import dpkt  # type: ignore[import-untyped]

from vrouter.link.ifnet import Ifnet

DLT_EN10MB = 1
"""libpcap's link type for Ethernet (also ``LINKTYPE_ETHERNET`` in files)."""
SNAPLEN_MAX = 262144
"""Largest snap length, and the default, as tcpdump's."""
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

HEADER = struct.Struct("=QIIB3x")
"""Record header: timestamp (ns since the epoch), original length, drops so far, outbound."""
HEADER_LEN = HEADER.size

SO_ATTACH_FILTER = 26
SO_SNDBUFFORCE = 32
SEND_FLAGS = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
READER_GONE = frozenset({errno.EPIPE, errno.ECONNREFUSED, errno.ECONNRESET, errno.ENOTCONN})
"""Send errors meaning the reader closed its end: the capture detaches."""

Insn = tuple[int, int, int, int]
"""One classic BPF instruction: (code, jt, jf, k)."""
Send = Callable[[Sequence[bytes | bytearray]], object]
"""Sends the given buffers as one datagram; raises OSError like ``sendmsg``."""

# Classic BPF encoding (linux/filter.h, pcap/bpf.h).
_LD, _LDX, _ALU, _JMP, _RET = 0x00, 0x01, 0x04, 0x05, 0x06
_ABS, _IND, _LEN, _MSH = 0x20, 0x40, 0x80, 0xA0
_JA = 0x00
_SUB_K = _ALU | 0x10  # BPF_ALU | BPF_SUB | BPF_K


class FilterError(Exception):
    """A filter expression or program was refused; the message says why."""


# --- compiling: libpcap through ctypes ------------------------------------------------


class _BpfInsn(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    )


class _BpfProgram(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsn)))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_BpfInsn)))


@functools.cache
def _libpcap() -> ctypes.CDLL:
    """Load libpcap once (Debian: ``libpcap0.8``, which tcpdump depends on)."""
    names = ["libpcap.so.1", "libpcap.so.0.8"]
    found = ctypes.util.find_library("pcap")
    if found is not None:
        names.insert(0, found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        raise FilterError("capture filters need libpcap (Debian package libpcap0.8)")
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_compile.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(_BpfProgram),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    )
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = (ctypes.c_void_p,)
    lib.pcap_freecode.restype = None
    lib.pcap_freecode.argtypes = (ctypes.POINTER(_BpfProgram),)
    lib.pcap_close.restype = None
    lib.pcap_close.argtypes = (ctypes.c_void_p,)
    return lib


def compile_filter(expression: str, snaplen: int = SNAPLEN_MAX) -> list[Insn]:
    """Return libpcap's optimized program for ``expression`` on Ethernet.

    An empty expression accepts everything (``ret #snaplen``) without
    loading libpcap.  A bad one raises FilterError with libpcap's message.
    """
    if not 1 <= snaplen <= SNAPLEN_MAX:
        raise FilterError(f"snap length must be 1..{SNAPLEN_MAX}, not {snaplen}")
    if not expression.strip():
        return [(_RET, 0, 0, snaplen)]
    try:
        text = expression.encode("ascii")
    except UnicodeEncodeError:
        raise FilterError(f"filter {expression!r}: not ASCII") from None
    lib = _libpcap()
    handle = lib.pcap_open_dead(DLT_EN10MB, snaplen)
    if not handle:
        raise FilterError("pcap_open_dead failed")
    try:
        program = _BpfProgram()
        if lib.pcap_compile(handle, ctypes.byref(program), text, 1, PCAP_NETMASK_UNKNOWN) != 0:
            message = (lib.pcap_geterr(handle) or b"cannot compile").decode(errors="replace")
            raise FilterError(f"filter {expression!r}: {message}")
        try:
            return [
                (insn.code, insn.jt, insn.jf, insn.k) for insn in program.bf_insns[: program.bf_len]
            ]
        finally:
            lib.pcap_freecode(ctypes.byref(program))
    finally:
        lib.pcap_close(handle)


def relocate(program: Sequence[Insn], offset: int = HEADER_LEN) -> list[Insn]:
    """Return ``program`` rewritten to see a packet that starts ``offset`` bytes later.

    Loads from the packet move by ``offset``; ``len`` is reduced by it; a
    non-zero ``ret #k`` keeps ``offset`` more bytes, so the header survives
    the trim.  Raises FilterError for what cannot be moved.
    """
    # Where each old instruction lands once a ``sub`` follows every ``ld len``.
    position: list[int] = []
    at = 0
    for code, _, _, _ in program:
        position.append(at)
        at += 2 if code == _LD | _LEN else 1
    position.append(at)

    out: list[Insn] = []
    for i, (code, jt, jf, k) in enumerate(program):
        cls = code & 0x07
        mode = code & 0xE0
        if (cls == _LD and mode in (_ABS, _IND)) or (cls == _LDX and mode == _MSH):
            if k >= 0x80000000:  # SKF_AD_OFF / SKF_NET_OFF / SKF_LL_OFF ancillary loads
                raise FilterError(f"filter uses a Linux ancillary load (k={k:#x})")
            out.append((code, jt, jf, k + offset))
        elif cls == _LD and mode == _LEN:
            out.append((code, jt, jf, k))
            out.append((_SUB_K, 0, 0, offset))
        elif cls == _LDX and mode == _LEN:
            raise FilterError("filter uses 'ldx len', which cannot be relocated")
        elif cls == _RET:
            if code & 0x18 != 0:  # BPF_RET | BPF_A or BPF_X
                raise FilterError("filter returns a computed length, which cannot be relocated")
            out.append((code, jt, jf, min(k + offset, 0xFFFFFFFF) if k else 0))
        elif cls == _JMP:
            here = position[i] + 1
            if code & 0xF0 == _JA:
                out.append((code, jt, jf, position[i + 1 + k] - here))
            else:
                njt = position[i + 1 + jt] - here
                njf = position[i + 1 + jf] - here
                if njt > 0xFF or njf > 0xFF:
                    raise FilterError("filter too long to relocate (jump beyond 255)")
                out.append((code, njt, njf, k))
        else:
            out.append((code, jt, jf, k))
    return out


def attach_filter(sock: socket.socket, program: Sequence[Insn]) -> None:
    """Attach ``program`` to ``sock`` (``SO_ATTACH_FILTER``): the kernel runs it on receive."""
    insns = (_BpfInsn * len(program))(*(_BpfInsn(*insn) for insn in program))
    fprog = _SockFprog(len(program), ctypes.cast(insns, ctypes.POINTER(_BpfInsn)))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
    except OSError as err:
        raise FilterError(f"the kernel refused the filter program: {err.strerror}") from None


def socket_pair(
    program: Sequence[Insn], sndbuf: int = 4 << 20
) -> tuple[socket.socket, socket.socket]:
    """Return (sender, reader): a SEQPACKET pair, ``program`` relocated onto the reader.

    The sender is non-blocking with a large send buffer (forced when the
    process may, else as large as ``net.core.wmem_max`` allows).
    """
    end, reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        attach_filter(reader, relocate(program))
        end.setblocking(False)
        try:
            end.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, sndbuf)
        except OSError:
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    except BaseException:
        end.close()
        reader.close()
        raise
    return end, reader


def sender(sock: socket.socket) -> Send:
    """Return a :data:`Send` for ``sock``: one non-blocking ``sendmsg``, no SIGPIPE."""

    def send(buffers: Sequence[bytes | bytearray]) -> object:
        return sock.sendmsg(buffers, (), SEND_FLAGS)

    return send


# --- the capture: what an interface calls --------------------------------------------------


class Capture:
    """One capture on one interface: frames in the chosen directions go to ``send``."""

    __slots__ = ("ifnet", "send", "inbound", "outbound", "clock", "on_close", "sent", "dropped")

    def __init__(
        self,
        ifnet: Ifnet,
        send: Send,
        *,
        inbound: bool = True,
        outbound: bool = True,
        clock: Callable[[], int] = time.time_ns,
        on_close: Callable[[Capture], None] | None = None,
    ) -> None:
        self.ifnet = ifnet
        self.send = send
        self.inbound = inbound
        self.outbound = outbound
        self.clock = clock
        """Wall-clock time in nanoseconds (pcap timestamps are wall-clock)."""
        self.on_close = on_close
        """Called once when the capture detaches because its reader went away."""
        self.sent = 0
        """Frames handed to the socket (the kernel's filter may still discard them)."""
        self.dropped = 0
        """Frames lost because the socket buffer was full or the send failed."""

    @property
    def attached(self) -> bool:
        """Return whether the interface still calls this capture."""
        return self in self.ifnet.captures

    def attach(self) -> None:
        """Start seeing the interface's frames."""
        if not self.attached:
            self.ifnet.captures.append(self)

    def detach(self) -> None:
        """Stop seeing frames (idempotent)."""
        if self.attached:
            self.ifnet.captures.remove(self)

    def __call__(self, frame: bytes | bytearray, outbound: bool) -> None:
        if not (self.outbound if outbound else self.inbound):
            return
        header = HEADER.pack(self.clock(), len(frame), self.dropped, outbound)
        try:
            self.send((header, frame))
        except BlockingIOError:  # the reader is behind: lose this frame, never wait
            self.dropped += 1
            return
        except OSError as err:
            if err.errno not in READER_GONE:  # EMSGSIZE, ENOBUFS …: lose this frame only
                self.dropped += 1
                return
            self.detach()
            if self.on_close is not None:
                on_close, self.on_close = self.on_close, None
                on_close(self)
            return
        self.sent += 1

    def __repr__(self) -> str:
        where = f"{self.ifnet.vnet.name}:{self.ifnet.name}"
        return f"<Capture {where} sent {self.sent} dropped {self.dropped}>"


# --- the reader's side: records, pcap, summaries ------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One captured frame as the reader receives it."""

    timestamp_ns: int
    orig_len: int
    """Length of the frame on the wire (``frame`` may be shorter: snap length)."""
    dropped: int
    """Frames the daemon had dropped for this capture before this one."""
    outbound: bool
    frame: bytes


def decode_record(datagram: bytes | bytearray | memoryview) -> Record:
    """Parse one datagram from the capture socket."""
    if len(datagram) < HEADER_LEN:
        raise ValueError(f"capture record of {len(datagram)} bytes is shorter than its header")
    timestamp_ns, orig_len, dropped, outbound = HEADER.unpack_from(datagram)
    return Record(timestamp_ns, orig_len, dropped, bool(outbound), bytes(datagram[HEADER_LEN:]))


PCAP_MAGIC_USEC = 0xA1B2C3D4
PCAP_FILE_HEADER = struct.Struct("=IHHiIII")
PCAP_RECORD_HEADER = struct.Struct("=IIII")


class PcapWriter:
    """Writes classic pcap: microsecond timestamps, ``LINKTYPE_ETHERNET``, host byte order."""

    def __init__(self, out: BinaryIO, snaplen: int = SNAPLEN_MAX) -> None:
        self.out = out
        self.snaplen = snaplen
        out.write(PCAP_FILE_HEADER.pack(PCAP_MAGIC_USEC, 2, 4, 0, 0, snaplen, DLT_EN10MB))

    def write(self, timestamp_ns: int, frame: bytes, orig_len: int | None = None) -> None:
        """Append one frame, cut to the snap length."""
        data = frame[: self.snaplen]
        usec = timestamp_ns // 1000
        sec, usec = divmod(usec, 1_000_000)
        wire = len(frame) if orig_len is None else orig_len
        self.out.write(PCAP_RECORD_HEADER.pack(sec, usec, len(data), wire))
        self.out.write(data)


_ICMP_TYPES = {
    0: "echo reply",
    3: "unreachable",
    4: "source quench",
    5: "redirect",
    8: "echo request",
    11: "time exceeded",
    12: "parameter problem",
    13: "time stamp request",
    14: "time stamp reply",
}
_ICMP6_TYPES = {
    1: "destination unreachable",
    2: "packet too big",
    3: "time exceeded",
    4: "parameter problem",
    128: "echo request",
    129: "echo reply",
    130: "multicast listener query",
    131: "multicast listener report",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    137: "redirect",
    143: "multicast listener report v2",
}
_TCP_FLAGS = ((0x01, "F"), (0x02, "S"), (0x04, "R"), (0x08, "P"), (0x20, "U"), (0x40, "E"))


def summarize(record: Record) -> str:
    """Return one ``tcpdump -n`` style line for ``record`` (local time, In/Out)."""
    sec, nsec = divmod(record.timestamp_ns, 1_000_000_000)
    stamp = time.strftime("%H:%M:%S", time.localtime(sec)) + f".{nsec // 1000:06d}"
    direction = "Out" if record.outbound else "In "
    try:
        text = _describe(dpkt.ethernet.Ethernet(record.frame), record.orig_len)
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        text = f"truncated frame, length {record.orig_len}"
    return f"{stamp} {direction} {text}"


def _describe(eth: dpkt.ethernet.Ethernet, length: int) -> str:
    data = eth.data
    ntop = socket.inet_ntop
    if isinstance(data, dpkt.ip.IP):
        src, dst = ntop(socket.AF_INET, data.src), ntop(socket.AF_INET, data.dst)
        if data.offset:
            return f"IP {src} > {dst}: ip-proto-{data.p} (frag {data.id}), length {data.len}"
        return _describe_l4("IP", src, dst, data.p, data.data, data.len - data.hl * 4)
    if isinstance(data, dpkt.ip6.IP6):
        src, dst = ntop(socket.AF_INET6, data.src), ntop(socket.AF_INET6, data.dst)
        return _describe_l4("IP6", src, dst, data.p, data.data, data.plen)
    if isinstance(data, dpkt.arp.ARP):
        spa, tpa = ntop(socket.AF_INET, data.spa), ntop(socket.AF_INET, data.tpa)
        if data.op == dpkt.arp.ARP_OP_REQUEST:
            return f"ARP, Request who-has {tpa} tell {spa}, length {len(bytes(data))}"
        if data.op == dpkt.arp.ARP_OP_REPLY:
            return f"ARP, Reply {spa} is-at {data.sha.hex(':')}, length {len(bytes(data))}"
        return f"ARP, op {data.op}, length {len(bytes(data))}"
    return f"ethertype 0x{eth.type:04x}, length {length}"


def _describe_l4(family: str, src: str, dst: str, proto: int, l4: object, length: int) -> str:
    if isinstance(l4, dpkt.icmp.ICMP):
        name = _ICMP_TYPES.get(l4.type, f"type {l4.type}")
        if l4.type in (0, 8) and isinstance(l4.data, dpkt.icmp.ICMP.Echo):
            name += f", id {l4.data.id}, seq {l4.data.seq}"
        elif l4.code:
            name += f" code {l4.code}"
        return f"{family} {src} > {dst}: ICMP {name}, length {length}"
    if isinstance(l4, dpkt.icmp6.ICMP6):
        name = _ICMP6_TYPES.get(l4.type, f"type {l4.type}")
        if l4.type in (128, 129) and isinstance(l4.data, dpkt.icmp6.ICMP6.Echo):
            name += f", id {l4.data.id}, seq {l4.data.seq}"
        return f"{family} {src} > {dst}: ICMP6, {name}, length {length}"
    if isinstance(l4, dpkt.udp.UDP):
        return f"{family} {src}.{l4.sport} > {dst}.{l4.dport}: UDP, length {l4.ulen - 8}"
    if isinstance(l4, dpkt.tcp.TCP):
        flags = "".join(c for bit, c in _TCP_FLAGS if l4.flags & bit)
        if l4.flags & dpkt.tcp.TH_ACK:
            flags += "."
        text = f"{family} {src}.{l4.sport} > {dst}.{l4.dport}: Flags [{flags}], seq {l4.seq}"
        if l4.flags & dpkt.tcp.TH_ACK:
            text += f", ack {l4.ack}"
        return f"{text}, win {l4.win}, length {length - l4.off * 4}"
    return f"{family} {src} > {dst}: ip-proto-{proto}, length {length}"
