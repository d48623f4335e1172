#!/bin/sh
# Install what vrouter needs on Debian 12 (as root): system tools and a venv in .venv.
# Usage: scripts/install.sh [--test]   (--test adds the test tools and the test extra)
set -eu
cd "$(dirname "$0")/.."
packages="python3 python3-venv iproute2 iputils-ping"
extra=""
if [ "${1:-}" = "--test" ]; then
    packages="$packages traceroute iperf3 curl tcpdump ndisc6 iputils-tracepath prometheus"
    extra="[test]"
fi
export DEBIAN_FRONTEND=noninteractive
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extra"
