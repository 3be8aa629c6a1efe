"""`livernn train` on a multi-core CPU trains in one process per core (train.spawn): the plan,
the same global batch and updates as one process, rank 0's files only, one-line errors from
any process, and no process left behind."""

from __future__ import annotations

import json

import pytest

from livernn.cli import main
from livernn.errors import LivernnError
from livernn.model import load_model
from livernn.train import load_recipe
from livernn.train.spawn import plan, usable_cores
from test_data import tiny_corpus


def recipe(**train):
    return load_recipe(None, {f"train.{k}": v for k, v in train.items()})


@pytest.mark.parametrize("train, device, cores, env, expect", [
    ({"batch_size": 32}, "cpu", 2, {}, (2, 1)),  # the default on this machine: one process a core
    ({"batch_size": 32}, "cpu", 1, {}, (1, 0)),  # one core: this process, as before
    ({"batch_size": 64}, "cpu", 16, {}, (8, 2)),  # at least 8 windows each; the cores shared out as threads
    ({"batch_size": 48}, "cpu", 5, {}, (4, 1)),  # a number of processes that divides the batch
    ({"batch_size": 12}, "cpu", 8, {}, (1, 0)),  # too small a batch to share
    ({"batch_size": 32, "threads": 2}, "cpu", 2, {}, (1, 2)),  # threads set: one process with them
    ({"batch_size": 32, "processes": 1}, "cpu", 2, {}, (1, 0)),
    ({"batch_size": 32, "processes": 4}, "cpu", 2, {}, (4, 1)),  # asked for: started even on fewer cores
    ({"batch_size": 32}, "cuda", 8, {}, (1, 0)),
    ({"batch_size": 32}, "cpu", 2, {"WORLD_SIZE": "2"}, (1, 0)),  # under torchrun: its processes
])
def test_the_plan(train, device, cores, env, expect):
    assert plan(recipe(**train), device, cores=cores, environ=env) == expect


@pytest.mark.parametrize("train, device, says", [
    ({"batch_size": 32, "processes": 3}, "cpu", "does not divide batch_size 32"),
    ({"batch_size": 4, "processes": 8}, "cpu", "at least one window a step"),
    ({"batch_size": 32, "processes": 2}, "cuda", "is for CPU training"),
])
def test_a_plan_that_cannot_work_is_one_line(train, device, says):
    with pytest.raises(LivernnError, match=says):
        plan(recipe(**train), device, cores=2, environ={})
    with pytest.raises(LivernnError, match="must be >= 0"):
        recipe(processes=-1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"), n_files=16, n_notes=60)


def args(corpus, out, cache, *extra):
    return ["train", "--data", str(corpus), "--out", str(out), "--hidden", "16", "--layers", "1",
            "--seq-len", "16", "--batch-size", "16", "--workers", "1", "--cache-dir", str(cache),
            "--device", "cpu", "--no-progress", *extra]


def rows(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_train_the_recipes_batch(corpus, tmp_path, capfd):
    """Two processes of 8 windows each take the same updates an epoch as one process of 16,
    and learn about as well; only rank 0 logs and writes."""
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(args(corpus, one, tmp_path / "c", "--epochs", "2", "--processes", "1")) == 0
    capfd.readouterr()
    assert main(args(corpus, two, tmp_path / "c", "--epochs", "2", "--processes", "2")) == 0
    out = capfd.readouterr().out
    assert out.count("epoch 2:") == 1
    hw = load_model(two).meta["hardware"]
    assert (hw["world_size"], hw["batch_per_process"], hw["threads"]) == (2, 8, 1)
    assert load_model(one).meta["hardware"]["batch_per_process"] == 16
    assert [r["step"] for r in rows(two)] == [r["step"] for r in rows(one)]
    a, b = rows(one)[-1]["val"]["total"], rows(two)[-1]["val"]["total"]
    assert abs(a - b) < 0.1 * a  # the same training, up to which windows each dropout saw
    assert load_model(two).meta["recipe"]["train"]["batch_size"] == 16  # the recipe as asked
    assert "test" in load_model(two).meta["metrics"]  # rank 0 scored the best model


def test_the_default_uses_the_cores(corpus, tmp_path):
    out = tmp_path / "auto"
    assert main(args(corpus, out, tmp_path / "c", "--epochs", "1")) == 0
    expected = min(usable_cores(), 2)  # batch 16: at most two processes of 8
    assert load_model(out).meta["hardware"]["world_size"] == expected


def test_a_time_limit_stops_every_process(corpus, tmp_path):
    out = tmp_path / "limited"
    assert main(args(corpus, out, tmp_path / "c", "--epochs", "50", "--processes", "2", "--time-limit",
                     "0.00001")) == 0
    assert len(rows(out)) == 1


def test_an_error_in_a_process_is_one_line(tmp_path, capfd):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.mid").write_bytes(b"not midi")
    assert main(args(empty, tmp_path / "x", tmp_path / "c", "--epochs", "1", "--processes", "2")) == 2
    lines = capfd.readouterr().err.splitlines()
    assert lines[-1].startswith("livernn: error: ") and "need MIDI files" in lines[-1], lines
    # the one before it is rank 0's warning about the file, as one process prints it; no traceback,
    # no word from torch about stopping the other process
    assert lines[:-1] == [f"livernn: warning: skipping {empty / 'a.mid'}: not a readable MIDI file "
                          "(MThd not found. Probably not a MIDI file)"], lines


def test_ctrl_c_stops_every_process(corpus, tmp_path):
    """Ctrl-C at the terminal (SIGINT to the foreground group): `livernn train` ends with 130
    and no training process is left running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "livernn.cli", *args(corpus, out, tmp_path / "c", "--epochs", "1000",
                                                      "--processes", "2")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err, err
    time.sleep(0.5)
    left = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    assert [line for line in left.splitlines() if "Z" not in line.split()[1]] == [], left


def test_a_two_process_run_resumes(corpus, tmp_path):
    out = tmp_path / "resumed"
    assert main(args(corpus, out, tmp_path / "c", "--epochs", "1", "--processes", "2")) == 0
    assert main(args(corpus, out, tmp_path / "c", "--epochs", "2", "--processes", "2", "--resume")) == 0
    assert [r["epoch"] for r in rows(out)] == [1, 2]
    assert rows(out)[1]["step"] == 2 * rows(out)[0]["step"]  # the schedule went on where it stopped
