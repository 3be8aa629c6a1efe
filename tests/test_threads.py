"""The threading contract (docs/ARCHITECTURE.md, "Threads"), tested with real threads.

Controls arrive from several threads at once (the OSC loop, the rtmidi thread, the
gesture thread, the control tick); the generation thread reads. These tests drive the
shared objects from several threads as hard as Python lets them (a short GIL switch
interval makes the interpreter hand over between threads every few bytecodes) and check
what a serial run would guarantee. Both failed on the code before the writer locks.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from livernn.controls.mapping import Mapping
from livernn.controls.runtime import Binding, ControlRuntime
from livernn.engine import Session


@pytest.fixture
def busy_switching():
    """Switch threads every 10 µs (CPython's default is 5 ms), so races show up in a test."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def _run_together(*targets) -> None:
    start = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target):
        def run():
            start.wait()
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_four_threads_setting_four_parameters_of_one_voice_lose_no_update(busy_switching):
    """Each thread owns one parameter; no other thread's write may bring back an old value."""
    s = Session()
    v = s.add_voice("lead", seed=1)
    n = 20000
    plans = {  # every value in range; the last one unique, so a lost final write shows
        "temperature": [0.5 + (i % 400) / 100 for i in range(n - 1)] + [4.75],
        "top_p": [0.01 + (i % 90) / 100 for i in range(n - 1)] + [0.995],
        "velocity_scale": [(i % 300) / 100 for i in range(n - 1)] + [3.5],
        "transpose": [(i % 80) - 40 for i in range(n - 1)] + [47],
    }
    undone = dict.fromkeys(plans, 0)

    def writer(name):
        def run():
            for value in plans[name]:
                v.set(name, value)
                if getattr(v.params, name) != value:  # nobody else writes this parameter
                    undone[name] += 1

        return run

    try:
        _run_together(*(writer(name) for name in plans))
    finally:
        s.stop()
    final = {name: getattr(v.params, name) for name in plans}
    assert final == {name: values[-1] for name, values in plans.items()}, undone
    assert undone == dict.fromkeys(plans, 0)


def _linearizable_and_rising(calls: list[tuple[int, int, float]]) -> int:
    """How many calls returned less than a call that had *finished before they began*.

    With rising inputs a serial run of a smoothing mapping only ever rises, so any call
    that sees less than one strictly before it saw a state no serial order can give."""
    c = np.array(calls, dtype=np.float64)
    order = np.argsort(c[:, 1])
    ends, best = c[order, 1], np.maximum.accumulate(c[order, 2])
    k = np.searchsorted(ends, c[:, 0], side="left")
    before = np.where(k > 0, best[np.maximum(k - 1, 0)], -np.inf)
    return int(np.sum(before > c[:, 2] + 1e-12))


@pytest.mark.parametrize("smoothing", [{"smooth": "ema", "alpha": 0.9},
                                       {"smooth": "one_euro", "mincutoff": 50.0}])
def test_mapping_fed_and_ticked_from_two_threads_stays_serial(busy_switching, smoothing):
    """``receive`` (the publisher's thread) and ``tick`` (the runtime's loop) advance the
    same filter state at once: each call must act on the whole state, one at a time."""
    n = 20000
    worst = 0
    for _ in range(3):
        m = Mapping(in_range=(0, n), out_range=(0.0, 1.0), **smoothing)
        fed: list[tuple[int, int, float]] = []
        ticked: list[tuple[int, int, float]] = []
        done = threading.Event()
        clock = time.perf_counter_ns

        def feed():
            for i in range(n + 1):
                a = clock()
                y = m(float(i), time.monotonic())
                fed.append((a, clock(), y))
            done.set()

        def tick():
            while not done.is_set():
                a = clock()
                y = m.tick(time.monotonic())
                if y is not None:
                    ticked.append((a, clock(), y))

        _run_together(feed, tick)
        assert len(ticked) > 1000  # the two threads really overlapped
        worst = max(worst, _linearizable_and_rising(fed + ticked))
    assert worst == 0


def test_runtime_writes_reach_the_voice_in_the_mappings_order(busy_switching):
    """A fader pushed up on one thread while the control tick settles its smoothing on
    another: the voice's value must only rise. (Each side computed a value, then wrote it;
    a tick that computed before a fresh input could write after it and pull the fader
    back until the next write.)"""
    s = Session()
    v = s.add_voice("lead", seed=1)
    v.set("temperature", 0.05)
    runtime = ControlRuntime(s)
    n = 20000
    runtime.add_mapping(Binding("fader", "lead", "temperature",
                                Mapping(in_range=(0, n), out_range=(0.05, 5.0), smooth="ema", alpha=0.9)))
    seen: list[tuple[int, int, float]] = []
    done = threading.Event()
    clock = time.perf_counter_ns

    def look() -> None:
        a = clock()
        value = v.params.temperature
        seen.append((a, clock(), value))

    def fader():
        for i in range(n + 1):
            s.bus.publish("fader", float(i))
            look()
        done.set()

    def tick():
        while not done.is_set():
            runtime.tick()
            look()

    try:
        _run_together(fader, tick)
    finally:
        runtime.close()
        s.stop()
    assert runtime.errors == 0
    assert _linearizable_and_rising(seen) == 0
    assert v.params.temperature == pytest.approx(5.0, abs=1e-3)


def test_a_scene_lands_on_a_voice_whole(busy_switching):
    """The generation thread reads one snapshot per note: switching scenes must never
    show it half of one scene and half of the other."""
    from livernn.controls.runtime import Scene

    s = Session()
    v = s.add_voice("lead", seed=1)
    runtime = ControlRuntime(s)
    runtime.scenes = {
        "calm": Scene("calm", {"lead": {"temperature": 0.5, "density": 0.5, "transpose": -12}}),
        "wild": Scene("wild", {"lead": {"temperature": 2.0, "density": 4.0, "transpose": 12}}),
    }
    wholes = {(0.5, 0.5, -12), (2.0, 4.0, 12)}
    mixed: list[tuple] = []
    done = threading.Event()

    def switch():
        for i in range(3000):
            runtime.apply_scene("calm" if i % 2 else "wild")
        done.set()

    def generation_reads():
        while not done.is_set():
            p = v.params
            seen = (p.temperature, p.density, p.transpose)
            if seen not in wholes and seen != (1.0, 1.0, 0):
                mixed.append(seen)

    try:
        _run_together(switch, generation_reads)
    finally:
        s.stop()
    assert mixed == []


def test_a_reloaded_patch_lands_on_a_voice_whole(busy_switching, tmp_path):
    """A live patch reload that changes several parameters of a voice is one snapshot too:
    the generation thread never plays a note with half the old patch and half the new."""
    from livernn.patch.apply import apply_patch
    from livernn.patch.schema import parse_patch

    def text(temperature, density, transpose):
        return (f'version = 1\n[voices.lead]\nparams = {{ temperature = {temperature}, '
                f'density = {density}, transpose = {transpose} }}\n')

    a = parse_patch(text(0.5, 0.5, -12), tmp_path / "p.toml")
    b = parse_patch(text(2.0, 4.0, 12), tmp_path / "p.toml")
    s = Session()
    runtime = ControlRuntime(s)
    apply_patch(s, a, runtime)
    v = s.voices["lead"]
    wholes = {(0.5, 0.5, -12), (2.0, 4.0, 12)}
    mixed: list[tuple] = []
    done = threading.Event()

    def reload():
        old = a
        for i in range(1500):
            new = b if i % 2 == 0 else a
            apply_patch(s, new, runtime, old=old)
            old = new
        done.set()

    def generation_reads():
        while not done.is_set():
            p = v.params
            seen = (p.temperature, p.density, p.transpose)
            if seen not in wholes:
                mixed.append(seen)

    try:
        _run_together(reload, generation_reads)
    finally:
        runtime.close()
        s.stop()
    assert mixed == []
