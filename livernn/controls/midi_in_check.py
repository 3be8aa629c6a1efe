"""Whether JACK runs a MIDI input's client: a ping looped into the input's own port.

A JACK client opened while another process opens and closes short-lived clients (a
patchbay polling with ``jack_lsp``) now and then comes up deaf: registered, its port
there and connected, and never run by the server, so the performer's controller or
keyboard silently does nothing. The outputs' sender finds this by listening to its own
port (``livernn.outputs.midi_sender.DeliveryCheck``); an input is checked the other way
round. A second client of this process (``livernn-ping``) sends ``PING`` into the
input's own port; the input's callback counts what comes back (``MidiIn._on_raw``) and
drops it. ``PING`` is an undefined MIDI real-time byte: MIDI receivers ignore it, mido
refuses to parse it, and it goes only to our own port, never into the performer's stream
or to a synth.

Anything the input hears proves that its client runs, so a ping is sent only after a
look (every ``EVERY`` s) that found nothing heard since the one before: while the
performer plays there are no pings, and one meets a played message in a JACK period only
when playing starts right after a silence (python-rtmidi's JACK callback has been seen
to garble bursts in a busy process, see tests/peers.py ``ProcessMidiProbe``).

A ping not back within ``WITHIN`` seconds while the server runs (its frame time moved
since the ping and since the previous look) is a verdict. Either client may be the deaf
one, so the first verdict replaces the check's client, and only a second one, about a
ping from that new client, replaces the input's (``MidiIn``): one deaf check client
does not cost the performer a reopened input (two in a row would)."""

from __future__ import annotations

PING = [0xFD]  # undefined system real-time: receivers ignore it
CLIENT = "livernn-ping"
EVERY = 0.1  # seconds between looks (and pings)
WITHIN = 0.3  # seconds in which a ping must come back through JACK
HEAL_FIRST = 1.0  # seconds after replacing the input's client before another may follow
HEAL_MOST = 30.0  # ... doubling while replacements do not help, up to this


class InputCheck:
    """Pings one input port through its own JACK client and says when the input is not run.

    ``step`` is called every ``EVERY`` seconds from the input's watcher thread with the
    number of messages the input has heard so far, pings included; it returns None, ``"check"`` (the check's
    client was replaced: nothing to do) or ``"input"`` (replace the input's client now)."""

    def __init__(self, api: int, port: str) -> None:
        self.api = api
        self.port = port  # the input's own JACK port, full name
        self.verdicts = 0  # in a row, since a ping last came back
        self.replaced = 0  # the check's own clients replaced
        self._out, self.mine = self._open()
        self._heard = 0
        self._sent_at: float | None = None  # the unanswered ping's send time
        self._sent_frame: int | None = None  # the server's frame time then
        self._last_frame: int | None = None  # the server's frame time at the previous look
        self._wait = HEAL_FIRST
        self._next_heal = 0.0

    def _open(self):
        """A client sending into ``self.port``, and its port's full JACK name (found as the one
        new ``livernn-ping[-NN]:ping``; raises rtmidi's errors, or RuntimeError)."""
        import rtmidi

        from livernn.midi_system import list_ports, quiet_stderr

        before = set(list_ports(self.api, outputs=False))
        with quiet_stderr():
            out = rtmidi.MidiOut(self.api, name=CLIENT)
            ports = out.get_ports()
            if self.port not in ports:
                del out
                raise RuntimeError(f"{self.port} is not visible to the check's client")
            out.open_port(ports.index(self.port), name="ping")
        new = [p for p in list_ports(self.api, outputs=False)
               if p not in before and p.startswith(CLIENT) and p.endswith(":ping")]
        return out, new[0] if len(new) == 1 else ""

    def follow(self, port: str) -> None:
        """The input has a new client and port: ping that one from now on."""
        from livernn.midi_system import jack_connect

        self.port = port
        if self.mine:
            jack_connect(self.mine, port)
        self._sent_at = None

    def step(self, heard: int, now: float) -> str | None:
        from livernn.midi_system import jack_last_frame

        frame = jack_last_frame()
        last, self._last_frame = self._last_frame, frame
        if heard != self._heard:  # the input heard something since the last look: it runs
            self._heard, self._sent_at, self.verdicts = heard, None, 0
            if now >= self._next_heal + 10 * self._wait:
                self._wait = HEAL_FIRST  # delivering for a while: the next stall starts afresh
            return None  # no ping while the performer plays (see the module's docstring)
        if self._sent_at is None:
            self._send(now, frame)
            return None
        running = frame is not None and frame != last and frame != self._sent_frame
        if now - self._sent_at <= WITHIN or not running:
            return None  # not overdue, or the server itself is stopped: no client of it runs
        if self.verdicts % 2 == 0:  # the first verdict of a pair: suspect our own client first
            self.verdicts += 1
            self._replace()
            self._send(now, frame)
            return "check"
        if now < self._next_heal:
            self._send(now, frame)  # the input was replaced a moment ago: wait, pinging
            return None
        self.verdicts += 1
        self._next_heal = now + self._wait
        self._wait = min(2 * self._wait, HEAL_MOST)
        self._sent_at = None  # the next look pings the input's new client
        return "input"

    def _send(self, now: float, frame: int | None) -> None:
        self._sent_at, self._sent_frame = now, frame
        self._out.send_message(PING)

    def _replace(self) -> None:
        """Retire the check's client (never closed, as a deaf client may not be) and open another."""
        import rtmidi

        from livernn.midi_system import DEAD_CLIENTS, jack_disconnect

        old, old_port = self._out, self.mine
        try:
            self._out, self.mine = self._open()
        except (rtmidi.SystemError, rtmidi.RtMidiError, RuntimeError):
            return  # keep the old one: try again at the next verdict
        DEAD_CLIENTS.append(old)
        if old_port and old_port != self.mine:
            jack_disconnect(old_port, self.port)
        self.replaced += 1

    def retire(self) -> None:
        """The server is gone (or the input closes on a dead one): drop the client unclosed."""
        from livernn.midi_system import DEAD_CLIENTS

        DEAD_CLIENTS.append(self._out)

    def close(self) -> None:
        self._out.close_port()
