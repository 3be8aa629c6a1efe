#!/usr/bin/env bash
# The main job: set up (idempotent), then perform patches/demo.toml with the shipped model
# for a short set. Writes out/demo.mid, out/demo.wav (FluidSynth) and out/demo.png, and
# plays on a MIDI port / JACK server too where one exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup.sh
mkdir -p out
exec .venv/bin/livernn perform patches/demo.toml --duration "${DURATION:-40}" \
  --record out/demo.mid --render out/demo "$@"
