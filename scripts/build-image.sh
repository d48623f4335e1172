#!/bin/sh
# Build the vrouter container image with podman, from Debian's packages only.
#
# Usage: scripts/build-image.sh [TAG]        (default TAG: localhost/vrouter:test; as root)
#
# For machines that reach no container registry: the base image is made with
# debootstrap (minbase + python3, python3-venv, iproute2), cleaned, and
# imported as localhost/vrouter-base:bookworm; then the Dockerfile is built on
# it with `podman build --isolation=chroot --build-arg BASE=...`.  Where a
# registry is reachable, `docker build -t vrouter .` does the same from
# debian:bookworm-slim.
#
# The debootstrap tree is cached as a tarball in $VROUTER_IMAGE_CACHE
# (default /var/tmp/vrouter-image), keyed by a hash of this script: it is
# rebuilt only when this script changes.  The imported base image carries the
# same key in a label and is re-imported only when the key differs.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SECURITY_MIRROR,
# VROUTER_IMAGE_CACHE, VROUTER_BASE_IMAGE (default localhost/vrouter-base:bookworm),
# VROUTER_BUILD_CA (CA bundle for pip in the build, default the machine's own).
set -eu
cd "$(dirname "$0")/.."

tag="${1:-localhost/vrouter:test}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
cache="${VROUTER_IMAGE_CACHE:-/var/tmp/vrouter-image}"
base="${VROUTER_BASE_IMAGE:-localhost/vrouter-base:bookworm}"
suite=bookworm
key="$(sha256sum "$0" | cut -c1-16)"
tarball="$cache/base-$suite-$key.tar"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "build-image.sh: $1 not found (scripts/install.sh --test installs it)" >&2
        exit 1
    }
}
need podman
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (debootstrap, podman)" >&2; exit 1; }

elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

if [ ! -s "$tarball" ]; then
    need debootstrap
    start=$(date +%s)
    mkdir -p "$cache"
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs" "$tarball.tmp"' EXIT INT TERM
    echo "build-image.sh: debootstrap $suite into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,iproute2 \
        "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
        tail -n 30 "$cache/debootstrap.log" >&2
        exit 1
    }
    # debootstrap installs the release as first published: add the updates.
    printf '%s\n' "deb $mirror $suite main" "deb $mirror $suite-updates main" \
        "deb $security $suite-security main" >"$rootfs/etc/apt/sources.list"
    DEBIAN_FRONTEND=noninteractive chroot "$rootfs" sh -c \
        'apt-get update -q && apt-get upgrade -y -q' >>"$cache/debootstrap.log" 2>&1 || {
        tail -n 30 "$cache/debootstrap.log" >&2
        exit 1
    }
    # What a container base does not need: package lists and caches, docs, logs.
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/tmp/* "$rootfs"/root/.cache
    # Drop what the container runtime provides, and the machine's own identity.
    : >"$rootfs/etc/hostname"
    : >"$rootfs/etc/resolv.conf"
    rm -f "$rootfs/etc/machine-id" "$rootfs/var/lib/dbus/machine-id"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    trap - EXIT INT TERM
    # Earlier keys' tarballs are stale.
    find "$cache" -maxdepth 1 -name "base-$suite-*.tar" ! -name "base-$suite-$key.tar" -delete
    echo "build-image.sh: base tree cached in $tarball ($(elapsed "$start"))"
else
    echo "build-image.sh: base tree from cache $tarball"
fi

have="$(podman image inspect --format '{{index .Labels "vrouter.base.key"}}' "$base" 2>/dev/null || true)"
if [ "$have" != "$key" ]; then
    podman import --change "LABEL vrouter.base.key=$key" --change 'CMD ["/bin/bash"]' \
        "$tarball" "$base" >/dev/null
    echo "build-image.sh: imported $base"
fi

# pip in the builder stage trusts what this machine trusts (a TLS-inspecting
# proxy's CA, say), through a build secret that never enters the image.
set --
ca="${VROUTER_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$ca" ] && set -- --secret "id=ca-certificates,src=$ca"
start=$(date +%s)
# docker format: the OCI image format has no HEALTHCHECK.
podman build --isolation=chroot --format docker --build-arg "BASE=$base" "$@" -t "$tag" .
echo "build-image.sh: built $tag ($(elapsed "$start"))"
