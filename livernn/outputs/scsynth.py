"""SuperCollider's synthesis server, driven directly over OSC (no sclang needed).

At start the compiled note synth is sent with ``/d_recv`` and a group of our own is made
at the head of the root node, so that panic can release every livernn node with one
``/n_set <group> gate 0`` without touching anyone else's. Each note is a node: a
timestamped ``/s_new`` for the note-on and ``/n_set <node> gate 0`` for the note-off; the
envelope frees the node when it has faded (doneAction 2).

A note handed over early may still be in scsynth's scheduler queue when panic comes, so
an immediate release would miss it: ``all_notes_off`` also sends each open node's release
timed just after its own start.
"""

from __future__ import annotations

import random
import select
import time

from pythonosc.osc_message import OscMessage

from livernn.errors import LivernnError
from livernn.outputs.base import OutputKind
from livernn.outputs.osc import OscSender, bundle, host_port, message
from livernn.outputs.synthdef import SHIPPED, SYNTH_NAME, note_synthdef

ADD_TO_HEAD, ADD_TO_TAIL = 0, 1


def midi_to_freq(pitch: int) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


class ScsynthOutput(OscSender):
    """Gated synth nodes on scsynth, in our own group (id ``node_base``), ids counting up from it."""

    kind = "scsynth"

    def __init__(self, host: str = "127.0.0.1", port: int = 57110, latency: float = 0.2,
                 synth: str = SYNTH_NAME, node_base: int | None = None, out_bus: int = 0,
                 amp: float = 0.25, send_synthdef: bool = True, timeout: float = 3.0) -> None:
        super().__init__(host, port, latency)
        self.synth, self.out_bus, self.amp = synth, int(out_bus), float(amp)
        # A random block of a million node ids each: two sessions on one server never collide.
        self.group = random.randrange(1, 2000) * 1_000_000 if node_base is None else int(node_base)
        self._next_node = self.group + 1
        self._nodes: dict[tuple[int, int], tuple[int, float]] = {}  # (ch, pitch) -> (node, t_on)
        self.sock.settimeout(timeout)
        # Replies (/done, /synced, /fail) come back to this socket. Connecting it binds it to the
        # interface the kernel routes to the server on, and the kernel then delivers datagrams
        # from the server's address only: a socket bound to 0.0.0.0 took a forged /fail from
        # anyone on the network for a restarted server (and re-sent the SynthDef on command).
        try:
            self.sock.connect(self.address)
        except OSError as exc:  # unresolvable host, no route
            self.sock.close()
            raise LivernnError(f"scsynth at {host}:{port}: cannot reach it ({exc.strerror or exc})") from None
        data = SHIPPED.read_bytes() if synth == SYNTH_NAME and SHIPPED.is_file() else note_synthdef()
        self._synthdef = data if send_synthdef else None
        self.restarts = 0
        if send_synthdef:
            self.request(message("/d_recv", [data]), "/done", "/d_recv")
        self.send_raw(message("/g_new", [self.group, ADD_TO_HEAD, 0]))  # exists already: harmless
        self.request(message("/sync", [1]), "/synced", "/sync")

    def request(self, data: bytes, reply: str, command: str) -> OscMessage:
        """Send ``command`` and wait for ``reply`` (replies to other requests are skipped)."""
        self.send_raw(data)
        deadline = time.monotonic() + (self.sock.gettimeout() or 3.0)
        while time.monotonic() < deadline:
            try:
                answer = OscMessage(self.sock.recv(65536))
            except TimeoutError:
                break
            except ConnectionRefusedError:
                break
            if answer.address == reply:
                return answer
            if answer.address == "/fail" and answer.params[:1] == [command]:
                raise LivernnError(f"scsynth at {self.address[0]}:{self.address[1]}: {answer.params}")
        raise LivernnError(
            f"scsynth at {self.address[0]}:{self.address[1]} did not answer "
            f"(is it running? start it with: scsynth -u {self.address[1]})"
        )

    def note_on(self, channel: int, pitch: int, velocity: int, t: float, duration: float | None = None) -> None:
        node = self._next_node
        self._next_node += 1
        self._nodes[(channel, pitch)] = (node, t)
        args = [self.synth, node, ADD_TO_TAIL, self.group, "freq", midi_to_freq(pitch),
                "amp", self.amp * (velocity / 127.0) ** 2, "out", self.out_bus]
        self.send_at(t, message("/s_new", args))

    def note_off(self, channel: int, pitch: int, t: float) -> None:
        entry = self._nodes.pop((channel, pitch), None)
        if entry is not None:
            self.send_at(t, message("/n_set", [entry[0], "gate", 0]))

    def maintain(self) -> None:
        """Notice a restarted scsynth (our group is gone) and send the SynthDef and group again.

        Each call asks for our group (``/n_query``); scsynth answers ``/fail`` only when it is
        missing, which after a restart it is. Replies are read without waiting."""
        lost = False
        while select.select([self.sock], [], [], 0)[0]:
            try:
                answer = OscMessage(self.sock.recv(65536))
            except OSError:  # nobody listening yet
                break
            except Exception:  # a packet that is not OSC: skip it
                continue
            if (answer.address == "/fail" and answer.params[:1] == ["/n_query"]
                    and str(self.group) in str(answer.params)):
                lost = True
        if lost:
            if self._synthdef is not None:
                self.send_raw(message("/d_recv", [self._synthdef]))
            self.send_raw(message("/g_new", [self.group, ADD_TO_HEAD, 0]))
            self.restarts += 1
        self.send_raw(message("/n_query", [self.group]))

    def all_notes_off(self) -> None:
        now = time.monotonic()
        for node, t_on in self._nodes.values():
            self.send_at(max(now, t_on + 0.001), message("/n_set", [node, "gate", 0]))
        self._nodes.clear()
        self.send_raw(bundle(1, message("/n_set", [self.group, "gate", 0])))

    def close(self) -> None:
        """Release what still sounds, and free our group once the releases have faded."""
        self.all_notes_off()
        self.send_raw(bundle(self.clock.timetag(time.monotonic() + 2.0) if self.clock else 1,
                             message("/n_free", [self.group])))
        super().close()


KIND = OutputKind(
    "scsynth",
    {"host": str, "port": int, "latency": (int, float), "synth": str, "out_bus": int, "amp": (int, float),
     "send_synthdef": bool},
    lambda name, options, bpm: ScsynthOutput(**options),
    "[:HOST:PORT]", lambda rest: ScsynthOutput(*host_port("scsynth", rest, 57110)),
    lambda rest: host_port("scsynth", rest, 57110),
)
