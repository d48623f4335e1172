#!/bin/sh
# Install what vrouter needs on Debian 12 (as root): system tools and a venv in .venv.
# Usage: scripts/install.sh [--test]   (--test adds the test tools and the test extra)
# The fib extra (numpy) gives large IPv4 tables their DIR-24-8 index.
set -eu
cd "$(dirname "$0")/.."
# libpcap0.8: vrouterd compiles capture filters with it (ctypes); it is not in a
# base Debian 12 (priority optional).
packages="python3 python3-venv iproute2 iputils-ping libpcap0.8"
extra="[fib]"
if [ "${1:-}" = "--test" ]; then
    packages="$packages traceroute iperf3 curl tcpdump ndisc6 iputils-tracepath prometheus strace"
    # zsh: the completion test; groff-base: the man pages are rendered in a test.
    packages="$packages zsh groff-base"
    # systemd: systemd-analyze verify; podman and debootstrap: the container image.
    packages="$packages systemd podman debootstrap bird2"
    # frr: FRR's ripd for the keyed-MD5 RIP interop test (its own instances in namespaces).
    packages="$packages frr"
    # ethtool: the VXLAN tests turn off tx checksum offload on a Linux VTEP's veth.
    packages="$packages ethtool"
    # tshark: Wireshark's STP dissector reads the RST BPDUs vrouter encodes (a decoder
    # written by others, beside the hand-built bytes of 802.1D-2004 9.3.3).
    packages="$packages tshark"
    # radvd: a Linux router's advertisements for the SLAAC-as-a-host test (run in a namespace).
    packages="$packages radvd"
    # isc-dhcp-client, busybox (udhcpc), dhcpcd-base: real DHCP clients against the
    # vnet DHCP server (dhclient -6 -S also asks its stateless DHCPv6 server);
    # dnsmasq-base: a real upstream server for the vnet DHCP client.
    packages="$packages isc-dhcp-client busybox dhcpcd-base dnsmasq-base"
    extra="[fib,test]"
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
# The frr package enables and starts a default instance (zebra, staticd) on the host.
# The tests run their own (pathspace -N, in namespaces) and need none, so when this
# script installed frr, stop that instance and keep it from starting at boot.  An frr
# that was there before is left as it was.
case " $missing " in
*" frr "*)
    if [ -d /run/systemd/system ]; then
        systemctl disable --now frr.service >/dev/null 2>&1 ||
            echo "install.sh: could not stop frr.service (the tests do not need it)" >&2
    else
        # No systemd running (a container): policy-rc.d usually kept it from starting.
        if [ -x /etc/init.d/frr ]; then /etc/init.d/frr stop >/dev/null 2>&1 || true; fi
        systemctl disable frr.service >/dev/null 2>&1 || update-rc.d frr disable >/dev/null 2>&1 || true
    fi
    ;;
esac
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extra"

# Type=notify-reload needs systemd 253; Debian 12 has 252, whose systemd-analyze
# rejects the unit.  For the tests, unpack systemd-analyze from bookworm-backports
# into .venv (apt's own lists and cache there; the system's packages are untouched)
# and put a wrapper first on the venv's PATH.
if [ "${1:-}" = "--test" ]; then
    have=$(systemd-analyze --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
    if [ "${have:-0}" -lt 253 ] && [ ! -x .venv/bin/systemd-analyze ]; then
        apt_dir="$PWD/.venv/opt/apt"
        root="$PWD/.venv/opt/systemd"
        mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" \
            "$apt_dir/sources.list.d" "$root"
        echo "deb http://deb.debian.org/debian bookworm-backports main" >"$apt_dir/sources.list"
        set -- -q -o "Dir::Etc::sourcelist=$apt_dir/sources.list" \
            -o "Dir::Etc::sourceparts=$apt_dir/sources.list.d" \
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" \
            -o Debug::NoLocking=1 -o APT::Sandbox::User=root
        apt-get "$@" update
        version=$(apt-cache "$@" policy systemd \
            | sed -n 's/^ *\([0-9.]*-[^ ]*~bpo12+[0-9]*\) .*/\1/p' | head -n 1)
        [ -n "$version" ] || { echo "install.sh: no systemd in bookworm-backports" >&2; exit 1; }
        (cd "$apt_dir" && apt-get "$@" download "systemd=$version" \
            "libsystemd-shared=$version" "libsystemd0=$version")
        for deb in "$apt_dir"/*.deb; do dpkg-deb -x "$deb" "$root"; done
        rm -f "$apt_dir"/*.deb
        libdir=$(dirname "$(find "$root" -name 'libsystemd-shared-*.so' | head -n 1)")
        cat >.venv/bin/systemd-analyze <<EOF
#!/bin/sh
# systemd-analyze $version from bookworm-backports (scripts/install.sh --test)
LD_LIBRARY_PATH="$libdir:$(dirname "$libdir")" exec "$root/usr/bin/systemd-analyze" "\$@"
EOF
        chmod +x .venv/bin/systemd-analyze
        .venv/bin/systemd-analyze --version | head -n 1
    fi
fi
