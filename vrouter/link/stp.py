"""Spanning Tree Protocol for a bridge (IEEE 802.1D-1998 clause 8, as Linux's kernel STP).

A bridge with ``stp`` on runs one :class:`Stp`; each of its members one
:class:`StpPort`.  Bridges elect a root (the lowest bridge id: priority,
then MAC); every other bridge takes the port with the best path to it as
its root port; on each LAN the bridge with the best path is the designated
bridge and its port the designated port.  Root and designated ports go
blocking -> listening -> learning -> forwarding, one forward delay in each
of the two middle states; the others stay blocking: they neither forward
nor learn, but still take BPDUs, so a loop is broken and a failed path is
replaced once its information ages out (max age) or its port goes down.

Timers are deadlines on the vnet's heap (:mod:`vrouter.core.timers`):
hello (every hello time: Configuration BPDUs on the designated ports;
Linux sends them from every bridge, not the root only), topology change
notification (every hello time until acknowledged), topology change (on the
root: max age + forward delay), and per port message age, forward delay
and hold (at most one Configuration BPDU a second).  Destroying the bridge
cancels every one.

Topology change: a port entering forwarding on a designated bridge, or
leaving learning/forwarding, is a change; a non-root bridge sends TCN
BPDUs up its root port until a Configuration BPDU there carries the
acknowledgment; the root sets the TC flag in its Configuration BPDUs for
max age + forward delay, and every bridge that sees it ages its FDB after
forward delay instead of the ageing time (8.3.5).  A port that leaves
forwarding or learning for blocking or disabled forgets what it learnt.

The member interface being down (``Ifnet.up`` false) disables its port
(looked at every hello time and when the port joins).  Every BPDU that is
refused is counted on its port by reason (``bpdu_short``, ``bpdu_length``,
``bpdu_llc``, ``bpdu_protocol``, ``bpdu_type``, ``bpdu_age``, ``bpdu_own``:
our own BPDU back on the port that sent it, ``port_disabled``).

This module is long on purpose: beside 802.1D's machines it holds what
:mod:`vrouter.link.rstp` shares with them (:class:`Tree`, :class:`TreePort`:
ids, joining, the BPDUs refused, how a tree is shown) next to the settings,
port states and counters both use, so that the common part is read once.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from vrouter.core.timers import Timer, Timers
from vrouter.wire import stp as wire
from vrouter.wire.errors import WireError

if TYPE_CHECKING:
    from vrouter.link.bridge import Bridge, Port

DEFAULT_PRIORITY = 0x8000
PRIORITY_MAX = 0xFFFF
"""Bridge priority, 0..65535 as Linux takes it (802.1D-2004 wants multiples of 4096)."""
DEFAULT_PORT_PRIORITY = 0x20
PORT_PRIORITY_MAX = 0x3F
"""Port priority, 0..63 (Linux's 6 bits; the port number has the other 10)."""
DEFAULT_PATH_COST = 100
"""Linux's cost for a port of unknown or 10 Mb/s speed (a TAP)."""
PATH_COST_MAX = 0xFFFF
PORT_NUMBER_MAX = 0x3FF
HELLO_TIME = (2, 1, 10)
MAX_AGE = (20, 6, 40)
FORWARD_DELAY = (15, 2, 30)
"""(default, min, max) in seconds, Linux's."""
PROTOCOLS = ("stp", "rstp")
"""What ``stp_protocol`` takes: 802.1D-1998 STP (this module) or RSTP (:mod:`vrouter.link.rstp`)."""
HOLD_TIME = 1.0
"""Least time between two Configuration BPDUs on a port (802.1D Table 8-3)."""
MESSAGE_AGE_INCR = 1.0
"""What a bridge adds to the message age of the root's information it relays."""


class PortState(enum.IntEnum):
    """A port's state, numbered as Linux's BR_STATE_* (what the metrics show)."""

    DISABLED = 0
    LISTENING = 1
    LEARNING = 2
    FORWARDING = 3
    BLOCKING = 4


@dataclass(frozen=True, slots=True)
class StpSettings:
    """A bridge's own STP parameters (what its config or the API sets)."""

    priority: int = DEFAULT_PRIORITY
    hello_time: int = HELLO_TIME[0]
    max_age: int = MAX_AGE[0]
    forward_delay: int = FORWARD_DELAY[0]
    protocol: str = "stp"
    """``stp`` or ``rstp`` (:data:`PROTOCOLS`)."""

    def problems(self) -> list[str]:
        """Return what is out of range (empty: nothing)."""
        out = []
        if self.protocol not in PROTOCOLS:
            out.append(f"stp_protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if not 0 <= self.priority <= PRIORITY_MAX:
            out.append(f"priority {self.priority} is out of range 0..{PRIORITY_MAX}")
        for name, (_, low, high) in (
            ("hello_time", HELLO_TIME), ("max_age", MAX_AGE), ("forward_delay", FORWARD_DELAY)
        ):  # fmt: skip
            value = getattr(self, name)
            if not low <= value <= high:
                out.append(f"{name} {value} is out of range {low}..{high} seconds")
        if not out:
            relation = self.timer_problem()
            if relation:
                out.append(relation)
        return out

    def timer_problem(self) -> str:
        """Say how the times break 802.1D's 2 x (forward_delay - 1) >= max_age >=
        2 x (hello_time + 1) (8.10.2, which a bridge shall enforce; empty: they keep it).

        Linux accepts such times silently.  A max age longer than the two
        forward delays lets a port forward before a failed root's information
        has aged out everywhere (a loop while it lasts); one shorter than two
        hellos and a second lets that information expire between two
        Configuration BPDUs when one of them is late (the root flaps).
        """
        fd, ma, ht = self.forward_delay, self.max_age, self.hello_time
        if ma > 2 * (fd - 1):
            why = f"max_age {ma} is more than 2 x (forward_delay {fd} - 1) = {2 * (fd - 1)}"
        elif ma < 2 * (ht + 1):
            why = f"max_age {ma} is less than 2 x (hello_time {ht} + 1) = {2 * (ht + 1)}"
        else:
            return ""
        return (
            f"{why}: 802.1D asks 2 x (forward_delay - 1) >= max_age >= 2 x (hello_time + 1) "
            f"(hello_time {ht}, max_age {ma}, forward_delay {fd}; change them together)"
        )


def port_problems(path_cost: int, priority: int) -> list[str]:
    """Return what is out of range in a port's STP settings (empty: nothing)."""
    out = []
    if not 1 <= path_cost <= PATH_COST_MAX:
        out.append(f"path_cost {path_cost} is out of range 1..{PATH_COST_MAX}")
    if not 0 <= priority <= PORT_PRIORITY_MAX:
        out.append(f"port_priority {priority} is out of range 0..{PORT_PRIORITY_MAX}")
    return out


@dataclass(slots=True)
class StpCounters:
    """What one port's STP did."""

    bpdu_in: int = 0
    """Configuration and TCN BPDUs taken."""
    bpdu_out: int = 0
    """Configuration and TCN BPDUs sent."""
    tcn_in: int = 0
    tcn_out: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    """BPDUs refused, by reason (see the module docstring)."""
    transitions: int = 0
    """Times the port entered forwarding."""
    migrations: int = 0
    """RSTP: times the port changed the protocol it speaks (RSTP <-> STP)."""
    flushes: int = 0
    """RSTP: times a topology change flushed the MACs learnt on the port."""


class TreePort:
    """What a port of STP and one of RSTP (:class:`vrouter.link.rstp.RstpPort`) share:
    the member, its number and settings, its state and counters."""

    __slots__ = ("stp", "port", "number", "priority", "path_cost", "port_id", "state", "counters")

    def __init__(
        self, stp: Tree[Any], port: Port, number: int, priority: int, path_cost: int
    ) -> None:
        self.stp = stp
        """The bridge's tree (an :class:`Stp` or an :class:`vrouter.link.rstp.Rstp`)."""
        self.port = port
        self.number = number
        self.priority = priority
        self.path_cost = path_cost
        self.port_id = wire.port_id(priority, number)
        self.state = PortState.DISABLED
        self.counters = StpCounters()

    @property
    def name(self) -> str:
        """Return the member interface's name."""
        return self.port.ifnet.name

    def receive(self, frame: bytes | bytearray, now: float) -> None:
        """Take a frame to the group address received here."""
        self.stp.receive(self, frame, now)

    def set(self, priority: int, path_cost: int, now: float) -> None:
        """Change the port's priority and path cost (RSTP: the member's edge settings
        with them)."""
        self.stp.set_port(self, priority, path_cost, now)

    def remove(self, now: float) -> None:
        """Take the port out of the tree."""
        self.stp.remove_port(self, now)

    def _describe_ids(self) -> dict[str, object]:
        """Return the port's id and settings as plain data (what ``describe`` starts with)."""
        return {
            "port_id": f"{self.port_id:04x}",
            "number": self.number,
            "priority": self.priority,
            "path_cost": self.path_cost,
        }


def describe_designated(root: int, cost: int, bridge: int, port: int) -> dict[str, object]:
    """Return a port's designated root, cost, bridge and port as plain data."""
    return {
        "designated_root": wire.id_to_str(root),
        "designated_cost": cost,
        "designated_bridge": wire.id_to_str(bridge),
        "designated_port": f"{port:04x}",
    }


class StpPort(TreePort):
    """The STP state of one bridge member (802.1D 8.5.5)."""

    __slots__ = (
        "designated_root", "designated_cost", "designated_bridge", "designated_port",
        "tca", "config_pending", "age_timer", "delay_timer", "hold_timer",
        "received_at", "received_age", "age_expires",
    )  # fmt: skip

    stp: Stp

    def __init__(self, stp: Stp, port: Port, number: int, priority: int, path_cost: int) -> None:
        super().__init__(stp, port, number, priority, path_cost)
        self.designated_root = stp.bridge_id
        self.designated_cost = 0
        self.designated_bridge = stp.bridge_id
        self.designated_port = self.port_id
        self.tca = False
        """Topology Change Acknowledgment to send in the next Configuration BPDU."""
        self.config_pending = False
        """A Configuration BPDU waits for the hold timer."""
        self.age_timer: Timer | None = None
        self.delay_timer: Timer | None = None
        self.hold_timer: Timer | None = None
        self.received_at = 0.0
        self.received_age = 0.0
        """When the recorded information came, and its message age then."""
        self.age_expires = 0.0

    oper_edge = False
    """Never an edge port (RSTP's)."""
    send_rstp = False
    """Speaks STP (RSTP's ports may speak either)."""

    def role_name(self) -> str:
        """Return the port's role (as RSTP's ports do)."""
        return self.role()

    def role(self) -> str:
        """Return the port's role: root, designated, blocked (alternate) or disabled."""
        if self.state == PortState.DISABLED:
            return "disabled"
        if self is self.stp.root_port:
            return "root"
        return "designated" if self.stp.is_designated(self) else "blocked"

    def stop(self) -> None:
        """Cancel the port's timers."""
        for timer in (self.age_timer, self.delay_timer, self.hold_timer):
            if timer is not None:
                timer.cancel()
        self.age_timer = self.delay_timer = self.hold_timer = None

    def _age_expired(self, now: float) -> None:
        self.age_timer = None
        self.stp.message_age_expired(self, now)

    def _delay_expired(self, now: float) -> None:
        self.delay_timer = None
        self.stp.forward_delay_expired(self, now)

    def _hold_expired(self, now: float) -> None:
        self.hold_timer = None
        if self.config_pending:
            self.stp.transmit_config(self, now)

    def describe(self, now: float) -> dict[str, object]:
        """Return the port's STP state as plain data."""
        c = self.counters
        return {
            **self._describe_ids(),
            "state": self.state.name.lower(),
            "role": self.role(),
            "protocol": "stp",
            "edge": False,
            **describe_designated(
                self.designated_root,
                self.designated_cost,
                self.designated_bridge,
                self.designated_port,
            ),
            "message_age_timer": _left(self.age_timer, now),
            "forward_delay_timer": _left(self.delay_timer, now),
            "bpdu_in": c.bpdu_in,
            "bpdu_out": c.bpdu_out,
            "tcn_in": c.tcn_in,
            "tcn_out": c.tcn_out,
            "transitions": c.transitions,
            "drops": dict(sorted(c.drops.items())),
        }


def _left(timer: Timer | None, now: float) -> float | None:
    if timer is None or timer.cancelled:
        return None
    return round(max(0.0, timer.deadline - now), 2)


StateChange = Callable[["Port", PortState, PortState], None]
"""Told (port, old state, new state) on every change: the bridge switches the port's path."""


P = TypeVar("P", bound=TreePort)


class Tree(Generic[P]):
    """What STP (:class:`Stp`) and RSTP (:class:`vrouter.link.rstp.Rstp`) share on a
    bridge: its id and the root it believes in, its settings, how a member joins, how a
    BPDU is taken or refused, and how the whole is shown.  ``P``: its ports' class."""

    protocol = ""
    """``stp`` or ``rstp`` (:data:`PROTOCOLS`)."""

    def __init__(
        self, bridge: Bridge, settings: StpSettings, timers: Timers, on_state: StateChange
    ) -> None:
        self.bridge = bridge
        self.timers = timers
        self.on_state = on_state
        self.settings = settings
        self.bridge_id = wire.bridge_id(settings.priority, bridge.ifnet.mac)
        self.designated_root = self.bridge_id
        self.root_cost = 0
        self.root_port: P | None = None
        self.ports: dict[str, P] = {}
        self.topology_changes = 0
        """Topology changes seen here (STP: times the TC flag came on)."""
        self.last_tc = 0.0

    def is_root(self) -> bool:
        """Return True if this bridge believes it is the root."""
        return self.designated_root == self.bridge_id

    def _new_port(self, port: Port, number: int, priority: int, path_cost: int) -> P:
        raise NotImplementedError

    def enable_port(self, p: P, now: float) -> None:
        """The port's link came up."""
        raise NotImplementedError

    def receive(self, p: P, frame: bytes | bytearray, now: float) -> None:
        """Take a frame to the group address that port ``p`` received (length >= 14)."""
        raise NotImplementedError

    def set_port(self, p: P, priority: int, path_cost: int, now: float) -> None:
        """Change a port's priority and path cost."""
        raise NotImplementedError

    def remove_port(self, p: P, now: float) -> None:
        """Take ``p`` out of the tree."""
        raise NotImplementedError

    def add_port(self, port: Port, priority: int, path_cost: int, now: float) -> P:
        """Give member ``port`` its state in the tree (disabled; enabled at once if its
        link is up) and the lowest port number free (ValueError: none is left)."""
        used = {p.number for p in self.ports.values()}
        number = next(n for n in range(1, PORT_NUMBER_MAX + 2) if n not in used)
        if number > PORT_NUMBER_MAX:
            raise ValueError(f"a bridge has at most {PORT_NUMBER_MAX} ports under STP")
        p = self._new_port(port, number, priority, path_cost)
        self.ports[port.ifnet.name] = p
        self.on_state(port, PortState.FORWARDING, PortState.DISABLED)
        if port.ifnet.up:
            self.enable_port(p, now)
        return p

    def _take(self, p: TreePort, frame: bytes | bytearray) -> wire.Bpdu | None:
        """Return the BPDU in ``frame`` (length >= 14) that ``p`` received, or None when
        it is refused (counted by reason: the port disabled, malformed, our own back)."""
        if p.state == PortState.DISABLED:
            p.counters.drops["port_disabled"] += 1
            return None
        length = (frame[12] << 8) | frame[13]
        try:
            bpdu = wire.parse(memoryview(frame)[14:], length)
        except WireError as err:
            p.counters.drops[err.reason] += 1
            p.port.ifnet.counters.rx_errors += 1
            return None
        if not bpdu.tcn and bpdu.bridge == self.bridge_id and bpdu.port == p.port_id:
            p.counters.drops["bpdu_own"] += 1
            return None
        return bpdu

    def _describe(
        self, root_port: TreePort | None, root_times: tuple[float, float, float],
    ) -> dict[str, object]:  # fmt: skip
        """Return the bridge's ids and times as plain data (what ``describe`` starts
        with); ``root_times``: the hello time, max age and forward delay in force."""
        s = self.settings
        return {
            "protocol": self.protocol,
            "bridge_id": wire.id_to_str(self.bridge_id),
            "root_id": wire.id_to_str(self.designated_root),
            "root_cost": self.root_cost,
            "root_port": root_port.name if root_port is not None else None,
            "is_root": self.is_root(),
            "priority": s.priority,
            "hello_time": s.hello_time,
            "max_age": s.max_age,
            "forward_delay": s.forward_delay,
            "root_hello_time": root_times[0],
            "root_max_age": root_times[1],
            "root_forward_delay": root_times[2],
        }


class Stp(Tree[StpPort]):
    """One bridge's spanning tree (802.1D 8.5.3: the bridge's parameters)."""

    protocol = "stp"

    def __init__(
        self, bridge: Bridge, settings: StpSettings, timers: Timers, on_state: StateChange,
        now: float,
    ) -> None:  # fmt: skip
        super().__init__(bridge, settings, timers, on_state)
        self.max_age = float(settings.max_age)
        self.hello_time = float(settings.hello_time)
        self.forward_delay = float(settings.forward_delay)
        """The times in force: the root's (the bridge's own while it is the root)."""
        self.tc = False
        """Topology Change: the root says so (or, on the root, it is timing one)."""
        self.tc_detected = False
        self.hello_timer: Timer | None = None
        self.tcn_timer: Timer | None = None
        self.tc_timer: Timer | None = None
        self.hello_timer = self.timers.schedule(now + self.hello_time, self._hello_expired)

    # -- comparisons (8.6) -----------------------------------------------------------------

    def is_designated(self, p: StpPort) -> bool:
        """Return True if ``p`` is the designated port of its LAN."""
        return p.designated_bridge == self.bridge_id and p.designated_port == p.port_id

    def _better_root_port(self, p: StpPort, best: StpPort | None) -> bool:
        if self.is_designated(p) or p.state == PortState.DISABLED:
            return False
        if self.bridge_id <= p.designated_root:
            return False
        if best is None:
            return True
        mine = (p.designated_root, p.designated_cost + p.path_cost, p.designated_bridge,
                p.designated_port, p.port_id)  # fmt: skip
        theirs = (best.designated_root, best.designated_cost + best.path_cost,
                  best.designated_bridge, best.designated_port, best.port_id)  # fmt: skip
        return mine < theirs

    def _should_be_designated(self, p: StpPort) -> bool:
        if self.is_designated(p) or p.designated_root != self.designated_root:
            return True
        return (self.root_cost, self.bridge_id, p.port_id) < (
            p.designated_cost,
            p.designated_bridge,
            p.designated_port,
        )

    def _supersedes(self, p: StpPort, bpdu: wire.Bpdu) -> bool:
        """Return True if ``bpdu`` is better than (or refreshes) what ``p`` holds (8.6.2.2)."""
        ours = (p.designated_root, p.designated_cost, p.designated_bridge)
        theirs = (bpdu.root, bpdu.cost, bpdu.bridge)
        if theirs != ours:
            return theirs < ours
        return bpdu.bridge != self.bridge_id or bpdu.port <= p.designated_port

    # -- the procedures (8.6) --------------------------------------------------------------

    def _become_designated(self, p: StpPort) -> None:
        p.designated_root = self.designated_root
        p.designated_cost = self.root_cost
        p.designated_bridge = self.bridge_id
        p.designated_port = p.port_id

    def configuration_update(self) -> None:
        """Root selection, then designated port selection (8.6.7)."""
        best: StpPort | None = None
        for p in self.ports.values():
            if self._better_root_port(p, best):
                best = p
        self.root_port = best
        if best is None:
            self.designated_root = self.bridge_id
            self.root_cost = 0
        else:
            self.designated_root = best.designated_root
            self.root_cost = best.designated_cost + best.path_cost
        for p in self.ports.values():
            if p.state != PortState.DISABLED and self._should_be_designated(p):
                self._become_designated(p)

    def port_state_selection(self, now: float) -> None:
        """Root and designated ports towards forwarding, the others blocking (8.6.11)."""
        for p in list(self.ports.values()):
            if p.state == PortState.DISABLED:
                continue
            if p is self.root_port:
                p.config_pending = p.tca = False
                self._make_forwarding(p, now)
            elif self.is_designated(p):
                if p.age_timer is not None:
                    p.age_timer.cancel()
                    p.age_timer = None
                self._make_forwarding(p, now)
            else:
                p.config_pending = p.tca = False
                self._make_blocking(p, now)

    def _set_state(self, p: StpPort, state: PortState) -> None:
        old, p.state = p.state, state
        if state == PortState.FORWARDING:
            p.counters.transitions += 1
        self.on_state(p.port, old, state)

    def _make_forwarding(self, p: StpPort, now: float) -> None:
        if p.state != PortState.BLOCKING:
            return
        self._set_state(p, PortState.LISTENING)
        p.delay_timer = self.timers.schedule(now + self.forward_delay, p._delay_expired)

    def _make_blocking(self, p: StpPort, now: float) -> None:
        if p.state in (PortState.DISABLED, PortState.BLOCKING):
            return
        if p.state in (PortState.FORWARDING, PortState.LEARNING):
            self.topology_change_detection(now)
        self._set_state(p, PortState.BLOCKING)
        if p.delay_timer is not None:
            p.delay_timer.cancel()
            p.delay_timer = None

    def forward_delay_expired(self, p: StpPort, now: float) -> None:
        """Listening -> learning -> forwarding (8.7.3)."""
        if p.state == PortState.LISTENING:
            self._set_state(p, PortState.LEARNING)
            p.delay_timer = self.timers.schedule(now + self.forward_delay, p._delay_expired)
        elif p.state == PortState.LEARNING:
            self._set_state(p, PortState.FORWARDING)
            if any(
                q.state != PortState.DISABLED and q.designated_bridge == self.bridge_id
                for q in self.ports.values()
            ):
                self.topology_change_detection(now)

    def _become_root(self, now: float) -> None:
        s = self.settings
        self.max_age, self.hello_time = float(s.max_age), float(s.hello_time)
        self.forward_delay = float(s.forward_delay)
        self.topology_change_detection(now)
        if self.tcn_timer is not None:
            self.tcn_timer.cancel()
            self.tcn_timer = None
        self.config_bpdu_generation(now)
        self._restart_hello(now)

    def _restart_hello(self, now: float) -> None:
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        self.hello_timer = self.timers.schedule(now + self.hello_time, self._hello_expired)

    def _set_tc(self, on: bool, now: float) -> None:
        if on and not self.tc:
            self.topology_changes += 1
            self.last_tc = now
            self.bridge.topology_change(now, self.forward_delay)
        self.tc = on

    def topology_change_detection(self, now: float) -> None:
        """A change here: the root sets TC, another bridge tells its root port (8.6.14)."""
        if self.is_root():
            self._set_tc(True, now)
            if self.tc_timer is not None:
                self.tc_timer.cancel()
            s = self.settings
            self.tc_timer = self.timers.schedule(
                now + s.max_age + s.forward_delay, self._tc_expired
            )
        elif not self.tc_detected:
            self.transmit_tcn(now)
            self.tcn_timer = self.timers.schedule(now + self.settings.hello_time, self._tcn_expired)
        self.tc_detected = True

    def _tc_expired(self, now: float) -> None:
        self.tc_timer = None
        self.tc_detected = False
        self._set_tc(False, now)

    def _tcn_expired(self, now: float) -> None:
        self.tcn_timer = None
        if not self.is_root():
            self.transmit_tcn(now)
            self.tcn_timer = self.timers.schedule(now + self.settings.hello_time, self._tcn_expired)

    def _hello_expired(self, now: float) -> None:
        self.hello_timer = None
        self.check_links(now)
        self.config_bpdu_generation(now)
        self.hello_timer = self.timers.schedule(now + self.hello_time, self._hello_expired)

    def message_age_expired(self, p: StpPort, now: float) -> None:
        """The designated bridge of ``p``'s LAN went silent (8.7.2)."""
        if p.state == PortState.DISABLED:
            return
        was_root = self.is_root()
        self._become_designated(p)
        self.configuration_update()
        self.port_state_selection(now)
        if self.is_root() and not was_root:
            self._become_root(now)

    # -- sending ---------------------------------------------------------------------------

    def config_bpdu_generation(self, now: float) -> None:
        """A Configuration BPDU on every designated port (8.6.4)."""
        for p in list(self.ports.values()):
            if p.state != PortState.DISABLED and self.is_designated(p):
                self.transmit_config(p, now)

    def transmit_config(self, p: StpPort, now: float) -> None:
        """Send ``p`` a Configuration BPDU, or hold it until a second has passed (8.6.1)."""
        if p.hold_timer is not None:
            p.config_pending = True
            return
        if self.is_root() or self.root_port is None:
            age = 0.0
        else:
            root = self.root_port
            age = root.received_age + (now - root.received_at) + MESSAGE_AGE_INCR
        if age >= self.max_age:
            return
        flags = (wire.FLAG_TC if self.tc else 0) | (wire.FLAG_TCA if p.tca else 0)
        bpdu = wire.Bpdu(
            False, flags, self.designated_root, self.root_cost, self.bridge_id, p.port_id,
            age, self.max_age, self.hello_time, self.forward_delay,
        )  # fmt: skip
        self._send(p, bpdu)
        p.tca = p.config_pending = False
        p.hold_timer = self.timers.schedule(now + HOLD_TIME, p._hold_expired)

    def transmit_tcn(self, now: float) -> None:
        """Send a TCN BPDU up the root port (8.6.6)."""
        p = self.root_port
        if p is not None:
            p.counters.tcn_out += 1
            self._send(p, wire.Bpdu(tcn=True))

    def _send(self, p: StpPort, bpdu: wire.Bpdu) -> None:
        ifp = p.port.ifnet
        p.counters.bpdu_out += 1
        ifp.output(bpdu.frame(ifp.mac))

    # -- receiving -------------------------------------------------------------------------

    def receive(self, p: StpPort, frame: bytes | bytearray, now: float) -> None:
        """Take a frame to the group address that port ``p`` received (length >= 14)."""
        bpdu = self._take(p, frame)
        if bpdu is None:
            return
        p.counters.bpdu_in += 1
        if bpdu.tcn:
            p.counters.tcn_in += 1
            if self.is_designated(p):
                self.topology_change_detection(now)
                p.tca = True
                self.transmit_config(p, now)
            return
        self.received_config(p, bpdu, now)

    def received_config(self, p: StpPort, bpdu: wire.Bpdu, now: float) -> None:
        """Process a valid Configuration BPDU on ``p`` (8.7.1)."""
        if not self._supersedes(p, bpdu):
            if self.is_designated(p):
                self.transmit_config(p, now)  # a worse bridge on our LAN: tell it (reply)
            return
        was_root = self.is_root()
        p.designated_root, p.designated_cost = bpdu.root, bpdu.cost
        p.designated_bridge, p.designated_port = bpdu.bridge, bpdu.port
        p.received_at, p.received_age = now, bpdu.message_age
        if p.age_timer is not None:
            p.age_timer.cancel()
        p.age_expires = now + bpdu.max_age - bpdu.message_age
        p.age_timer = self.timers.schedule(p.age_expires, p._age_expired)
        self.configuration_update()
        self.port_state_selection(now)
        if was_root and not self.is_root() and self.tc_detected:
            if self.tc_timer is not None:
                self.tc_timer.cancel()
                self.tc_timer = None
            self.tc_detected = False
            self.topology_change_detection(now)
        if p is self.root_port:
            self.max_age, self.hello_time = bpdu.max_age, bpdu.hello_time
            self.forward_delay = bpdu.forward_delay
            self._set_tc(bpdu.tc, now)
            self.config_bpdu_generation(now)
            if bpdu.tca:
                self.tc_detected = False
                if self.tcn_timer is not None:
                    self.tcn_timer.cancel()
                    self.tcn_timer = None

    # -- ports and settings ----------------------------------------------------------------

    def _new_port(self, port: Port, number: int, priority: int, path_cost: int) -> StpPort:
        return StpPort(self, port, number, priority, path_cost)

    def remove_port(self, p: StpPort, now: float) -> None:
        """Take ``p`` out: disabled first (what it held goes), then forgotten."""
        self.disable_port(p, now)
        del self.ports[p.name]

    def enable_port(self, p: StpPort, now: float) -> None:
        """The port's link came up (8.8.1)."""
        p.port_id = wire.port_id(p.priority, p.number)
        self._become_designated(p)
        self._set_state(p, PortState.BLOCKING)
        p.tca = p.config_pending = False
        self.port_state_selection(now)

    def disable_port(self, p: StpPort, now: float) -> None:
        """The port's link went down or it leaves (8.8.2)."""
        was_root = self.is_root()
        self._become_designated(p)
        if p.state != PortState.DISABLED:
            self._set_state(p, PortState.DISABLED)
        p.tca = p.config_pending = False
        p.stop()
        self.configuration_update()
        self.port_state_selection(now)
        if self.is_root() and not was_root:
            self._become_root(now)

    def check_links(self, now: float) -> None:
        """Enable or disable the ports whose member's link changed."""
        for p in list(self.ports.values()):
            up = p.port.ifnet.up
            if up and p.state == PortState.DISABLED:
                self.enable_port(p, now)
            elif not up and p.state != PortState.DISABLED:
                self.disable_port(p, now)

    def set_port(self, p: StpPort, priority: int, path_cost: int, now: float) -> None:
        """Change a port's priority and path cost (8.8.5, 8.8.6)."""
        if priority != p.priority:
            new_id = wire.port_id(priority, p.number)
            if self.is_designated(p):
                p.designated_port = new_id
            p.priority, p.port_id = priority, new_id
            if p.designated_bridge == self.bridge_id and p.port_id < p.designated_port:
                self._become_designated(p)
        p.path_cost = path_cost
        self.configuration_update()
        self.port_state_selection(now)

    def configure(self, settings: StpSettings, now: float) -> None:
        """Change the bridge's priority and times (8.8.3, 8.8.4)."""
        old, self.settings = self.settings, settings
        was_root = self.is_root()
        if was_root:
            self.max_age, self.hello_time = float(settings.max_age), float(settings.hello_time)
            self.forward_delay = float(settings.forward_delay)
        if settings.priority == old.priority:
            return
        new_id = wire.bridge_id(settings.priority, self.bridge.ifnet.mac)
        for p in self.ports.values():
            if p.state != PortState.DISABLED and self.is_designated(p):
                p.designated_bridge = new_id
        self.bridge_id = new_id
        self.configuration_update()
        self.port_state_selection(now)
        if self.is_root() and not was_root:
            self._become_root(now)

    def close(self) -> None:
        """Cancel every timer of the bridge and its ports."""
        for p in self.ports.values():
            p.stop()
        for timer in (self.hello_timer, self.tcn_timer, self.tc_timer):
            if timer is not None:
                timer.cancel()
        self.hello_timer = self.tcn_timer = self.tc_timer = None

    def describe(self, now: float) -> dict[str, object]:
        """Return the bridge's STP state as plain data."""
        return {
            **self._describe(self.root_port, (self.hello_time, self.max_age, self.forward_delay)),
            "topology_change": self.tc,
            "topology_change_detected": self.tc_detected,
            "topology_changes": self.topology_changes,
            "last_topology_change": round(now - self.last_tc, 1) if self.topology_changes else None,
            "hello_timer": _left(self.hello_timer, now),
            "tcn_timer": _left(self.tcn_timer, now),
            "topology_change_timer": _left(self.tc_timer, now),
        }
