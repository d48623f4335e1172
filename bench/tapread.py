#!/usr/bin/env python3
"""Reading a TAP: CPU per frame of ``os.read``, ``readinto`` and io_uring batches.

A TAP whose kernel side sits in a network namespace of its own
(198.18.0.1/24, a static neighbour 198.18.0.2) receives a 64-byte UDP flood
from ``bench/udpflood.c`` run in that namespace; this process holds the TAP's
fd.  Every round sleeps 4 ms (the kernel queues the frames, up to the TAP's
txqueuelen of 1000), then drains the queue in one of three ways and counts the
CPU time of the drain (``time.process_time``):

  read       ``os.read(fd, 65546)`` per frame until EAGAIN, what the daemon does
  readinto   ``FileIO.readinto`` a buffer kept for the device, then a copy of
             the frame (the stack keeps frames past the read)
  uring      io_uring: ``--batch`` reads kept in flight on the fd; a drain
             reaps the completions, copies each frame out and re-arms the read,
             entering the kernel once per pass (``io_uring_submit_and_wait(0)``)

The io_uring case needs the ``liburing`` Python binding, which is not a
dependency of vrouter: ``pip install --no-binary liburing liburing==2024.5.3``
(the Cython release; the newer Zig-built wheels stop with SIGILL on CPUs
without the instructions they were built for).  Without it the case is left
out and the output says so.

Usage: .venv/bin/python bench/tapread.py [--rounds 300] [--batch 64]
The figures are printed; `levers` in bench/RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from report import loadavg

HERE = Path(__file__).resolve().parent
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
READ_SIZE = 65546
FLOOD_SECONDS = 120


def sh(*args: str) -> None:
    subprocess.run(args, check=True, timeout=30)


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def drain_read(fd: int) -> int:
    frames = 0
    read = os.read
    while True:
        try:
            read(fd, READ_SIZE)
        except BlockingIOError:
            return frames
        frames += 1


def drain_readinto(fd: int) -> Callable[[], int]:
    device = open(fd, "rb", buffering=0, closefd=False)  # noqa: SIM115 (closed with the fd)
    buf = bytearray(READ_SIZE)
    readinto = device.readinto

    def drain() -> int:
        frames = 0
        while True:
            size = readinto(buf)
            if size is None:
                return frames
            bytes(buf[:size])
            frames += 1

    return drain


def drain_uring(fd: int, batch: int) -> Callable[[], int] | None:
    try:
        import liburing as uring  # type: ignore[import-not-found]
    except ImportError:
        return None
    ring: Any = uring.io_uring()
    cqe: Any = uring.io_uring_cqe()
    uring.io_uring_queue_init(max(batch * 2, 8), ring, 0)
    bufs = [bytearray(READ_SIZE) for _ in range(batch)]

    def arm(index: int) -> None:
        sqe = uring.io_uring_get_sqe(ring)
        uring.io_uring_prep_read(sqe, fd, bufs[index], READ_SIZE)
        uring.io_uring_sqe_set_data64(sqe, index)

    for index in range(batch):
        arm(index)
    uring.io_uring_submit(ring)

    def drain() -> int:
        frames = 0
        while True:
            uring.io_uring_submit_and_wait(ring, 0)
            ready = uring.io_uring_cq_ready(ring)
            if not ready:
                return frames
            for _ in range(ready):
                uring.io_uring_peek_cqe(ring, cqe)
                result, index = cqe.res, cqe.user_data
                uring.io_uring_cqe_seen(ring, cqe)
                if result > 0:
                    bytes(memoryview(bufs[index])[:result])
                    frames += 1
                arm(index)

    return drain


def measure(drain: Callable[[], int], rounds: int) -> tuple[int, float]:
    frames, cpu = 0, 0.0
    for _ in range(rounds):
        time.sleep(0.004)
        start = time.process_time()
        frames += drain()
        cpu += time.process_time() - start
    return frames, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("tapread: needs a C compiler for bench/udpflood.c")
    tag = os.getpid() % 100000
    ns, name = f"vrbtr{tag}", f"vrbtr{tag}"
    with tempfile.TemporaryDirectory() as work:
        flood_bin = str(Path(work) / "udpflood")
        sh(cc, "-O2", "-o", flood_bin, str(HERE / "udpflood.c"))
        fd = open_tap(name)
        sh("ip", "netns", "add", ns)
        try:
            sh("ip", "link", "set", name, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", "198.18.0.1/24", "dev", name)
            sh("ip", "-n", ns, "link", "set", name, "up")
            sh("ip", "-n", ns, "neigh", "add", "198.18.0.2", "lladdr", "02:00:00:00:00:02",
               "dev", name)  # fmt: skip
            flood = subprocess.Popen(
                ["ip", "netns", "exec", ns, flood_bin, "198.18.0.2", "9", str(FLOOD_SECONDS), "18"],
                stdout=subprocess.DEVNULL,
            )
            try:
                run_cases(fd, args.rounds, args.batch)
            finally:
                flood.kill()
                flood.wait(timeout=10)
        finally:
            os.close(fd)
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)
    return 0


def run_cases(fd: int, rounds: int, batch: int) -> None:
    """Each case twice; io_uring last, since its reads stay armed on the fd once made."""
    time.sleep(0.5)
    print(f"load average at start: {loadavg()}")
    readinto = drain_readinto(fd)
    for _ in range(2):
        report("read", measure(lambda: drain_read(fd), rounds), rounds)
        report("readinto", measure(readinto, rounds), rounds)
    uring = drain_uring(fd, batch)
    if uring is None:
        print("uring: left out, the liburing binding is not installed (see the docstring)")
    else:
        for _ in range(2):
            report(f"uring (batch {batch})", measure(uring, rounds), rounds)
    print(f"load average at end: {loadavg()}")


def report(label: str, measured: tuple[int, float], rounds: int) -> None:
    frames, cpu = measured
    print(f"{label:18s} {cpu / frames * 1e9:7.0f} ns per frame, {frames / rounds:5.0f} per drain")


if __name__ == "__main__":
    raise SystemExit(main())
