"""The TCP connections of one vnet: demultiplexing, listeners, queues, TIME-WAIT, ISNs.

A :class:`TcpTable` is sans-IO and belongs to one vnet.  :meth:`TcpTable.input`
takes a received segment (the IP layer's source and destination and the TCP
bytes), verifies it and hands it to its connection (a dict lookup on the
4-tuple), to a connection in TIME-WAIT, or to a listener (exact address
first, then the wildcard); nobody's segments are answered with a RST.

Bounds, all per vnet and counted in :class:`~vrouter.transport.tcp.stats.TcpStats`:

* the half-open (SYN) queue: at most ``syn_queue_limit`` connections in
  SYN-RECEIVED across all listeners; a SYN beyond it (``syn_queue_overflows``)
  gets a stateless SYN cookie, or is dropped when cookies are off: a SYN
  flood fills this queue, not memory, and established connections go on
  undisturbed;
* each listener's accept queue: ``backlog`` connections that completed the
  handshake and wait for ``accept``; beyond it the SYN (or the handshake's
  last ACK) is dropped (``listen_overflows``) so the peer retries later;
* the TIME-WAIT table: ``time_wait_limit`` connections; the oldest is
  forgotten when a new one needs room (``tw_evicted``); a new SYN may end a
  TIME-WAIT early when its sequence number (or timestamp) is newer
  (RFC 6191, ``tw_recycled``);
* challenge ACKs: ``challenge_ack_limit`` per second (RFC 5961 7).

Beyond the SYN queue, SYN cookies (``syncookies``, on by default) keep new
connections possible during a flood without keeping any state: the SYN-ACK's
ISN encodes the MSS, window scale and SACK-permitted and a keyed hash, and a
returning ACK that carries a valid cookie becomes an established connection
(without timestamps).  Cookies are only checked for two periods after one was
sent, so ordinary stray ACKs still get their RST.

Initial sequence numbers follow RFC 6528 (a 4 µs clock plus a keyed hash of
the 4-tuple with a per-table secret); timestamp offsets likewise (RFC 7323
5.4); ephemeral ports follow RFC 6056 algorithm 3 (a keyed hash of the
destination picks where the search starts).

Timers: the table keeps a heap of connection deadlines; :meth:`poll_at`
says when to call :meth:`on_timer`.  After the socket layer calls a
connection's ``send``/``recv``/``shutdown_write``/``close``/``abort``, the
connection is marked dirty and :meth:`output` collects what it now sends.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import itertools
import os
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.conn import Connection, TcpError
from vrouter.transport.tcp.events import (
    Acceptable,
    Closed,
    Connected,
    Output,
    Transmit,
)
from vrouter.transport.tcp.options import TcpOptions, window_shift
from vrouter.transport.tcp.segment import (
    ACK,
    FIN,
    RST,
    SYN,
    Options,
    Segment,
    build,
    parse,
    reset_for,
    syn_options,
    verify,
)
from vrouter.transport.tcp.state import State
from vrouter.transport.tcp.stats import TcpStats
from vrouter.wire.errors import WireError

Key = tuple[bytes, int, bytes, int]
"""(local address, local port, remote address, remote port)."""

COOKIE_PERIOD = 64.0
"""Seconds a SYN cookie's period lasts; a cookie is good for this period and the last."""
COOKIE_MSS = (216, 536, 1200, 1360, 1400, 1440, 1452, 1460)
"""The MSS values a cookie can carry (FreeBSD's ``tcp_sc_msstab``)."""
COOKIE_WSCALE = (0, 0, 2, 4, 6, 7, 8, 10)
"""The window scales a cookie can carry, rounded down; index 0: no window scaling."""


@dataclass(slots=True)
class TableConfig:
    """The per-vnet bounds and defaults of TCP."""

    syn_queue_limit: int = 1024
    """Half-open (SYN-RECEIVED) connections the vnet holds at most."""
    time_wait_limit: int = 4096
    """Connections in TIME-WAIT the vnet holds at most (the oldest go first)."""
    challenge_ack_limit: int = 1000
    """Challenge ACKs per second the vnet sends at most (RFC 5961 7)."""
    max_backlog: int = 4096
    """Upper bound of any listener's backlog (Linux somaxconn)."""
    syncookies: bool = True
    """Answer SYNs beyond the SYN queue with SYN cookies instead of dropping them."""
    ephemeral: range = range(49152, 65536)
    """Local ports picked for connects without a bound port (RFC 6335 dynamic range)."""
    defaults: TcpOptions = field(default_factory=TcpOptions)
    """Options a new connection or listener starts from."""
    tso: bool = True
    """Hand the IP layer super-segments of new data (TSO) on paths whose interface
    takes them whole (a TAP with offloads on, an epair); it cuts them elsewhere."""


@dataclass(eq=False, slots=True)
class Listener:
    """A passive open (LISTEN): where SYNs for ``addr``:``port`` become connections."""

    family: int
    addr: bytes
    """Local address (empty: any address of the family)."""
    port: int
    backlog: int
    options: TcpOptions
    """Options every accepted connection starts with (a copy)."""
    accept_queue: deque[Connection] = field(default_factory=deque)
    """Established connections waiting for ``accept``."""
    syn_queue: dict[Connection, None] = field(default_factory=dict)
    """Half-open connections (SYN-RECEIVED) this listener created."""
    overflows: int = 0
    """SYNs or ACKs dropped because the accept queue was full."""
    accepted: int = 0
    """Connections handed to ``accept``."""
    closed: bool = False
    user: object = None
    """Free for the socket layer."""

    def describe(self) -> dict[str, object]:
        """Return the listener as plain data (sockstat)."""
        return {
            "state": "LISTEN",
            "family": self.family,
            "port": self.port,
            "backlog": self.backlog,
            "accept_queue": len(self.accept_queue),
            "syn_queue": len(self.syn_queue),
            "overflows": self.overflows,
            "accepted": self.accepted,
        }


class TcpTable:
    """The connections, listeners and TIME-WAIT entries of one vnet."""

    def __init__(
        self,
        config: TableConfig | None = None,
        *,
        secret: bytes | None = None,
        stats: TcpStats | None = None,
    ) -> None:
        self.config = config if config is not None else TableConfig()
        self.stats = stats if stats is not None else TcpStats()
        self._secret = secret if secret is not None else os.urandom(32)
        self.conns: dict[Key, Connection] = {}
        """Every connection not in TIME-WAIT, by 4-tuple."""
        self.time_wait: OrderedDict[Key, Connection] = OrderedDict()
        """Connections in TIME-WAIT, oldest first."""
        self.listeners: dict[tuple[int, bytes, int], Listener] = {}
        self.half_open = 0
        """Connections in SYN-RECEIVED created by listeners (the SYN queue)."""
        self._heap: list[tuple[float, int, Connection]] = []
        self._count = itertools.count()
        self._dirty: dict[Connection, None] = {}
        self._next_ephemeral = 0
        self._challenge_second = -1.0
        self._challenge_count = 0
        self._cookies_until = 0.0
        """Cookies are checked on ACKs to listeners until then (two periods after one was sent)."""

    # --- keys and numbers -----------------------------------------------------------------------

    def _hash(self, tag: bytes, *parts: bytes) -> int:
        h = hashlib.blake2s(b"".join(parts), key=self._secret, person=tag, digest_size=4)
        return int.from_bytes(h.digest(), "big")

    def isn(self, local: bytes, lport: int, remote: bytes, rport: int, now: float) -> int:
        """Return an initial sequence number for the 4-tuple (RFC 6528 section 3)."""
        f = self._hash(b"isn", local, lport.to_bytes(2, "big"), remote, rport.to_bytes(2, "big"))
        return (int(now * 250_000) + f) & seq.MASK

    def ts_offset(self, local: bytes, remote: bytes) -> int:
        """Return the timestamp offset for a pair of addresses (RFC 7323 5.4)."""
        return self._hash(b"ts", local, remote)

    def _challenge_allowed(self, now: float) -> bool:
        second = float(int(now))
        if second != self._challenge_second:
            self._challenge_second = second
            self._challenge_count = 0
        self._challenge_count += 1
        return self._challenge_count <= self.config.challenge_ack_limit

    def _adopt(self, conn: Connection, key: Key) -> None:
        conn.on_dirty = self._mark_dirty
        conn.challenge_allowed = self._challenge_allowed
        self.conns[key] = conn

    def _mark_dirty(self, conn: Connection) -> None:
        self._dirty[conn] = None

    @staticmethod
    def key_of(conn: Connection) -> Key:
        """Return the 4-tuple of ``conn``."""
        return (conn.local_addr, conn.local_port, conn.remote_addr, conn.remote_port)

    # --- opening ------------------------------------------------------------------------------

    def listen(
        self,
        family: int,
        addr: bytes,
        port: int,
        backlog: int = 128,
        options: TcpOptions | None = None,
    ) -> Listener:
        """Start listening on ``addr`` (empty: any) and ``port``; EADDRINUSE if taken."""
        if family not in (4, 6) or (addr and len(addr) != (4 if family == 4 else 16)):
            raise TcpError(errno.EAFNOSUPPORT, "address does not match the family")
        if not 0 < port < 65536:
            raise TcpError(errno.EINVAL, f"port {port} is not 1..65535")
        key = (family, addr, port)
        if key in self.listeners:
            raise TcpError(errno.EADDRINUSE, f"port {port} already has a listener")
        backlog = max(1, min(backlog, self.config.max_backlog))
        listener = Listener(family, addr, port, backlog, replace(options or self.config.defaults))
        self.listeners[key] = listener
        return listener

    def close_listener(self, listener: Listener, now: float) -> list[Output]:
        """Stop listening: connections not yet accepted are reset."""
        if listener.closed:
            return []
        listener.closed = True
        self.listeners.pop((listener.family, listener.addr, listener.port), None)
        out: list[Output] = []
        for conn in [*listener.syn_queue, *listener.accept_queue]:
            conn.abort()
            out += self._collect(conn, conn.output(now), now)
        listener.syn_queue.clear()
        listener.accept_queue.clear()
        return out

    def accept(self, listener: Listener) -> Connection | None:
        """Return the oldest established connection waiting on ``listener`` (None: none).

        Events for a connection are only reported once it is accepted: check
        ``conn.readable`` and ``conn.fin_received`` at once, data may be there.
        """
        while listener.accept_queue:
            conn = listener.accept_queue.popleft()
            conn.listener = None
            if conn.state == State.CLOSED:
                continue
            listener.accepted += 1
            return conn
        return None

    def connect(
        self,
        local: bytes,
        remote: tuple[bytes, int],
        now: float,
        *,
        local_port: int = 0,
        options: TcpOptions | None = None,
        mtu: int = 1500,
    ) -> Connection:
        """Open a connection from ``local`` (and ``local_port``, 0: ephemeral) to ``remote``.

        The SYN is in the next :meth:`output`.  Raises TcpError EADDRINUSE
        when the 4-tuple is taken or no ephemeral port is free.
        """
        raddr, rport = remote
        if len(local) != len(raddr) or len(local) not in (4, 16):
            raise TcpError(errno.EAFNOSUPPORT, "local and remote must be the same family")
        if not 0 < rport < 65536:
            raise TcpError(errno.EINVAL, f"port {rport} is not 1..65535")
        if local_port:
            key = (local, local_port, raddr, rport)
            if key in self.conns or key in self.time_wait:
                raise TcpError(errno.EADDRINUSE, "that connection already exists")
        else:
            local_port = self._ephemeral(local, raddr, rport)
            key = (local, local_port, raddr, rport)
        conn = Connection.open_active(
            (local, local_port),
            remote,
            now,
            replace(options or self.config.defaults),
            iss=self.isn(local, local_port, raddr, rport, now),
            mtu=mtu,
            stats=self.stats,
            ts_offset=self.ts_offset(local, raddr),
        )
        self._adopt(conn, key)
        self._mark_dirty(conn)
        return conn

    def _ephemeral(self, local: bytes, raddr: bytes, rport: int) -> int:
        """Pick a free local port (RFC 6056 3.3.3, the double-hash algorithm)."""
        ports = self.config.ephemeral
        n = len(ports)
        offset = self._hash(b"port", local, raddr, rport.to_bytes(2, "big"))
        family = 4 if len(local) == 4 else 6
        for _ in range(n):
            port = ports.start + (offset + self._next_ephemeral) % n
            self._next_ephemeral += 1
            key = (local, port, raddr, rport)
            if key in self.conns or key in self.time_wait:
                continue
            if (family, b"", port) in self.listeners or (family, local, port) in self.listeners:
                continue
            return port
        self.stats.port_exhausted += 1
        raise TcpError(errno.EADDRNOTAVAIL, "no ephemeral port left")

    # --- input --------------------------------------------------------------------------------

    def input(
        self,
        src: bytes,
        dst: bytes,
        raw: bytes | memoryview,
        now: float,
        *,
        mtu: int = 1500,
        unicast: bool = True,
        checked: bool = False,
    ) -> list[Output]:
        """Process a segment from ``src`` to ``dst`` (IP addresses); return the outputs.

        ``mtu``: the MTU towards ``src`` (for the MSS of a new connection);
        ``unicast``: False for a link- or IP-level broadcast/multicast (never
        answered); ``checked``: the checksum was already verified.
        """
        stats = self.stats
        stats.rcvtotal += 1
        try:
            seg, payload = parse(raw)
        except WireError as err:
            if err.reason == "tcp_tooshort":
                stats.rcvshort += 1
            else:
                stats.rcvbadoff += 1
            return []
        if not checked and not verify(src, dst, raw):
            stats.rcvbadsum += 1
            return []
        key = (dst, seg.dport, src, seg.sport)
        conn = self.conns.get(key)
        if conn is not None:
            listener = conn.listener
            if (
                conn.state == State.SYN_RECEIVED
                and isinstance(listener, Listener)
                and seg.flags & ACK
                and not seg.flags & (RST | SYN)
                and len(listener.accept_queue) >= listener.backlog
            ):
                stats.listen_overflows += 1
                listener.overflows += 1
                return []  # the peer resends its ACK (or data) later
            return self._collect(conn, conn.receive(seg, payload, now), now)
        recycled: list[Output] = []
        tw = self.time_wait.get(key)
        if tw is not None:
            if not (seg.flags & SYN and not seg.flags & (ACK | RST) and self._may_recycle(tw, seg)):
                return self._collect(tw, tw.receive(seg, payload, now), now)
            stats.tw_recycled += 1
            recycled = self._collect(tw, tw.discard(now), now)
        family = 4 if len(dst) == 4 else 6
        listener = self.listeners.get((family, dst, seg.dport)) or self.listeners.get(
            (family, b"", seg.dport)
        )
        if listener is None or not unicast:
            if not unicast:
                return recycled
            stats.noport += 1
            reply = reset_for(dst, src, seg, len(payload))
            if reply is None:
                return []
            stats.sndrst += 1
            stats.sndtotal += 1
            return [*recycled, Transmit(dst, src, seg.dport, seg.sport, reply)]
        return recycled + self._listen_input(listener, src, dst, seg, payload, now, mtu)

    @staticmethod
    def _may_recycle(tw: Connection, seg: Segment) -> bool:
        """RFC 6191: a SYN may end TIME-WAIT if it is newer than the old connection."""
        ts = seg.options.ts
        if tw.ts_enabled and ts is not None:
            return seq.gt(ts[0], tw.ts_recent)
        return seq.gt(seg.seq, tw.rcv_nxt)

    def _listen_input(
        self,
        listener: Listener,
        src: bytes,
        dst: bytes,
        seg: Segment,
        payload: memoryview,
        now: float,
        mtu: int,
    ) -> list[Output]:
        """RFC 9293 3.10.7.2: a segment for a LISTEN."""
        stats = self.stats
        flags = seg.flags
        if flags & RST:
            return []
        if flags & ACK:
            if self.config.syncookies and now < self._cookies_until and not flags & SYN:
                done = self._cookie_ack(listener, src, dst, seg, payload, now, mtu)
                if done is not None:
                    return done
            stats.noport += 1
            reply = reset_for(dst, src, seg, len(payload))
            stats.sndrst += 1
            stats.sndtotal += 1
            return [Transmit(dst, src, seg.dport, seg.sport, reply)] if reply else []
        if not flags & SYN:
            return []
        if flags & FIN or (src == dst and seg.sport == seg.dport):
            stats.badsyn += 1
            return []
        if len(listener.accept_queue) >= listener.backlog:
            stats.listen_overflows += 1
            listener.overflows += 1
            return []
        if self.half_open >= self.config.syn_queue_limit:
            stats.syn_queue_overflows += 1
            if not self.config.syncookies:
                return []
            return [self._cookie_synack(listener, src, dst, seg, now, mtu)]
        conn = Connection.open_passive(
            (dst, seg.dport),
            (src, seg.sport),
            seg,
            now,
            replace(listener.options),
            iss=self.isn(dst, seg.dport, src, seg.sport, now),
            mtu=mtu,
            stats=stats,
            ts_offset=self.ts_offset(dst, src),
        )
        conn.listener = listener
        listener.syn_queue[conn] = None
        self.half_open += 1
        self._adopt(conn, (dst, seg.dport, src, seg.sport))
        return self._collect(conn, conn.output(now), now)

    # --- SYN cookies -------------------------------------------------------------------------

    def _cookie(
        self, period: int, src: bytes, dst: bytes, seg: Segment, irs: int, info: int
    ) -> int:
        mac = self._hash(
            b"cookie",
            period.to_bytes(8, "big"),
            src,
            dst,
            seg.sport.to_bytes(2, "big"),
            seg.dport.to_bytes(2, "big"),
            irs.to_bytes(4, "big"),
            bytes((info,)),
        )
        return ((period & 1) << 31) | (info << 24) | (mac & 0xFFFFFF)

    def _cookie_synack(
        self, listener: Listener, src: bytes, dst: bytes, seg: Segment, now: float, mtu: int
    ) -> Transmit:
        """Answer a SYN without keeping state: the ISN carries what we need (FreeBSD style).

        The 32 bits: period parity (1), MSS index (3), window scale index (3),
        SACK-permitted (1), and 24 bits of a keyed hash over all of it, the
        4-tuple and the peer's ISN.  Timestamps are not offered (no room).
        """
        o = listener.options
        opts = seg.options
        ip_hdr = 20 if len(dst) == 4 else 40
        local_mss = max(min(mtu - ip_hdr - 20, o.mss or 65535), 64)
        peer_mss = opts.mss or (536 if len(dst) == 4 else 1220)
        mss_idx = max(
            i for i, m in enumerate(COOKIE_MSS) if m <= min(peer_mss, local_mss) or i == 0
        )
        ws_idx = 0
        if o.window_scaling and opts.wscale is not None:
            ws_idx = max(i for i, w in enumerate(COOKIE_WSCALE) if w <= opts.wscale or i == 1)
        sack = o.sack and opts.sack_permitted
        info = (mss_idx << 4) | (ws_idx << 1) | int(sack)
        period = int(now // COOKIE_PERIOD)
        cookie = self._cookie(period, src, dst, seg, seg.seq, info)
        options = syn_options(local_mss, window_shift(o) if ws_idx else None, sack, None)
        data = build(
            dst,
            src,
            seg.dport,
            seg.sport,
            cookie,
            seq.add(seg.seq, 1),
            SYN | ACK,
            min(o.rcvbuf, 0xFFFF),
            options,
        )
        self._cookies_until = now + 2 * COOKIE_PERIOD
        self.stats.syncookies_sent += 1
        self.stats.sndtotal += 1
        return Transmit(dst, src, seg.dport, seg.sport, data)

    def _cookie_ack(
        self,
        listener: Listener,
        src: bytes,
        dst: bytes,
        seg: Segment,
        payload: memoryview,
        now: float,
        mtu: int,
    ) -> list[Output] | None:
        """Rebuild the connection a valid cookie stands for; None if it is not one."""
        cookie = seq.sub(seg.ack, 1)
        irs = seq.sub(seg.seq, 1)
        info = (cookie >> 24) & 0x7F
        current = int(now // COOKIE_PERIOD)
        for period in (current, current - 1):
            if (
                period & 1 == cookie >> 31
                and self._cookie(period, src, dst, seg, irs, info) == cookie
            ):
                break
        else:
            self.stats.syncookies_failed += 1
            return None
        if len(listener.accept_queue) >= listener.backlog:
            self.stats.listen_overflows += 1
            listener.overflows += 1
            return []
        self.stats.syncookies_recv += 1
        mss_idx, ws_idx, sack = info >> 4, (info >> 1) & 7, bool(info & 1)
        syn = Segment(
            seg.sport,
            seg.dport,
            irs,
            0,
            SYN,
            0,
            Options(
                mss=COOKIE_MSS[mss_idx],
                wscale=COOKIE_WSCALE[ws_idx] if ws_idx else None,
                sack_permitted=sack,
            ),
        )
        conn = Connection.open_passive(
            (dst, seg.dport),
            (src, seg.sport),
            syn,
            now,
            replace(listener.options, timestamps=False),
            iss=cookie,
            mtu=mtu,
            stats=self.stats,
        )
        conn.output(now)  # the SYN-ACK was already sent, as the cookie
        conn.listener = listener
        listener.syn_queue[conn] = None
        self.half_open += 1
        self._adopt(conn, (dst, seg.dport, src, seg.sport))
        return self._collect(conn, conn.receive(seg, payload, now), now)

    # --- outputs and timers ------------------------------------------------------------------

    def output(self, now: float) -> list[Output]:
        """Collect what connections touched by the program now send."""
        out: list[Output] = []
        while self._dirty:
            conn = next(iter(self._dirty))
            del self._dirty[conn]
            out += self._collect(conn, conn.output(now), now)
        return out

    def poll_at(self) -> float | None:
        """Return the earliest connection deadline (None: no timer armed)."""
        heap = self._heap
        while heap and heap[0][2].scheduled != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def on_timer(self, now: float) -> list[Output]:
        """Run the timers of every connection that is due."""
        heap = self._heap
        due: list[Connection] = []
        while heap and heap[0][0] <= now:
            deadline, _, conn = heapq.heappop(heap)
            if conn.scheduled == deadline:
                conn.scheduled = None
                due.append(conn)
        out: list[Output] = []
        for conn in due:
            out += self._collect(conn, conn.on_timer(now), now)
        return out

    def _schedule(self, conn: Connection) -> None:
        deadline = conn.poll_at()
        if deadline == conn.scheduled:
            return
        conn.scheduled = deadline
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._count), conn))

    def _collect(self, conn: Connection, outs: list[Output], now: float) -> list[Output]:
        """Do the table's share of a connection's outputs and pass on the rest."""
        result: list[Output] = []
        for item in outs:
            if isinstance(item, Transmit):
                result.append(item)
                continue
            listener = conn.listener
            if isinstance(listener, Listener):  # not accepted yet: the table speaks for it
                if isinstance(item, Connected) and conn in listener.syn_queue:
                    del listener.syn_queue[conn]
                    self.half_open -= 1
                    if listener.closed:
                        conn.abort()
                        result += self._collect(conn, conn.output(now), now)
                        continue
                    listener.accept_queue.append(conn)
                    result.append(Acceptable(listener))
                elif isinstance(item, Closed):
                    if conn in listener.syn_queue:
                        del listener.syn_queue[conn]
                        self.half_open -= 1
                    if conn in listener.accept_queue:
                        listener.accept_queue.remove(conn)
                continue
            result.append(item)
        key = self.key_of(conn)
        state = conn.state
        if state == State.CLOSED:
            if self.conns.get(key) is conn:
                del self.conns[key]
            if self.time_wait.get(key) is conn:
                del self.time_wait[key]
                self.stats.tw_expired += 1
            self._dirty.pop(conn, None)
            conn.scheduled = None
            return result
        if state == State.TIME_WAIT and self.conns.get(key) is conn:
            del self.conns[key]
            while len(self.time_wait) >= self.config.time_wait_limit:
                _, oldest = self.time_wait.popitem(last=False)
                self.stats.tw_evicted += 1
                result += oldest.discard(now)  # its Closed event
                oldest.scheduled = None
            self.time_wait[key] = conn
        self._schedule(conn)
        return result

    # --- views and teardown -------------------------------------------------------------------

    def connections(self) -> Iterator[Connection]:
        """Yield every connection, TIME-WAIT included."""
        yield from self.conns.values()
        yield from self.time_wait.values()

    def clear(self, now: float) -> list[Output]:
        """Reset every connection and drop every listener (the vnet is going away)."""
        out: list[Output] = []
        for listener in list(self.listeners.values()):
            out += self.close_listener(listener, now)
        for conn in list(self.conns.values()):
            conn.abort()
            out += self._collect(conn, conn.output(now), now)
        for conn in list(self.time_wait.values()):
            out += self._collect(conn, conn.discard(now), now)
        self._heap.clear()
        self._dirty.clear()
        return out
