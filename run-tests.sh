#!/usr/bin/env bash
# The test command: sets everything up (idempotent), then runs the whole suite against
# real peers (jackd, scsynth, FluidSynth, MediaPipe), which the tests start themselves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup.sh
# Lint and types first (seconds once .mypy_cache is warm; the config is in pyproject.toml): either failing fails the command.
.venv/bin/ruff check --quiet . || { echo "run-tests: ruff check failed (see above)" >&2; exit 1; }
.venv/bin/mypy || { echo "run-tests: mypy failed (see above)" >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
