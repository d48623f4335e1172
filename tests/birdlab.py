"""BIRD routers and vrouter-ripd around a vrouterd, for the RIP and RIPng interop tests.

A :class:`BirdLab` gives BIRD routers (in the daemon's host namespaces) stub
networks with a host behind each, starts BIRD and vrouter-ripd on configs
written from the test's templates, and stops them all.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from harness import Vrouterd, python, run


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` with its stderr in ``log``."""
    with open(log, "wb") as stderr:
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)


def wait(what: str, check: Callable[[], bool], timeout: float = 40) -> None:
    """Poll ``check`` every 0.5 s until it holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class BirdLab:
    """The processes around ``daemon`` for one address family (4 or 6)."""

    def __init__(self, daemon: Vrouterd, family: int) -> None:
        self.d = daemon
        self.family = family
        self.procs: list[subprocess.Popen[bytes]] = []

    def stub(self, router: str, host: str, router_ip: str, host_ip: str) -> str:
        """Give BIRD router ``router`` a stub network with host ``host`` behind it."""
        p = self.d.prefix
        veth = f"{p}{router[-2:]}s"
        run("ip", "netns", "add", self.d.ns(host))
        run(
            "ip",
            "link",
            "add",
            veth,
            "netns",
            self.d.ns(router),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.d.ns(host),
        )
        nodad = ("nodad",) if self.family == 6 else ()
        for ns, ifname, address in ((router, veth, router_ip), (host, "eth0", host_ip)):
            run("ip", "-n", self.d.ns(ns), "addr", "add", address, "dev", ifname, *nodad)
            run("ip", "-n", self.d.ns(ns), "link", "set", ifname, "up")
            run("ip", "-n", self.d.ns(ns), "link", "set", "lo", "up")
        gateway = router_ip.split("/")[0]
        run(
            "ip",
            "-n",
            self.d.ns(host),
            f"-{self.family}",
            "route",
            "add",
            "default",
            "via",
            gateway,
        )
        knob = "net.ipv4.ip_forward" if self.family == 4 else "net.ipv6.conf.all.forwarding"
        self.d.exec(router, "sysctl", "-q", "-w", f"{knob}=1")
        return veth

    def bird(self, router: str, template: str, **fields: str) -> None:
        """Start BIRD in ``router``'s namespace on ``template`` filled with ``fields``."""
        d = self.d
        conf = d.dir / f"bird-{router}.conf"
        conf.write_text(template.format(**fields))
        self.procs.append(
            spawn(
                [
                    "ip",
                    "netns",
                    "exec",
                    d.ns(router),
                    "bird",
                    "-f",
                    "-c",
                    str(conf),
                    "-s",
                    str(d.dir / f"bird-{router}.ctl"),
                    "-P",
                    str(d.dir / f"bird-{router}.pid"),
                ],
                d.dir / f"bird-{router}.log",
            )
        )

    def ripd(self, template: str) -> None:
        """Start vrouter-ripd on ``template`` (filled with the control socket and prefix)."""
        conf = self.d.dir / "ripd.toml"
        conf.write_text(template.format(socket=self.d.socket, p=self.d.prefix))
        self.procs.append(
            spawn(
                python("-m", "vrouter.rip.daemon", "-c", str(conf)),
                self.d.dir / "ripd.log",
            )
        )

    def stop(self) -> None:
        """Stop every process started here."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
