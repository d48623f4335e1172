"""Reading a configuration document: the entry points and the document's sections.

Responsibility: ``load``/``read``/``parse`` turn a file or string into a
``Config`` or raise ``ConfigError`` with every problem found.
``read_document`` walks the document: the ``[daemon]`` table (with its
SOCKS gateways and admins) and each vnet (forwarding, sysctl, limits,
permissions, firewall, routes), handing interfaces to
``vrouter.daemon.config.interfaces``; it then runs the cross-checks of
``vrouter.daemon.config.checks`` and builds the frozen values only when
no problem was found.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
)

from vrouter.core import limits as limits_
from vrouter.core.perms import (
    Grants,
    Principal,
    PrincipalError,
    parse_principal,
)
from vrouter.core.sysctl import SysctlError
from vrouter.core.tomlkeys import TomlReader, loads
from vrouter.core.tomlkeys import join as _join
from vrouter.daemon.config.checks import (
    check_connected,
    check_hierarchy,
    check_limits,
    check_peers,
    check_routes,
    check_underlays,
    check_unique_netns,
    check_unique_taps,
    check_workers,
)
from vrouter.daemon.config.dhcp import read_dhcp
from vrouter.daemon.config.grammar import (
    child_vnet_hint,
    parse_address,
    parse_listen,
    parse_network,
    vnet_name_error,
)
from vrouter.daemon.config.interfaces import (
    read_interface,
)
from vrouter.daemon.config.l2 import check_l2
from vrouter.daemon.config.model import (
    DEFAULT_CONTROL_SOCKET,
    DEFAULT_DATA_DIR,
    DEFAULT_LOG_LEVEL,
    DEFAULT_STATE_DIR,
    DEFAULT_TAP_QDISC,
    DEFAULT_TAP_TXQUEUELEN,
    DEFAULT_VNET,
    LOG_LEVELS,
    MAX_BUSY_POLL,
    MAX_TAP_TXQUEUELEN,
    MAX_WORKERS,
    ROUTE_TYPES,
    TAP_QDISCS,
    UNIX_PATH_MAX,
    Config,
    ConfigError,
    ConfigProblem,
    DaemonConfig,
    FirewallConfig,
    MirrorConfig,
    SocksConfig,
)
from vrouter.daemon.config.parsed import (
    ParsedInterface,
    ParsedRoute,
    ParsedVnet,
    parents_first,
)
from vrouter.daemon.logs import DEFAULT_FORMAT as DEFAULT_LOG_FORMAT
from vrouter.daemon.logs import FORMATS as LOG_FORMATS
from vrouter.firewall.ruleparse import parse_ruleset
from vrouter.firewall.rules import RulesetError
from vrouter.mirror.state import default_netns
from vrouter.mirror.sync import BY_NAME as SYNC_PROTOCOLS
from vrouter.route.weight import split_weight
from vrouter.stack import builtin_sysctl


def load(path: str | os.PathLike[str]) -> Config:
    """Read and parse the configuration file at *path*."""
    return parse(read(path), os.fspath(path))


def read(path: str | os.PathLike[str]) -> str:
    """Return the text of the configuration file at *path*; ConfigError if it cannot."""
    file = os.fspath(path)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(file, "", f"cannot read file: {reason}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = ConfigProblem(file, "", f"file is not valid UTF-8: {exc}")
        raise ConfigError([problem]) from None


def parse(text: str, path: str = "<string>") -> Config:
    """Parse configuration *text*; *path* names it in problems."""
    try:
        document = loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(path, "", f"invalid TOML: {exc}")]) from None
    return read_document(document, path)


_TOP_KEYS = (
    "daemon",
    "vnets",
    "interfaces",
    "routes",
    "forwarding",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
    "dhcp",
)


_DEFAULT_VNET_KEYS = (
    "interfaces",
    "routes",
    "forwarding",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
    "dhcp",
)


_DAEMON_KEYS = (
    "control_socket",
    "state_dir",
    "log_level",
    "log_format",
    "metrics",
    "metrics_collectors",
    "metrics_exclude",
    "admins",
    "socks",
    "workers",
    "data_dir",
    "tap_qdisc",
    "tap_txqueuelen",
    "sparse_first",
    "busy_poll",
)


_SOCKS_KEYS = ("vnet", "listen", "username", "password")


_VNET_KEYS = (
    "forwarding",
    "interfaces",
    "routes",
    "sysctl",
    "firewall",
    "limits",
    "permissions",
    "worker",
    "mirror",
    "dhcp",
)


_PERMISSION_KEYS = ("manage", "sockets")


_ROUTE_KEYS = ("to", "type", "via", "interface", "distance")


# -- the document --------------------------------------------------------


def read_document(doc: Mapping[str, object], file: str) -> Config:
    """Check the loaded document ``doc`` of ``file`` and build its ``Config``."""
    r = TomlReader()
    r.check_keys(doc, "", _TOP_KEYS)
    daemon = read_daemon(r, doc)
    vnets: list[ParsedVnet] = []
    if "vnets" in doc:
        for name in _DEFAULT_VNET_KEYS:
            if name in doc:
                r.problem(
                    name,
                    f"top-level {name!r} configures the default vnet {DEFAULT_VNET} "
                    "only when no [vnets] are declared; "
                    f"move it under [vnets.NAME] (e.g. [vnets.{DEFAULT_VNET}])",
                )
        table = r.table(doc, "vnets", "")
        for name, value in (table or {}).items():
            key = _join("vnets", name)
            if not isinstance(value, dict):
                r.wrong_type(key, "a table", value)
                continue
            vnets.append(read_vnet(r, name, value, key, nested=True))
    else:
        vnets.append(read_vnet(r, DEFAULT_VNET, doc, "", nested=False))

    check_hierarchy(r, vnets)
    names = {v.name for v in vnets}
    for i, gateway in enumerate(daemon.socks):
        if gateway.vnet not in names:
            r.problem(f"daemon.socks[{i}].vnet", f"no vnet named {gateway.vnet!r}")
    check_workers(r, vnets, daemon.workers)
    check_limits(r, vnets)
    check_unique_taps(r, vnets)
    check_unique_netns(r, vnets)
    check_peers(r, vnets)
    check_underlays(r, vnets, daemon.workers)
    for vnet in vnets:
        check_connected(r, vnet)
        check_routes(r, vnet)
        check_l2(r, vnet)

    if r.problems:
        raise ConfigError([ConfigProblem(file, key, reason) for key, reason in r.problems])
    return Config(
        path=file,
        daemon=daemon,
        vnets=tuple(v.config() for v in parents_first(vnets)),
    )


def read_daemon(r: TomlReader, doc: Mapping[str, object]) -> DaemonConfig:
    """Read ``[daemon]``, filling in defaults for what it omits."""
    table = r.table(doc, "daemon", "") or {}
    r.check_keys(table, "daemon", _DAEMON_KEYS)
    control_socket = read_path(r, table, "control_socket") or DEFAULT_CONTROL_SOCKET
    if len(os.fsencode(control_socket)) > UNIX_PATH_MAX:
        r.problem(
            "daemon.control_socket",
            f"{control_socket!r} is {len(os.fsencode(control_socket))} bytes long; "
            f"AF_UNIX socket paths are limited to {UNIX_PATH_MAX} bytes",
        )
    state_dir = read_path(r, table, "state_dir") or DEFAULT_STATE_DIR
    data_dir = read_path(r, table, "data_dir") or DEFAULT_DATA_DIR
    log_level = r.choice(table, "log_level", "daemon", LOG_LEVELS) or DEFAULT_LOG_LEVEL
    log_format = r.choice(table, "log_format", "daemon", LOG_FORMATS) or DEFAULT_LOG_FORMAT
    metrics = None
    if "metrics" in table:
        value = table["metrics"]
        if not isinstance(value, str):
            r.wrong_type("daemon.metrics", "a string", value, '; write metrics = "127.0.0.1:9585"')
        else:
            parsed = parse_listen(value)
            if isinstance(parsed, str):
                r.problem("daemon.metrics", parsed)
            else:
                metrics = parsed
    admins = read_principals(r, table, "admins", "daemon")
    workers = r.integer(table, "workers", "daemon")
    if workers is not None and not 1 <= workers <= MAX_WORKERS:
        r.problem("daemon.workers", f"{workers} is out of range 1..{MAX_WORKERS}")
        workers = None
    tap_qdisc = r.choice(table, "tap_qdisc", "daemon", TAP_QDISCS) or DEFAULT_TAP_QDISC
    tap_txqueuelen = r.integer(table, "tap_txqueuelen", "daemon")
    if tap_txqueuelen is not None and not 1 <= tap_txqueuelen <= MAX_TAP_TXQUEUELEN:
        r.problem(
            "daemon.tap_txqueuelen", f"{tap_txqueuelen} is out of range 1..{MAX_TAP_TXQUEUELEN}"
        )
        tap_txqueuelen = None
    sparse_first = r.boolean(table, "sparse_first", "daemon")
    busy_poll = r.integer(table, "busy_poll", "daemon")
    if busy_poll is not None and not 0 <= busy_poll <= MAX_BUSY_POLL:
        r.problem("daemon.busy_poll", f"{busy_poll} µs is out of range 0..{MAX_BUSY_POLL}")
        busy_poll = None
    return DaemonConfig(
        control_socket,
        state_dir,
        log_level,
        metrics,
        admins,
        read_socks(r, table),
        workers or 1,
        log_format,
        read_metrics_collectors(r, table),
        read_names(r, table, "metrics_exclude", "daemon") or (),
        data_dir,
        tap_qdisc,
        tap_txqueuelen or DEFAULT_TAP_TXQUEUELEN,
        True if sparse_first is None else sparse_first,
        busy_poll or 0,
    )


def read_metrics_collectors(r: TomlReader, table: Mapping[str, object]) -> tuple[str, ...] | None:
    """Parse ``metrics_collectors``: names of metrics sources (None when absent: all)."""
    from vrouter.daemon.metrics import NAMES  # the exporter's, and only when the key is set

    names = read_names(r, table, "metrics_collectors", "daemon")
    if names is None:
        return None
    for index, name in enumerate(names):
        if name not in NAMES:
            r.problem(
                f"daemon.metrics_collectors[{index}]",
                f"unknown collector {name!r}; known: {', '.join(NAMES)}",
            )
    return tuple(n for n in names if n in NAMES)


def read_names(
    r: TomlReader, table: Mapping[str, object], name: str, key: str
) -> tuple[str, ...] | None:
    """Parse an array of non-empty strings, without repeats (None when absent)."""
    value = table.get(name)
    if value is None:
        return None
    nkey = _join(key, name)
    if not isinstance(value, list):
        hint = f'; write {name} = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(nkey, "an array of strings", value, hint)
        return None
    found: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            r.wrong_type(f"{nkey}[{index}]", "a non-empty string", item)
        elif item not in found:
            found.append(item)
    return tuple(found)


def read_socks(r: TomlReader, table: Mapping[str, object]) -> tuple[SocksConfig, ...]:
    """Parse ``[[daemon.socks]]``: vnet, listen (host:port), optional username/password."""
    value = table.get("socks")
    if value is None:
        return ()
    if not isinstance(value, list):
        r.wrong_type("daemon.socks", "an array of tables ([[daemon.socks]])", value)
        return ()
    gateways = []
    for i, item in enumerate(value):
        key = f"daemon.socks[{i}]"
        if not isinstance(item, dict):
            r.wrong_type(key, "a table", item)
            continue
        r.check_keys(item, key, _SOCKS_KEYS, required=("vnet", "listen"))
        vnet = r.string(item, "vnet", key)
        listen = r.string(item, "listen", key)
        parsed = parse_listen(listen) if listen is not None else None
        if isinstance(parsed, str):
            r.problem(_join(key, "listen"), parsed)
            parsed = None
        username = r.string(item, "username", key)
        password = r.string(item, "password", key)
        if (username is None) != (password is None):
            r.problem(key, "give both username and password, or neither")
        for name, text in (("username", username), ("password", password)):
            if text is not None and not 1 <= len(text.encode()) <= 255:
                r.problem(_join(key, name), "must be 1..255 bytes (RFC 1929)")
        if vnet is not None and parsed is not None:
            gateways.append(SocksConfig(vnet, parsed, username, password))
    return tuple(gateways)


def read_principals(
    r: TomlReader, table: Mapping[str, object], name: str, key: str
) -> tuple[Principal, ...]:
    """Parse an array of principals (``uid:N``, ``gid:N``, ``user:X``, ``group:X``)."""
    value = table.get(name)
    if value is None:
        return ()
    pkey = _join(key, name)
    if not isinstance(value, list):
        hint = f'; write {name} = ["{value}"]' if isinstance(value, str) else ""
        r.wrong_type(pkey, "an array of strings", value, hint)
        return ()
    found: list[Principal] = []
    for index, item in enumerate(value):
        ikey = f"{pkey}[{index}]"
        if not isinstance(item, str):
            r.wrong_type(ikey, "a string", item)
            continue
        try:
            principal = parse_principal(item)
        except PrincipalError as err:
            r.problem(ikey, str(err))
            continue
        if principal not in found:
            found.append(principal)
    return tuple(found)


def read_permissions(r: TomlReader, table: Mapping[str, object], key: str) -> Grants:
    """Check ``[... .permissions]``: ``manage`` and ``sockets`` arrays of principals."""
    perms = r.table(table, "permissions", key)
    if perms is None:
        return Grants()
    pkey = _join(key, "permissions")
    r.check_keys(perms, pkey, _PERMISSION_KEYS)
    return Grants(
        manage=read_principals(r, perms, "manage", pkey),
        sockets=read_principals(r, perms, "sockets", pkey),
    )


def read_limits(
    r: TomlReader, table: Mapping[str, object], key: str
) -> tuple[tuple[str, int], ...]:
    """Check ``[... .limits]``: known kinds, positive integers (omit a kind: no limit)."""
    lim = r.table(table, "limits", key)
    if lim is None:
        return ()
    lkey = _join(key, "limits")
    r.check_keys(lim, lkey, limits_.KINDS)
    found: list[tuple[str, int]] = []
    for kind in lim:
        if kind not in limits_.KINDS:
            continue
        value = r.integer(lim, kind, lkey)
        if value is None:
            continue
        if not 1 <= value <= limits_.MAXIMUM:
            r.problem(
                _join(lkey, kind),
                f"{value} is out of range 1..{limits_.MAXIMUM} "
                "(leave the key out for no limit of its own)",
            )
            continue
        found.append((kind, value))
    return tuple(found)


def read_path(r: TomlReader, table: Mapping[str, object], name: str) -> str | None:
    """Read ``daemon.NAME``, an absolute path without NUL characters."""
    value = r.string(table, name, "daemon")
    if value is None:
        return None
    key = _join("daemon", name)
    if "\x00" in value:
        r.problem(key, f"{value!r} contains a NUL character")
        return None
    if not value.startswith("/"):
        r.problem(key, f"{value!r} is not an absolute path (must start with '/')")
        return None
    return value


# -- one vnet -------------------------------------------------------------


def read_vnet(
    r: TomlReader, name: str, table: Mapping[str, object], key: str, nested: bool
) -> ParsedVnet:
    """Read vnet *name* from *table* at *key* (``nested``: under ``[vnets]``)."""
    name_ok = True
    if nested:
        r.check_keys(table, key, _VNET_KEYS, hint=child_vnet_hint(name))
        error = vnet_name_error(name)
        if error is not None:
            r.problem(key, error)
            name_ok = False
    forwarding = r.boolean(table, "forwarding", key)
    interfaces: list[ParsedInterface] = []
    for iname, value in (r.table(table, "interfaces", key) or {}).items():
        ikey = _join(_join(key, "interfaces"), iname)
        if not isinstance(value, dict):
            r.wrong_type(ikey, "a table", value)
            continue
        interfaces.append(read_interface(r, iname, value, ikey))
    if forwarding is False:
        for iface in interfaces:
            if iface.advertises:
                r.problem(
                    iface.ra_key,
                    f"vnet {name} has forwarding = false, and a host does not advertise "
                    "itself as a router; drop 'ra' or set forwarding = true",
                )
    routes: list[ParsedRoute] = []
    rvalue = table.get("routes")
    rkey = _join(key, "routes")
    if isinstance(rvalue, list):
        for index, item in enumerate(rvalue):
            if not isinstance(item, dict):
                r.wrong_type(f"{rkey}[{index}]", "a table", item)
                continue
            routes.append(read_route(r, item, f"{rkey}[{index}]"))
    elif rvalue is not None:
        r.wrong_type(rkey, "an array of tables ([[routes]])", rvalue)
    return ParsedVnet(
        key=key,
        name=name,
        name_ok=name_ok,
        forwarding=True if forwarding is None else forwarding,
        interfaces=tuple(interfaces),
        routes=tuple(routes),
        sysctl=read_sysctl(r, table, key),
        firewall=read_firewall(r, table, key),
        permissions=read_permissions(r, table, key),
        limits=read_limits(r, table, key),
        limits_key=_join(key, "limits"),
        worker=r.integer(table, "worker", key) if nested else None,
        mirror=read_mirror(r, name, table, key),
        dhcp=read_dhcp(
            r,
            table,
            key,
            {
                i.name: any(a.value.version == 4 for a in i.addresses) or not i.addresses_complete
                for i in interfaces
            },
        ),
    )


_MIRROR_KEYS = ("netns", "sync", "vrf_dir")
VRF_NAME_MAX = 35
"""FRR's VRF names (``VRF_NAMSIZ`` 36 with the terminating NUL): a mirror in a
``vrf_dir`` is a VRF named after its namespace."""
_NETNS_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def read_mirror(
    r: TomlReader, vnet: str, table: Mapping[str, object], key: str
) -> MirrorConfig | None:
    """Check ``[... .mirror]``: the namespace name and the kernel protocols synced."""
    mirror = r.table(table, "mirror", key)
    if mirror is None:
        return None
    mkey = _join(key, "mirror")
    r.check_keys(mirror, mkey, _MIRROR_KEYS)
    netns = r.string(mirror, "netns", mkey)
    if netns is None:
        netns = default_netns(vnet)
    elif not _NETNS_NAME.fullmatch(netns):
        r.problem(_join(mkey, "netns"), f"{netns!r} is not a namespace name ([A-Za-z0-9_.-])")
    sync: tuple[str, ...] | None = None
    value = mirror.get("sync")
    if value is not None:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            r.wrong_type(_join(mkey, "sync"), "an array of protocol names", value)
        else:
            unknown = [v for v in value if v not in SYNC_PROTOCOLS]
            if unknown:
                r.problem(
                    _join(mkey, "sync"),
                    f"unknown route protocol {unknown[0]!r} (known: {', '.join(SYNC_PROTOCOLS)})",
                )
            sync = tuple(value)
    vrf_dir = r.string(mirror, "vrf_dir", mkey)
    if vrf_dir is not None:
        where = _join(mkey, "vrf_dir")
        if not vrf_dir.startswith("/"):
            r.problem(where, f"{vrf_dir!r} is not an absolute path")
        elif os.path.normpath(vrf_dir) in ("/run/netns", "/var/run/netns"):
            r.problem(where, "must be a directory of its own, not /run/netns")
        if len(netns) > VRF_NAME_MAX:
            r.problem(_join(mkey, "netns"), f"{netns!r}: a VRF name (vrf_dir) has at most "
                      f"{VRF_NAME_MAX} characters")  # fmt: skip
    return MirrorConfig(netns, sync, vrf_dir)


def read_firewall(r: TomlReader, table: Mapping[str, object], key: str) -> FirewallConfig | None:
    """Check ``[... .firewall]``: enable, max_states and the ruleset itself."""
    fw = r.table(table, "firewall", key)
    if fw is None:
        return None
    fkey = _join(key, "firewall")
    enable = r.boolean(fw, "enable", fkey)
    max_states = r.integer(fw, "max_states", fkey)
    if max_states is not None and not 1 <= max_states <= 10_000_000:
        r.problem(_join(fkey, "max_states"), f"{max_states} is out of range 1..10000000")
        max_states = None
    rules_table = {k: v for k, v in fw.items() if k not in ("enable", "max_states")}
    try:
        ruleset = parse_ruleset(rules_table, fkey)
    except RulesetError as err:
        for problem_key, reason in err.problems:
            r.problem(problem_key, reason)
        return None
    return FirewallConfig(True if enable is None else enable, max_states, ruleset)


def read_sysctl(
    r: TomlReader, table: Mapping[str, object], key: str
) -> tuple[tuple[str, bool | int | float], ...]:
    """Check ``[... .sysctl]``: known knob names, values of the knob's type and range."""
    knobs = builtin_sysctl()  # the built-in subsystems' knobs, to check names and values
    settings: list[tuple[str, bool | int | float]] = []
    skey = _join(key, "sysctl")
    for name, value in (r.table(table, "sysctl", key) or {}).items():
        nkey = f'{skey}."{name}"'
        if limits_.kind_of(name) is not None:
            kind = name.removeprefix(limits_.KNOB_PREFIX)
            r.problem(nkey, f"set limits in the limits table: {_join(_join(key, 'limits'), kind)}")
            continue
        knob = knobs.knobs.get(name)
        if knob is None:
            close = [k for k in knobs.knobs if k.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else " (vrouterctl sysctl VNET -a lists them)"
            )
            r.problem(nkey, f"unknown sysctl {name!r}{hint}")
            continue
        try:
            settings.append((name, knob.coerce(value)))
        except SysctlError as err:
            r.problem(nkey, str(err).removeprefix(f"{name}: "))
    return tuple(settings)


def read_route(r: TomlReader, table: Mapping[str, object], key: str) -> ParsedRoute:
    """Read one ``[[routes]]`` entry; how it fits the vnet is checked later."""
    r.check_keys(table, key, _ROUTE_KEYS, required=("to",))
    prefix: IPv4Network | IPv6Network | None = None
    to = r.string(table, "to", key)
    if to is not None:
        parsed = parse_network(to)
        if isinstance(parsed, str):
            r.problem(_join(key, "to"), parsed)
        else:
            prefix = parsed
    rtype = r.choice(table, "type", key, ROUTE_TYPES) if "type" in table else "unicast"
    via: IPv4Address | IPv6Address | None = None
    paths: list[IPv4Address | IPv6Address] = []
    weights: list[int] = []
    many = table.get("via")
    if isinstance(many, list):  # a multipath (ECMP) route
        if len(many) < 2:
            r.problem(_join(key, "via"), "a list of next hops needs two or more")
        for at, item in enumerate(many):
            item_key = f"{_join(key, 'via')}[{at}]"
            item, weight = _weighted(r, item, item_key)
            if item is None:
                continue  # reported
            hop = _next_hop(r, item, prefix, item_key)
            if hop is not None and hop in paths:
                r.problem(item_key, f"next hop {hop} is given twice")
            elif hop is not None:
                paths.append(hop)
                weights.append(weight)
    else:
        via_text = r.string(table, "via", key)
        if via_text is not None:
            via = _next_hop(r, via_text, prefix, _join(key, "via"))
    interface = r.string(table, "interface", key)
    distance = r.integer(table, "distance", key)
    if distance is not None and not 1 <= distance <= 255:
        r.problem(_join(key, "distance"), f"{distance} is not in 1..255")
    return ParsedRoute(
        key=key,
        prefix=prefix,
        type=rtype,
        via=via,
        interface=interface,
        has_via="via" in table,
        has_interface="interface" in table,
        distance=distance if distance is not None and 1 <= distance <= 255 else 1,
        paths=tuple(paths),
        weights=tuple(weights) if any(weight != 1 for weight in weights) else (),
    )


def _weighted(r: TomlReader, value: object, key: str) -> tuple[object, int]:
    """Split a multipath next hop ``"ADDR weight N"`` into the address and its weight."""
    if not isinstance(value, str) or len(value.split()) == 1:
        return value, 1
    try:
        return split_weight(value)
    except ValueError as err:
        r.problem(key, str(err))
        return None, 1


def _next_hop(
    r: TomlReader, value: object, prefix: IPv4Network | IPv6Network | None, key: str
) -> IPv4Address | IPv6Address | None:
    """Read one next hop of a route to ``prefix`` (None: reported)."""
    if not isinstance(value, str):
        r.wrong_type(key, "a string", value)
        return None
    parsed_via = parse_address(value)
    if isinstance(parsed_via, str):
        r.problem(key, parsed_via)
        return None
    if prefix is not None and parsed_via.version != prefix.version:
        r.problem(
            key,
            f"next hop {parsed_via} is IPv{parsed_via.version} but destination "
            f"{prefix} is IPv{prefix.version}; they must be of the same family",
        )
        return None
    return parsed_via
