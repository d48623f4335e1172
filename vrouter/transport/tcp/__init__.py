"""TCP for vrouter's vnets: a sans-IO implementation of RFC 9293 and its companions.

Layers, bottom up (each usable and tested on its own):

``seq``         32-bit sequence arithmetic.
``segment``     segments and options (MSS, window scale, SACK-permitted, SACK,
                timestamps): :func:`segment.parse`, :func:`segment.build`.
``rto``         RFC 6298 retransmission timeout with backoff.
``congestion``  NewReno (RFC 5681/6582/3042) with SACK-driven recovery (RFC 6675).
``sack``        the receiver's reassembly queue and SACK blocks, the sender's scoreboard.
``conn``        :class:`Connection`, the state machine (a data table, h11 style).
``table``       :class:`TcpTable`, one vnet's connections: 4-tuple demux,
                listeners, SYN queue and backlog bounds, TIME-WAIT table, ISNs.
``stack``       :class:`TcpStack` (``vnet.tcp``) and :data:`stack.SUBSYSTEM`:
                the glue to the vnet's IPv4/IPv6 layers and timer heap.
``events``      the outputs: :class:`Transmit` and the events.
``stats``       :class:`TcpStats`, the per-vnet counters.

Nothing here reads a clock or touches a descriptor: every entry point takes
``now`` (seconds, the vnet's monotonic clock) and returns a list of outputs.

Using it from the socket service
================================

Load the subsystem (it is not in ``vrouter.stack.builtin_subsystems`` yet)::

    registry.load(tcp.stack.SUBSYSTEM, vnets)        # or list it as a built-in
    tcp = vrouter.transport.tcp.stack.state_of(vnet)  # the vnet's TcpStack (vnet.tcp)
    tcp.on_event = handle                             # one callback for every event

From then on TCP segments for the vnet's addresses reach ``tcp.input4`` /
``tcp.input6`` (registered as ``vnet.inet.protocols[6]`` and
``vnet.inet6.protocols[6]``), replies and timers run by themselves through
``vnet.timers``.  The service drives connections like this:

``listener = tcp.listen(family, addr, port, backlog=128, options=None)``
    ``addr`` is 4/16 bytes or ``b""`` for any address of ``family`` (an
    IPv6 listener does not take IPv4: V6ONLY).  Raises :class:`TcpError`
    (``.errno``: EADDRINUSE, EINVAL).  ``listener.user`` is free for the
    service's socket.  ``tcp.close_listener(listener, now)`` stops it and
    resets connections not yet accepted.
``Acceptable(listener)``
    a handshake completed.  ``conn = tcp.accept(listener)`` (None when the
    queue is empty) returns it.  No event was reported for it before the
    accept: check ``conn.readable`` and ``conn.fin_received`` at once.
``conn = tcp.connect(dst, dport, now, src=b"", sport=0, options=None)``
    SYN sent; the source address comes from the routes when ``src`` is
    empty, the port is ephemeral when ``sport`` is 0.  Raises
    :class:`TcpError` (ENETUNREACH, EADDRINUSE, EADDRNOTAVAIL).  Then
    ``Connected(conn)`` on success or ``Reset(conn, errno)`` (ECONNREFUSED,
    ETIMEDOUT) and ``Closed(conn)``.
``n = conn.send(data)``
    takes at most what fits in ``options.sndbuf`` (unacknowledged plus
    unsent) and returns the count; a short count means *stop reading the
    program's descriptor* until ``Writable(conn)``.  Raises
    :class:`TcpError` EPIPE after ``shutdown_write``/``close``, ENOTCONN
    (or the connection's error) when it is gone.  ``conn.writable`` is the
    room left.
``data = conn.recv(max_bytes)``
    after ``Readable(conn)``: read only as much as the program's descriptor
    can take now; what stays unread keeps the advertised window small, so a
    slow program slows the peer instead of growing memory (the buffer is
    ``options.rcvbuf``).  ``b""`` means nothing to read; ``conn.at_eof`` is
    True once the peer's FIN arrived and everything before it was read
    (``PeerClosed(conn)`` reports the FIN): then shut the program's side for
    writing.
``conn.shutdown_write()``
    the program's ``shutdown(SHUT_WR)``: FIN after the queued data.
``conn.close()``
    the program closed its descriptor: FIN after the queued data, or RST if
    received data was left unread; the connection then finishes on its own
    (FIN-WAIT-2 timeout, TIME-WAIT) and reports ``Closed``.
``conn.abort()``
    RST now (SO_LINGER 0); reports ``Closed`` only.
``tcp.flush(now)``
    after any of ``send``/``recv``/``shutdown_write``/``close``/``abort``
    (or a batch of them): sends what they made possible (data, FIN, window
    updates).  Without it nothing leaves until the next segment or timer.
``Reset(conn, errno)``, ``Closed(conn)``
    the connection failed (ECONNRESET, ECONNREFUSED, ETIMEDOUT; also in
    ``conn.error``) / is gone from the table: report EOF or the error on the
    descriptor and forget ``conn``.
``conn.user``
    free for the service (its socket object); every event carries ``conn``.
``conn.options``
    a :class:`TcpOptions` per connection (copied from the listener's or the
    vnet's defaults): ``nodelay`` (TCP_NODELAY), ``keepalive`` and
    ``keepidle``/``keepintvl``/``keepcnt``, ``sndbuf``/``rcvbuf``, ``mss``
    (TCP_MAXSEG); change fields on a live connection, then ``tcp.flush``.
Introspection (``vrouterctl sockstat``, ``netstat``)
    ``tcp.table.connections()`` (TIME-WAIT included), ``conn.info()`` (state,
    queues, windows, cwnd, RTO…), ``conn.local_addr/local_port/remote_addr/
    remote_port``, ``tcp.table.listeners.values()`` and ``listener.describe()``,
    ``tcp.stats.as_dict()``; sysctls ``net.inet.tcp.*`` (MSL, delayed ACK,
    default buffers, SYN queue and TIME-WAIT bounds, minimum RTO, keepalive).

The lower layers are usable without a vnet: :class:`TcpTable` (``input``,
``output``, ``on_timer``, ``poll_at``, ``connect``, ``listen``, ``accept``)
and a bare :class:`Connection` (``open_active``/``open_passive``,
``receive(segment, payload, now)``, ``output(now)``, ``on_timer(now)``,
``poll_at()``), which is how the tests script them.

Beyond the per-vnet SYN queue bound, SYNs get SYN cookies (MSS, window scale
and SACK survive; timestamps do not), or are dropped with
``TableConfig.syncookies = False``.

Limits (not implemented): ECN, urgent data (URG is ignored; the data is delivered
inline), D-SACK, TCP Fast Open, RACK/TLP, ICMP-driven PMTU or error handling
(:meth:`Connection.set_mtu` exists for the glue to call), IPv6 link-local
peers (a connection does not carry its scope interface), TSO on output.
"""

from __future__ import annotations

from vrouter.transport.tcp.conn import Connection, TcpError
from vrouter.transport.tcp.events import (
    Acceptable,
    Closed,
    Connected,
    Event,
    Output,
    PeerClosed,
    Readable,
    Reset,
    Transmit,
    Writable,
)
from vrouter.transport.tcp.options import TcpOptions
from vrouter.transport.tcp.state import State
from vrouter.transport.tcp.stats import TcpStats
from vrouter.transport.tcp.table import Listener, TableConfig, TcpTable

__all__ = [
    "Acceptable",
    "Closed",
    "Connected",
    "Connection",
    "Event",
    "Listener",
    "Output",
    "PeerClosed",
    "Readable",
    "Reset",
    "State",
    "TableConfig",
    "TcpError",
    "TcpOptions",
    "TcpStats",
    "TcpTable",
    "Transmit",
    "Writable",
]
