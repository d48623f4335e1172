"""The connection state machine as a data table (RFC 9293 3.3.2, h11 style).

The segment processing of RFC 9293 3.10.7 decides *which* trigger happened
(our SYN was acknowledged, a FIN arrived in order, the program closed, 2*MSL
passed) and :data:`TRANSITIONS` alone decides the next state.  LISTEN is not
a connection state here: a listener
(:class:`~vrouter.transport.tcp.table.Listener`) creates a connection in
SYN-RECEIVED when a SYN arrives.  The named sets of states below are what
the input, output and timer code test a state against.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """Connection states of RFC 9293 3.3.2 (LISTEN is a Listener, not a connection)."""

    CLOSED = "CLOSED"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


class Trigger(enum.Enum):
    """What moves a connection from one state to another."""

    ACTIVE_OPEN = "active open"
    PASSIVE_OPEN = "SYN on a listener"
    RCV_SYN = "SYN received (simultaneous open)"
    RCV_SYN_ACK = "SYN-ACK received"
    RCV_ACK_OF_SYN = "our SYN acknowledged"
    CLOSE = "program closed its side"
    RCV_FIN = "FIN received in order"
    RCV_ACK_OF_FIN = "our FIN acknowledged"
    TIMEOUT = "2*MSL or FIN-WAIT-2 timeout"
    RESET = "reset, abort or timeout"


S = State
T = Trigger
TRANSITIONS: dict[State, dict[Trigger, State]] = {
    S.CLOSED: {T.ACTIVE_OPEN: S.SYN_SENT, T.PASSIVE_OPEN: S.SYN_RECEIVED},
    S.SYN_SENT: {T.RCV_SYN_ACK: S.ESTABLISHED, T.RCV_SYN: S.SYN_RECEIVED, T.CLOSE: S.CLOSED},
    S.SYN_RECEIVED: {T.RCV_ACK_OF_SYN: S.ESTABLISHED},
    S.ESTABLISHED: {T.CLOSE: S.FIN_WAIT_1, T.RCV_FIN: S.CLOSE_WAIT},
    S.FIN_WAIT_1: {T.RCV_ACK_OF_FIN: S.FIN_WAIT_2, T.RCV_FIN: S.CLOSING},
    S.FIN_WAIT_2: {T.RCV_FIN: S.TIME_WAIT, T.TIMEOUT: S.CLOSED},
    S.CLOSE_WAIT: {T.CLOSE: S.LAST_ACK},
    S.CLOSING: {T.RCV_ACK_OF_FIN: S.TIME_WAIT},
    S.LAST_ACK: {T.RCV_ACK_OF_FIN: S.CLOSED},
    S.TIME_WAIT: {T.TIMEOUT: S.CLOSED},
}
"""The state table: ``TRANSITIONS[state][trigger]`` is the next state.

``Trigger.RESET`` leads from any state to CLOSED and is not listed.  A
trigger absent from a state's row is a no-op there (a FIN retransmitted
into TIME-WAIT, a second close).
"""
del S, T

PROBING = frozenset(
    {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK}
)
"""States with data or a FIN of ours that a tail loss probe may resend."""
SYNCHRONIZED = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)
"""States after the handshake (RFC 9293 3.10.7.4): both ISNs are known."""
SENDING = frozenset(
    {State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK}
)
"""States in which our data (or FIN) may still go out."""
FIN_STATES = frozenset({State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})
"""States after our close: the FIN follows the queued data."""
RECEIVING = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
"""States in which the peer's data is taken (its FIN has not arrived)."""
KEEPALIVE = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_2})
"""States in which an idle connection is probed (when keepalive is on)."""
CAN_QUEUE = frozenset({State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT})
"""States in which ``send`` queues data (before our FIN)."""
