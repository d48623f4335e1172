"""How a host reports its multicast groups: the part MLD (IPv6) and IGMP (IPv4) share.

Both protocols report the same way (RFC 3810 6, RFC 3376 5): a group joined
or left is reported at once as a state change (CHANGE_TO_EXCLUDE for a join,
CHANGE_TO_INCLUDE for a leave), repeated once more within the Unsolicited
Report Interval (Robustness Variable 2); a query is answered after a random
delay within its maximum response time, with every group for a general
query or the one group asked about; and while a querier of the older
version is present (Older Version Querier Present Timeout), the interface
answers with the older version's reports.

:class:`Speaker` is what differs: where a protocol keeps its listeners and
groups, which groups it reports, and how it sends.  :mod:`vrouter.inet6.mld`
and :mod:`vrouter.inet.igmp` each define one and parse their own queries.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vrouter.core.timers import Timer

if TYPE_CHECKING:
    from vrouter.core.vnet import Vnet
    from vrouter.link.ifnet import Ifnet

ROBUSTNESS = 2
UNSOLICITED_REPORT_INTERVAL = 1.0
QUERY_INTERVAL = 125.0
QUERY_RESPONSE_INTERVAL = 10.0
OLDER_VERSION_TIMEOUT = ROBUSTNESS * QUERY_INTERVAL + QUERY_RESPONSE_INTERVAL
MODE_IS_EXCLUDE = 2
CHANGE_TO_INCLUDE = 3
CHANGE_TO_EXCLUDE = 4
"""Record types, the same numbers in MLDv2 and IGMPv3."""


@dataclass(slots=True)
class Listener:
    """The reporting state of one interface."""

    answer: Timer | None = None
    """The pending answer to a query."""
    asked: set[bytes] | None = None
    """The groups the pending answer is about (None: every group, a general query)."""
    changes: dict[bytes, tuple[int, int]] = field(default_factory=dict)
    """Groups with a state change still to report: (record type, reports left)."""
    change_timer: Timer | None = None
    older_until: float = 0.0
    """Until then a querier of the older version is present: answer in its version."""

    def stop(self) -> None:
        """Cancel both timers."""
        for timer in (self.answer, self.change_timer):
            if timer is not None:
                timer.cancel()
        self.answer = self.change_timer = None


Report = Callable[["Vnet", "Ifnet", list[tuple[int, bytes]], bool], None]
"""Send (record type, group) records on an interface; True: in the older version."""


@dataclass(frozen=True, slots=True)
class Speaker:
    """One protocol's side of reporting."""

    listeners: Callable[[Vnet], dict[str, Listener]]
    """The vnet's listeners by interface name."""
    groups: Callable[[Vnet, Ifnet], Collection[bytes]]
    """The groups an interface joined."""
    reported: Callable[[bytes], bool]
    """Whether a group is ever reported."""
    report: Report


def _listener(speaker: Speaker, vnet: Vnet, ifp: Ifnet) -> Listener:
    listeners = speaker.listeners(vnet)
    found = listeners.get(ifp.name)
    if found is None:
        found = listeners[ifp.name] = Listener()
    return found


def _attached(vnet: Vnet, ifp: Ifnet) -> bool:
    return ifp.up and vnet.link.interfaces.get(ifp.name) is ifp


def changed(speaker: Speaker, ifp: Ifnet, group: bytes, joined: bool) -> None:
    """Report that ``ifp`` joined or left ``group``, as soon as the vnet's timers run."""
    vnet = ifp.vnet
    if not speaker.reported(group) or not _attached(vnet, ifp):
        return
    listener = _listener(speaker, vnet, ifp)
    kind = CHANGE_TO_EXCLUDE if joined else CHANGE_TO_INCLUDE
    listener.changes[group] = (kind, ROBUSTNESS)
    if listener.change_timer is None:
        listener.change_timer = vnet.timers.schedule(
            0.0, lambda t: _send_changes(speaker, vnet, ifp, t)
        )


def _send_changes(speaker: Speaker, vnet: Vnet, ifp: Ifnet, now: float) -> None:
    listener = _listener(speaker, vnet, ifp)
    listener.change_timer = None
    if not listener.changes or not _attached(vnet, ifp):
        listener.changes.clear()
        return
    records = [(kind, group) for group, (kind, _) in sorted(listener.changes.items())]
    speaker.report(vnet, ifp, records, listener.older_until > now)
    listener.changes = {
        group: (kind, left - 1) for group, (kind, left) in listener.changes.items() if left > 1
    }
    if listener.changes:
        delay = vnet.inet6.rng.uniform(0, UNSOLICITED_REPORT_INTERVAL)
        listener.change_timer = vnet.timers.schedule(
            now + delay, lambda t: _send_changes(speaker, vnet, ifp, t)
        )


def query(
    speaker: Speaker, ifp: Ifnet, group: bytes | None, max_delay: float, older: bool, now: float
) -> None:
    """Schedule the answer to a query about ``group`` (None: a general query)."""
    vnet = ifp.vnet
    listener = _listener(speaker, vnet, ifp)
    if older:
        listener.older_until = now + OLDER_VERSION_TIMEOUT
    if group is not None and group not in speaker.groups(vnet, ifp):
        return
    when = now + vnet.inet6.rng.uniform(0, max(max_delay, 0.0))
    if listener.answer is not None:
        if group is None:
            listener.asked = None
        elif listener.asked is not None:
            listener.asked.add(group)
        if listener.answer.deadline <= when:
            return
        listener.answer.cancel()
    else:
        listener.asked = None if group is None else {group}
    listener.answer = vnet.timers.schedule(when, lambda t: _answer(speaker, vnet, ifp, t))


def _answer(speaker: Speaker, vnet: Vnet, ifp: Ifnet, now: float) -> None:
    listener = _listener(speaker, vnet, ifp)
    listener.answer = None
    asked, listener.asked = listener.asked, None
    if not _attached(vnet, ifp):
        return
    groups = sorted(
        g
        for g in speaker.groups(vnet, ifp)
        if speaker.reported(g) and (asked is None or g in asked)
    )
    if groups:
        speaker.report(
            vnet, ifp, [(MODE_IS_EXCLUDE, g) for g in groups], listener.older_until > now
        )


def forget(speaker: Speaker, vnet: Vnet, ifp: Ifnet) -> None:
    """Drop ``ifp``'s listener and its timers (the interface leaves the vnet)."""
    listener = speaker.listeners(vnet).pop(ifp.name, None)
    if listener is not None:
        listener.stop()


def reports(
    records: list[tuple[int, bytes]],
    older: bool,
    per_report: int,
    old: Callable[[bytes], None],
    new: Callable[[list[tuple[int, bytes]]], None],
) -> None:
    """Send ``records``: in the older version one report per group joined (``old``;
    it has no leave records here), else records ``per_report`` to a report (``new``)."""
    if older:
        for kind, group in records:
            if kind != CHANGE_TO_INCLUDE:
                old(group)
        return
    for start in range(0, len(records), per_report):
        new(records[start : start + per_report])
