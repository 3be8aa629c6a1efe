#!/usr/bin/env bash
# The test command: sets everything up (idempotent), then runs the whole suite against
# real peers (jackd, scsynth, FluidSynth, MediaPipe), which the tests start themselves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup.sh
# Lint and types first (seconds once .mypy_cache is warm; the config is in pyproject.toml): either failing fails the command.
.venv/bin/ruff check --quiet . || { echo "run-tests: ruff check failed (see above)" >&2; exit 1; }
.venv/bin/mypy || { echo "run-tests: mypy failed (see above)" >&2; exit 1; }
# Byte-code caches on (some environments switch them off): without them every test run,
# and every `python -m livernn` a test starts, compiles livernn again and pytest rewrites
# every test module's asserts again (about 7 s of the quick loop's collection).
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/python -m pytest "$@"
