#!/bin/sh
# Capture real keyed-MD5 RIPv2 packets from FRR's ripd for tests/unit/rip/test_packet.py.
#
# Two network namespaces joined by two veth pairs; FRR (zebra and ripd) runs in
# the first, tcpdump on its ends:
#   link 1  192.0.2.49/28   ip rip authentication mode md5 auth-length rfc      (16)
#   link 2  192.0.2.65/28   ip rip authentication mode md5 auth-length old-ripd (20)
# Both use the password "vrouter-md5" (ip rip authentication string: key id 1);
# ripd advertises the static RIP route 198.51.100.0/25 and its connected networks.
# Usage (root, Debian package frr): sh tests/unit/rip/capture_frr.sh OUTDIR
# Writes OUTDIR/link{1,2}.pcap and prints every RIP payload in hex.
set -eu
out=${1:?usage: capture_frr.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tag="fc$$"
a="${tag}a"
b="${tag}b"
run="/var/run/frr/$a"
pids=""

cleanup() {
    for pidfile in "$run/ripd.pid" "$run/zebra.pid"; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT INT TERM

ip netns add "$a"
ip netns add "$b"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
for i in 1 2; do
    ip -n "$a" link add "${tag}a$i" type veth peer name "${tag}b$i" netns "$b"
    ip -n "$a" link set "${tag}a$i" up
    ip -n "$b" link set "${tag}b$i" up
done
ip -n "$a" addr add 192.0.2.49/28 dev "${tag}a1"
ip -n "$b" addr add 192.0.2.50/28 dev "${tag}b1"
ip -n "$a" addr add 192.0.2.65/28 dev "${tag}a2"
ip -n "$b" addr add 192.0.2.66/28 dev "${tag}b2"

for i in 1 2; do
    ip netns exec "$a" tcpdump -q -U -i "${tag}a$i" -w "$out/link$i.pcap" 'udp port 520' \
        2>/dev/null &
    pids="$pids $!"
done
sleep 1

mkdir -p "$run"
chown frr:frr "$run"
echo "hostname $a" >"$run/zebra.conf"
cat >"$run/ripd.conf" <<EOF
hostname $a
interface ${tag}a1
 ip rip authentication mode md5 auth-length rfc
 ip rip authentication string vrouter-md5
interface ${tag}a2
 ip rip authentication mode md5 auth-length old-ripd
 ip rip authentication string vrouter-md5
router rip
 version 2
 timers basic 5 30 20
 network ${tag}a1
 network ${tag}a2
 route 198.51.100.0/25
EOF
chown frr:frr "$run"/*.conf
for daemon in zebra ripd; do
    ip netns exec "$a" "/usr/lib/frr/$daemon" -d -N "$a" -f "$run/$daemon.conf" \
        -i "$run/$daemon.pid" --log "file:$out/$daemon.log"
done
sleep 12
cleanup
trap - EXIT INT TERM
for i in 1 2; do
    echo "== link $i"
    tcpdump -r "$out/link$i.pcap" -nn -x 2>/dev/null | head -200
done
