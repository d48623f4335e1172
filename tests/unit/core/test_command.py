"""vrouter.core.command: host tools bounded in time, failures in the caller's error class."""

from __future__ import annotations

import pytest
from harness import python

from vrouter.core import command


class ToolError(Exception):
    pass


def test_returns_standard_output() -> None:
    assert command.run(python("-c", "print('ok')"), ToolError) == "ok\n"


def test_failure_names_the_label_and_the_tools_complaint() -> None:
    script = "import sys; sys.stderr.write('no such device\\n'); sys.exit(2)"
    with pytest.raises(ToolError, match=r"^netns x: cannot set y: no such device$"):
        command.run(python("-c", script), ToolError, "netns x: cannot set y")


def test_failure_without_a_complaint_says_failed() -> None:
    with pytest.raises(ToolError, match=r"-c import sys; sys.exit\(1\): failed$"):
        command.run(python("-c", "import sys; sys.exit(1)"), ToolError)


def test_a_tool_that_does_not_answer_is_stopped() -> None:
    with pytest.raises(ToolError, match=r"^sleeper: no answer in 0.2 s$"):
        command.run(python("-c", "import time; time.sleep(5)"), ToolError,
                    "sleeper", timeout=0.2)  # fmt: skip
