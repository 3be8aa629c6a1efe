"""Ableton Link as a clock source (``aalink``, the optional extra ``link``).

aalink's ``Link`` must be made inside a running asyncio loop: the source runs one loop on
its own thread for it. A poll thread reads Link's beat and tempo every ``POLL`` seconds and
hands them to the clock (``Clock.follow``), so a peer's tempo change is followed within
about ``POLL``; ``set_tempo`` commits ours to the session, which Link sends to every peer.
The quantum is the clock's beats per bar, so bars line up with every peer's (Live's bar
lines). With start/stop sync on, a peer's Start/Stop reaches the session as transport.

Link announces itself by multicast on every network interface it finds: tests and benches
run it only inside a private network namespace (tests/test_sync_link.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from livernn.errors import require_extra

POLL = 0.01  # seconds between looks at Link's timeline
READS = 3  # readings per look


class LinkSource:
    name = "link"

    def __init__(self, bpm: float, quantum: int, report: Callable[[str], None],
                 on_transport: Callable[[bool], None] | None = None, start_stop: bool = False) -> None:
        aalink = require_extra("aalink", "Ableton Link", "link")
        self.report = report
        self.on_transport = on_transport
        self.start_stop = start_stop
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="livernn-link-loop",
                                             daemon=True)
        self._loop_thread.start()

        async def make():
            link = aalink.Link(float(bpm), self._loop)
            link.quantum = quantum
            link.start_stop_sync_enabled = bool(start_stop)
            link.enabled = True
            return link

        self._link = asyncio.run_coroutine_threadsafe(make(), self._loop).result(10)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._playing: bool | None = None
        self.polls = 0

    @property
    def peers(self) -> int:
        return int(self._link.num_peers)

    def read(self) -> tuple[float, float, float]:
        """(monotonic time, Link beat at that time, tempo): one reading of the timeline."""
        link = self._link
        best: tuple[float, float, float] | None = None
        for _ in range(READS):  # keep the narrowest: a reading preempted midway is off by the gap
            before = time.monotonic()
            beat = float(link.beat)
            after = time.monotonic()
            if best is None or after - before < best[0]:
                best = (after - before, (before + after) / 2, beat)
        assert best is not None  # READS >= 1 readings were taken
        return best[1], best[2], float(link.tempo)

    def start(self, clock) -> None:
        self._clock = clock
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="livernn-link", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                t, beat, bpm = self.read()
                playing = bool(self._link.playing) if self.start_stop else None
                hard = False
                if playing is not None and playing != self._playing:
                    hard = playing and self._playing is not None  # a peer pressed play: bar one
                    self._playing = playing
                    if self.on_transport is not None:
                        self.on_transport(playing)
                self._clock.follow(t, beat, bpm, hard=hard)
                self.polls += 1
            except Exception as exc:  # a bad reading must not end the source
                self.report(f"link: {type(exc).__name__}: {exc}")

    def set_tempo(self, bpm: float) -> None:
        self._link.tempo = float(bpm)

    def status(self) -> dict:
        return {"source": self.name, "peers": self.peers, "tempo": round(float(self._link.tempo), 3),
                "playing": bool(self._link.playing) if self.start_stop else None}

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._thread = None

        async def leave():
            self._link.enabled = False

        try:
            asyncio.run_coroutine_threadsafe(leave(), self._loop).result(5)
        except Exception:  # the loop is going away anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(2.0)
