"""Launching one tuner's process for bench/bench_tuning.py and watching it: its launch time,
the 1-minute load while it runs, its trials as they end, and a deadline past its budget."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._common import BenchError, say, stop
from bench._tuning_runs import Trial

POLL_SECONDS = 1.0
WAIT_SECONDS = 120.0  # per trial past the time budget: for the last trial and the ending


def load1() -> float:
    return os.getloadavg()[0]


def deadline_for(time_budget: float, max_trials: int) -> float:
    """time.monotonic() after which a tuner that still runs is stopped as stuck."""
    return time.monotonic() + time_budget + max_trials * WAIT_SECONDS


def trial_line(tuner: str, seed: int, trial: Trial) -> str:
    score = "" if trial.accuracy is None else f" {trial.accuracy:.4f}"
    return (
        f"{tuner} seed {seed}: trial {trial.number} {trial.status}{score} "
        f"({trial.seconds:.1f} s, {len(trial.epoch_times)} epochs)"
    )


@dataclass(frozen=True)
class Watched:
    launched: float  # time.time() just before the process started
    code: int
    load_start: float
    load_mean: float


def watch(
    argv: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    who: tuple[str, int],
    deadline: float,
    new_trials: Callable[[], Sequence[Trial]],
) -> Watched:
    """Run `argv` (output to `log`) for `who` (tuner, seed) until it exits; every poll, say
    the trials that `new_trials` returns (the ones ended since its last call). Stopped
    (SIGTERM, then SIGKILL) past `deadline` or on any error, Ctrl-C included."""
    tuner, seed = who
    loads = [load1()]
    with log.open("wb") as out:
        launched = time.time()
        process = subprocess.Popen(
            list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            loads.append(load1())
            if time.monotonic() > deadline:
                raise BenchError(f"{tuner} seed {seed}: still runs past its budget; stopped")
            for trial in new_trials():
                say(trial_line(tuner, seed, trial))
        code = process.wait()
    except BaseException:
        stop(process)
        raise
    for trial in new_trials():
        say(trial_line(tuner, seed, trial))
    return Watched(launched, code, loads[0], statistics.fmean(loads))
