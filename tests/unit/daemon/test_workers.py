"""Workers: placing vnets, the wires between workers, a worker's config, the front's plan."""

from __future__ import annotations

import os

import pytest

from vrouter.daemon import metrics
from vrouter.daemon.config import Config, ConfigError, parse
from vrouter.daemon.front import Front
from vrouter.daemon.workers import Spec, Wire, assign, subset, wires
from vrouter.daemon.workers_metrics import WorkersScrape

TEXT = """
[daemon]
control_socket = "/run/t/c.sock"
state_dir = "/run/t"
{daemon}

[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]

[vnets.red.interfaces.ep1]
type = "epair"
peer = "green:ep0"

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]

[vnets.green.interfaces.ep0]
type = "epair"
peer = "red:ep1"

[vnets.lab]
[vnets."lab/r1"]
{more}
"""


def cfg(daemon: str = "workers = 2", more: str = "") -> Config:
    return parse(TEXT.format(daemon=daemon, more=more), "/etc/v.toml")


def edit(old: str, new: str) -> Config:
    text = TEXT.format(daemon="workers = 2", more="")
    assert old in text
    return parse(text.replace(old, new), "/etc/v.toml")


def test_vnets_are_dealt_out_in_file_order_to_the_least_loaded_worker() -> None:
    assert assign(cfg(), 2) == {"red": 0, "blue": 1, "green": 0, "lab": 1}
    assert assign(cfg(), 3) == {"red": 0, "blue": 1, "green": 2, "lab": 0}


def test_a_pin_wins_and_running_vnets_stay_where_they_run() -> None:
    pinned = cfg(more='[vnets.zoo]\nworker = 1\n[vnets.blue.sysctl]\n"net.inet.ip.ttl" = 9')
    assert pinned.vnets[-1].worker == 1
    placed = assign(pinned, 2, running={"blue": 0, "lab": 0, "gone": 1})
    assert placed["zoo"] == 1 and placed["blue"] == 0 and placed["lab"] == 0
    assert "gone" not in placed


def test_epairs_between_workers_are_wires() -> None:
    config = cfg()
    assert wires(config, assign(config, 2)) == [Wire(("blue", "ep0"), ("red", "ep0"))]
    assert wires(config, {"red": 0, "blue": 0, "green": 0, "lab": 0}) == []
    assert str(Wire(("blue", "ep0"), ("red", "ep0"))) == "blue:ep0 <-> red:ep0"


def test_a_worker_runs_its_vnets_with_children_and_its_own_socket_and_state() -> None:
    config = cfg(
        daemon='metrics = "127.0.0.1:9585"\n'
        '[[daemon.socks]]\nvnet = "lab/r1"\nlisten = "127.0.0.1:1080"\n'
        '[[daemon.socks]]\nvnet = "red"\nlisten = "127.0.0.1:1081"'
    )
    mine = subset(config, 1, ["blue", "lab"])
    assert [v.name for v in mine.vnets] == ["blue", "lab", "lab/r1"]
    assert mine.daemon.control_socket == "/run/t/worker-1.sock"
    assert mine.daemon.state_dir == "/run/t/worker-1"
    assert mine.daemon.metrics is None and mine.daemon.workers == 1
    assert [g.vnet for g in mine.daemon.socks] == ["lab/r1"]
    assert mine.path == config.path


def test_the_spec_survives_the_command_line() -> None:
    spec = Spec(index=1, front=42, tops=("blue",), wires={"blue:ep0": 7}, ready=9)
    assert Spec.decode(spec.encode()) == spec
    with pytest.raises(ValueError):
        Spec.decode('{"index": 1}')
    with pytest.raises(ValueError):
        Spec.decode("[]")


@pytest.mark.parametrize(
    ("daemon", "more", "key", "reason"),
    [
        ("workers = 2", "", None, None),
        ("workers = 0", "", "daemon.workers", "out of range 1..64"),
        ('workers = "2"', "", "daemon.workers", "an integer"),
        ("workers = 2", "[vnets.zoo]\nworker = 2", "vnets.zoo.worker", "worker 2 does not exist"),
        ("", "[vnets.zoo]\nworker = 1", "vnets.zoo.worker", "daemon.workers = 1"),
        ("workers = 2", '[vnets."lab/r2"]\nworker = 0', "vnets.lab/r2.worker", "top-level"),
    ],
)
def test_worker_settings_are_checked(
    daemon: str, more: str, key: str | None, reason: str | None
) -> None:
    if key is None:
        assert cfg(daemon, more).daemon.workers == 2
        return
    with pytest.raises(ConfigError) as err:
        cfg(daemon, more)
    assert any(p.key == key and reason in p.reason for p in err.value.problems), err.value


def test_the_front_refuses_what_cannot_change_live() -> None:
    front = Front(cfg(), "", "info")
    assert front.placed == {"red": 0, "blue": 1, "green": 0, "lab": 1}
    front.placed["api-made"] = 1
    placed, reasons = front.replan(cfg(more="[vnets.new]"))
    assert reasons == []
    assert placed["new"] == 0 and placed["api-made"] == 1  # made through the API: stays

    _, reasons = front.replan(edit("[vnets.lab]", "[vnets.lab]\nworker = 0"))
    assert reasons == [
        "vnets.lab.worker: vnet lab runs in worker 1; moving it to worker 0 needs a restart"
    ]

    _, reasons = front.replan(
        edit('peer = "red:ep1"', 'peer = "red:ep1"\nmac = "02:00:00:00:00:01"')
    )
    assert reasons == []  # green and red share worker 0: an ordinary epair, re-created live

    _, reasons = front.replan(
        edit('peer = "red:ep0"', 'peer = "red:ep0"\nmac = "02:00:00:00:00:02"')
    )
    assert reasons == [
        "vnets.blue.interfaces.ep0: an epair between workers is only changed in place "
        "(addresses, mtu, ra); restart vrouterd to apply it"
    ]

    _, reasons = front.replan(cfg(more="[vnets.blue]\nworker = 0"))
    assert reasons[0] == (
        "vnets.blue.worker: vnet blue runs in worker 1; moving it to worker 0 needs a restart"
    )
    assert "epair blue:ep0 <-> red:ep0 removed between two workers" in reasons[1]

    _, reasons = front.replan(cfg(daemon="workers = 3"))
    assert reasons[0].startswith("daemon.workers: cannot change while vrouterd runs (2 -> 3)")


WORKER_TEXT = """\
# HELP vrouter_vnets Vnets running in this daemon.
# TYPE vrouter_vnets gauge
vrouter_vnets {vnets}
# HELP vrouter_build_info Always 1; the vrouter version as a label.
# TYPE vrouter_build_info gauge
vrouter_build_info{{version="0.1.0"}} 1.0
# HELP vrouter_interface_receive_packets_total Frames received.
# TYPE vrouter_interface_receive_packets_total counter
vrouter_interface_receive_packets_total{{interface="ep0",vnet="{vnet}"}} {packets}
# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total {cpu}
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes {memory}
"""


def test_the_front_serves_its_workers_metrics_as_one_target() -> None:
    front = Front(cfg(), "", "info")
    scraped: list[tuple[int, str | None]] = [
        (0, WORKER_TEXT.format(vnets=2, vnet="red", packets=5, cpu=1.5, memory=1000)),
        (1, None),  # did not answer
    ]
    query = metrics.Query(frozenset(metrics.NAMES))
    text = "".join(WorkersScrape(front, scraped).steps(query))
    assert 'vrouter_interface_receive_packets_total{interface="ep0",vnet="red"} 5' in text
    assert text.count("# TYPE vrouter_interface_receive_packets_total counter") == 1
    assert "vrouter_vnets 2.0" in text and text.count("vrouter_build_info{") == 1
    assert 'vrouter_worker_up{worker="0"} 1.0' in text
    assert 'vrouter_worker_up{worker="1"} 0.0' in text
    assert 'vrouter_worker_cpu_seconds_total{worker="0"} 1.5' in text
    assert 'vrouter_worker_resident_memory_bytes{worker="0"} 1000.0' in text
    assert text.count("\nprocess_cpu_seconds_total ") == 1  # the front's own, not the worker's
    assert "\nprocess_cpu_seconds_total 1.5\n" not in text  # the worker's sample, whole
    scraped[1] = (1, WORKER_TEXT.format(vnets=1, vnet="blue", packets=7, cpu=2, memory=2000))
    text = "".join(WorkersScrape(front, scraped).steps(query))
    assert 'vnet="blue"} 7' in text and "vrouter_vnets 3.0" in text


def test_a_worker_reads_the_text_its_front_read() -> None:
    from vrouter.daemon.workers import config_fd, read_text

    text = TEXT.format(daemon="workers = 2", more="# é, and more\n")
    fd = config_fd(text)
    assert os.get_inheritable(fd) is False  # passed on explicitly (pass_fds), not leaked
    assert read_text(fd) == text
