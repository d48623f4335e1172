#!/bin/sh
# Install vrouter and run the demo topology (configs/demo.toml) until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/vrouterd -c configs/demo.toml
