"""SuperDirt (TidalCycles' sampler/synth host in sclang): ``/dirt/play`` events.

SuperDirt has no note-offs: each event carries its own length. We send Tidal's keys:
``s`` (sound), ``n`` (pitch relative to middle C, which SuperDirt's synths add to 60),
``cps`` (cycles per second: one cycle = one bar), ``cycle`` (bar position of the onset),
``delta`` (note length in seconds), ``legato`` (1: play for the whole delta), ``gain``
(from velocity) and ``orbit``, in a bundle timestamped with the note's logical time.
"""

from __future__ import annotations

from livernn.errors import LivernnError
from livernn.outputs.base import OutputKind
from livernn.outputs.osc import OscSender, host_port, message


class SuperDirtOutput(OscSender):
    kind = "superdirt"

    def __init__(self, host: str = "127.0.0.1", port: int = 57120, sound: str = "superpiano",
                 orbit: int = 0, latency: float = 0.2) -> None:
        super().__init__(host, port, latency)
        if not isinstance(sound, str) or not sound:
            raise LivernnError(f"SuperDirt sound must be a name such as 'superpiano', got {sound!r}")
        if not isinstance(orbit, int) or not 0 <= orbit <= 11:
            raise LivernnError(f"SuperDirt orbit must be an integer 0..11, got {orbit!r}")
        self.sound, self.orbit = sound, orbit

    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        clock = self.clock
        bpm = clock.bpm if clock else 120.0
        bar = clock.beats_per_bar if clock else 4
        args = [
            "s", self.sound,
            "n", float(pitch - 60),
            "cps", bpm / 60.0 / bar,
            "cycle", clock.bar(t) if clock else 0.0,
            "delta", float(duration or 0.25),
            "legato", 1.0,
            "gain", 0.7 + 0.5 * velocity / 127.0,
            "orbit", self.orbit,
        ]
        self.send_at(t, message("/dirt/play", args))

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        """SuperDirt events end by themselves (``delta``)."""


KIND = OutputKind(
    "superdirt",
    {"host": str, "port": int, "sound": str, "orbit": int, "latency": (int, float)},
    lambda name, options, bpm: SuperDirtOutput(**options),
    "[:HOST:PORT]", lambda rest: SuperDirtOutput(*host_port("superdirt", rest, 57120)),
    lambda rest: host_port("superdirt", rest, 57120),
)
