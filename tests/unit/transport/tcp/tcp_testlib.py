"""Helpers for the TCP tests: scripted peers, decoded outputs, a simulated network.

``Script`` drives one :class:`Connection` from the peer's side with
hand-written segments (the peer's sequence numbers are tracked so tests
read like the RFC's figures).  ``Net`` joins two :class:`TcpTable` objects
through a simulated path (delay, bandwidth, drop-tail queue, random loss
and reordering) on a fake clock, for back-to-back transfers.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from vrouter.transport.tcp import seq
from vrouter.transport.tcp.conn import Connection, State, TcpOptions
from vrouter.transport.tcp.events import Output, Transmit
from vrouter.transport.tcp.segment import (
    ACK,
    NO_OPTIONS,
    PSH,
    SYN,
    Options,
    Segment,
    parse,
    verify,
)
from vrouter.transport.tcp.table import TableConfig, TcpTable
from vrouter.wire.checksum import pseudo_header_sum

A = bytes([192, 0, 2, 1])
"""Our address (TEST-NET-1)."""
B = bytes([192, 0, 2, 2])
"""The peer's address."""
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")
LPORT = 80
RPORT = 40000
ISS = 1000
"""Our initial sequence number in scripted tests."""
IRS = 5000
"""The peer's initial sequence number in scripted tests."""
T0 = 1000.0


@dataclass(frozen=True)
class Sent:
    """One segment a connection sent, decoded."""

    seg: Segment
    payload: bytes

    @property
    def flags(self) -> int:
        return self.seg.flags

    @property
    def seq(self) -> int:
        return self.seg.seq

    @property
    def ack(self) -> int:
        return self.seg.ack

    @property
    def window(self) -> int:
        return self.seg.window

    @property
    def options(self) -> Options:
        return self.seg.options

    def is_(self, flags: int) -> bool:
        """Return True if exactly ``flags`` (ignoring PSH) are set."""
        return self.seg.flags & ~PSH == flags


def sent(outputs: list[Output]) -> list[Sent]:
    """Return the segments among ``outputs``, decoded (checksums verified)."""
    out = []
    for item in outputs:
        if isinstance(item, Transmit):
            if item.gso_size:  # a super-segment (TSO): only the pseudo-header sum is there
                pseudo = pseudo_header_sum(item.src, item.dst, 6, len(item.data))
                assert int.from_bytes(item.data[16:18], "big") == pseudo, "bad partial checksum"
            else:
                assert verify(item.src, item.dst, item.data), "bad checksum"
            seg, payload = parse(item.data)
            out.append(Sent(seg, bytes(payload)))
    return out


def events(outputs: list[Output]) -> list[str]:
    """Return the names of the events among ``outputs``."""
    return [type(item).__name__ for item in outputs if not isinstance(item, Transmit)]


def plain(**kw: object) -> TcpOptions:
    """Return options without window scaling, timestamps or SACK (scripts read simply)."""
    base: dict[str, object] = {"window_scaling": False, "timestamps": False, "sack": False}
    base.update(kw)
    return TcpOptions(**base)  # type: ignore[arg-type]


class Script:
    """The peer of ``conn``, sending hand-written segments with its own sequence numbers."""

    def __init__(self, conn: Connection, now: float = T0, irs: int = IRS) -> None:
        self.conn = conn
        self.now = now
        self.snd_nxt = seq.add(irs, 1)
        """The peer's next sequence number (after its SYN)."""
        self.out: list[Output] = []

    def seg(
        self,
        flags: int = ACK,
        payload: bytes = b"",
        *,
        seq_no: int | None = None,
        ack: int | None = None,
        window: int = 65535,
        options: Options = NO_OPTIONS,
        advance: bool = True,
    ) -> Segment:
        """Return a segment from the peer (SEQ defaults to the peer's SND.NXT)."""
        s = self.snd_nxt if seq_no is None else seq_no
        a = self.conn.snd_nxt if ack is None else ack
        seg = Segment(RPORT, LPORT, s, a, flags, window, options)
        if advance and seq_no is None:
            self.snd_nxt = seq.add(s, seg.seg_len(len(payload)))
        return seg

    def send(self, flags: int = ACK, payload: bytes = b"", **kw: object) -> list[Sent]:
        """Deliver a segment to the connection; return what it sent back."""
        seg = self.seg(flags, payload, **kw)  # type: ignore[arg-type]
        self.out = self.conn.receive(seg, payload, self.now)
        return sent(self.out)

    def events(self) -> list[str]:
        """Return the event names of the last call."""
        return events(self.out)

    def advance(self, seconds: float) -> list[Sent]:
        """Move time on and run the connection's timers."""
        self.now += seconds
        self.out = self.conn.on_timer(self.now)
        return sent(self.out)

    def until_timer(self) -> list[Sent]:
        """Jump to the connection's next deadline and run it."""
        at = self.conn.poll_at()
        assert at is not None, "no timer armed"
        self.now = max(self.now, at)
        self.out = self.conn.on_timer(self.now)
        return sent(self.out)

    def flush(self) -> list[Sent]:
        """Collect what the program's calls left to send."""
        self.out = self.conn.output(self.now)
        return sent(self.out)


def passive(
    options: TcpOptions | None = None,
    syn_options: Options = Options(mss=1460),  # noqa: B008 (frozen)
    *,
    mtu: int = 1500,
    window: int = 65535,
) -> tuple[Connection, Script, list[Sent]]:
    """Return a connection in SYN-RECEIVED for a scripted SYN, its script and the SYN-ACK."""
    script_syn = Segment(RPORT, LPORT, IRS, 0, SYN, window, syn_options)
    conn = Connection.open_passive(
        (A, LPORT), (B, RPORT), script_syn, T0, options or plain(), iss=ISS, mtu=mtu
    )
    script = Script(conn)
    return conn, script, sent(conn.output(T0))


def established(
    options: TcpOptions | None = None, *, window: int = 65535, mtu: int = 1500
) -> tuple[Connection, Script]:
    """Return a passively opened connection in ESTABLISHED and its script."""
    conn, script, _ = passive(options, window=window, mtu=mtu)
    script.send(ACK, window=window)
    assert conn.state == State.ESTABLISHED
    return conn, script


def active(options: TcpOptions | None = None, *, mtu: int = 1500) -> tuple[Connection, Sent]:
    """Return a connection in SYN-SENT and its SYN."""
    conn = Connection.open_active((A, LPORT), (B, RPORT), T0, options or plain(), iss=ISS, mtu=mtu)
    [syn] = sent(conn.output(T0))
    return conn, syn


# --- a simulated network between two tables ------------------------------------------------


@dataclass
class Path:
    """One direction of the simulated network."""

    delay: float = 0.005
    """One-way propagation delay in seconds."""
    rate: float = 0.0
    """Bottleneck bandwidth in bytes per second (0: unlimited)."""
    queue: int = 64 * 1024
    """Bytes the bottleneck queue holds before it drops (drop-tail)."""
    loss: float = 0.0
    """Probability that a segment is lost."""
    reorder: float = 0.0
    """Probability that a segment is held back by up to ``jitter``."""
    jitter: float = 0.004
    busy_until: float = 0.0
    sent: int = 0
    dropped: int = 0
    queue_drops: int = 0


@dataclass
class Net:
    """Two tables joined by two paths, on a fake clock."""

    a: TcpTable
    b: TcpTable
    ab: Path = field(default_factory=Path)
    ba: Path = field(default_factory=Path)
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    now: float = T0
    log: list[Output] = field(default_factory=list)
    """Every event either side produced."""
    on_event: Callable[[TcpTable, Output], None] | None = None
    _heap: list[tuple[float, int, TcpTable, Transmit]] = field(default_factory=list)
    _n: itertools.count[int] = field(default_factory=itertools.count)

    def push(self, source: TcpTable, outputs: list[Output]) -> None:
        """Put ``source``'s segments on the wire and record its events."""
        path, dest = (self.ab, self.b) if source is self.a else (self.ba, self.a)
        for item in outputs:
            if not isinstance(item, Transmit):
                self.log.append(item)
                if self.on_event is not None:
                    self.on_event(source, item)
                continue
            path.sent += 1
            if path.loss and self.rng.random() < path.loss:
                path.dropped += 1
                continue
            start = max(self.now, path.busy_until)
            if path.rate:
                if (start - self.now) * path.rate > path.queue:
                    path.queue_drops += 1
                    continue
                path.busy_until = start + (len(item.data) + 40) / path.rate
                start = path.busy_until
            at = start + path.delay
            if path.reorder and self.rng.random() < path.reorder:
                at += self.rng.random() * path.jitter
            heapq.heappush(self._heap, (at, next(self._n), dest, item))

    def step(self, wake: float | None = None) -> bool:
        """Advance to the next arrival or timer (or ``wake``) and process it.

        Returns False if nothing is left to happen.
        """
        candidates = [t for t in (self.a.poll_at(), self.b.poll_at()) if t is not None]
        if self._heap:
            candidates.append(self._heap[0][0])
        if not candidates:
            return False
        if wake is not None:
            candidates.append(wake)
        self.now = max(self.now, min(candidates))
        while self._heap and self._heap[0][0] <= self.now:
            _, _, dest, item = heapq.heappop(self._heap)
            self.push(dest, dest.input(item.src, item.dst, item.data, self.now))
        for table in (self.a, self.b):
            at = table.poll_at()
            if at is not None and at <= self.now:
                self.push(table, table.on_timer(self.now))
        return True

    def flush(self) -> None:
        """Collect what the programs' calls left to send on both sides."""
        self.push(self.a, self.a.output(self.now))
        self.push(self.b, self.b.output(self.now))

    def run(
        self,
        until: Callable[[], bool],
        limit: float = 600.0,
        app: Callable[[], None] | None = None,
        tick: float = 0.0,
    ) -> None:
        """Step until ``until()`` is true.

        ``app()`` runs between steps, like a program; with ``tick`` it also
        runs at least that often while the network waits.
        """
        end = self.now + limit
        while not until():
            if app is not None:
                app()
                self.flush()
            if not self.step(self.now + tick if tick else None):
                if app is None:
                    break
                self.now += 0.001  # the network is idle; the program still works
            assert self.now < end, "the simulation ran out of time"


@dataclass
class Transfer:
    """The outcome of :func:`transfer`."""

    net: Net
    a: TcpTable
    b: TcpTable
    received: bytes
    """What the server read, in order."""
    echoed: bytes
    """What the client read back (bidirectional transfers)."""
    max_held: int
    """Most bytes the server's connection held at once (readable + reassembly)."""
    finished: float
    """Seconds from the connect until the server had read everything."""


def transfer(
    data: bytes,
    *,
    path: Path | None = None,
    back: Path | None = None,
    options: TcpOptions | None = None,
    seed: int = 1,
    reply: bytes = b"",
    read_chunk: int = 1 << 30,
    read_every: float = 0.0,
    limit: float = 600.0,
    isn: int | None = None,
    ts_offset: int | None = None,
) -> Transfer:
    """Move ``data`` from a client table to a server table over a simulated path.

    The client connects, writes ``data`` as fast as the send buffer takes it
    and closes; the server reads up to ``read_chunk`` bytes per step (a slow
    reader when small, or with ``read_every`` seconds between reads), writes
    ``reply`` back, and closes on EOF.  Runs on a fake clock until both sides
    are closed and TIME-WAIT has drained.  ``isn``/``ts_offset`` fix both
    sides' initial sequence numbers and timestamp clocks (to cross 2**32).
    """
    opts = options or TcpOptions()
    a = TcpTable(TableConfig(defaults=opts))
    b = TcpTable(TableConfig(defaults=opts))
    for table in (a, b):
        if isn is not None:
            table.isn = lambda *_args, _v=isn: _v  # type: ignore[method-assign]
        if ts_offset is not None:
            table.ts_offset = lambda *_args, _v=ts_offset: _v  # type: ignore[method-assign]
    forward = path or Path()
    net = Net(a, b, forward, back or replace(forward), random.Random(seed))
    listener = b.listen(4, b"", 80)
    client = a.connect(A, (B, 80), net.now)
    net.flush()
    got = bytearray()
    echoed = bytearray()
    st: dict[str, float] = {
        "sent": 0,
        "replied": 0,
        "closed": 0,
        "max": 0,
        "finished": 0,
        "read_at": 0,
    }
    start = net.now
    server_box: list[Connection] = []

    def app() -> None:
        if not server_box:
            conn = b.accept(listener)
            if conn is not None:
                server_box.append(conn)
        if client.state in (State.ESTABLISHED, State.CLOSE_WAIT) and st["sent"] < len(data):
            sent_ = int(st["sent"])
            st["sent"] += client.send(data[sent_ : sent_ + 65536])
            if st["sent"] == len(data):
                client.shutdown_write()
        echoed.extend(client.recv())
        if client.at_eof and client.state == State.CLOSE_WAIT:
            client.close()
        if not server_box:
            return
        server = server_box[0]
        held = server.readable + server._reass.size
        st["max"] = max(st["max"], held)
        if net.now - st["read_at"] >= read_every:
            st["read_at"] = net.now
            got.extend(server.recv(read_chunk))
        if len(got) == len(data) and not st["finished"]:
            st["finished"] = net.now - start
        if server.state in (State.ESTABLISHED, State.CLOSE_WAIT) and st["replied"] < len(reply):
            replied = int(st["replied"])
            st["replied"] += server.send(reply[replied : replied + 65536])
        if server.at_eof and not st["closed"] and st["replied"] == len(reply):
            st["closed"] = 1
            server.close()

    def done() -> bool:
        return (
            bool(st["closed"])
            and client.state in (State.TIME_WAIT, State.CLOSED)
            and not a.conns
            and not b.conns
            and not a.time_wait
            and not b.time_wait
        )

    net.run(done, limit=limit, app=app, tick=read_every)
    return Transfer(net, a, b, bytes(got), bytes(echoed), int(st["max"]), st["finished"])
