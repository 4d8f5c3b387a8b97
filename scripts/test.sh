#!/usr/bin/env bash
# The test suite: the README's test command, and the one .ci/run runs.
#
# Usage: scripts/test.sh [PYTEST ARGUMENTS]     e.g. scripts/test.sh -m "not e2e"
#
# What it needs it makes first: the system packages (scripts/system-packages.sh: installed when run as
# root, otherwise listed with the tests that will be skipped, or fail with CI=true) and the virtual
# environment .venv of the checkout with '.[test]' installed (scripts/venv.sh: reused until
# pyproject.toml changes). Then it runs pytest with the interpreter of .venv, from the checkout's root
# (paths in the arguments are relative to it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/system-packages.sh tests
scripts/venv.sh test
echo "== .venv/bin/python -m pytest -q $(printf "%q " "$@")"
exec .venv/bin/python -m pytest -q "$@"
