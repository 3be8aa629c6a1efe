#!/usr/bin/env bash
# The test command: sets everything up (idempotent), then runs the whole suite against
# real peers (jackd, scsynth, FluidSynth, MediaPipe), which the tests start themselves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
