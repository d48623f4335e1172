"""``vrouterctl capture``: tcpdump for an interface of a vnet.

The daemon passes a socket fed by a tap on the interface (the filter runs
in the kernel, see :mod:`vrouter.link.capture`); this writes pcap (``-w
FILE``, ``-w -``) or one line per packet, until Ctrl-C, ``-c COUNT`` or the
interface going away.  Imported only for the capture command: it needs
dpkt, which no other command does.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from typing import BinaryIO

from vrouter.cli import reach
from vrouter.cli.render import stdout_gone
from vrouter.link.capture import HEADER_LEN, SNAPLEN_MAX, PcapWriter, decode_record, summarize


def parser() -> argparse.ArgumentParser:
    cap = argparse.ArgumentParser(
        prog="vrouterctl capture",
        description="Capture the frames of one interface of a vnet, like tcpdump.",
        epilog="Exit status: 0 done, 1 refused (vnet, interface, filter), 2 daemon unreachable.",
    )
    cap.add_argument("vnet", help="vnet name")
    cap.add_argument("interface", help="interface name in that vnet")
    cap.add_argument("-c", dest="count", type=_positive, metavar="N", help="stop after N packets")
    cap.add_argument(
        "-w", dest="write", metavar="FILE", help="write pcap to FILE ('-': standard output)"
    )
    cap.add_argument(
        "-s",
        dest="snaplen",
        type=int,
        default=0,
        metavar="SNAPLEN",
        help=f"bytes kept of each frame (default and 0: {SNAPLEN_MAX})",
    )
    cap.add_argument(
        "--direction", choices=("in", "out", "both"), default="both", help="frames to capture"
    )
    cap.add_argument("filter", nargs="*", metavar="FILTER", help="tcpdump filter expression")
    return cap


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(socket_path: str, words: list[str]) -> int:
    """Run ``vrouterctl capture WORDS``; return the exit status."""
    args = parser().parse_intermixed_args(words)
    args.socket = socket_path
    snaplen = args.snaplen or SNAPLEN_MAX
    request = {
        "vnet": args.vnet,
        "interface": args.interface,
        "snaplen": snaplen,
        "direction": args.direction,
        "filter": " ".join(args.filter),
    }
    try:
        _, fd = reach.ask(args.socket, lambda client: client.call_fd("capture", **request))
    except KeyboardInterrupt:
        return 130
    with socket.socket(fileno=fd) as sock:
        out: BinaryIO | None = None
        if args.write == "-":
            out = sys.stdout.buffer
        elif args.write is not None:
            try:
                out = open(args.write, "wb")  # noqa: SIM115 - closed below
            except OSError as err:
                print(f"vrouterctl: {args.write}: {err.strerror}", file=sys.stderr)
                return 1
        try:
            return _receive(sock, args, snaplen, out)
        finally:
            if out is not None and out is not sys.stdout.buffer:
                out.close()


def _receive(
    sock: socket.socket, args: argparse.Namespace, snaplen: int, out: BinaryIO | None
) -> int:
    """Copy records from ``sock`` to ``out`` (pcap) or stdout (lines) until done."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # end like Ctrl-C: flush, count
    pcap: PcapWriter | None = None
    flush = out.flush if out is not None else sys.stdout.flush
    buf = bytearray(HEADER_LEN + snaplen)
    view = memoryview(buf)
    count = dropped = 0
    ended = False
    try:
        if out is not None:
            pcap = PcapWriter(out, snaplen)
            flush()
        print(
            f"vrouterctl: listening on {args.vnet} {args.interface}, "
            f"link-type EN10MB (Ethernet), snapshot length {snaplen} bytes",
            file=sys.stderr,
            flush=True,
        )
        while args.count is None or count < args.count:
            try:
                n = sock.recv_into(buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:  # idle: let the reader see what we have
                flush()
                n = sock.recv_into(buf)
            if n == 0:
                ended = True
                break
            record = decode_record(view[:n])
            dropped = max(dropped, record.dropped)
            if pcap is not None:
                pcap.write(record.timestamp_ns, record.frame, record.orig_len)
            else:
                print(summarize(record))
            count += 1
        flush()
    except KeyboardInterrupt:
        try:
            flush()
        except BrokenPipeError:
            stdout_gone()
    except BrokenPipeError:  # the reader of our output went away (| head, tcpdump -c)
        stdout_gone()
    if ended:
        print("vrouterctl: capture ended by vrouterd (interface or daemon gone)", file=sys.stderr)
    print(f"{count} packets captured", file=sys.stderr)
    if dropped:
        print(f"{dropped} packets dropped by vrouterd (reader too slow)", file=sys.stderr)
    return 0
