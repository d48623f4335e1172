#!/bin/sh
# Capture real TCP segments from the Linux kernel for tests/unit/transport/tcp/test_linux.py.
#
# Two network namespaces joined by a veth pair (192.0.2.1/24 + 2001:db8::1/64
# in A, .2/::2 in B), tcpdump on A's end.  For IPv4 and then IPv6, a client
# in B connects to a server in A on port 8080, sends "hello", the server
# answers "world" and both close; then the client connects to the closed
# port 8081 and gets a reset.
# Usage (root): sh tests/unit/transport/tcp/capture_linux.sh OUTDIR
# Writes OUTDIR/linux_tcp.pcap and prints every TCP segment in hex.
# Python is the venv's (scripts/install.sh), which has dpkt; PYTHON=... overrides.
set -eu
python=${PYTHON:-$(cd "$(dirname "$0")/../../../.." && pwd)/.venv/bin/python}
out=${1:?usage: capture_linux.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tag="tc$$"
a="${tag}a"
b="${tag}b"
pids=""

cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    sleep 0.3
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$a"
ip netns add "$b"
for ns in "$a" "$b"; do
    ip -n "$ns" link set lo up
done
ip -n "$a" link add "${tag}a" type veth peer name "${tag}b" netns "$b"
ip -n "$a" addr add 192.0.2.1/24 dev "${tag}a"
ip -n "$b" addr add 192.0.2.2/24 dev "${tag}b"
ip -n "$a" addr add 2001:db8::1/64 dev "${tag}a" nodad
ip -n "$b" addr add 2001:db8::2/64 dev "${tag}b" nodad
ip -n "$a" link set "${tag}a" up
ip -n "$b" link set "${tag}b" up
# Complete checksums on the wire (veth would leave them partial).
ip netns exec "$a" ethtool -K "${tag}a" tx off >/dev/null
ip netns exec "$b" ethtool -K "${tag}b" tx off >/dev/null
sleep 1

ip netns exec "$a" tcpdump -q -U -i "${tag}a" -w "$out/linux_tcp.pcap" 'tcp' 2>/dev/null &
pids="$pids $!"
sleep 1

for family in 4 6; do
    if [ "$family" = 4 ]; then server=192.0.2.1; else server=2001:db8::1; fi
    ip netns exec "$a" "$python" -c "
import socket
s = socket.socket(socket.AF_INET$([ "$family" = 6 ] && echo 6))
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$server', 8080)); s.listen(1)
c, _ = s.accept()
assert c.recv(100) == b'hello'
c.sendall(b'world'); c.shutdown(socket.SHUT_WR)
assert c.recv(100) == b''
c.close()
" &
    server_pid=$!
    sleep 0.5
    ip netns exec "$b" "$python" -c "
import socket, time
c = socket.create_connection(('$server', 8080))
c.sendall(b'hello')
assert c.recv(100) == b'world'
assert c.recv(100) == b''
c.close()
time.sleep(0.2)
try:
    socket.create_connection(('$server', 8081), timeout=2)
except ConnectionRefusedError:
    pass
"
    wait "$server_pid"
done
sleep 1
"$python" - "$out/linux_tcp.pcap" <<'PY'
import sys
import dpkt
for ts, frame in dpkt.pcap.Reader(open(sys.argv[1], "rb")):
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    print(type(ip).__name__, bytes(ip.src).hex(), bytes(ip.dst).hex(), bytes(ip.data).hex())
PY
