"""Suite-wide settings.

Hypothesis runs without per-example deadlines (a loaded CI machine is not a
slow implementation) and, under CI, derandomized so a run is repeatable.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
