"""The wheel a user installs plays from any folder: shipped models and patches inside it.

Builds the wheel from this checkout, installs it (not editable) into a fresh venv outside
the checkout, and from yet another folder plays 3 s with a recording, performs the demo
patch by name, and lists the models. The test's venv reuses the big dependencies (torch,
numpy...) already installed for the tests, through a ``.pth`` line naming their folder:
a ``.pth`` *line* adds a folder to ``sys.path`` without running the ``.pth`` files inside
it, so the checkout's editable-install hook never loads there, and the first thing the test
proves is that ``import livernn`` finds the installed wheel, not the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from livernn.notes import notes_from_midi

pytestmark = pytest.mark.integration  # builds, installs and runs: tens of seconds

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=env)
    assert result.returncode == 0, f"{cmd}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv, a folder outside both the checkout and the venv) with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    dist, venv, elsewhere = root / "dist", root / "venv", root / "elsewhere"
    elsewhere.mkdir()
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, REPO], root)
    (wheel,) = dist.glob("livernn-*.whl")
    run([sys._base_executable, "-m", "venv", "--without-pip", venv], root)  # the system Python, not .venv's
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], root)
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).stdout.strip())
    (site / "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv, elsewhere


def test_the_installed_wheel_is_what_runs_and_its_dependencies_are_met(installed):
    venv, elsewhere = installed
    python = venv / "bin" / "python"
    code = ("import livernn, importlib.metadata as m; from packaging.requirements import Requirement\n"
            "from livernn.api import *  # the api package and its modules are in the wheel\n"
            "assert voice.__module__ == 'livernn.api.voices' and listen.__module__ == 'livernn.api.listening'\n"
            "print(livernn.__file__)\n"
            "for r in map(Requirement, m.requires('livernn')):\n"
            "    if r.marker is None: assert m.version(r.name) in r.specifier, (r, m.version(r.name))\n")
    where = Path(run([python, "-c", code], elsewhere).stdout.strip())
    assert where.is_relative_to(venv), f"imported {where}, not the wheel installed in {venv}"
    assert not where.is_relative_to(REPO)


def test_play_three_seconds_with_a_recording_from_another_folder(installed):
    venv, elsewhere = installed
    result = run([venv / "bin" / "livernn", "play", "--duration", "3", "--record", "take.mid"], elsewhere)
    assert "playing bach" in result.stdout
    notes = notes_from_midi(elsewhere / "take.mid")
    assert len(notes) >= 3, result.stdout


def test_perform_the_demo_by_name_and_list_the_models_from_another_folder(installed):
    venv, elsewhere = installed
    livernn = venv / "bin" / "livernn"
    listing = run([livernn, "models", "--paths"], elsewhere).stdout
    shipped = next(venv.glob("lib/python3*/site-packages/livernn/_shipped"))
    assert f"folk  the second shipped model: folk melodies  [shipped: {shipped / 'models' / 'folk'}]" in listing
    patches = next(line for line in listing.splitlines() if line.startswith("patches: "))
    assert {"demo", "gesture", "band", "duet"} <= set(patches[9:].split(", ")), listing
    result = run([livernn, "perform", "demo", "--duration", "3", "--no-reload", "--quiet",
                  "--record", "set.mid"], elsewhere)
    assert "playing demo" in result.stderr
    assert len(notes_from_midi(elsewhere / "set.mid")) >= 3
    # The demo's own [outputs.recording] (demo.mid beside the patch) lands here, not in site-packages.
    assert (elsewhere / "demo.mid").is_file()
    assert not list(shipped.rglob("*.mid"))
    # The packed models are the checkout's, bin values included (livernn bin-values), and load there.
    for name in ("bach", "folk"):
        packed, checkout = shipped / "models" / name / "config.json", REPO / "models" / name / "config.json"
        assert packed.read_bytes() == checkout.read_bytes()
    code = ("from livernn.model import load_model; m = load_model('folk')\n"
            "print(len(m.config.step_values), m.config.n_step)")
    assert run([venv / "bin" / "python", "-c", code], elsewhere).stdout.split() == ["97", "97"]
