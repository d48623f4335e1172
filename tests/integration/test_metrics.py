"""The Prometheus exporter of a real vrouterd: scraped by urllib, promtool and Prometheus.

The daemon runs the demo topology with ``metrics = "127.0.0.1:PORT"`` on a
free loopback port; hosts ping across the vnets and the counters must show
it.  A real Prometheus server (Debian's ``prometheus``) is started on its own
loopback port and data directory, scrapes the daemon every second, and is
always stopped at the end.  Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import DEMO_LIKE, Vrouterd, netns_list, run
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"


@pytest.fixture(scope="module", autouse=True)
def _need_prometheus() -> None:
    missing = [t for t in ("prometheus", "promtool") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"these tests need {', '.join(missing)}: run scripts/install.sh --test")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metered_template(port: int) -> str:
    """Return the demo template with the exporter on 127.0.0.1:``port``."""
    anchor = 'log_level = "debug"\n'
    assert DEMO_LIKE.count(anchor) == 1
    return DEMO_LIKE.replace(anchor, f'{anchor}metrics = "127.0.0.1:{port}"\n')


class Metered:
    """A running daemon with its exporter's port."""

    def __init__(self, daemon: Vrouterd, port: int) -> None:
        self.daemon = daemon
        self.port = port
        self.url = f"http://127.0.0.1:{port}/metrics"

    def get(self, path: str = "/metrics") -> tuple[int, str, str]:
        """Return (status, content type, body) of one request."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers["Content-Type"], err.read().decode()

    def scrape(self) -> str:
        status, content_type, body = self.get()
        assert status == 200
        assert content_type == CONTENT_TYPE
        return body


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return every sample of an exposition text by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"no sample {name}{labels}"
    return found[key]


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    """The demo daemon with its exporter on a free loopback port."""
    port = free_port()
    daemon = Vrouterd(tmp_path_factory.mktemp("vrouterd"), template=metered_template(port))
    try:
        daemon.start()
        daemon.wait_ipv6()
        yield Metered(daemon, port)
    finally:
        daemon.close()


def _ping(daemon: Vrouterd, host: str, target: str, count: int) -> None:
    result = daemon.exec(
        host, "ping", "-c", str(count), "-i", "0.2", "-W", "2", target, check=False, timeout=30
    )
    assert f"{count} received" in result.stdout, result.stdout + result.stderr


def test_exporter_logs_where_it_listens(metered: Metered) -> None:
    assert f"metrics exporter listening on {metered.url}" in metered.daemon.logtext()


def test_ping_across_vnets_shows_in_the_counters(metered: Metered) -> None:
    d = metered.daemon
    red_tap, blue_tap = d.tap("r"), d.tap("b")
    before = samples(metered.scrape())
    _ping(d, "h1", "198.51.100.2", 5)
    after = samples(metered.scrape())

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for vnet, ifname in (("red", red_tap), ("red", "ep0"), ("blue", blue_tap), ("blue", "ep0")):
        for name in (
            "vrouter_interface_receive_packets_total",
            "vrouter_interface_transmit_packets_total",
        ):
            assert grew(name, vnet=vnet, interface=ifname) >= 5, (name, vnet, ifname)
        assert grew("vrouter_interface_receive_bytes_total", vnet=vnet, interface=ifname) >= 5 * 98
        assert value(after, "vrouter_interface_up", vnet=vnet, interface=ifname) == 1
        assert value(after, "vrouter_interface_mtu_bytes", vnet=vnet, interface=ifname) == 1500
    # Each router forwarded the 5 requests and the 5 replies.
    assert grew("vrouter_ip_forward_total", vnet="red") >= 10
    assert grew("vrouter_ip_forward_total", vnet="blue") >= 10
    assert value(after, "vrouter_ip_forward_total", vnet="green") == 0
    # The exporter and the control API read the same counters.
    exported = value(
        after, "vrouter_interface_receive_packets_total", vnet="red", interface=red_tap
    )
    assert exported <= d.counters("red", red_tap)["rx_packets"]
    # The daemon-wide series and the tables.
    assert value(after, "vrouter_vnets") == 3
    assert value(after, "vrouter_build_info", version=_version()) == 1
    # red: its tap's and the epair's networks, and the static route to blue's hosts.
    assert value(after, "vrouter_routes", vnet="red", family="inet") == 3
    assert value(after, "vrouter_neighbours", vnet="red", family="inet", state="reachable") >= 2
    assert value(after, "process_open_fds") > 0


def _version() -> str:
    from vrouter import __version__

    return __version__


def test_only_metrics_is_served(metered: Metered) -> None:
    assert metered.get("/")[0] == 404
    assert metered.get("/metrics/x")[0] == 404
    request = urllib.request.Request(metered.url, method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405


def test_promtool_accepts_the_output(metered: Metered) -> None:
    text = metered.scrape()
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: vrouter
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def _query(api: str, expr: str) -> list[dict[str, object]]:
    url = f"{api}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    result: list[dict[str, object]] = answer["data"]["result"]
    return result


def test_prometheus_scrapes_the_daemon(metered: Metered, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    assert binary is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(port=metered.port))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        vnets: set[str] = set()
        up: list[dict[str, object]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"prometheus exited:\n{log_path.read_text()}"
            try:
                series = _query(api, "vrouter_interface_receive_packets_total")
                up = _query(api, 'up{job="vrouter"}')
            except (OSError, ValueError):
                series = []  # not listening yet
            vnets = {str(s["metric"]["vnet"]) for s in series}  # type: ignore[index]
            if {"red", "blue"} <= vnets and up:
                break
            time.sleep(0.5)
        assert {"red", "blue"} <= vnets, f"only {vnets}:\n{log_path.read_text()[-3000:]}"
        assert [s["value"][1] for s in up] == ["1"]  # type: ignore[index]
        interfaces = {
            (str(s["metric"]["vnet"]), str(s["metric"]["interface"]))  # type: ignore[index]
            for s in series
        }
        assert ("red", metered.daemon.tap("r")) in interfaces
        assert ("blue", metered.daemon.tap("b")) in interfaces
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_busy_port_fails_start_up_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        daemon = Vrouterd(tmp_path, template=metered_template(port))
        try:
            with pytest.raises(AssertionError, match="exited 1"):
                daemon.start()
            assert re.search(
                rf"start-up failed.*cannot listen on 127\.0\.0\.1:{port}: .*in use",
                daemon.logtext(),
            )
            assert not {n for n in netns_list() if n.startswith(daemon.prefix)}
            links = run("ip", "-o", "link", "show").stdout
            assert daemon.prefix not in links
        finally:
            daemon.cleanup()
