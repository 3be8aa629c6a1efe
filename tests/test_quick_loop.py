"""The quick loop (``-m "not integration"``) starts no peer: conftest marks peer tests, and
an unmarked test that starts one fails before the peer runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_inner(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess:
    for name in ("conftest.py", "peers.py"):
        shutil.copyfile(HERE / name, tmp_path / name)
    (tmp_path / "test_inner.py").write_text(body)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           "-c", "/dev/null", *args, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)


def test_a_test_starting_a_peer_behind_the_markers_back_fails_before_the_peer_starts(tmp_path):
    body = ("import peers\nfrom pathlib import Path\n"
            "def test_sneaky():\n"
            f"    getattr(peers, 'start_' + 'jack')(Path({str(tmp_path)!r}))  # the source names no peer\n")
    try:
        result = run_inner(tmp_path, body)
    finally:
        for log in tmp_path.glob("*.log"):  # guard broken: stop the jackd it let start (its log is here)
            for fd in Path("/proc").glob("[0-9]*/fd/1"):
                try:
                    if Path(os.readlink(fd)) == log:
                        os.kill(int(fd.parts[2]), signal.SIGTERM)
                except OSError:
                    pass
    assert result.returncode == 1, result.stdout
    assert "starts a peer (start_jack) but is not marked integration" in result.stdout
    assert not list(tmp_path.glob("*.log"))  # no jackd log: the server never started


def test_peer_fixtures_and_peer_sources_are_marked_and_left_out_of_the_quick_loop(tmp_path):
    body = ("def test_plain():\n    assert True\n"
            "def test_uses_jack(jack):\n    pass\n"
            "def test_runs_scsynth():\n    raise AssertionError('scsynth should not run in the quick loop')\n")
    result = run_inner(tmp_path, body, "-m", "not integration")
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 deselected" in result.stdout
