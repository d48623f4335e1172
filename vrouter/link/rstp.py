"""Rapid Spanning Tree Protocol for a bridge (IEEE 802.1D-2004 clause 17, 802.1w).

This module is long on purpose: clause 17's machines (role selection, role
transitions, port states, topology change, migration, transmit) share one
set of port variables and are read and changed together.

A bridge with ``stp_protocol = "rstp"`` runs one :class:`Rstp` instead of
:class:`vrouter.link.stp.Stp`; it shares the settings, the port states
(discarding is ``BLOCKING``), the counters and the BPDU codec with it, and
through :class:`vrouter.link.stp.Tree` and :class:`vrouter.link.stp.TreePort`
the bridge and port ids, how a member joins, which BPDUs are refused and how
the whole is shown.

Roles (17.7, 17.21.25): every port holds a port priority vector (root id,
root path cost, designated bridge, designated port): the best it heard
(``received``, kept for three hello times) or the bridge's own designated
vector (``mine``).  The best root path among the received ones makes the
root port; a port whose own designated vector is better is designated; a
port that heard better is alternate, or backup when what it heard comes from
this bridge's own other port; a port whose link is down is disabled.

States: alternate, backup and disabled ports discard at once.  A designated
port that is not forwarding proposes (the Proposal flag); the bridge behind
it, its root port then being told, syncs (every designated port of its own
that is neither discarding, agreed nor edge discards) and answers with an
Agreement; an alternate or backup port agrees at once, since it discards.
An agreed designated port forwards at once; without an agreement (a port
that runs STP towards an 802.1D bridge, a silent neighbour) it goes
discarding -> learning -> forwarding, one forward delay each.  The root port
forwards at once unless a recent root port of the bridge is still learning
or forwarding (17.29.2 reRooted), which then discards first, or it was
backup less than two hello times ago (rbWhile): a failed root
port (link down, or its information not refreshed within three hello times)
is replaced by the best alternate without waiting for max age or forward
delay.

Edge ports (17.20.4, 17.25): an ``edge`` member forwards as soon as it is
designated; an ``auto_edge`` member becomes edge when it has proposed for
the migrate time (3 s) without hearing a BPDU.  A BPDU makes an edge port
an ordinary one again.

Topology change (17.25): a port that is not edge and starts forwarding as
root or designated, or a TC flag received on a forwarding root or designated
port (a TCN from an STP bridge on a forwarding designated port), flushes the
MACs learnt on every other forwarding root or designated port that is not
edge at once and sends the TC flag on them for two hello times (STP ports:
TC in Configuration BPDUs on designated ports for max age + forward delay,
TCN BPDUs up an STP root port until acknowledged).  A port that stops
learning forgets what it learnt.

Protocol migration (17.23): a port sends RST BPDUs until it hears an STP
one (Configuration or TCN) after the migrate time since its last change;
it then speaks STP there (Configuration BPDUs, no proposals) until it
hears an RST BPDU again or ``mcheck`` asks it to try.  Every link is taken
as point-to-point (TAPs, epairs and VXLANs are full duplex): the
proposal/agreement handshake runs wherever the neighbour speaks RSTP.

Timers are deadlines on the bridge: one vnet timer is armed at the earliest
of them (hello, each port's received information, forward delay, edge
delay, migrate delay, TC, transmit hold).  At most six BPDUs a second leave
a port (17.13.12 TxHoldCount).  Refused BPDUs are counted by reason as in
:mod:`vrouter.link.stp`, plus ``bpdu_role`` (an RST BPDU of unknown role).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vrouter.core.timers import Timer, Timers
from vrouter.link.stp import (
    PortState,
    StateChange,
    StpCounters,
    StpSettings,
    Tree,
    TreePort,
    describe_designated,
)
from vrouter.wire import stp as wire

if TYPE_CHECKING:
    from vrouter.link.bridge import Bridge, Port

MIGRATE_TIME = 3.0
"""Migrate time and edge delay on a point-to-point link (17.13.9, 17.20.4)."""
TX_HOLD_COUNT = 6
"""BPDUs a port sends a second at most (17.13.12)."""
_MAC = (1 << 48) - 1
"""The MAC of a bridge id (what is left without its priority)."""
_PORT_NUMBER = 0x3FF
"""The number of a port id (without its priority, see :func:`vrouter.wire.stp.port_id`)."""

Vector = tuple[int, int, int, int]
"""A priority vector: root id, root path cost, designated bridge id, designated port id."""
Times = tuple[float, float, float, float]
"""Message age, max age, hello time, forward delay."""


class Role(enum.Enum):
    """A port's role (17.7)."""

    DISABLED = "disabled"
    ROOT = "root"
    DESIGNATED = "designated"
    ALTERNATE = "alternate"
    BACKUP = "backup"


_WIRE_ROLE = {
    Role.ROOT: wire.ROLE_ROOT,
    Role.DESIGNATED: wire.ROLE_DESIGNATED,
    Role.ALTERNATE: wire.ROLE_ALTERNATE,
    Role.BACKUP: wire.ROLE_ALTERNATE,
}


class Info(enum.Enum):
    """Where a port's priority vector comes from (17.19.10 infoIs)."""

    DISABLED = "disabled"
    MINE = "mine"
    AGED = "aged"
    RECEIVED = "received"


@dataclass(slots=True)
class RstpCounters(StpCounters):
    """What one port's RSTP did (the STP counters, and more)."""

    rst_in: int = 0
    """RST BPDUs taken (of ``bpdu_in``)."""
    rst_out: int = 0
    """RST BPDUs sent (of ``bpdu_out``)."""
    proposals_in: int = 0
    agreements_in: int = 0
    tc_in: int = 0
    """BPDUs with the TC flag taken."""
    aged: int = 0
    """Times the received information aged out (three hellos missed)."""


class RstpPort(TreePort):
    """The RSTP state of one bridge member (17.19)."""

    __slots__ = (
        "role", "admin_edge", "auto_edge", "oper_edge", "info", "vector", "times",
        "info_until", "proposing", "proposed", "agreed", "agree", "sync", "re_root",
        "disputed", "send_rstp", "mdelay_until", "edge_until", "fd_until", "rr_until",
        "rb_until", "tc_until", "tc_ack", "new_info", "tx_window", "tx_count",
    )  # fmt: skip

    stp: Rstp
    counters: RstpCounters

    def __init__(self, stp: Rstp, port: Port, number: int, priority: int, path_cost: int) -> None:
        super().__init__(stp, port, number, priority, path_cost)
        self.role = Role.DISABLED
        self.admin_edge = port.edge
        """Configured edge: forwards as soon as designated."""
        self.auto_edge = port.auto_edge
        """Becomes edge when it hears no BPDU for the edge delay."""
        self.oper_edge = False
        self.info = Info.DISABLED
        self.vector: Vector = (0, 0, 0, 0)
        self.times: Times = (0.0, 0.0, 0.0, 0.0)
        self.info_until = 0.0
        """When received information ages out (three hello times after it came)."""
        self.proposing = self.proposed = self.agreed = self.agree = False
        self.sync = self.re_root = self.disputed = False
        self.send_rstp = False
        """The port speaks RSTP (False: STP, towards an 802.1D bridge)."""
        self.mdelay_until = 0.0
        self.edge_until = 0.0
        self.fd_until = 0.0
        self.rr_until = 0.0
        self.rb_until = 0.0
        self.tc_until = 0.0
        self.tc_ack = False
        self.new_info = False
        self.tx_window = 0.0
        self.tx_count = 0
        self.counters = RstpCounters()

    def role_name(self) -> str:
        """Return the port's role."""
        return self.role.value

    @property
    def enabled(self) -> bool:
        """Return True while the port's link is up (it takes part)."""
        return self.state != PortState.DISABLED

    def synced_now(self) -> bool:
        """Return True if the port cannot make a loop with a new root port (17.19.34)."""
        if self.role in (Role.ALTERNATE, Role.BACKUP, Role.DISABLED):
            return True
        return self.state == PortState.BLOCKING or self.agreed or self.oper_edge

    def describe(self, now: float) -> dict[str, object]:
        """Return the port's RSTP state as plain data."""
        c = self.counters
        return {
            **self._describe_ids(),
            "state": "discarding" if self.state == PortState.BLOCKING else self.state.name.lower(),
            "role": self.role.value,
            "protocol": "rstp" if self.send_rstp else "stp",
            "edge": self.oper_edge,
            "admin_edge": self.admin_edge,
            "auto_edge": self.auto_edge,
            "proposing": self.proposing,
            "agreed": self.agreed,
            **describe_designated(*self.vector),
            "info": self.info.value,
            "info_timer": _left(self.info_until, now),
            "forward_delay_timer": _left(self.fd_until, now),
            "topology_change_timer": _left(self.tc_until, now),
            "bpdu_in": c.bpdu_in,
            "bpdu_out": c.bpdu_out,
            "rst_in": c.rst_in,
            "rst_out": c.rst_out,
            "tcn_in": c.tcn_in,
            "tcn_out": c.tcn_out,
            "tc_in": c.tc_in,
            "proposals_in": c.proposals_in,
            "agreements_in": c.agreements_in,
            "migrations": c.migrations,
            "flushes": c.flushes,
            "aged": c.aged,
            "transitions": c.transitions,
            "drops": dict(sorted(c.drops.items())),
        }


def _left(deadline: float, now: float) -> float | None:
    return round(deadline - now, 2) if deadline > now else None


class Rstp(Tree[RstpPort]):
    """One bridge's rapid spanning tree (17.18: the bridge's variables)."""

    protocol = "rstp"

    def __init__(
        self, bridge: Bridge, settings: StpSettings, timers: Timers, on_state: StateChange,
        now: float,
    ) -> None:  # fmt: skip
        super().__init__(bridge, settings, timers, on_state)
        self.root_times: Times = self._own_times()
        self.hello_at = now + settings.hello_time
        self.timer: Timer | None = None
        self.due = 0.0
        self.reselect = False
        self.busy = False
        self._arm(now)

    # -- the bridge-wide views the rest of the bridge reads --------------------------------

    @property
    def max_age(self) -> float:
        """Return the max age in force (the root's)."""
        return self.root_times[1]

    @property
    def hello_time(self) -> float:
        """Return the hello time in force (the root's)."""
        return self.root_times[2]

    @property
    def forward_delay(self) -> float:
        """Return the forward delay in force (the root's)."""
        return self.root_times[3]

    @property
    def tc(self) -> bool:
        """Return True while a port sends the TC flag."""
        now = self.bridge.now
        return any(p.tc_until > now for p in self.ports.values())

    def _own_times(self) -> Times:
        s = self.settings
        return (0.0, float(s.max_age), float(s.hello_time), float(s.forward_delay))

    # -- role selection (17.21.25) ---------------------------------------------------------

    def _select_roles(self, now: float) -> None:
        self.reselect = False
        own = self.bridge_id
        best: tuple[int, int, int, int, int] = (own, 0, own, 0, 0)
        best_port: RstpPort | None = None
        for p in self.ports.values():
            if not p.enabled or p.info != Info.RECEIVED:
                continue
            root, cost, dbridge, dport = p.vector
            if dbridge & _MAC == own & _MAC:
                continue  # our own BPDU from another port: that port is a backup
            cand = (root, cost + p.path_cost, dbridge, dport, p.port_id)
            if cand < best:
                best, best_port = cand, p
        old_root = self.root_port
        self.designated_root, self.root_cost = best[0], best[1]
        self.root_port = best_port
        if best_port is None:
            self.root_times = self._own_times()
        else:
            age, max_age, hello, delay = best_port.times
            self.root_times = (age, max_age, hello, delay)
        if old_root is not None and best_port is not old_root:
            for p in self.ports.values():
                p.re_root = True
        for p in self.ports.values():
            if not p.enabled:
                self._set_role(p, Role.DISABLED, now)
                continue
            designated = (self.designated_root, self.root_cost, own, p.port_id)
            if p.info == Info.RECEIVED:
                if p is best_port:
                    self._set_role(p, Role.ROOT, now)
                    continue
                if not designated < p.vector:
                    backup = p.vector[2] & _MAC == own & _MAC
                    self._set_role(p, Role.BACKUP if backup else Role.ALTERNATE, now)
                    continue
            self._update_info(p, designated, now)
            self._set_role(p, Role.DESIGNATED, now)

    def _designated_times(self) -> Times:
        age, max_age, hello, delay = self.root_times
        return (0.0 if self.root_port is None else float(round(age + 1)), max_age, hello, delay)

    def _update_info(self, p: RstpPort, vector: Vector, now: float) -> None:
        """The port's vector becomes the bridge's designated one (17.27 UPDATE)."""
        times = self._designated_times()
        if p.info == Info.MINE and p.vector == vector and p.times == times:
            return
        better_or_same = p.info == Info.MINE and vector <= p.vector
        p.proposing = p.proposed = False
        p.agreed = p.agreed and better_or_same
        p.vector, p.times, p.info = vector, times, Info.MINE
        p.info_until = 0.0
        p.new_info = True

    def _set_role(self, p: RstpPort, role: Role, now: float) -> None:
        old = p.role
        if role == old:
            return
        p.role = role
        if old == Role.BACKUP:
            # rbWhile (17.29.2) holds two hello times while the port is backup, runs down after
            p.rb_until = now + 2 * self.hello_time
        if old == Role.ROOT and role == Role.DESIGNATED:
            p.rr_until = now + self.forward_delay
        if role in (Role.ALTERNATE, Role.BACKUP, Role.DISABLED):
            self._discard(p, now)
            p.rr_until = p.fd_until = 0.0
            p.sync = p.proposing = p.re_root = False
            if role == Role.DISABLED:
                p.agreed = p.agree = p.proposed = False
        elif role == Role.ROOT:
            p.proposing = False
            if p.state == PortState.BLOCKING and not p.fd_until:
                p.fd_until = now + self.forward_delay
        elif role == Role.DESIGNATED:
            p.agree = False
            if p.state == PortState.BLOCKING and not p.fd_until:
                p.fd_until = now + self.forward_delay

    # -- port states (17.29, 17.30) --------------------------------------------------------

    def _set_state(self, p: RstpPort, state: PortState) -> None:
        old, p.state = p.state, state
        if state == PortState.FORWARDING:
            p.counters.transitions += 1
        self.on_state(p.port, old, state)

    def _discard(self, p: RstpPort, now: float) -> None:
        if p.state in (PortState.LEARNING, PortState.FORWARDING):
            self._set_state(p, PortState.BLOCKING)
            p.tc_until = 0.0
        p.fd_until = now + self.forward_delay

    def _advance(self, p: RstpPort, quick: bool, now: float) -> bool:
        """Move ``p`` one step towards forwarding if it may (``quick``: at once)."""
        if p.state == PortState.FORWARDING:
            return False
        if not quick and not (p.fd_until and p.fd_until <= now):
            return False
        if p.state == PortState.BLOCKING:
            self._set_state(p, PortState.LEARNING)
            p.fd_until = now + self.forward_delay
            if not quick:
                return True
        self._set_state(p, PortState.FORWARDING)
        p.fd_until = 0.0
        if p.role == Role.DESIGNATED and not p.agreed:
            p.agreed = p.send_rstp
        p.new_info = True
        if not p.oper_edge:
            self._detected(p, now)
        return True

    def _rerooted(self, root: RstpPort, now: float) -> bool:
        return all(q is root or q.rr_until <= now for q in self.ports.values())

    def _transitions(self, now: float) -> bool:
        """One pass of the role transition machines; return True if anything moved."""
        moved = False
        ports = list(self.ports.values())
        for p in ports:
            if p.role == Role.ROOT:
                if p.proposed and not p.agree:
                    for q in ports:
                        if q is not p:
                            q.sync = True
                    p.proposed = False
                    moved = True
                others = all(q.synced_now() for q in ports if q is not p)
                if others and not p.agree:
                    p.agree, p.new_info, moved = True, True, True
                    for q in ports:
                        q.sync = False
                if p.proposed and p.agree:
                    p.proposed, p.new_info, moved = False, True, True
                if p.state != PortState.FORWARDING:
                    if not self._rerooted(p, now):
                        for q in ports:
                            if q is not p and q.rr_until > now and q.role == Role.DESIGNATED:
                                q.re_root = True
                    quick = self._rerooted(p, now) and p.rb_until <= now
                    moved |= self._advance(p, quick, now)
            elif p.role == Role.DESIGNATED:
                if p.re_root and p.rr_until <= now:
                    p.re_root = False
                if p.sync and p.synced_now():
                    p.sync = False
                learning = p.state in (PortState.LEARNING, PortState.FORWARDING)
                if (
                    learning
                    and not p.oper_edge
                    and (p.sync or (p.re_root and p.rr_until > now) or p.disputed)
                ):
                    # a recent root port that discards can no longer close a loop
                    self._discard(p, now)
                    p.rr_until = 0.0
                    p.disputed = p.sync = False
                    moved = True
                    continue
                forwarding = p.state == PortState.FORWARDING
                if not (forwarding or p.agreed or p.oper_edge or p.proposing):
                    p.proposing, p.new_info, moved = True, True, True
                    if not p.edge_until:
                        p.edge_until = now + MIGRATE_TIME
                if (
                    p.state != PortState.FORWARDING
                    and not p.sync
                    and not (p.re_root and p.rr_until > now)
                ):
                    moved |= self._advance(p, p.agreed or p.oper_edge, now)
            elif p.role in (Role.ALTERNATE, Role.BACKUP) and p.proposed:
                p.proposed, p.agree, p.new_info, moved = False, True, True, True
        return moved

    # -- topology change (17.25) -----------------------------------------------------------

    def _new_tc_while(self, p: RstpPort, now: float) -> None:
        if p.tc_until <= now:
            if p.send_rstp:
                p.tc_until = now + self.settings.hello_time + 1
            else:
                p.tc_until = now + self.max_age + self.forward_delay
            p.new_info = True

    def _detected(self, p: RstpPort, now: float) -> None:
        """``p`` (not edge) started forwarding as root or designated: a topology change."""
        if p.role not in (Role.ROOT, Role.DESIGNATED):
            return
        if not self.tc:
            self._count_tc(now)
        self._new_tc_while(p, now)
        self._propagate(p, now)

    def _count_tc(self, now: float) -> None:
        self.topology_changes += 1
        self.last_tc = now

    def _propagate(self, origin: RstpPort, now: float) -> None:
        """Flush the other active ports (forwarding root or designated, not edge) and send
        the TC flag there (17.25 PROPAGATING); one that only learns is left alone."""
        flushed = False
        for q in self.ports.values():
            if q is origin or q.oper_edge or q.role not in (Role.ROOT, Role.DESIGNATED):
                continue
            if q.state != PortState.FORWARDING:
                continue
            self._new_tc_while(q, now)
            q.counters.flushes += 1
            self.bridge.flush_port(q.port)
            flushed = True
        if flushed:
            self.bridge.announce(now)

    def _received_tc(self, p: RstpPort, now: float) -> None:
        """A TC flag (or TCN) on ``p``: only a forwarding root or designated port (17.25
        ACTIVE) acts on it; one that discards or learns drops it."""
        if p.role not in (Role.ROOT, Role.DESIGNATED) or p.state != PortState.FORWARDING:
            return
        if p.role == Role.DESIGNATED:
            p.tc_ack = True
        if not self.tc:
            self._count_tc(now)
        self._propagate(p, now)

    # -- receiving (17.21.8, 17.27) --------------------------------------------------------

    def receive(self, p: RstpPort, frame: bytes | bytearray, now: float) -> None:
        """Take a frame to the group address that port ``p`` received (length >= 14)."""
        bpdu = self._take(p, frame)
        if bpdu is None:
            return
        c = p.counters
        c.bpdu_in += 1
        p.oper_edge = False
        p.edge_until = now + MIGRATE_TIME
        self._migrate(p, bpdu.rst, now)
        if bpdu.tcn:
            c.tcn_in += 1
            if p.role == Role.DESIGNATED and p.state == PortState.FORWARDING:
                self._new_tc_while(p, now)
                self._received_tc(p, now)
            self._settle(now)
            return
        if bpdu.rst:
            c.rst_in += 1
        self._record(p, bpdu, now)
        if bpdu.tc:
            c.tc_in += 1
            self._received_tc(p, now)
        if bpdu.tca:
            p.tc_until = 0.0
        self._settle(now)

    def _migrate(self, p: RstpPort, rst: bool, now: float) -> None:
        """Protocol migration (17.24): switch what ``p`` speaks after the migrate time."""
        if p.mdelay_until > now:
            return
        if p.send_rstp and not rst:
            p.send_rstp = False
        elif not p.send_rstp and rst and self.settings.protocol == "rstp":
            p.send_rstp = True
        else:
            return
        p.counters.migrations += 1
        p.mdelay_until = now + MIGRATE_TIME
        p.proposing = p.agreed = False
        p.new_info = True

    def _record(self, p: RstpPort, bpdu: wire.Bpdu, now: float) -> None:
        msg: Vector = (bpdu.root, bpdu.cost, bpdu.bridge, bpdu.port)
        times: Times = (bpdu.message_age, bpdu.max_age, bpdu.hello_time, bpdu.forward_delay)
        role = bpdu.role
        if bpdu.proposal:
            p.counters.proposals_in += 1
        if bpdu.agreement:
            p.counters.agreements_in += 1
        if role == wire.ROLE_DESIGNATED:
            # 17.6: the same designated bridge (its MAC) and port (its number) is superior
            # even when worse (its priorities changed): what the port holds is replaced
            same_sender = (
                p.info == Info.RECEIVED
                and msg[2] & _MAC == p.vector[2] & _MAC
                and msg[3] & _PORT_NUMBER == p.vector[3] & _PORT_NUMBER
            )
            if msg < p.vector or (same_sender and (msg != p.vector or times != p.times)):
                better_or_same = p.info == Info.RECEIVED and msg <= p.vector
                p.agreed = p.proposing = False
                p.agree = p.agree and better_or_same
                p.vector, p.times, p.info = msg, times, Info.RECEIVED
                p.proposed = bpdu.proposal
                self.reselect = True
            elif msg == p.vector and p.info == Info.RECEIVED:
                p.proposed = p.proposed or bpdu.proposal
            else:
                if bpdu.learning and p.role == Role.DESIGNATED:
                    p.disputed = True  # the other side thinks it is designated too: one-way
                    p.agreed = False
                p.new_info = p.new_info or p.role == Role.DESIGNATED
                return
            age_ok = round(bpdu.message_age + 1) <= bpdu.max_age
            hello = bpdu.hello_time or float(self.settings.hello_time)
            p.info_until = now + 3 * hello if age_ok else now
            return
        if role in (wire.ROLE_ROOT, wire.ROLE_ALTERNATE) and not msg < p.vector:
            if bpdu.agreement and p.role == Role.DESIGNATED:
                p.agreed = True
                p.proposing = False
            else:
                p.agreed = False

    # -- timers and sending ----------------------------------------------------------------

    def _expire(self, now: float) -> None:
        for p in self.ports.values():
            if not p.enabled:
                continue
            if p.info == Info.RECEIVED and p.info_until <= now:
                p.info = Info.AGED
                p.counters.aged += 1
                self.reselect = True
            if p.edge_until and p.edge_until <= now:
                p.edge_until = 0.0
                if p.auto_edge and p.send_rstp and p.proposing and p.role == Role.DESIGNATED:
                    p.oper_edge = True
            if p.tc_until and p.tc_until <= now:
                p.tc_until = 0.0
        if now >= self.hello_at:
            self.hello_at = now + self.settings.hello_time
            for p in self.ports.values():
                if p.role == Role.DESIGNATED or (p.role == Role.ROOT and p.tc_until > now):
                    p.new_info = True

    def _settle(self, now: float) -> None:
        """Run the machines until nothing moves, send what is due, arm the next deadline."""
        if self.busy:
            return
        self.busy = True
        try:
            self._expire(now)
            for _ in range(32):
                if self.reselect:
                    self._select_roles(now)
                if not self._transitions(now) and not self.reselect:
                    break
            self._transmit(now)
        finally:
            self.busy = False
        self._arm(now)

    def _transmit(self, now: float) -> None:
        for p in list(self.ports.values()):
            if not p.new_info or not p.enabled:
                continue
            if now - p.tx_window >= 1.0:
                p.tx_window, p.tx_count = now, 0
            if p.tx_count >= TX_HOLD_COUNT:
                continue
            bpdu = self._bpdu(p, now)
            p.new_info = False
            if bpdu is None:
                continue
            p.tx_count += 1
            c = p.counters
            c.bpdu_out += 1
            if bpdu.rst:
                c.rst_out += 1
            elif bpdu.tcn:
                c.tcn_out += 1
            ifp = p.port.ifnet
            ifp.output(bpdu.frame(ifp.mac))

    def _bpdu(self, p: RstpPort, now: float) -> wire.Bpdu | None:
        root, cost = self.designated_root, self.root_cost
        age, max_age, hello, delay = self._designated_times()
        if p.send_rstp:
            if p.role == Role.DISABLED:
                return None
            flags = _WIRE_ROLE[p.role] << wire.ROLE_SHIFT
            if p.role == Role.DESIGNATED and p.proposing:
                flags |= wire.FLAG_PROPOSAL
            if p.agree and p.role != Role.DESIGNATED:
                flags |= wire.FLAG_AGREEMENT
            if p.state in (PortState.LEARNING, PortState.FORWARDING):
                flags |= wire.FLAG_LEARNING
            if p.state == PortState.FORWARDING:
                flags |= wire.FLAG_FORWARDING
            if p.tc_until > now:
                flags |= wire.FLAG_TC
            return wire.Bpdu(
                False, flags, root, cost, self.bridge_id, p.port_id, age, max_age, hello,
                delay, True,
            )  # fmt: skip
        if p.role == Role.ROOT and p.tc_until > now:
            return wire.Bpdu(tcn=True)
        if p.role != Role.DESIGNATED:
            return None
        flags = (wire.FLAG_TC if p.tc_until > now else 0) | (wire.FLAG_TCA if p.tc_ack else 0)
        p.tc_ack = False
        return wire.Bpdu(
            False, flags, root, cost, self.bridge_id, p.port_id, age, max_age, hello, delay
        )

    def _deadline(self, now: float) -> float:
        due = self.hello_at
        for p in self.ports.values():
            if not p.enabled:
                continue
            for at in (p.info_until if p.info == Info.RECEIVED else 0.0, p.edge_until,
                       p.fd_until, p.tc_until, p.mdelay_until):  # fmt: skip
                if at > now:
                    due = min(due, at)
            for at in (p.rr_until, p.rb_until):
                if at > now:
                    due = min(due, at)
            if p.new_info:
                due = min(due, max(now, p.tx_window + 1.0))
        return due

    def _arm(self, now: float) -> None:
        due = self._deadline(now)
        if self.timer is not None and not self.timer.cancelled and self.due == due:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.due = due
        self.timer = self.timers.schedule(due, self._fire)

    def _fire(self, now: float) -> None:
        self.timer = None
        self.check_links(now, settle=False)
        self._settle(now)

    # -- ports and settings ----------------------------------------------------------------

    def _new_port(self, port: Port, number: int, priority: int, path_cost: int) -> RstpPort:
        return RstpPort(self, port, number, priority, path_cost)

    def remove_port(self, p: RstpPort, now: float) -> None:
        """Take ``p`` out: disabled first (what it held goes), then forgotten."""
        self.disable_port(p, now)
        del self.ports[p.name]
        self.reselect = True
        self._settle(now)

    def enable_port(self, p: RstpPort, now: float, settle: bool = True) -> None:
        """The port's link came up (17.21: portEnabled)."""
        p.port_id = wire.port_id(p.priority, p.number)
        self._set_state(p, PortState.BLOCKING)
        p.role = Role.DISABLED
        p.info = Info.AGED
        p.send_rstp = self.settings.protocol == "rstp"
        p.mdelay_until = now + MIGRATE_TIME
        p.oper_edge = p.admin_edge
        p.edge_until = p.fd_until = p.rr_until = p.rb_until = p.tc_until = 0.0
        p.proposing = p.proposed = p.agreed = p.agree = p.sync = p.disputed = False
        p.new_info = True
        self.reselect = True
        if settle:
            self._settle(now)

    def disable_port(self, p: RstpPort, now: float, settle: bool = True) -> None:
        """The port's link went down or it leaves."""
        if p.state != PortState.DISABLED:
            self._set_state(p, PortState.DISABLED)
        p.role = Role.DISABLED
        p.info = Info.DISABLED
        p.oper_edge = p.proposing = p.proposed = p.agreed = p.agree = p.sync = False
        p.new_info = p.tc_ack = False
        p.edge_until = p.fd_until = p.rr_until = p.rb_until = p.tc_until = 0.0
        p.mdelay_until = 0.0
        self.reselect = True
        if settle:
            self._settle(now)

    def check_links(self, now: float, settle: bool = True) -> None:
        """Enable or disable the ports whose member's link changed."""
        for p in list(self.ports.values()):
            up = p.port.ifnet.up
            if up and not p.enabled:
                self.enable_port(p, now, settle=False)
            elif not up and p.enabled:
                self.disable_port(p, now, settle=False)
        if settle:
            self._settle(now)

    def config_bpdu_generation(self, now: float) -> None:
        """Send what is due now (RST BPDUs of every port on a start)."""
        self._settle(now)

    def set_port(self, p: RstpPort, priority: int, path_cost: int, now: float) -> None:
        """Change a port's priority, path cost and edge settings (17.13)."""
        if priority != p.priority:
            p.priority, p.port_id = priority, wire.port_id(priority, p.number)
            if p.info == Info.MINE:
                p.info = Info.AGED
        p.path_cost = path_cost
        if p.port.edge != p.admin_edge and p.enabled:
            p.oper_edge = p.port.edge  # the operator's word, until a BPDU says otherwise
        p.admin_edge, p.auto_edge = p.port.edge, p.port.auto_edge
        self.reselect = True
        self._settle(now)

    def mcheck(self, p: RstpPort, now: float) -> None:
        """Try RSTP again on ``p`` (17.19.13 mcheck): it falls back if STP answers."""
        if not p.enabled or self.settings.protocol != "rstp" or p.send_rstp:
            return
        p.send_rstp = True
        p.mdelay_until = now + MIGRATE_TIME
        p.counters.migrations += 1
        p.new_info = True
        self._settle(now)

    def configure(self, settings: StpSettings, now: float) -> None:
        """Change the bridge's priority and times (17.13)."""
        old, self.settings = self.settings, settings
        if settings.priority != old.priority:
            self.bridge_id = wire.bridge_id(settings.priority, self.bridge.ifnet.mac)
            for p in self.ports.values():
                if p.info == Info.MINE:
                    p.info = Info.AGED
        if settings.hello_time != old.hello_time:
            self.hello_at = min(self.hello_at, now + settings.hello_time)
        self.reselect = True
        self._settle(now)

    def close(self) -> None:
        """Cancel the bridge's timer."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def describe(self, now: float) -> dict[str, object]:
        """Return the bridge's RSTP state as plain data."""
        tc = [p for p in self.ports.values() if p.tc_until > now]
        return {
            **self._describe(self.root_port, (self.hello_time, self.max_age, self.forward_delay)),
            "topology_change": bool(tc),
            "topology_change_detected": bool(tc),
            "topology_changes": self.topology_changes,
            "last_topology_change": round(now - self.last_tc, 1) if self.topology_changes else None,
            "hello_timer": _left(self.hello_at, now),
            "tcn_timer": None,
            "topology_change_timer": max((_left(p.tc_until, now) or 0.0 for p in tc), default=None),
        }
