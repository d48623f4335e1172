# vrouterd in a container.
#
#   docker build -t vrouter .
#   docker run --cap-add NET_ADMIN --device /dev/net/tun \
#       -v ./my.toml:/etc/vrouter/vrouter.toml vrouter
#
# BASE is any Debian 12 image; scripts/build-image.sh passes one it built from
# Debian's packages (for machines that reach no container registry).
ARG BASE=debian:bookworm-slim

# --- builder: a venv in /opt/vrouter with the package and its dependencies ---
FROM ${BASE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
# gcc and the headers build python-pytun, which PyPI ships as source only.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md constraints.txt /src/
COPY vrouter /src/vrouter
COPY man /src/man
# EXTRAS: "fib" (numpy: the DIR-24-8 index of IPv4 tables past 262,144
# routes), or "" for a smaller image whose large tables go without it.
ARG EXTRAS=fib
# The optional secret "ca-certificates" is a CA bundle for pip (a TLS-inspecting
# proxy's, say): it is mounted for this step only and never stored in the image.
RUN --mount=type=secret,id=ca-certificates,required=false \
    if [ -s /run/secrets/ca-certificates ]; then \
        export PIP_CERT=/run/secrets/ca-certificates; \
    fi \
    && python3 -m venv /opt/vrouter \
    && /opt/vrouter/bin/pip install --no-cache-dir --disable-pip-version-check \
        -c /src/constraints.txt "/src${EXTRAS:+[$EXTRAS]}" \
    && /opt/vrouter/bin/vrouterd --version

# --- final: the interpreter, iproute2 (host namespaces) and the venv ----------
FROM ${BASE}
LABEL org.opencontainers.image.title="vrouter" \
      org.opencontainers.image.description="Many virtual network stacks (vnets) in one userspace daemon, over TAP devices" \
      org.opencontainers.image.licenses="BSD-2-Clause" \
      org.opencontainers.image.version="0.1.0"
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 iproute2 libpcap0.8 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/vrouter
# DHCP leases (daemon.data_dir): a volume, so they outlive the container.
VOLUME ["/var/lib/vrouter"]
COPY --from=builder /opt/vrouter /opt/vrouter
# The demo topology as the example config; mount your own over it.
COPY configs/demo.toml /etc/vrouter/vrouter.toml
# The daemon runs as root inside the container: TAP devices need CAP_NET_ADMIN,
# which `docker run --cap-add NET_ADMIN` grants to root only.
# Prometheus metrics, where the config listens for them (`metrics = "[::]:9585"`;
# the demo's listens on the container's loopback only).
EXPOSE 9585/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
    CMD ["/opt/vrouter/bin/vrouterctl", "status"]
ENTRYPOINT ["/opt/vrouter/bin/vrouterd"]
CMD ["-c", "/etc/vrouter/vrouter.toml"]
