"""OSC input on a real socket: publishing, wildcards, allow list, and a 10,000-packet storm."""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
import threading
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from livernn.controls.bus import ControlBus
from livernn.controls.osc_in import OscIn, osc_value, parse_allow
from livernn.errors import LivernnError


class LoopThread:
    """An asyncio loop on its own thread, as the performer's event loop would be."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict] = []  # anything that escaped a callback into the loop
        self.loop.set_exception_handler(lambda _loop, context: self.errors.append(context))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 5.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_until(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


@pytest.fixture(params=["event loop", "own thread"])
def server(request):
    """The server as a patch runs it (on the show's event loop) and as the REPL and scripts
    run it (``start_thread``): every test below holds for both."""
    bus = ControlBus()
    osc = OscIn(bus, port=0)
    if request.param == "own thread":
        host, port = osc.start_thread()
        yield osc, bus, SimpleUDPClient(host, port), port
        thread = osc._thread
        osc.close()
        assert thread is not None and not thread.is_alive()  # close() ends the thread
        return
    loop = LoopThread()

    async def start():
        return await osc.start()

    host, port = loop.call(start())
    yield osc, bus, SimpleUDPClient(host, port), port
    assert loop.errors == []
    loop.loop.call_soon_threadsafe(osc.close)
    loop.close()


def test_a_message_becomes_a_bus_value(server):
    _, bus, client, _ = server
    client.send_message("/1/fader1", 0.25)
    assert wait_until(lambda: bus.get("osc./1/fader1") == 0.25)
    client.send_message("/wek/outputs", [0.1, 0.2, 0.3])
    assert wait_until(lambda: bus.get("osc./wek/outputs.2") == pytest.approx(0.3))
    assert bus.get("osc./wek/outputs") == pytest.approx(0.1)


def test_wildcard_patterns_reach_the_addresses_the_patch_watches(server):
    osc, bus, client, _ = server
    osc.watch("/1/fader1")
    osc.watch("/1/fader2")
    client.send_message("/1/fader*", 0.5)
    assert wait_until(lambda: bus.get("osc./1/fader1") == 0.5 and bus.get("osc./1/fader2") == 0.5)
    assert bus.get("osc./1/fader*") is None


def test_a_future_timetag_does_not_stall_the_loop(server):
    _, bus, client, _ = server
    bundle = OscBundleBuilder(time.time() + 3600)
    msg = OscMessageBuilder("/late")
    msg.add_arg(1.0)
    bundle.add_content(msg.build())
    client.send(bundle.build())
    client.send_message("/after", 2.0)
    assert wait_until(lambda: bus.get("osc./after") == 2.0, timeout=1.0)


def test_hosts_outside_the_allow_list_are_refused():
    osc = OscIn(ControlBus(), allow=["192.168.1.20", "10.0.0.0/24"])
    assert osc.allowed("127.0.0.1") and osc.allowed("::1") and osc.allowed("::ffff:127.0.0.1")
    assert osc.allowed("192.168.1.20") and osc.allowed("10.0.0.7")
    assert not osc.allowed("192.168.1.21")
    assert not osc.allowed("not-an-ip")
    with pytest.raises(LivernnError, match="not an IP"):
        parse_allow(["192.168.1.300"])


def test_values_refused_at_the_door():
    assert osc_value(True) == 1.0 and osc_value(3) == 3.0
    for bad in (math.nan, math.inf, b"blob", None, [1, 2], "x" * 65, "bell\x07"):
        assert osc_value(bad) is None


def _random_packet(rng: random.Random) -> bytes:
    """A mix of garbage, truncations, bad UTF-8, wrong tags and nasty values."""
    kind = rng.randrange(9)
    if kind == 8:  # bundles nested hundreds deep
        packet = b"/x\x00\x00,f\x00\x00" + struct.pack(">f", 0.5)
        for _ in range(rng.randrange(17, 400)):
            packet = b"#bundle\x00" + struct.pack(">Q", 1) + struct.pack(">i", len(packet)) + packet
        return packet
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return b"/" + rng.randbytes(rng.randrange(0, 64))
    if kind == 2:  # bad UTF-8 in the address
        return b"/\xff\xfe\x80abc\x00\x00\x00,f\x00\x00" + struct.pack(">f", 0.5)
    if kind == 3:  # a type tag promising more than the packet holds
        return b"/1/fader1\x00\x00\x00,fffiisd\x00" + rng.randbytes(rng.randrange(0, 12))
    if kind == 4:  # unknown and exotic type tags
        return b"/1/fader1\x00\x00\x00,XYZ[[\x00\x00" + rng.randbytes(8)
    if kind == 5:  # nasty but well-formed values
        value = rng.choice([math.nan, math.inf, -math.inf, 1e308, -1e308, -1.0, 2**31 - 1, -(2**31)])
        msg = OscMessageBuilder(rng.choice(["/1/fader1", "/1/fader2", "/livernn/tempo"]))
        msg.add_arg(value, "d" if isinstance(value, float) else "i")
        return msg.build().dgram
    if kind == 6:  # wrong types for the address
        msg = OscMessageBuilder("/1/fader1")
        msg.add_arg(rng.choice([b"\x00\x01", "loud", True, [1.0, 2.0]]))
        return msg.build().dgram
    # a bundle truncated at a random point
    bundle = OscBundleBuilder(IMMEDIATELY)
    msg = OscMessageBuilder("/1/fader1")
    msg.add_arg(0.3)
    bundle.add_content(msg.build())
    data = bundle.build().dgram
    return data[: rng.randrange(8, len(data))]


def test_ten_thousand_bad_packets_do_not_stop_the_server(server):
    osc, bus, client, port = server
    rng = random.Random(1234)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(10_000):
        sock.sendto(_random_packet(rng), ("127.0.0.1", port))
        if i % 500 == 0:
            time.sleep(0.01)  # let the loop drain now and then, as a real storm would
    for i in range(3000):  # a flood of invented addresses cannot grow the bus without bound
        sock.sendto(OscMessageBuilder(f"/spam/{i}").build().dgram, ("127.0.0.1", port))
        if i % 500 == 0:
            time.sleep(0.01)
    sock.close()
    assert wait_until(lambda: osc.stats.packets >= 12_000, timeout=10), osc.stats
    client.send_message("/1/fader1", 0.75)
    assert wait_until(lambda: bus.get("osc./1/fader1") == 0.75)
    print(osc.stats)
    assert osc.stats.malformed > 1000 and osc.stats.bad_value > 100
    assert len(bus.names()) <= osc.max_names + 100
    for name in bus.names():
        value = bus.get(name)
        assert isinstance(value, str) or math.isfinite(value)


def test_packets_from_other_hosts_are_refused_on_the_wire():
    """127.0.0.2 is another local address on Linux: a sender there is not 127.0.0.1."""
    loop = LoopThread()
    bus = ControlBus()
    osc = OscIn(bus, port=0, bind="0.0.0.0", allow=["127.0.0.3"])
    _, port = loop.call(osc.start())
    try:
        for source, value in (("127.0.0.2", 0.1), ("127.0.0.3", 0.2), ("127.0.0.1", 0.3)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((source, 0))
            msg = OscMessageBuilder(f"/from/{source}")
            msg.add_arg(value)
            sock.sendto(msg.build().dgram, ("127.0.0.1", port))
            sock.close()
        assert wait_until(lambda: bus.get("osc./from/127.0.0.1") == pytest.approx(0.3))
        assert bus.get("osc./from/127.0.0.3") == pytest.approx(0.2)
        assert bus.get("osc./from/127.0.0.2") is None
        assert osc.stats.refused_host == 1
    finally:
        loop.loop.call_soon_threadsafe(osc.close)
        loop.close()
