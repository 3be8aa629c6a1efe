"""Models and patches by name (livernn.library): shipped, the user's folder, a patch's own.

Real models (the shipped ones, copied where a user would put theirs), real sessions, the
real ``livernn`` command; nothing is mocked. conftest points $LIVERNN_MODELS and
$LIVERNN_PATCHES at empty folders, so a developer's own models never change a result.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from livernn import api
from livernn.errors import LivernnError
from livernn.library import find_model, find_patch, model_names, shipped
from livernn.patch.schema import PatchError, load_patch
from livernn.repl import string_names
from livernn.repl.complete import LivernnCompleter
from peers import wait_for


def livernn(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livernn.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def a_model(folder: Path, name: str, title: str) -> Path:
    """A real, loadable model (the shipped folk weights) under a new name and card."""
    out = folder / name
    out.mkdir(parents=True)
    shutil.copyfile(shipped("models") / "folk" / "model.safetensors", out / "model.safetensors")
    config = json.loads((shipped("models") / "folk" / "config.json").read_text())
    config["meta"]["name"] = name
    (out / "config.json").write_text(json.dumps(config))
    (out / "README.md").write_text(f"# models/{name} — {title}\n\nMore text.\n")
    return out


@pytest.fixture
def show():
    yield api.session()
    api.close()


def test_swap_by_name_plays_the_shipped_folk_model(show):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        lead = api.voice("lead", out=api.osc("127.0.0.1", sock.getsockname()[1]))
        assert lead.model.name == "bach"
        new = api.swap(lead, "folk", at="now").result(60)
        wait_for(lambda: lead.model is new, 5, "the folk model to take over")
        assert lead.model.name == "folk"
        assert Path(lead.model.path) == shipped("models") / "folk"
    finally:
        sock.close()


def test_a_mistyped_model_name_is_one_line_with_the_nearest_name(tmp_path):
    with pytest.raises(LivernnError) as caught:
        api.load("fokl")
    assert str(caught.value) == "no model 'fokl'; did you mean 'folk'?"
    result = livernn("play", "bahc", "--duration", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "livernn: error: no model 'bahc'; did you mean 'bach'?"


def test_the_user_folder_from_the_environment_is_searched_after_the_shipped_models(tmp_path, monkeypatch):
    mine = tmp_path / "mine"
    a_model(mine, "jazz", "my own model: jazz standards")
    a_model(mine, "folk", "a user's folk that the shipped folk hides")
    monkeypatch.setenv("LIVERNN_MODELS", str(mine))
    assert api.load("jazz").path == mine / "jazz"
    assert find_model("folk") == shipped("models") / "folk"  # the shipped name wins, as documented
    listing = repr(api.models())
    assert "jazz  my own model: jazz standards  [user]" in listing
    assert "folk  the second shipped model: folk melodies  [shipped]" in listing


def test_without_the_variable_the_platforms_user_data_folder_is_used(tmp_path):
    data = tmp_path / "xdg"
    a_model(data / "livernn" / "models", "tango", "tangos")
    env = {"XDG_DATA_HOME": str(data), "LIVERNN_MODELS": ""}  # empty: not set, as for a user
    result = livernn("models", "--paths", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"tango  tangos  [user: {data / 'livernn' / 'models' / 'tango'}]" in result.stdout
    assert f"search path: {shipped('models')}, {data / 'livernn' / 'models'}" in result.stdout
    played = livernn("play", "tango", "--duration", "0.5", "--record", "t.mid", cwd=tmp_path, env=env)
    assert played.returncode == 0, played.stderr
    assert "playing tango" in played.stdout and (tmp_path / "t.mid").is_file()


def test_livernn_models_lists_names_with_their_cards_summary(tmp_path):
    result = livernn("models", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "bach  the default shipped model: Bach chorales, four-part harmony  [shipped]"
    assert lines[1] == "folk  the second shipped model: folk melodies  [shipped]"
    assert lines[-1].startswith("patches: ") and {"demo", "gesture"} <= set(lines[-1][9:].split(", "))


def test_a_patch_names_models_from_anywhere_and_its_own_paths_stay_in_its_folder(tmp_path):
    a_model(tmp_path / "models", "mine", "a patch's own model")
    path = tmp_path / "set.toml"
    body = ('version = 1\n[models]\nf = "folk"\nm = "mine"\n[outputs.rec]\ntype = "file"\n'
            '[voices.lead]\nmodel = "f"\noutputs = ["rec"]\n')
    path.write_text(body)
    patch = load_patch(path)
    assert patch.models == {"f": str(shipped("models") / "folk"), "m": str(tmp_path / "models" / "mine")}
    assert patch.model_path("mine") == str(tmp_path / "models" / "mine")
    (tmp_path / "evil").symlink_to("/usr")
    for bad, why in (('"../x"', "leads outside"), ('"evil/lib"', "leads outside"), ('"nosuch"', "no model 'nosuch'")):
        path.write_text(body.replace('m = "mine"', f"m = {bad}"))
        with pytest.raises(PatchError, match=why):
            load_patch(path)


def test_completion_inside_a_string_offers_the_model_names(show):
    completer = LivernnCompleter({"swap": api.swap}, lambda: string_names(show))
    offered = [c.text for c in completer.get_completions(Document('swap(lead, "fo'), CompleteEvent())]
    assert offered == ["folk"]
    assert set(model_names()) <= set(string_names(show))


def test_patches_by_name_and_a_mistyped_patch_name(tmp_path):
    assert find_patch("demo") == shipped("patches") / "demo.toml"
    with pytest.raises(LivernnError, match="no patch 'dmeo'; did you mean 'demo'"):
        find_patch("dmeo")
    result = livernn("perform", "dmeo", "--duration", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "livernn: error: no patch 'dmeo'; did you mean 'demo'?"
