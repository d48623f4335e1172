"""The container image: built by scripts/build-image.sh, checked from the inside.

podman builds here but cannot run containers (the CI machine's rlimits), so
the image is checked the way a runtime would see it: its configuration with
``podman image inspect``, its file system by chrooting into
``podman image mount`` (read-only) and into a created container's mount
(writable) to run the entrypoint and the healthcheck command.

The first build of a machine runs debootstrap (about a minute and a half
here); later builds reuse the cached base tree and podman's layers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 1200
"""Seconds the build may take: debootstrap, apt in the builder, pip."""

ENTRYPOINT = ["/opt/vrouter/bin/vrouterd"]
CMD = ["-c", "/etc/vrouter/vrouter.toml"]
HEALTHCHECK = ["CMD", "/opt/vrouter/bin/vrouterctl", "status"]

# Epairs only: runs in a chroot without devices, namespaces or capabilities.
EPAIRS = """
[vnets.red.interfaces.ep0]
type = "epair"
peer = "blue:ep0"
addresses = ["203.0.113.1/30"]

[vnets.blue.interfaces.ep0]
type = "epair"
peer = "red:ep0"
addresses = ["203.0.113.2/30"]
"""


def _run(*cmd: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """Build the image once for this module; remove its tag afterwards (layers stay cached)."""
    missing = [t for t in ("podman", "debootstrap", "chroot") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the image tests need {', '.join(missing)}: run scripts/install.sh --test")
    tag = f"localhost/vrouter:test-{os.getpid()}"
    start = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-image.sh"), tag],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
        cwd=ROOT,
    )
    took = time.monotonic() - start
    print(f"\nscripts/build-image.sh took {took:.0f}s")
    if result.returncode != 0:
        raise AssertionError(
            f"scripts/build-image.sh exited {result.returncode} after {took:.0f}s\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
    try:
        yield tag
    finally:
        _run("podman", "rmi", "--force", tag, check=False)


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    """Return the image's configuration (podman reports the healthcheck beside it)."""
    out = _run("podman", "image", "inspect", image).stdout
    inspected = json.loads(out)[0]
    config = dict(inspected["Config"])
    config.setdefault("Healthcheck", inspected.get("Healthcheck"))
    return config


@pytest.fixture(scope="module")
def rootfs(image: str) -> Iterator[Path]:
    """Mount the image read-only and yield its root."""
    path = Path(_run("podman", "image", "mount", image).stdout.strip())
    try:
        yield path
    finally:
        _run("podman", "image", "unmount", image, check=False)


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_entrypoint_command_and_healthcheck(config: dict[str, Any]) -> None:
    assert config["Entrypoint"] == ENTRYPOINT, "exec form, no shell in between"
    assert config["Cmd"] == CMD
    assert config["Healthcheck"] is not None, "HEALTHCHECK needs the docker image format"
    assert config["Healthcheck"]["Test"] == HEALTHCHECK
    assert "DEBIAN_FRONTEND=noninteractive" not in config.get("Env", []), "a build-time setting"
    assert config.get("User", "") in ("", "root", "0")
    assert "9585/tcp" in config.get("ExposedPorts", {}), "the metrics port"
    labels = config.get("Labels") or {}
    assert labels.get("org.opencontainers.image.title") == "vrouter", labels


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_check_and_version_in_the_image(config: dict[str, Any], rootfs: Path) -> None:
    check = _run("chroot", str(rootfs), *config["Entrypoint"], "--check", *config["Cmd"])
    assert check.stdout.strip() == "/etc/vrouter/vrouter.toml: OK (3 vnets, 6 interfaces)"
    version = _run("chroot", str(rootfs), *config["Entrypoint"], "--version")
    frozen = _run("chroot", str(rootfs), "/opt/vrouter/bin/pip", "freeze").stdout
    pins = (Path(__file__).resolve().parents[2] / "constraints.txt").read_text()
    for line in frozen.splitlines():
        name = line.split("==")[0].lower().replace("_", "-")
        if any(p.lower().replace("_", "-").startswith(name + "==") for p in pins.splitlines()):
            assert line.lower().replace("_", "-") in pins.lower().replace("_", "-"), line
    import vrouter

    assert version.stdout.strip() == f"vrouterd {vrouter.__version__}"
    # The final stage holds the runtime only: iproute2 for host namespaces, no compiler.
    assert (rootfs / "usr/bin/ip").exists() or (rootfs / "bin/ip").exists()
    assert not (rootfs / "usr/bin/gcc").exists()
    # The build's CA bundle secret never lands in the image.
    assert not (rootfs / "run/secrets").exists() or not any((rootfs / "run/secrets").iterdir())


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_entrypoint_serves_and_healthcheck_passes(image: str, config: dict[str, Any]) -> None:
    container = _run("podman", "create", "--no-healthcheck", image).stdout.strip()
    proc: subprocess.Popen[bytes] | None = None
    try:
        root = Path(_run("podman", "mount", container).stdout.strip())
        (root / "etc/vrouter/epairs.toml").write_text(EPAIRS)
        log = root / "vrouterd.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["chroot", str(root), *config["Entrypoint"], "-c", "/etc/vrouter/epairs.toml"],
                stdout=out,
                stderr=out,
            )
        health = config["Healthcheck"]["Test"][1:]
        deadline = time.monotonic() + 20
        while True:
            result = _run("chroot", str(root), *health, timeout=10, check=False)
            if result.returncode == 0:
                break
            assert proc.poll() is None, f"vrouterd exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"healthcheck never passed: {result.stderr}"
            time.sleep(0.2)
        assert "vnets: 2" in result.stdout
        assert "config: /etc/vrouter/epairs.toml" in result.stdout
        proc.terminate()
        assert proc.wait(20) == 0, log.read_text()
        assert not (root / "run/vrouter/control.sock").exists()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _run("podman", "umount", container, check=False)
        _run("podman", "rm", "--force", container, check=False)
