#!/bin/sh
# Install vrouter with its test tools and run lint, type checks and the whole test suite.
# Real-traffic tests need root: they create network namespaces and TAP devices.
set -eu
cd "$(dirname "$0")/.."
scripts/install.sh --test
.venv/bin/ruff check vrouter tests
.venv/bin/mypy vrouter
exec .venv/bin/python -m pytest "$@"
