#!/usr/bin/env bash
# The main job: set up (idempotent), then perform patches/demo.toml with the shipped models
# for a short set. Writes out/demo.mid (what was played, at its scheduled times),
# out/demo.wav (FluidSynth) and out/demo.png (piano roll). Where a JACK server is running
# it also plays on a JACK MIDI port "livernn"; LIVERNN_OUT=midi:NAME picks a port instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
scripts/setup.sh
mkdir -p out
extra=()
if [ -n "${LIVERNN_OUT:-}" ]; then
  extra+=(--out "$LIVERNN_OUT")
elif command -v jack_lsp >/dev/null && JACK_NO_START_SERVER=1 jack_lsp >/dev/null 2>&1; then
  extra+=(--out midi:livernn)
fi
exec .venv/bin/livernn perform patches/demo.toml --duration "${DURATION:-50}" --no-reload \
  --record out/demo.mid --render "${extra[@]}" "$@"
