"""Files and packets from strangers: refused in one line, nothing executed, memory bounded.

A model file handed over at the gig, a patch someone sends you, a laptop on the same
network sending OSC: each is data, checked before anything is allocated, run or opened.
Truncated, NaN and wrong-shape weights are covered in test_model.py (RELIABILITY.md lists
them); this file adds code-carrying pickles, sizes that would exhaust memory, paths that
leave their folder and hosts that were not invited.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import torch
from pythonosc.osc_message_builder import OscMessageBuilder

from livernn.engine import Session
from livernn.errors import LivernnError
from livernn.model import ModelError, default_model_path, load_model
from livernn.patch.schema import PatchError, load_patch
from livernn.patch.show import Show

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def copy_model(folder: Path, name: str = "copy") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("config.json", "model.safetensors"):
        (folder / file).write_bytes((default_model_path() / file).read_bytes())
    doc = json.loads((folder / "config.json").read_text())
    doc["meta"]["name"] = name
    (folder / "config.json").write_text(json.dumps(doc))
    return folder


def livernn(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livernn.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_the_payload_is_live_so_the_tests_below_can_fail(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"w": Payload(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)  # what a careless loader would do
    assert marker.exists()


@pytest.mark.parametrize("place", ["as-safetensors", "as-config", "model.pt", "pytorch_model.bin"])
def test_a_pickle_carrying_code_is_refused_and_never_run(tmp_path, place):
    marker = tmp_path / "ran"
    evil = {"lstm.weight_hh_l0": torch.zeros(4, 4), "x": Payload(marker)}
    model = copy_model(tmp_path / "model")
    target = {"as-safetensors": model / "model.safetensors", "as-config": model / "config.json",
              "model.pt": tmp_path / "model.pt", "pytorch_model.bin": model / "pytorch_model.bin"}[place]
    if place == "pytorch_model.bin":
        (model / "model.safetensors").unlink()
    torch.save(evil, target)
    path = target if place == "model.pt" else model
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert "\n" not in str(info.value)
    session = Session()  # the same file through the engine and through the CLI
    with pytest.raises(LivernnError):
        session.add_voice("lead", path)
    result = livernn("generate", str(path), "--notes", "5", "-o", str(tmp_path / "out.mid"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert not marker.exists()


def test_a_swap_to_a_pickle_keeps_the_old_model_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    model = copy_model(tmp_path / "model")
    torch.save({"x": Payload(marker)}, model / "model.safetensors")
    session = Session()
    session.add_voice("lead", seed=1)
    session.start()
    try:
        with pytest.raises(LivernnError, match="old model plays on"):
            session.swap("lead", model).result(timeout=20)
        assert session.voices["lead"].model.name == "bach"
    finally:
        session.stop()
    assert not marker.exists()


def _header_file(path: Path, header: dict, data: bytes = b"") -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _sparse(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        f.truncate(size)


HUGE = 10**12  # elements: 4 TB of float32


@pytest.mark.parametrize("case", ["tensor-1e12", "header-1e12-bytes", "config-10GB", "weights-10GB",
                                  "hidden-1e9", "nested-config", "nested-header"])
def test_sizes_that_would_exhaust_memory_are_refused_before_allocation(tmp_path, case):
    model = copy_model(tmp_path / "model")
    weights, config = model / "model.safetensors", model / "config.json"
    doc = json.loads(config.read_text())
    if case == "tensor-1e12":  # a header whose own offsets agree with a 10^12-element tensor
        _header_file(weights, {"lstm.weight_hh_l0": {"dtype": "F32", "shape": [10**6, 10**6],
                                                     "data_offsets": [0, 4 * HUGE]}})
    elif case == "header-1e12-bytes":
        weights.write_bytes(struct.pack("<Q", HUGE) + b"{}")
    elif case == "config-10GB":
        _sparse(config, 10 * 2**30)
    elif case == "weights-10GB":  # a real header in front of 10 GB of zeros
        data = weights.read_bytes()
        n = struct.unpack("<Q", data[:8])[0]
        weights.write_bytes(data[: 8 + n])
        with open(weights, "r+b") as f:
            f.truncate(10 * 2**30)
    elif case == "hidden-1e9":
        doc["model"]["hidden"] = 10**9
        config.write_text(json.dumps(doc))
    elif case == "nested-config":
        config.write_text("[" * 200_000 + "]" * 200_000)
    elif case == "nested-header":
        raw = b'{"a": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
        weights.write_bytes(struct.pack("<Q", len(raw)) + raw)
    tracemalloc.start()
    try:
        with pytest.raises(ModelError) as info:
            load_model(model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value) and str(model) in str(info.value)
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB allocated while refusing {case}"


GOOD_PATCH = """\
version = 1

[models]
mine = "models/mine"

[outputs.rec]
type = "file"
path = "set.mid"

[voices.lead]
model = "mine"
outputs = ["rec"]
"""


@pytest.fixture
def show_dir(tmp_path):
    """A patch folder with its own model, and a valid model outside it (the bait)."""
    folder = tmp_path / "show"
    copy_model(folder / "models" / "mine", "mine")
    copy_model(tmp_path / "outside", "outside")
    return folder


PATCH_ESCAPES = [
    ("dotdot model", ('mine = "models/mine"', 'mine = "../../etc/passwd"'), "outside the patch's folder"),
    ("absolute model", ('mine = "models/mine"', 'mine = "/etc/passwd"'), "absolute paths are refused"),
    ("symlinked model", ('mine = "models/mine"', 'mine = "link"'), "outside the patch's folder"),
    ("symlinked recording", ('path = "set.mid"', 'path = "linkdir/set.mid"'), "outside the patch's folder"),
    ("dotdot recording", ('path = "set.mid"', 'path = "../set.mid"'), "outside the patch's folder"),
    ("nested arrays", ('[outputs.rec]', 'deep = ' + "[" * 100_000 + "]" * 100_000 + '\n[outputs.rec]'),
     "nested too deeply"),
]


@pytest.mark.parametrize(("name", "edit", "words"), PATCH_ESCAPES, ids=[e[0].replace(" ", "-") for e in PATCH_ESCAPES])
def test_a_patch_reaching_outside_its_folder_is_refused(show_dir, name, edit, words):
    (show_dir / "link").symlink_to(show_dir.parent / "outside")
    (show_dir / "linkdir").symlink_to(show_dir.parent)
    path = show_dir / "show.toml"
    path.write_text(GOOD_PATCH.replace(*edit))
    with pytest.raises(PatchError) as info:
        load_patch(path)
    assert words in str(info.value) and "\n" not in str(info.value), str(info.value)
    result = livernn("check", str(path))
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_strings_that_look_like_code_stay_strings(show_dir, tmp_path):
    marker = tmp_path / "ran"
    code = f"__import__('os').system('touch {marker}')"
    text = GOOD_PATCH.replace('[models]', f'name = "{code}"\ndescription = "{code}"\n\n[models]')
    path = show_dir / "show.toml"
    path.write_text(text)
    patch = load_patch(path)  # data: a name is any string
    assert patch.name == code
    for key in ("scale", "temperature"):
        path.write_text(text + f'params = {{ {key} = "{code}" }}\n')
        with pytest.raises(PatchError):
            load_patch(path)
    path.write_text(text + f'\n[[mappings]]\nsource = "osc./x"\ntarget = "lead.temperature"\ncurve = "{code}"\n')
    with pytest.raises(PatchError, match="curve"):
        load_patch(path)
    assert livernn("check", str(path)).returncode == 2
    assert not marker.exists()


def _send_from(source: str, port: int, address: str, *args) -> None:
    """A datagram whose sender address is ``source``: 127.0.0.2 and up play another host."""
    msg = OscMessageBuilder(address)
    for arg in args:
        msg.add_arg(arg)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(msg.build().dgram, ("127.0.0.1", port))


def _run_show(folder: Path, text: str, body) -> Session:
    path = folder / "show.toml"
    path.write_text(text)
    session = Session(bpm=120)

    async def main() -> None:
        show = Show(session, path, report=lambda line: None)
        try:
            await show.load()
            session.start()
            await body(show)
        finally:
            await show.close()
            session.stop()

    asyncio.run(main())
    return session


@pytest.mark.parametrize("opened", [False, True], ids=["default", "opened-to-one-host"])
def test_osc_commands_from_other_hosts_are_refused_unless_the_patch_lists_them(show_dir, opened):
    osc = '\n[osc]\nport = 0\ncommands = true\n' + ('bind = "0.0.0.0"\nallow = ["127.0.0.3"]\n' if opened else "")

    async def body(show: Show) -> None:
        port = show.osc.port
        assert show.osc.bind == ("0.0.0.0" if opened else "127.0.0.1")
        _send_from("127.0.0.2", port, "/livernn/tempo", 60.0)  # never invited
        _send_from("127.0.0.3", port, "/livernn/tempo", 90.0)  # listed when opened
        await asyncio.sleep(0.3)
        assert show.session.tempo == (90.0 if opened else 120.0)
        assert show.osc.stats.refused_host == (1 if opened else 2)
        _send_from("127.0.0.1", port, "/livernn/tempo", 100.0)  # this machine, always
        await asyncio.sleep(0.3)
        assert show.session.tempo == 100.0

    _run_show(show_dir, GOOD_PATCH + osc, body)


def test_remote_swaps_never_leave_the_models_folder(show_dir):
    (show_dir / "models" / "escape").symlink_to(show_dir.parent / "outside")
    errors_before = []

    async def body(show: Show) -> None:
        errors_before.append(show.runtime.errors)
        for model in ("../../outside", "/etc/passwd", str(show_dir.parent / "outside"), "escape", ".."):
            _send_from("127.0.0.1", show.osc.port, "/livernn/swap", "lead", model)
        await asyncio.sleep(1.0)
        assert show.runtime.errors - errors_before[0] == 5
        _send_from("127.0.0.1", show.osc.port, "/livernn/swap", "lead", "mine")  # a name it may use
        deadline = time.monotonic() + 20
        while show.session.voices["lead"].epoch == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert show.session.voices["lead"].epoch == 1  # exactly one swap went through
        assert show.session.voices["lead"].model.name == "mine"

    _run_show(show_dir, GOOD_PATCH + "\n[osc]\nport = 0\ncommands = true\n", body)


UNSAFE = re.compile(r"pickle\.loads?\(|torch\.load\(|allow_pickle=True|(?<![\w.])(eval|exec)\(")


def test_nothing_in_the_package_unpickles_or_evaluates_a_file():
    """No loader may unpickle (np.load refuses pickles by default) or eval; the REPL evaluates
    what the performer types, by design."""
    offenders = [f"{path.relative_to(REPO)}: {found.group(0)}"
                 for path in (REPO / "livernn").rglob("*.py") if path.parent.name != "repl"
                 for found in UNSAFE.finditer(path.read_text())]
    assert offenders == [], offenders
