"""The per-vnet stateful packet filter, sans-IO (pf-like rules, pf-like states).

- ``packet``: what the filter needs to know about an IP packet (``PacketInfo``),
  read at fixed offsets with the constants of ``vrouter.wire``, and the
  packet quoted inside an ICMP or ICMPv6 error.
- ``rules``: a ruleset parsed from a TOML table (all problems with their key
  paths), evaluated first match wins, with per-rule counters.
- ``states``: the state table: TCP sequence-window tracking after pf, UDP,
  ICMP echo and other-protocol pseudo-states, timeouts and a size limit.
- ``nat``: address translation on the same hooks (NAT44 ``nat``/``rdr``/
  ``binat`` with their mapping table, NPTv6), destinations before the filter
  and sources after it.
- ``engine``: ``evaluate`` puts them together and returns a ``Verdict``
  whose ``reason`` names the counter it incremented.

Nothing here does I/O or reads a clock: the time is passed in as ``now``
(seconds) and ``StateTable.next_deadline`` tells the caller when the state
table next needs ``expire``.
"""
