"""The REPL machinery: completeness, evaluation, short tracebacks, completion, the prompt.

The prompt is driven through prompt_toolkit's pipe input, as a terminal would drive it;
tests/test_repl_engine.py does the same against a running Session and a JACK probe.
"""

from __future__ import annotations

import asyncio

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from livernn import api
from livernn.errors import LivernnError
from livernn.repl.app import Repl, history_path
from livernn.repl.complete import LivernnCompleter
from livernn.repl.evaluate import Evaluator, format_error, is_complete


@pytest.mark.parametrize(
    ("source", "complete"),
    [
        ("x = 1", True),
        ("x = (1,", False),
        ("for i in range(3):", False),
        ("for i in range(3):\n    print(i)", False),
        ("for i in range(3):\n    print(i)\n", True),
        ("await asyncio.sleep(0)", True),
        ("def f(:", True),  # a syntax error runs, so that it is reported
        ("x = 1\ny = 2", True),
        ("", True),
    ],
)
def test_enter_runs_complete_code_and_continues_incomplete_code(source, complete):
    assert is_complete(source) is complete


def run(evaluator: Evaluator, source: str) -> None:
    asyncio.run(evaluator.run(source))


def test_top_level_await_and_the_last_expression_is_echoed(capsys):
    ns: dict = {}
    ev = Evaluator(ns)
    run(ev, "import asyncio\nx = 20")
    run(ev, "await asyncio.sleep(0.01); x * 2 + 2")
    assert capsys.readouterr().out == "42\n"
    assert ns["_"] == 42 and ev.count == 2


def test_statements_alone_print_nothing_and_none_is_not_echoed(capsys):
    ev = Evaluator({})
    run(ev, "y = [1, 2]")
    run(ev, "None")
    assert capsys.readouterr().out == ""


def test_an_exception_shows_only_the_users_frames_and_changes_nothing(capsys):
    ns: dict = {}
    ev = Evaluator(ns)
    run(ev, "def f(x):\n    return 1 / x\n")
    run(ev, "kept = 1")
    run(ev, "kept = 2; f(0)")
    out = capsys.readouterr().out
    assert "ZeroDivisionError: division by zero" in out
    assert '"<repl-1>", line 2, in f' in out and "return 1 / x" in out
    assert "livernn/repl" not in out and "asyncio" not in out
    assert ns["kept"] == 2  # what ran before the error stays, like Python's prompt
    run(ev, "kept")
    assert capsys.readouterr().out == "2\n"


def test_a_livernn_error_is_one_line(capsys):
    ev = Evaluator({"LivernnError": LivernnError})
    run(ev, "raise LivernnError('temperature must be in 0.05..5, got 9')")
    assert capsys.readouterr().out == "error: temperature must be in 0.05..5, got 9\n"


def test_a_misspelt_name_is_one_line_naming_the_nearest(capsys):
    ev = Evaluator({"tempo": lambda bpm=None: 120.0})
    run(ev, "tmepo(96)")
    assert capsys.readouterr().out == "name 'tmepo' is not defined; did you mean 'tempo'?\n"
    run(ev, "x = 1\nprnt(x)")  # builtins count too; a longer input says which line
    assert capsys.readouterr().out == "name 'prnt' is not defined; did you mean 'print'? (line 2)\n"
    run(ev, "def f():\n    return tmepo()\n")
    run(ev, "f()")
    assert capsys.readouterr().out == "name 'tmepo' is not defined; did you mean 'tempo'? (line 2, in f)\n"
    run(ev, "zqxvw")
    assert capsys.readouterr().out == "name 'zqxvw' is not defined\n"
    run(ev, "del never_defined")  # a NameError too, with the name: still one line
    assert capsys.readouterr().out == "name 'never_defined' is not defined\n"


def test_an_error_raised_by_the_line_just_typed_is_one_line(capsys):
    ev = Evaluator({"record": api.record})
    run(ev, "record()")  # a missing argument: the traceback would only repeat the line
    assert capsys.readouterr().out == "TypeError: record() missing 1 required positional argument: 'path'\n"
    run(ev, "[1][5]")
    assert capsys.readouterr().out == "IndexError: list index out of range\n"
    run(ev, "def f(x):\n    return [1][x]\n")
    run(ev, "f(5)")  # raised in a function typed earlier: its frames still say where
    assert '"<repl-3>", line 2, in f' in capsys.readouterr().out


def test_a_command_typed_without_its_parentheses_says_how_to_run_it(capsys):
    ev = Evaluator({"quit": api.quit, "panic": api.panic, "f": lambda: 1})
    run(ev, "quit")  # did nothing but print <function quit at 0x7f...>
    assert capsys.readouterr().out == "quit is a command: type quit() to run it (help(quit) says what it takes)\n"
    assert ev.exit_code is None
    run(ev, "panic")
    assert capsys.readouterr().out.startswith("panic is a command: type panic() to run it")
    run(ev, "f")  # the performer's own function: its repr, as Python shows it
    assert capsys.readouterr().out.startswith("<function test_a_command_typed")


def test_a_parameter_name_assigned_at_the_top_level_says_no_voice_changed(capsys):
    ev = Evaluator({})
    run(ev, "scale = 'dorain'")  # set nothing and said nothing: the show played on in major
    assert capsys.readouterr().out == ("note: scale is now just a Python variable, no voice changed; "
                                       "to change a voice, set v.scale (v = voice('lead'))\n")
    run(ev, "scale = 'minor'")  # once per name: a variable used on purpose is not nagged about
    run(ev, "x = 1")
    run(ev, "def f():\n    density = 2\n")
    assert capsys.readouterr().out == "" and ev.namespace["scale"] == "minor"


def test_a_syntax_error_names_the_input_line():
    ev = Evaluator({})
    with pytest.raises(SyntaxError) as info:
        ev.compile("x = = 1")
    assert format_error(info.value).splitlines()[0].startswith('  File "<repl-')


def test_quit_is_recorded_not_raised():
    ev = Evaluator({})
    run(ev, "raise SystemExit(3)")
    assert ev.exit_code == 3


class Thing:
    """Has a few attributes to complete."""

    tempo = 120
    temperature = 1.0
    _hidden = 0


def completions(completer: LivernnCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(True))]


def test_completion_of_names_attributes_and_bus_sources():
    ns = {"thing": Thing(), "voice": lambda: None}
    completer = LivernnCompleter(ns, lambda: ["osc./1/fader1", "osc./1/fader2", "hand.right.pinch"])
    assert completions(completer, "thi") == ["thing"]
    assert completions(completer, "thing.tem") == ["temperature", "tempo"]
    assert "_hidden" not in completions(completer, "thing.")
    assert completions(completer, 'patch("osc./1/f') == ["osc./1/fader1", "osc./1/fader2"]
    assert completions(completer, "patch('hand.") == ["hand.right.pinch"]
    assert completions(completer, 'x = "done" + thi') == ["thing"]
    assert completions(completer, "nothing_here.a") == []


def test_history_path_is_overridable(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVERNN_HISTORY", str(tmp_path / "h"))
    assert history_path() == tmp_path / "h"
    assert history_path(tmp_path / "other") == tmp_path / "other"
    monkeypatch.delenv("LIVERNN_HISTORY")
    assert history_path().name == ".livernn_history"


class Driver:
    """Types into a Repl through a pipe and waits until each input has been evaluated."""

    def __init__(self, repl: Repl, pipe) -> None:
        self.repl, self.pipe = repl, pipe

    async def line(self, text: str, timeout: float = 10.0) -> None:
        before = self.repl.evaluator.count
        self.pipe.send_text(text)
        deadline = asyncio.get_running_loop().time() + timeout
        while self.repl.evaluator.count == before:
            assert asyncio.get_running_loop().time() < deadline, f"REPL did not evaluate {text!r}"
            await asyncio.sleep(0.01)


def test_the_prompt_runs_blocks_survives_ctrl_c_and_leaves_on_ctrl_d(tmp_path, capsys):
    exits = []
    ns: dict = {}
    history = tmp_path / "history"

    async def session() -> int:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl(ns, history=history, toolbar=lambda: "tempo 120", on_exit=lambda: exits.append(1))
            task = asyncio.create_task(repl.run(use_patch_stdout=False))
            typing = Driver(repl, pipe)
            await typing.line("total = 0\r")
            await typing.line("for i in range(4):\rtotal += i\r\r")
            pipe.send_text("half-typed line\x03")  # Ctrl-C: clears the line only
            await typing.line("total\r")
            pipe.send_text("\x04")  # Ctrl-D
            return await asyncio.wait_for(task, 10)

    assert asyncio.run(session()) == 0
    assert ns["total"] == 6 and "half" not in str(ns)
    assert capsys.readouterr().out.splitlines()[-1] == "6"
    assert exits == [1]
    assert "for i in range(4):" in history.read_text()


def test_quit_in_the_prompt_ends_the_repl_and_calls_on_exit():
    exits = []

    async def session() -> int:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl({}, on_exit=lambda: exits.append(1))
            task = asyncio.create_task(repl.run(use_patch_stdout=False))
            pipe.send_text("quit()\r")
            return await asyncio.wait_for(task, 10)

    assert asyncio.run(session()) == 0 and exits == [1]


def test_ctrl_c_stops_running_code_and_a_pending_await_but_not_the_repl(capsys):
    import os
    import signal
    import threading
    import time

    # The typed code says when it is running (it appends to ``running``), and only then is
    # SIGINT sent: a fixed delay raced the typing on a loaded machine (the interrupt hit the
    # prompt instead, and the 30 s await then ran to its end). A plain list, not a
    # threading.Event: an interrupt inside Event.set() can leave its lock held.
    running: list[int] = []

    async def nap() -> None:
        running.append(1)
        await asyncio.sleep(30)

    ns: dict = {"running": running, "nap": nap}

    def interrupt_once_started() -> None:
        running.clear()

        def send() -> None:
            deadline = time.monotonic() + 10
            while not running and time.monotonic() < deadline:
                time.sleep(0.005)
            if running:
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=send, daemon=True).start()

    async def session() -> int:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl(ns)
            task = asyncio.create_task(repl.run(use_patch_stdout=False))
            typing = Driver(repl, pipe)
            await typing.line("import asyncio\r")
            interrupt_once_started()
            await typing.line("while True:\rrunning.append(1)\r\r")
            interrupt_once_started()
            await typing.line("await nap()\r")
            await typing.line("still = 'here'\r")
            pipe.send_text("\x04")
            return await asyncio.wait_for(task, 10)

    assert asyncio.run(session()) == 0
    assert ns["still"] == "here"
    assert capsys.readouterr().out.count("KeyboardInterrupt") == 2


@pytest.mark.parametrize("where", ["prompt", "busy-loop"])
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_stop_signal_leaves_the_prompt_even_from_a_busy_loop_and_ends_the_show(sig, where, capsys):
    """SIGTERM and SIGHUP (a closed terminal) end the show from anywhere: waiting at the
    prompt, or inside a loop typed there that would otherwise hold the prompt for ever."""
    import os
    import signal
    import threading
    import time

    from livernn import api
    from livernn.engine import Session
    from livernn.repl import run_repl

    number = getattr(signal, sig)
    running: list[int] = []  # a plain list: see the Ctrl-C test above
    ns = {"running": running, "time": time, "give_up": time.monotonic() + 30}  # a failure must not hang
    session = api.use(Session().start())

    def signal_once(ready) -> None:
        def send() -> None:
            deadline = time.monotonic() + 10
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(os.getpid(), number)

        threading.Thread(target=send, daemon=True).start()

    async def main() -> int:
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            repl = Repl(ns)
            task = asyncio.create_task(run_repl(repl, use_patch_stdout=False))
            if where == "prompt":
                await Driver(repl, pipe).line("x = 1\r")
                signal_once(lambda: True)
            else:
                signal_once(lambda: bool(running))
                pipe.send_text("while time.monotonic() < give_up:\rrunning.append(1)\r\r")
            return await asyncio.wait_for(task, 10)

    previous = signal.getsignal(number)
    started = time.monotonic()
    assert asyncio.run(main()) == 128 + number  # 143, 129: as a shell reports a signal's stop
    assert time.monotonic() - started < 15, "the busy loop ran to its end: the signal did not break it"
    assert not session.playing and signal.getsignal(number) is previous
    assert "terminated, all notes ended" in capsys.readouterr().err
