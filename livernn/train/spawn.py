"""``livernn train`` on a CPU with several cores: one training process per core, DDP.

Two torch threads in one process wait for each other at every operation (hundreds per
training step), so on a 2-core machine the second core added ~40% at best and, when any
other job held a core, less than nothing. Processes of one thread each meet once a step,
when DDP averages their gradients (gloo); each takes its share of the recipe's batch, so the
global batch, the updates per epoch and the learning-rate schedule are the recipe's own
and a model trains the same way whatever the machine (training/README.md, "Training
throughput"). This is what ``torchrun --nproc-per-node N`` does, started by ``livernn
train`` itself: nobody has to know about torchrun to get the cores they paid for.

``[train] processes`` (``--processes``): 0 (the default) plans it: on a CPU, with ``threads``
left at 0 and not already under torchrun, as many processes as usable cores, but none with
fewer than ``MIN_ROWS`` windows a step (a tiny matrix product wastes its core) and a
number that divides the batch; 1 is one process (``threads`` threads); N starts N.
``livernn.train.learn`` (fine-tuning on stage) never comes here: it stays one
low-priority thread beside the show.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from livernn.errors import LivernnError
from livernn.train.config import Recipe

MIN_ROWS = 8  # windows per process per step below which a process is not worth its core


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, as taskset or a container sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def plan(recipe: Recipe, device_type: str, *, cores: int | None = None,
         environ: dict[str, str] | None = None) -> tuple[int, int]:
    """(processes, torch threads in each) for ``livernn train`` with this recipe on a device
    of ``device_type``; (1, recipe threads) means: train in this process, as before."""
    t = recipe.train
    env = os.environ if environ is None else environ
    if int(env.get("WORLD_SIZE", "1") or 1) > 1:
        return 1, t.threads  # torchrun started us: it chose the processes
    if t.processes == 1:
        return 1, t.threads
    if device_type != "cpu":
        if t.processes > 1:
            raise LivernnError(f"[train] processes = {t.processes} is for CPU training; on {device_type} "
                               "train in one process (several GPUs: torchrun --nproc-per-node N)")
        return 1, t.threads
    cores = usable_cores() if cores is None else cores
    if t.processes == 0:
        if t.threads:  # the user set the threads of one process
            return 1, t.threads
        n = min(cores, t.batch_size // MIN_ROWS)
    else:
        n = t.processes
        if n > t.batch_size:
            raise LivernnError(f"[train] processes = {n} with batch_size {t.batch_size}: each process needs at "
                               "least one window a step (raise --batch-size or lower --processes)")
        if t.batch_size % n:
            raise LivernnError(f"[train] processes = {n} does not divide batch_size {t.batch_size}: each process "
                               "takes an equal share of the batch")
    while n > 1 and t.batch_size % n:
        n -= 1
    if n <= 1:
        return 1, t.threads
    return n, t.threads or max(1, cores // n)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child(rank: int, world: int, port: int, threads: int, args: dict[str, Any], results: Any) -> None:
    """One training process: DDP rank ``rank`` of ``world`` on this machine."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank), OMP_NUM_THREADS=str(threads))
    import torch

    from livernn.cli import one_line_warnings
    from livernn.train.loop import train

    one_line_warnings()  # as `livernn train` shows them: this process did not run its main()
    torch.set_num_threads(threads)
    try:
        metrics = train(args["recipe"], args["data"], args["out"], resume=args["resume"],
                        progress=args["progress"] and rank == 0, init=args["init"],
                        init_keys=args["init_keys"], split_batch=True, threads_after=args["cores"])
    except LivernnError as exc:
        results.put((rank, "error", str(exc)))
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except BaseException:
        results.put((rank, "crash", traceback.format_exc()))
        raise
    results.put((rank, "ok", metrics))


def _outcomes(results: Any, wait: float = 5.0) -> dict[int, tuple[str, Any]]:
    """What the processes put on ``results``, read on a thread given ``wait`` seconds: a
    process stopped while it wrote leaves a message that would block a reader forever."""
    outcome: dict[int, tuple[str, Any]] = {}

    def read() -> None:
        while not results.empty():
            rank, kind, value = results.get()
            outcome[rank] = (kind, value)

    reader = threading.Thread(target=read, name="livernn-train-results", daemon=True)
    reader.start()
    reader.join(wait)
    return dict(outcome)


def train_processes(recipe: Recipe, data_dir: str | Path, out_dir: str | Path, *, processes: int,
                    threads: int, resume: bool = False, progress: bool = True,
                    init: str | Path | None = None, init_keys: Any = ()) -> dict:
    """Train with ``processes`` DDP processes on this machine, ``threads`` torch threads each;
    returns rank 0's metrics, as ``train`` does. A one-line error in any process (bad data,
    a bad ``--init``) is raised here as that line; the others are stopped."""
    import logging

    import torch.multiprocessing as mp

    # torch logs a warning as it stops the others after one failed: that process's own line says why
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    ctx = mp.get_context("spawn")
    results = ctx.SimpleQueue()
    args = {"recipe": recipe, "data": str(data_dir), "out": str(out_dir), "resume": resume,
            "progress": progress, "init": None if init is None else str(init), "init_keys": set(init_keys),
            "cores": processes * threads}
    print(f"training in {processes} processes x {threads} thread{'s' if threads > 1 else ''} "
          f"(batch {recipe.train.batch_size} = {processes} x {recipe.train.batch_size // processes}; "
          "--processes 1 for one process)", flush=True)
    context = mp.start_processes(_child, args=(processes, _free_port(), threads, args, results),
                                 nprocs=processes, join=False, start_method="spawn")
    interrupted = False
    try:
        while not context.join():
            pass
    except (mp.ProcessExitedException, mp.ProcessRaisedException):
        pass
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for p in context.processes:
            if p.is_alive():
                p.terminate()
            p.join()
    if interrupted:  # Ctrl-C: nothing to report, and a process stopped mid-message must not hold us
        raise KeyboardInterrupt
    outcome = _outcomes(results)
    errors = [v for k, v in outcome.values() if k == "error"]
    if errors:
        raise LivernnError(errors[0])
    crashes = [v for k, v in outcome.values() if k == "crash"]
    if crashes:
        raise RuntimeError(f"a training process failed:\n{crashes[0]}")
    codes = [p.exitcode for p in context.processes]
    if 130 in codes or any(c is not None and c < 0 and -c == 2 for c in codes):
        raise KeyboardInterrupt
    if outcome.get(0, ("", None))[0] != "ok":
        raise LivernnError(f"a training process ended without a result (exit codes {codes}); "
                           "--processes 1 trains in one process")
    return outcome[0][1]
