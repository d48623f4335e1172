"""Helper processes of the tests and benchmarks run under the tests' interpreter.

A bare ``python3`` is the system's: on a fresh machine it has none of the
project's dependencies, and on a machine where it happens to have them a
test passes for the wrong reason.  Two guards: at run time the suite's audit
hook (``harness.forbid_bare_python``) refuses to start one; before that, the
sources of the tests and benchmarks (which do not run under pytest) are
read for command lines naming one.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import bare_python, python, vrouterctl

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "harness.py"


@pytest.mark.parametrize(
    "argv",
    [
        ["python3", "-c", "pass"],
        ["python", "-c", "pass"],
        ["/usr/bin/python3.11", "-c", "pass"],
        ["ip", "netns", "exec", "nowhere", "python3", "-m", "http.server"],
        ["sh", "-c", "exec python3 -c pass"],
    ],
)
def test_starting_a_bare_python_fails(argv: list[str]) -> None:
    with pytest.raises(RuntimeError, match=r"harness\.PYTHON"):
        subprocess.run(argv, capture_output=True, timeout=10, check=False)


def test_a_shell_command_naming_python_fails() -> None:
    with pytest.raises(RuntimeError, match=r"harness\.PYTHON"):
        subprocess.run("python3 -c pass", shell=True, capture_output=True, timeout=10, check=False)


def test_spawning_a_bare_python_directly_fails() -> None:
    with pytest.raises(RuntimeError, match=r"harness\.PYTHON"):
        os.posix_spawn("/usr/bin/python3", ["python3", "-c", "pass"], os.environ)


def test_the_harness_interpreter_runs_project_code() -> None:
    result = subprocess.run(
        python("-c", "import dpkt, uvloop, vrouter.daemon.main"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_vrouterctl_runs_under_the_harness_interpreter() -> None:
    result = subprocess.run(
        vrouterctl("--socket", "/nonexistent/control.sock", "status"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "cannot reach vrouterd at /nonexistent/control.sock" in result.stderr


# -- the sources -----------------------------------------------------------------------


def _argv_words(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Yield the string literals that can be words of a command line: call arguments
    and list or tuple elements (not docstrings, messages or f-strings)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            items = [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.List | ast.Tuple):
            items = list(node.elts)
        else:
            continue
        for item in items:
            if isinstance(item, ast.Constant) and isinstance(item.value, str):
                yield item.lineno, item.value


def _executable_uses(tree: ast.AST) -> Iterator[int]:
    """Yield the lines that read ``sys.executable``."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "executable"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            yield node.lineno


def python_problems(path: Path, source: str) -> list[str]:
    """Return where the Python ``source`` of ``path`` names a bare interpreter, and, in the
    tests, where it decides the interpreter itself instead of asking the harness."""
    tree = ast.parse(source, str(path))
    found = [
        f"{path}:{line}: {text!r} starts a bare interpreter"
        for line, text in _argv_words(tree)
        if bare_python([text]) is not None
    ]
    if path != HARNESS and "tests" in path.parts:
        found += [
            f"{path}:{line}: sys.executable outside the harness (use harness.PYTHON)"
            for line in _executable_uses(tree)
        ]
    return found


_SHELL_PYTHON = re.compile(r"(^|[\s;&|(`])python[0-9.]*(\s|$)")


def shell_problems(path: Path, source: str) -> list[str]:
    """Return the lines of the shell script ``source`` that run a bare interpreter."""
    return [
        f"{path}:{n}: runs a bare interpreter"
        for n, line in enumerate(source.splitlines(), 1)
        if not line.lstrip().startswith("#") and _SHELL_PYTHON.search(line)
    ]


def _sources() -> list[Path]:
    """Return the test and bench sources but this file (whose examples name bare interpreters)."""
    here = Path(__file__).resolve()
    return sorted(
        p
        for d in ("tests", "bench")
        for p in (ROOT / d).rglob("*")
        if p.suffix in (".py", ".sh") and p != here
    )


def test_no_test_or_bench_source_starts_a_bare_python() -> None:
    sources = _sources()
    assert HARNESS in sources and ROOT / "bench" / "forwarding.py" in sources
    assert len([p for p in sources if p.suffix == ".sh"]) >= 2
    problems = []
    for path in sources:
        text = path.read_text()
        if path.suffix == ".py":
            problems += python_problems(path, text)
        else:
            problems += shell_problems(path, text)
    assert problems == []


def test_the_source_check_finds_what_it_looks_for() -> None:
    where = ROOT / "tests" / "integration" / "test_x.py"
    source = (
        '"""Run python3 -m http.server in h2."""\n'
        "import sys\n"
        'demo.exec("h1", "python3", "-c", "pass")\n'
        'cmd = ["ip", "netns", "exec", ns, "python", "-m", "http.server"]\n'
        "run(sys.executable, '-c', 'pass')\n"
        'print(f"`python3 bench/tcp.py --runs {n}`")\n'
    )
    assert python_problems(where, source) == [
        f"{where}:3: 'python3' starts a bare interpreter",
        f"{where}:4: 'python' starts a bare interpreter",
        f"{where}:5: sys.executable outside the harness (use harness.PYTHON)",
    ]
    assert python_problems(ROOT / "bench" / "x.py", "run(sys.executable)\n") == []
    script = '# python3 is not needed\nip netns exec "$a" python3 -c "pass" &\n"$python" - <<EOF\n'
    assert shell_problems(where, script) == [f"{where}:2: runs a bare interpreter"]
