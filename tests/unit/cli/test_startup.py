"""``vrouterctl`` starts light: what only ``capture`` needs is imported by ``capture``."""

from __future__ import annotations

import json
import subprocess

from harness import python

# Runs vrouterctl's main() with ARGV in a fresh interpreter, then prints which
# of the heavy modules got imported.
PROBE = """
import json, sys
from vrouter.cli import vrouterctl
try:
    vrouterctl.main(sys.argv[1:])
except SystemExit:
    pass
heavy = ("dpkt", "vrouter.link.capture", "numpy", "uvloop", "prometheus_client")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


def _imported(*argv: str) -> list[str]:
    result = subprocess.run(
        python("-c", PROBE, *argv), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.splitlines()[-1]))


def test_a_view_command_imports_no_capture_code() -> None:
    assert _imported("--socket", "/nonexistent/control.sock", "vnet", "list") == []


def test_help_imports_no_capture_code() -> None:
    assert _imported("--help") == []


def test_capture_imports_what_it_needs() -> None:
    assert _imported("capture", "--help") == ["dpkt", "vrouter.link.capture"]
