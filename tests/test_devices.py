"""``livernn devices`` names what works here: MIDI APIs and ports, JACK, OSC ports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from peers import ProcessMidiProbe

pytestmark = pytest.mark.integration


def test_devices_lists_jack_ports_and_osc_defaults(jack):
    probe = ProcessMidiProbe("devprobe")
    try:
        out = subprocess.run([sys.executable, "-m", "livernn.cli", "devices"], capture_output=True,
                             text=True, timeout=60).stdout
    finally:
        probe.close()
    assert "MIDI JACK: (livernn uses this one)" in out
    assert "devprobe:in" in out
    assert f"JACK server '{jack.name}': running" in out
    assert "scsynth 57110" in out and "SuperDirt 57120" in out and "Wekinator 6448" in out
    assert "OSC in 9000" in out
    if "ALSA" in out:
        assert "MIDI ALSA: not usable (no /dev/snd/seq)" in out
