#!/usr/bin/env bash
# Idempotent set-up shared by ./run-demo.sh and ./run-tests.sh.
#  1. As root: the Debian packages the audio peers and tests need (jackd2, scsynth,
#     FluidSynth + a GM soundfont, sox, tmux, the GL/GLib libraries OpenCV loads, and
#     Chromium for the control page's tests: Playwright drives it, never its own download).
#  2. .venv with torch==2.13.0 first (pip takes the CPU build that lies on this disk; an
#     unpinned torch would pull a multi-GB CUDA build), then livernn with its extras.
# Quick when already done: each step checks before it acts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES="jackd2 supercollider-server fluidsynth timgm6mb-soundfont sox tmux libgl1 libglib2.0-0 chromium"
missing_peers() {
  for prog in jackd jack_lsp jack_connect scsynth fluidsynth sox tmux chromium; do
    command -v "$prog" >/dev/null 2>&1 || { echo "$prog"; return; }
  done
  [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || { echo soundfont; return; }
  ldconfig -p 2>/dev/null | grep -q 'libGL.so.1' || echo libgl1
}

if [ -n "$(missing_peers)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: $APT_PACKAGES"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $APT_PACKAGES >/dev/null
  else
    echo "setup: warning: $(missing_peers) missing and not root: install $APT_PACKAGES" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Python >= 3.11 needed ($PYTHON is $("$PYTHON" --version))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv

stamp=.venv/.livernn-setup
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[gesture,corpus,web,link,dev]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import torch, livernn, mido, pythonosc, prompt_toolkit, pretty_midi, aiohttp, zeroconf, qrcode, playwright' \
    || { echo "setup: the Python install failed (see pip's output above)" >&2; exit 1; }
  .venv/bin/ruff --version >/dev/null && .venv/bin/mypy --version >/dev/null \
    || { echo "setup: ruff or mypy missing from .venv (the dev extra)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
