"""Suite-wide settings.

Helper processes run under the tests' own interpreter: starting a bare
``python3`` (the system's, without the project's dependencies) fails at once
(``harness.forbid_bare_python``).  Hypothesis runs without per-example
deadlines (a loaded CI machine is not a slow implementation) and, under CI,
derandomized so a run is repeatable.
"""

from __future__ import annotations

import os

from harness import forbid_bare_python
from hypothesis import settings

forbid_bare_python()

settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
