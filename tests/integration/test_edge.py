"""configs/edge.toml runs: a LAN host by DHCP browses out through masquerade, an outside
host reaches the LAN server through the port forward on an address edge took by DHCP.

The config is the committed file with its names (``vr-``) and paths made the
test's own.  The LAN host's DHCP client is busybox udhcpc with a script of
the test's (the namespace's own resolv.conf in place first); the web servers
are Python's http.server in the outside host and the LAN server.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Vrouterd, python, run

pytestmark = pytest.mark.integration

EDGE = Path(__file__).resolve().parents[2] / "configs" / "edge.toml"

UDHCPC_SCRIPT = """\
#!/bin/sh
env | grep -E '^(ip|subnet|router|dns|domain)=' | sort > "{out}/udhcpc.$1.env"
case "$1" in
bound|renew)
    ip addr replace "$ip/$subnet" dev "$interface"
    ip route replace default via "${{router%% *}}" dev "$interface"
    ;;
deconfig)
    ip addr flush dev "$interface"
    ;;
esac
exit 0
"""


def _template() -> str:
    text = EDGE.read_text().replace("{", "{{").replace("}", "}}")
    text = text.replace('"/run/vrouter/control.sock"', '"{dir}/control.sock"')
    text = text.replace('state_dir = "/run/vrouter"', 'state_dir = "{dir}/state"')
    text = text.replace('data_dir = "/var/lib/vrouter"', 'data_dir = "{dir}/data"')
    return text.replace("vr-", "{p}")


PROCS: list[subprocess.Popen[bytes]] = []
"""The web servers the test started (killed at teardown)."""


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vrouterd]:
    daemon = Vrouterd(tmp_path_factory.mktemp("edge"), _template())
    etc = Path("/etc/netns") / daemon.ns("lan1")
    try:
        daemon.start()
        yield daemon
    finally:
        for proc in PROCS:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        daemon.close()
        shutil.rmtree(etc, ignore_errors=True)


def _web(daemon: Vrouterd, host: str, text: str) -> Path:
    """Serve ``text`` as /index.html on port 80 of ``host``; return the server's log."""
    root = daemon.dir / f"www-{host}"
    root.mkdir()
    (root / "index.html").write_text(text)
    log = daemon.dir / f"www-{host}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", daemon.ns(host),
             *python("-m", "http.server", "80", "--directory", str(root))],
            stdout=out, stderr=out,
        )  # fmt: skip
    PROCS.append(proc)
    return log


def _curl(daemon: Vrouterd, host: str, url: str) -> str:
    for _ in range(20):  # the server may still be starting
        result = daemon.exec(host, "curl", "-sS", "--max-time", "3", url, check=False)
        if result.returncode == 0:
            return result.stdout
        time.sleep(0.5)
    raise AssertionError(f"curl {url} from {host}: {result.stderr}")


def _outside_address(daemon: Vrouterd, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = daemon.call("dhcp.leases", vnet="edge")["clients"].get("ep0", {})
        if client.get("state") == "bound":
            return str(client["address"]).split("/")[0]
        time.sleep(0.3)
    raise AssertionError(f"edge got no address by DHCP:\n{daemon.logtext()[-3000:]}")


def test_the_edge_demo(edge: Vrouterd) -> None:
    daemon = edge
    outside = _outside_address(daemon)
    assert outside.startswith("203.0.113.")
    isp = daemon.call("dhcp.leases", vnet="isp")
    assert [row["address"] for row in isp["leases"]] == [outside]
    # The LAN host takes its address from edge.
    etc = Path("/etc/netns") / daemon.ns("lan1")
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text("# the test's namespace\n")
    script = daemon.dir / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT.format(out=daemon.dir))
    script.chmod(0o755)
    daemon.exec("lan1", "busybox", "udhcpc", "-i", daemon.tap("lan0"), "-s", str(script), "-f",
                "-q", "-n", "-t", "5", "-T", "2", timeout=40)  # fmt: skip
    got = dict(
        line.split("=", 1) for line in (daemon.dir / "udhcpc.bound.env").read_text().splitlines()
    )
    assert got["ip"].startswith("192.0.2.") and got["router"] == "192.0.2.1"
    assert got["dns"] == "192.0.2.1" and got["domain"] == "lan.example"
    # It browses the outside host, masqueraded behind edge's DHCP address.
    out_log = _web(daemon, "out1", "outside\n")
    assert _curl(daemon, "lan1", "http://198.51.100.2/") == "outside\n"
    assert f"{outside} - - " in out_log.read_text()
    # The outside host reaches the LAN server through port 8080 of that address.
    srv_log = _web(daemon, "srv1", "lan server\n")
    assert _curl(daemon, "out1", f"http://{outside}:8080/") == "lan server\n"
    assert "198.51.100.2 - - " in srv_log.read_text()
    run("ip", "netns", "exec", daemon.ns("lan1"), "ping", "-c", "1", "-W", "2", "198.51.100.2")
