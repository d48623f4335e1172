#!/bin/sh
# Capture real RIPv2 and RIPng packets from BIRD 2 for tests/unit/rip/test_packet.py.
#
# Two network namespaces joined by four veth pairs, BIRD in each, tcpdump on
# the first namespace's ends:
#   link 1  192.0.2.0/28    RIPv2, no authentication; A exports static routes
#                           with a route tag and one with a next hop on the link
#   link 2  192.0.2.16/28   RIPv2, authentication plaintext, password "vrouter-plain"
#   link 3  192.0.2.32/28   RIPv2, authentication cryptographic (keyed MD5),
#                           password "vrouter-md5", key id 1
#   link 4  2001:db8:4::/64 RIPng; A exports static routes, one via a link-local
#                           next hop on the link
# Usage (root): sh tests/unit/rip/capture_bird.sh OUTDIR
# Writes OUTDIR/link{1,2,3,4}.pcap and prints every RIP payload in hex.
set -eu
out=${1:?usage: capture_bird.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tag="rc$$"
a="${tag}a"
b="${tag}b"
pids=""

cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add "$a"
ip netns add "$b"
for ns in "$a" "$b"; do
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.default.accept_dad=0
    ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.accept_dad=0
    ip -n "$ns" link set lo up
done
for i in 1 2 3 4; do
    ip -n "$a" link add "${tag}a$i" type veth peer name "${tag}b$i" netns "$b"
    ip -n "$a" link set "${tag}a$i" up
    ip -n "$b" link set "${tag}b$i" up
done
ip -n "$a" addr add 192.0.2.1/28 dev "${tag}a1"
ip -n "$b" addr add 192.0.2.2/28 dev "${tag}b1"
ip -n "$a" addr add 192.0.2.17/28 dev "${tag}a2"
ip -n "$b" addr add 192.0.2.18/28 dev "${tag}b2"
ip -n "$a" addr add 192.0.2.33/28 dev "${tag}a3"
ip -n "$b" addr add 192.0.2.34/28 dev "${tag}b3"
ip -n "$a" addr add 2001:db8:4::1/64 dev "${tag}a4" nodad
ip -n "$b" addr add 2001:db8:4::2/64 dev "${tag}b4" nodad
sleep 1

for i in 1 2 3 4; do
    ip netns exec "$a" tcpdump -q -U -i "${tag}a$i" -w "$out/link$i.pcap" \
        'udp port 520 or udp port 521' 2>/dev/null &
    pids="$pids $!"
done
sleep 1

cat >"$out/bird-a.conf" <<EOF
router id 192.0.2.1;
protocol device { scan time 1; }
protocol static st4 {
  ipv4;
  route 198.51.100.0/25 blackhole;
  route 198.51.100.128/26 via 192.0.2.3;
  route 198.51.100.192/27 blackhole;
  route 198.51.100.224/28 blackhole;
}
protocol static st6 {
  ipv6;
  route 2001:db8:100::/48 blackhole;
  route 2001:db8:200::/56 via fe80::3%${tag}a4;
  route 2001:db8:300::/64 blackhole;
}
filter tag4 {
  if net = 198.51.100.0/25 then rip_tag = 7;
  if net = 198.51.100.224/28 then rip_metric = 5;
  accept;
}
filter tag6 { if net = 2001:db8:100::/48 then rip_tag = 9; accept; }
protocol rip r1 {
  ipv4 { import all; export filter tag4; };
  interface "${tag}a1" { version 2; update time 3; };
}
protocol rip r2 {
  ipv4 { import all; export where net = 198.51.100.0/25; };
  interface "${tag}a2" { version 2; update time 3; authentication plaintext; password "vrouter-plain"; };
}
protocol rip r3 {
  ipv4 { import all; export where net = 198.51.100.0/25; };
  interface "${tag}a3" {
    version 2; update time 3; authentication cryptographic;
    password "vrouter-md5" { id 1; algorithm keyed md5; };
  };
}
protocol rip ng r4 {
  ipv6 { import all; export filter tag6; };
  interface "${tag}a4" { update time 3; };
}
EOF
cat >"$out/bird-b.conf" <<EOF
router id 192.0.2.2;
protocol device { scan time 1; }
protocol rip r1 { ipv4 { import all; export none; }; interface "${tag}b1" { version 2; update time 3; }; }
protocol rip r2 { ipv4 { import all; export none; }; interface "${tag}b2" { version 2; update time 3; authentication plaintext; password "vrouter-plain"; }; }
protocol rip r3 {
  ipv4 { import all; export none; };
  interface "${tag}b3" {
    version 2; update time 3; authentication cryptographic;
    password "vrouter-md5" { id 1; algorithm keyed md5; };
  };
}
protocol rip ng r4 { ipv6 { import all; export none; }; interface "${tag}b4" { update time 3; }; }
EOF
for ns in a b; do
    ip netns exec "${tag}$ns" bird -f -c "$out/bird-$ns.conf" -s "$out/bird-$ns.ctl" \
        -P "$out/bird-$ns.pid" 2>"$out/bird-$ns.log" &
    pids="$! $pids"
done
sleep 8
ip netns exec "$a" birdc -s "$out/bird-a.ctl" show route all >"$out/bird-a.routes" || true
ip netns exec "$b" birdc -s "$out/bird-b.ctl" show route all >"$out/bird-b.routes" || true
cleanup
trap - EXIT INT TERM
for i in 1 2 3 4; do
    echo "== link $i"
    tcpdump -r "$out/link$i.pcap" -nn -x 2>/dev/null | head -200
done
