"""Host tools (``ip``, ``mount``, ``sysctl`` …) run by the daemon, bounded in time.

Each call waits at most ``timeout`` seconds; a tool that fails or does not
answer raises the caller's error class, its message the command's label and
the tool's own complaint, so the caller's error names what went wrong.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


def run(cmd: Sequence[str], error: type[Exception], label: str | None = None,
        timeout: float = 30) -> str:  # fmt: skip
    """Run ``cmd`` and return its standard output.

    ``error(f"{label}: {stderr}")`` if it exits non-zero, ``error(f"{label}: no
    answer in {timeout} s")`` if it runs longer; ``label`` defaults to the
    command line.
    """
    what = label if label is not None else " ".join(cmd)
    try:
        result = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what}: no answer in {timeout:g} s") from None
    if result.returncode != 0:
        raise error(f"{what}: {result.stderr.strip() or 'failed'}")
    return result.stdout
