"""OSC control -> voice parameter: latency and message rate, against raw python-osc.

    .venv/bin/python bench/bench_controls.py [--seconds 3]

Two servers run in this process on the same kind of asyncio loop thread, while a Session
plays the shipped model (so the engine's threads compete for the interpreter as on stage):

- baseline: python-osc's AsyncIOOSCUDPServer with a plain Dispatcher whose handler stores
  the value in a variable (no checks, no bus, no mapping);
- livernn: a Show from a patch: hardened OscIn -> ControlBus -> Mapping (exp curve) ->
  ``voice.set(..., clamp=True)``.

Latency is client send -> value visible (the variable, or ``voice.temperature``), timed
from the sending thread. Rate: a 1 kHz fader stream for ``--seconds`` (all handled? how
late?), then a flood as fast as the client can send: messages handled per second. Each
server is measured twice, in the order baseline, livernn, livernn, baseline; latencies
are pooled, the worse stream and the mean flood rate are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import AsyncIOOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient

from livernn.engine import Session
from livernn.patch.show import Show

PATCH = """\
version = 1
[clock]
bpm = 120
[voices.lead]
[osc]
port = 0
[[mappings]]
source = "osc./1/fader1"
target = "lead.temperature"
range = [0, 100000]
out = [0.05, 5.0]
"""


class Target:
    """What the client watches: a read function and the value a fader position gives."""

    def __init__(self, read, expect) -> None:
        self.read, self.expect = read, expect
        self.handled = 0
        self.first = self.last = 0.0

    def mark(self) -> None:
        now = time.perf_counter()
        if not self.handled:
            self.first = now
        self.handled += 1
        self.last = now


def latency(client: SimpleUDPClient, target: Target, n: int = 400) -> list[float]:
    out = []
    for i in range(n):
        value = float(1 + (i % 2) * 50_000 + i)  # a new value every time
        expected = target.expect(value)
        t0 = time.perf_counter()
        client.send_message("/1/fader1", value)
        while target.read() != expected:
            if time.perf_counter() - t0 > 1.0:
                break
            time.sleep(0)
        out.append(time.perf_counter() - t0)
        time.sleep(0.002)
    return out


def stream(client: SimpleUDPClient, target: Target, seconds: float, hz: float) -> tuple[int, int, float]:
    """Send at ``hz`` for ``seconds``; returns (sent, handled, lag of the last one in s)."""
    target.handled = 0
    n = int(seconds * hz)
    start = time.perf_counter()
    for i in range(n):
        while time.perf_counter() < start + i / hz:
            time.sleep(0.0002)
        client.send_message("/1/fader1", float(i % 1000))
    sent_end = time.perf_counter()
    deadline = sent_end + 2.0
    while target.handled < n and time.perf_counter() < deadline:
        time.sleep(0.001)
    return n, target.handled, max(0.0, target.last - sent_end)


def flood(client: SimpleUDPClient, target: Target, n: int = 20_000) -> float:
    """Handled messages per second while the client sends as fast as it can."""
    target.handled = 0
    for i in range(n):
        client.send_message("/1/fader1", float(i % 1000))
        if i % 200 == 0:
            time.sleep(0.0005)  # let the receiving thread run
    time.sleep(0.5)
    span = target.last - target.first
    return (target.handled - 1) / span if span > 0 else 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def start_baseline(loop: asyncio.AbstractEventLoop) -> tuple[int, Target]:
    box = {"value": None}
    target = Target(lambda: box["value"], lambda v: v)

    def handler(_address: str, value: float) -> None:
        box["value"] = value
        target.mark()

    dispatcher = Dispatcher(strict_timing=False)
    dispatcher.map("/1/fader1", handler)
    transport, _ = await AsyncIOOSCUDPServer(("127.0.0.1", 0), dispatcher, loop).create_serve_endpoint()
    # the same receive buffer OscIn asks for, so both lose (or keep) the same bursts
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    return transport.get_extra_info("sockname")[1], target


async def start_livernn(session: Session, path: Path) -> tuple[int, Target, Show]:
    show = Show(session, path, report=lambda line: None)
    await show.load()
    voice = session.voices["lead"]
    binding = show.runtime.bindings[0]
    target = Target(lambda: voice.params.temperature, lambda v: binding.mapping.shape_value(v))
    session.bus.subscribe("osc./1/fader1", lambda *_: target.mark())
    return show.osc.port, target, show


def report(name: str, lat: list[float], rate: tuple[int, int, float], fl: float) -> dict[str, float]:
    figures = {"p50": pct(lat, 0.5) * 1e6, "p99": pct(lat, 0.99) * 1e6, "flood": fl}
    print(f"{name:9s} latency p50 {figures['p50']:7.0f} us  p99 {figures['p99']:7.0f} us   "
          f"1 kHz stream: {rate[1]}/{rate[0]} handled, last {rate[2] * 1e3:5.1f} ms after the last send   "
          f"flood: {fl:8.0f} msg/s")
    return figures


def dispatch_cost(show: Show, n: int = 20_000) -> tuple[float, float]:
    """CPU per packet without the network: (livernn, raw python-osc dispatcher), seconds."""
    packets = []
    for i in range(n):
        builder = OscMessageBuilder("/1/fader1")
        builder.add_arg(float(i))
        packets.append(builder.build().dgram)
    box: dict[str, float] = {}
    raw = Dispatcher(strict_timing=False)
    raw.map("/1/fader1", lambda _address, value: box.__setitem__("v", value))
    costs = []
    for dispatcher in (show.osc.dispatcher, raw):
        start = time.perf_counter()
        for packet in packets:
            dispatcher.call_handlers_for_packet(packet, ("127.0.0.1", 1))
        costs.append((time.perf_counter() - start) / n)
    return costs[0], costs[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the 1 kHz stream")
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def call(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(PATCH)
        session = Session(bpm=120)
        base_port, base = call(start_baseline(loop))
        live_port, live, show = call(start_livernn(session, path))
        session.start()
        time.sleep(2.0)  # the engine's start-up (priming, first notes) out of the way
        try:
            runs: dict[str, list] = {"baseline": [], "livernn": []}
            ports = {"baseline": (base_port, base), "livernn": (live_port, live)}
            for name in ("baseline", "livernn", "livernn", "baseline"):  # alternate: no order bias
                port, target = ports[name]
                client = SimpleUDPClient("127.0.0.1", port)
                runs[name].append((latency(client, target), stream(client, target, args.seconds, 1000.0),
                                   flood(client, target)))
            results = {}
            for name, (first, second) in runs.items():
                worst_stream = min(first[1], second[1], key=lambda r: (r[1], -r[2]))
                results[name] = report(name, first[0] + second[0], worst_stream, (first[2] + second[2]) / 2)
            b, v = results["baseline"], results["livernn"]
            print(f"livernn / baseline: latency p50 x{v['p50'] / b['p50']:.2f}, p99 x{v['p99'] / b['p99']:.2f}, "
                  f"flood rate x{v['flood'] / b['flood']:.2f}  (session playing: {session.playing})")
            live_cost, raw_cost = dispatch_cost(show)
            print(f"CPU per packet, no network: livernn {live_cost * 1e6:.1f} us (parse, checks, bus, mapping, "
                  f"voice.set), raw python-osc {raw_cost * 1e6:.1f} us: x{live_cost / raw_cost:.2f}")
            print(f"OSC stats: {show.osc.stats}")
        finally:
            call(show.close())
            session.stop()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)


if __name__ == "__main__":
    main()
