"""A daemon with two workers: the demo split over two processes, joined by a wire."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import DEMO_LIKE, PYTHON, Vrouterd, netns_list, running, vrouterctl

from vrouter.api.protocol import ApiError
from vrouter.client import Client

pytestmark = pytest.mark.integration

SIZE = 20 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _two_workers(metrics_port: int) -> str:
    return DEMO_LIKE.replace(
        'log_level = "debug"',
        f'log_level = "debug"\nworkers = 2\nmetrics = "127.0.0.1:{metrics_port}"',
        1,
    )


@pytest.fixture(scope="module")
def port() -> int:
    return _free_port()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, port: int) -> Iterator[Vrouterd]:
    """The demo topology on two workers: red and green in worker 0, blue in worker 1."""
    yield from running(Vrouterd(tmp_path_factory.mktemp("workers"), _two_workers(port)))


def _workers(daemon: Vrouterd) -> list[dict[str, object]]:
    workers: list[dict[str, object]] = daemon.call("status")["workers"]
    return workers


def _ttl(daemon: Vrouterd, vnet: str) -> object:
    [knob] = daemon.call("sysctl.get", vnet=vnet, names=["net.inet.ip.ttl"])
    return knob["value"]


def test_each_worker_is_a_process_running_its_vnets(pair: Vrouterd) -> None:
    workers = _workers(pair)
    assert [w["vnets"] for w in workers] == [["green", "red"], ["blue"]]
    pids = [w["pid"] for w in workers]
    assert len(set(pids)) == 2 and pair.proc is not None and pair.proc.pid not in pids
    for pid in pids:
        assert isinstance(pid, int)
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2] == b"vrouter.daemon.main"
    assert {v["name"] for v in pair.call("vnet.list")} == {"red", "green", "blue"}
    shown = pair.ctl("status")
    assert "worker 0: pid" in shown.stdout and "worker 1: pid" in shown.stdout, shown.stdout
    for index in (0, 1):  # only the front talks to a worker
        mode = (pair.dir / "state" / f"worker-{index}.sock").stat().st_mode & 0o777
        assert mode == 0o600


def test_ping_crosses_the_wire_between_workers(pair: Vrouterd) -> None:
    before = pair.counters("blue", "ep0")["rx_packets"]
    for address in ("198.51.100.2", "2001:db8:2::2"):
        out = pair.exec("h1", "ping", "-c", "5", "-i", "0.2", "-W", "2", address).stdout
        assert " 0% packet loss" in out, out
    assert pair.counters("blue", "ep0")["rx_packets"] >= before + 10


def test_tcp_download_across_the_wire_matches(pair: Vrouterd, tmp_path: Path) -> None:
    root = tmp_path / "www"
    root.mkdir()
    blob = root / "blob"
    blob.write_bytes(os.urandom(SIZE))
    server = subprocess.Popen(
        ["ip", "netns", "exec", pair.ns("h2"), PYTHON, "-m", "http.server",
         "-b", "198.51.100.2", "-d", str(root), "8080"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while pair.exec("h2", "ss", "-ltn", "sport = :8080").stdout.count("LISTEN") == 0:
            assert time.monotonic() < deadline, "http.server did not listen"
            time.sleep(0.1)
        out = tmp_path / "got"
        pair.exec(
            "h1", "curl", "-sS", "--max-time", "60", "-o", str(out),
            "http://198.51.100.2:8080/blob", timeout=90,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(10)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(blob.read_bytes()).digest()


def test_iperf3_across_the_wire(pair: Vrouterd) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", pair.ns("h2"), "iperf3", "-s", "-1", "-B", "2001:db8:2::2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        result = pair.exec("h1", "iperf3", "-J", "-t", "2", "-c", "2001:db8:2::2", timeout=30)
    finally:
        server.kill()
        server.wait(10)
    end = json.loads(result.stdout)["end"]
    assert end["sum_received"]["bytes"] > 10 * 1024 * 1024


def test_requests_reach_the_worker_running_the_vnet(pair: Vrouterd) -> None:
    pair.call("sysctl.set", vnet="blue", settings={"net.inet.ip.ttl": 40})
    assert _ttl(pair, "blue") == 40
    assert _ttl(pair, "red") == 64
    names = {i["name"] for i in pair.call("ifconfig", vnet="blue")}
    assert names == {pair.tap("b"), "ep0"}
    with pytest.raises(ApiError, match="no vnet"):
        pair.call("ifconfig", vnet="nosuch")


def test_a_socket_in_the_second_worker_answers_a_host(pair: Vrouterd) -> None:
    with (
        Client(pair.socket) as client,
        client.socket("blue", socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.settimeout(10)
        sock.bind(("0.0.0.0", 9977))

        def echo() -> None:
            data, peer = sock.recvfrom()
            sock.sendto(b"echo:" + data, peer)

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        ask = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5); "
            "s.sendto(b'hi', ('198.51.100.1', 9977)); print(s.recvfrom(100)[0].decode())"
        )
        out = pair.python("h1", "-c", ask).stdout.strip()
        thread.join(10)
    assert out == "echo:hi"


def test_capture_through_the_front(pair: Vrouterd) -> None:
    capture = subprocess.Popen(
        vrouterctl("--socket", pair.socket, "capture", "blue", pair.tap("b"), "-c", "2", "icmp"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(1)
        pair.exec("h1", "ping", "-c", "2", "-i", "0.2", "198.51.100.2")
        out, err = capture.communicate(timeout=20)
    finally:
        capture.kill()
    assert "ICMP echo request" in out and "ICMP echo reply" in out, out + err


def test_metrics_join_every_worker(pair: Vrouterd, port: int) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    assert 'vrouter_worker_up{worker="0"} 1.0' in text
    assert 'vrouter_worker_up{worker="1"} 1.0' in text
    assert "vrouter_vnets 3.0" in text
    for vnet, ifname in (("red", "ep0"), ("blue", "ep0"), ("green", pair.tap("g"))):
        assert (
            f'vrouter_interface_receive_packets_total{{vnet="{vnet}",interface="{ifname}"}}' in text
        )
    assert text.count("# TYPE vrouter_interface_receive_packets_total counter") == 1
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_vnets_made_through_the_api_go_to_the_less_loaded_worker(pair: Vrouterd) -> None:
    pair.call("vnet.create", name="extra")
    try:
        assert _workers(pair)[1]["vnets"] == ["blue", "extra"]
        pair.call("vnet.create", name="extra/child")
        assert "extra/child" in {v["name"] for v in pair.call("vnet.list")}
        with pytest.raises(ApiError, match="different workers") as refused:
            pair.call("epair.create", a="red:x0", b="extra:x0")
        assert refused.value.errno == 18
    finally:
        pair.call("vnet.destroy", name="extra", recursive=True)
    assert _workers(pair)[1]["vnets"] == ["blue"]


def test_reload_applies_each_share_and_refuses_a_move(pair: Vrouterd) -> None:
    original = pair.config.read_text()
    try:
        pair.config.write_text(original + '\n[vnets.blue.sysctl]\n"net.inet.ip.ttl" = 33\n'
                               "\n[vnets.lab]\nforwarding = true\n"
                               '[vnets.lab.permissions]\nsockets = ["uid:1001"]\n')  # fmt: skip
        result = pair.call("reload")
        assert "vnet lab: create" in result["changes"]
        assert os.stat(pair.socket).st_mode & 0o777 == 0o666  # uid 1001 must be able to connect
        assert _ttl(pair, "blue") == 33
        assert _workers(pair)[1]["vnets"] == ["blue", "lab"]
        pair.config.write_text(
            pair.config.read_text().replace("[vnets.lab]", "[vnets.lab]\nworker = 0")
        )
        with pytest.raises(ApiError, match="moving it to worker 0 needs a restart"):
            pair.call("reload")
        assert _workers(pair)[1]["vnets"] == ["blue", "lab"]
    finally:
        pair.config.write_text(original)
        pair.call("reload")
    assert [w["vnets"] for w in _workers(pair)] == [["green", "red"], ["blue"]]
    assert os.stat(pair.socket).st_mode & 0o777 == 0o660


def test_a_hangup_to_the_whole_group_reloads_nothing_and_stops_nothing(pair: Vrouterd) -> None:
    pids = [w["pid"] for w in _workers(pair)]
    for pid in pids:
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGHUP)
    time.sleep(0.5)
    assert [w["pid"] for w in _workers(pair)] == pids
    assert pair.proc is not None and pair.proc.poll() is None


def test_a_dead_worker_stops_the_daemon_and_the_next_start_cleans_up(tmp_path: Path) -> None:
    daemon = Vrouterd(tmp_path, _two_workers(_free_port()))
    try:
        daemon.start()
        blue_pid = _workers(daemon)[1]["pid"]
        assert isinstance(blue_pid, int)
        os.kill(blue_pid, signal.SIGKILL)
        assert daemon.proc is not None
        assert daemon.proc.wait(30) == 1
        assert "worker 1" in daemon.logtext() and "exited" in daemon.logtext()
        left = {n for n in netns_list() if n.startswith(daemon.prefix)}
        assert left == {daemon.ns("h2")}  # worker 0 removed its own; worker 1 had no chance
        daemon.start()
        assert "left by a previous run" in daemon.logtext()
        daemon.wait_ipv6()
        out = daemon.exec("h1", "ping", "-c", "2", "-i", "0.2", "198.51.100.2").stdout
        assert " 0% packet loss" in out
        assert daemon.stop() == 0
        assert not {n for n in netns_list() if n.startswith(daemon.prefix)}
    finally:
        daemon.cleanup()


def test_after_kill_9_of_every_process_the_next_start_removes_the_worker_leftovers(
    tmp_path: Path,
) -> None:
    daemon = Vrouterd(tmp_path, _two_workers(_free_port()))
    state = daemon.dir / "state"
    try:
        daemon.start()
        pids = [w["pid"] for w in _workers(daemon)]
        assert daemon.proc is not None
        for pid in [daemon.proc.pid, *pids]:
            assert isinstance(pid, int)
            os.kill(pid, signal.SIGKILL)
        daemon.proc.wait(10)
        for pid in pids:
            _wait_gone(pid)
        assert (state / "worker-0" / "owned.json").exists()
        assert len({n for n in netns_list() if n.startswith(daemon.prefix)}) == 4
        # The next run has no workers: it removes their namespaces and directories.
        daemon.config.write_text(daemon.config.read_text().replace("workers = 2\n", ""))
        daemon.start()
        assert "left by a previous run" in daemon.logtext()
        assert sorted(p.name for p in state.iterdir()) == ["owned.json"]
        daemon.wait_ipv6()
        out = daemon.exec("h1", "ping", "-c", "2", "-i", "0.2", "198.51.100.2").stdout
        assert " 0% packet loss" in out
        assert daemon.stop() == 0
        assert not {n for n in netns_list() if n.startswith(daemon.prefix)}
        assert list(state.iterdir()) == []
    finally:
        daemon.cleanup()


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"pid {pid} still there"
        time.sleep(0.05)


def test_destroying_an_end_of_a_wire_unplugs_the_other_end(tmp_path: Path) -> None:
    daemon = Vrouterd(tmp_path, _two_workers(_free_port()))
    try:
        daemon.start()
        daemon.call("interface.destroy", vnet="blue", interface="ep0")
        before = daemon.counters("red", "ep0")
        daemon.exec("h1", "ping", "-c", "2", "-i", "0.2", "-W", "1", "198.51.100.2", check=False)
        after = daemon.counters("red", "ep0")
        assert after["tx_packets"] == before["tx_packets"]  # nothing crosses a cut cable
        assert after["tx_errors"] > before["tx_errors"]
        assert "wire to the other worker lost" in daemon.logtext()
        assert daemon.stop() == 0
    finally:
        daemon.cleanup()
