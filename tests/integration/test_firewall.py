"""A stateful edge policy on vnet red, enforced against real hosts and tools.

Policy: h1 (behind red) may open TCP to h2 port 8080 (and 5201 for iperf3),
send UDP to h2 port 9999 and ping anything; nothing may come in to h1 except
the answers; TCP to h1 port 22 is rejected (reset at once), everything else
is dropped by the default.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd, python, vrouterctl

pytestmark = pytest.mark.integration

RULES = """
[vnets.red.firewall]
default = "block"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "tcp"
to = "198.51.100.2"
to_port = [8080, 5201]
label = "web"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "udp"
to = "198.51.100.2"
to_port = 9999
label = "udp"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "icmp"
icmp_type = "echo-request"
label = "ping"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "tcp"
to = "2001:db8:2::2"
to_port = 8080
label = "web6"
[[vnets.red.firewall.rules]]
action = "pass"
direction = "in"
interface = "{p}r"
proto = "icmp6"
icmp_type = "echo-request"
label = "ping6"
[[vnets.red.firewall.rules]]
action = "reject"
direction = "in"
interface = "ep0"
proto = "tcp"
to = "192.0.2.2"
to_port = 22
label = "ssh"
"""

UDP_ECHO = textwrap.dedent(
    """
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 9999))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
    """
)

UDP_ASK = textwrap.dedent(
    """
    import socket, sys
    target, sport, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.settimeout(1.0)
    got = 0
    for i in range(count):
        s.sendto(b"probe %d" % i, (target, 9999))
        try:
            s.recvfrom(2048)
            got += 1
        except TimeoutError:
            pass
    print(got)
    """
)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), DEMO_LIKE + RULES)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        daemon.start()
        www = tmp_path_factory.mktemp("www")
        (www / "index.html").write_text("hello through the firewall\n")
        for host, args in (
            (
                "h2",
                python(
                    "-m",
                    "http.server",
                    "8080",
                    "--bind",
                    "::",
                    "--directory",
                    str(www),
                ),
            ),
            (
                "h1",
                python(
                    "-m",
                    "http.server",
                    "8080",
                    "--bind",
                    "::",
                    "--directory",
                    str(www),
                ),
            ),
            ("h2", python("-c", UDP_ECHO)),
            ("h1", python("-c", UDP_ECHO)),
        ):
            servers.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", daemon.ns(host), *args],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _wait_http(daemon, "h1", "198.51.100.2")
        yield daemon
    finally:
        for server in servers:
            server.kill()
            server.wait(10)
        daemon.close()


def _wait_http(daemon: Vrouterd, host: str, target: str) -> None:
    for _ in range(100):
        probe = daemon.exec(
            host,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "2",
            f"http://{target}:8080/",
            check=False,
            timeout=10,
        )
        if probe.stdout == "200":
            return
        time.sleep(0.1)
    raise AssertionError(f"http server at {target} not reachable from {host}")


def _rule(daemon: Vrouterd, label: str) -> dict[str, object]:
    for rule in daemon.call("firewall.show", vnet="red")["rules"]:
        if f"label {label}" in str(rule["text"]):
            return dict(rule)
    raise AssertionError(f"no rule labelled {label}")


def _ask_udp(daemon: Vrouterd, host: str, target: str, sport: int, count: int = 2) -> int:
    out = daemon.python(host, "-c", UDP_ASK, target, str(sport), str(count), timeout=30)
    return int(out.stdout.strip())


def test_outbound_tcp_to_the_allowed_port_works(edge: Vrouterd) -> None:
    result = edge.exec("h1", "curl", "-sS", "--max-time", "5", "http://198.51.100.2:8080/")
    assert "hello through the firewall" in result.stdout
    states = edge.call("firewall.states", vnet="red")
    assert any(s["proto"] == "tcp" and s["dst"] == "198.51.100.2:8080" for s in states)


def test_inbound_tcp_is_dropped_or_rejected(edge: Vrouterd) -> None:
    started = time.monotonic()
    dropped = edge.exec(
        "h2", "curl", "-sS", "--max-time", "3", "http://192.0.2.2:8080/", check=False, timeout=30
    )
    assert dropped.returncode == 28, dropped.stderr  # timed out: silently dropped
    assert time.monotonic() - started >= 2.5
    started = time.monotonic()
    refused = edge.exec(
        "h2", "curl", "-sS", "--max-time", "3", "http://192.0.2.2:22/", check=False, timeout=30
    )
    assert refused.returncode == 7, refused.stderr  # connection refused: the reset
    assert time.monotonic() - started < 2
    assert _rule(edge, "ssh")["packets"] >= 1


def test_ipv6_policy_is_enforced_too(edge: Vrouterd) -> None:
    edge.wait_ipv6()
    result = edge.exec("h1", "curl", "-sS", "--max-time", "5", "http://[2001:db8:2::2]:8080/")
    assert "hello through the firewall" in result.stdout
    inbound = edge.exec(
        "h2",
        "curl",
        "-sS",
        "--max-time",
        "3",
        "http://[2001:db8:1::2]:8080/",
        check=False,
        timeout=30,
    )
    assert inbound.returncode == 28, inbound.stderr
    out = edge.exec("h1", "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:2::2")
    assert "2 received" in out.stdout
    back = edge.exec(
        "h2", "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "2001:db8:1::2", check=False
    )
    assert "0 received" in back.stdout
    assert _rule(edge, "web6")["states"] >= 1


def test_udp_request_response_works_one_way_only(edge: Vrouterd) -> None:
    assert _ask_udp(edge, "h1", "198.51.100.2", 41000) == 2
    assert _ask_udp(edge, "h2", "192.0.2.2", 41001) == 0


def test_ping_one_way_and_rule_counters_match(edge: Vrouterd) -> None:
    before = _rule(edge, "ping")
    result = edge.exec("h1", "ping", "-c", "5", "-i", "0.2", "-W", "2", "198.51.100.2")
    assert "5 received" in result.stdout
    after = _rule(edge, "ping")
    # Each request matched the rule once (on the way in); replies passed by state.
    assert after["packets"] - before["packets"] == 5
    assert after["bytes"] - before["bytes"] == 5 * 84
    assert after["states"] - before["states"] == 1  # one echo id, one state
    back = edge.exec("h2", "ping", "-c", "2", "-i", "0.2", "-W", "1", "192.0.2.2", check=False)
    assert "0 received" in back.stdout


def test_statistics_move_as_the_traffic_predicts(edge: Vrouterd) -> None:
    before = edge.call("netstat", vnet="red")
    edge.exec("h2", "ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.2", check=False)
    after = edge.call("netstat", vnet="red")
    assert after["pf"]["default"] - before["pf"]["default"] == 3
    assert after["ip"]["filtered"] - before["ip"]["filtered"] == 3
    assert after["drops"]["ip_filtered"] - before["drops"].get("ip_filtered", 0) == 3


def test_ruleset_replacement_keeps_a_running_transfer(edge: Vrouterd, tmp_path: Path) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", edge.ns("h2"), "iperf3", "-s", "-1", "-B", "198.51.100.2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    new_rules = tmp_path / "rules.toml"
    text = RULES.replace("[vnets.red.firewall]\n", "").replace("vnets.red.firewall.", "")
    new_rules.write_text(
        text.format(p=edge.prefix) + '\n[[rules]]\naction = "block"\n'
        'proto = "udp"\nto_port = 7\nlabel = "new"\n'
    )
    try:
        time.sleep(0.5)
        client = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                edge.ns("h1"),
                "iperf3",
                "-c",
                "198.51.100.2",
                "-t",
                "4",
                "--json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        load = subprocess.run(
            vrouterctl("firewall", "red", "load", str(new_rules)),
            env={**os.environ, "VROUTER_SOCKET": edge.socket},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert load.returncode == 0, load.stderr
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err + out
        assert '"error"' not in out
        assert any(
            "label new" in str(r["text"]) for r in edge.call("firewall.show", vnet="red")["rules"]
        )
    finally:
        server.kill()
        server.wait(10)


def test_bad_ruleset_is_refused_and_the_old_one_stays(edge: Vrouterd, tmp_path: Path) -> None:
    before = edge.call("firewall.show", vnet="red")["rules"]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'default = "block"\n[[rules]]\naction = "pass"\nproto = "tcp"\nto = "198.51.100.0/33"\n'
    )
    load = subprocess.run(
        vrouterctl("firewall", "red", "load", str(bad)),
        env={**os.environ, "VROUTER_SOCKET": edge.socket},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert load.returncode == 1
    assert f"{bad}: rules[0].to:" in load.stderr
    assert [r["text"] for r in edge.call("firewall.show", vnet="red")["rules"]] == [
        r["text"] for r in before
    ]


def test_state_limit_refuses_new_flows_and_keeps_the_old(edge: Vrouterd) -> None:
    edge.call("firewall.flush", vnet="red")
    edge.call("sysctl.set", vnet="red", settings={"net.pf.states_max": 3})
    try:
        for sport in (42001, 42002, 42003):
            assert _ask_udp(edge, "h1", "198.51.100.2", sport, 1) == 1
        assert _ask_udp(edge, "h1", "198.51.100.2", 42004, 1) == 0
        assert edge.call("netstat", vnet="red")["pf"]["state_limit"] >= 1
        for sport in (42001, 42002, 42003):
            assert _ask_udp(edge, "h1", "198.51.100.2", sport, 2) == 2
    finally:
        edge.call("sysctl.set", vnet="red", settings={"net.pf.states_max": 10000})
