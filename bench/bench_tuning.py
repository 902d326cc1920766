"""Time to threshold on the digits CNN: tweakops against Keras Tuner and the seed's escalation.

    python bench/bench_tuning.py [--seeds 0 1 2] [--threshold 0.98] [--max-trials 12]
                                 [--time-budget 900] [--runtime local|docker] [--parallel 1]
                                 [--tuners tweakops keras-tuner escalation] [--keep DIR]

Per seed, in one go on this machine, three tuners of examples/digits-cnn (a Keras CNN on
scikit-learn's 8x8 digits; the score is the test-split accuracy that its train.py writes):

1. tweakops: `tweakops run REPO --runtime R --threshold T --max-trials N --time-budget B` in a
   subprocess with a temp TWEAKOPS_HOME, on a temp git repo holding the example with its own
   tweakops.yaml (strategy optuna, pruning, patience) and `tuning.seed: SEED`. Trial 0 runs
   train.py's defaults; every trial is a fresh process.
2. keras-tuner: `keras_tuner.RandomSearch(seed=SEED, max_trials=N)`, objective val_accuracy,
   over the same search space (declared from the example's tweakops.yaml: same ranges, steps,
   log scales and choices), in one python process that the bench launches (its wall time
   includes its own TensorFlow import). Each trial builds `training.keras_cnn` with the chosen
   knobs, fits with the chosen epochs and batch_size and validation_split 0.1 like train.py,
   then evaluates on train.py's test split (its own load_data()).
3. escalation: the seed's fixed escalation ("accuracy too low: use a bigger CNN"), written as
   a ladder of bigger models and longer training (LADDER) and run by tweakops's own
   `tuning.strategy: escalate`, through the same `tweakops run` as 1.

Every trial of every tuner trains with the keras seed SEED (train.py's `seed` default is set
to SEED in the bench's copy). Same threshold, most trials (N, trial 0 included for tweakops
and the escalation) and time budget for all three; the tuners' order rotates from seed to
seed. Per run: trials until the first trial that scored ≥ the threshold, and the wall time
from launching the tuner's process to the end of that trial. Goal (issue #6): tweakops's
median wall time to threshold ≤ 0.7× Keras Tuner's.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the checkout

from bench._common import (
    ROOT,
    BenchError,
    bench_env,
    commit_all,
    met_word,
    ratio,
    run_bench,
    say,
    status_snapshot,
    stop,
    tail,
)
from training import read_epochs
from tuning.space import ParamSpec, parse_space

EXAMPLE = ROOT / "examples" / "digits-cnn"
GOAL_RATIO = 0.7
TWEAKOPS, KERAS_TUNER, ESCALATION = "tweakops", "keras-tuner", "escalation"
TUNERS = (TWEAKOPS, KERAS_TUNER, ESCALATION)
PEERS = (KERAS_TUNER, ESCALATION)
# train.py's line whose default every trial (trial 0 included) trains with.
SEED_LINE = 'SEED = training.param("seed", 0)'
# The seed's escalation, fixed in advance: a bigger CNN and longer training each time the
# accuracy is too low. Within the example's search space; the knobs not named keep train.py's
# defaults (kernel 3, no dropout, adam at 0.003, batch 64).
LADDER: tuple[dict[str, int], ...] = (
    {"conv_blocks": 1, "filters": 16, "dense_units": 64, "epochs": 12},
    {"conv_blocks": 1, "filters": 32, "dense_units": 64, "epochs": 15},
    {"conv_blocks": 2, "filters": 32, "dense_units": 96, "epochs": 15},
    {"conv_blocks": 2, "filters": 48, "dense_units": 128, "epochs": 18},
    {"conv_blocks": 2, "filters": 64, "dense_units": 128, "epochs": 20},
)
POLL_SECONDS = 1.0
WAIT_SECONDS = 120.0  # past the time budget: for the last trial and the run's own ending
WORKER_FLAG = "--keras-tuner-worker"


def load1() -> float:
    return os.getloadavg()[0]


# ---- the pure part: trials, time to threshold, medians, where the time went ----------------


@dataclass(frozen=True)
class Trial:
    """One finished (or stopped) trial, all times time.time()."""

    number: int
    began: float
    ended: float
    status: str  # succeeded | failed | pruned | cancelled | timeout
    accuracy: float | None
    epoch_times: tuple[float, ...] = ()  # the end of each epoch
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.ended - self.began

    def reached(self, threshold: float) -> bool:
        return (
            self.status == "succeeded"
            and self.accuracy is not None
            and (self.accuracy >= threshold)
        )


@dataclass(frozen=True)
class Reach:
    trials: int  # trials started up to the end of the first one that reached the threshold
    ended: float  # that trial's end


def first_reaching(trials: Sequence[Trial], threshold: float) -> Reach | None:
    """The first trial (by its end) that scored ≥ threshold, and how many trials had started
    by then (with parallel trials, siblings started before it count too)."""
    reaching = sorted((t for t in trials if t.reached(threshold)), key=lambda t: t.ended)
    if not reaching:
        return None
    first = reaching[0]
    return Reach(sum(1 for t in trials if t.began <= first.ended), first.ended)


@dataclass(frozen=True)
class Run:
    """One tuner on one seed."""

    tuner: str
    seed: int
    launched: float  # time.time() just before the tuner's process was started
    trials: tuple[Trial, ...]
    verdict: str
    load_start: float
    load_mean: float
    max_trials: int
    notes: tuple[str, ...] = ()

    def reach(self, threshold: float) -> Reach | None:
        return first_reaching(self.trials, threshold)

    def wall(self, threshold: float) -> float | None:
        """Seconds from the launch to the end of the first trial ≥ threshold; None: never."""
        reach = self.reach(threshold)
        return None if reach is None else reach.ended - self.launched

    def tune_wall(self, threshold: float) -> float | None:
        """Like wall(), but from the end of trial 0 (stage 3, the user's defaults), when the
        tuner has one: the time of the tuning stage alone."""
        reach = self.reach(threshold)
        defaults = [t.ended for t in self.trials if t.number == 0]
        start = defaults[0] if defaults and self.tuner != KERAS_TUNER else self.launched
        return None if reach is None else reach.ended - start

    def best(self) -> float | None:
        scores = [t.accuracy for t in self.trials if t.accuracy is not None]
        return max(scores) if scores else None

    def until(self, threshold: float) -> list[Trial]:
        """The trials that began before the end of the measurement (all, when not reached)."""
        reach = self.reach(threshold)
        ordered = sorted(self.trials, key=lambda t: t.began)
        return ordered if reach is None else [t for t in ordered if t.began <= reach.ended]


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median where None (never reached) counts as infinitely long; None when that is the
    median (or there is nothing)."""
    if not values:
        return None
    middle = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(middle) else middle


@dataclass(frozen=True)
class Split:
    """One trial's seconds: start-up (process, imports, data, model build, tracing, up to the
    first epoch less one typical epoch), training (its epochs) and tail (after the last
    epoch: evaluation, writing the metric, exit, the tuner noticing)."""

    startup: float
    training: float
    tail: float
    epoch: float | None  # median seconds between consecutive epochs


def split_trial(trial: Trial) -> Split:
    times = sorted(trial.epoch_times)
    if not times:
        return Split(trial.seconds, 0.0, 0.0, None)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    epoch = statistics.median(gaps) if gaps else None
    first = times[0] - trial.began - (epoch or 0.0)
    return Split(first, times[-1] - times[0] + (epoch or 0.0), trial.ended - times[-1], epoch)


PARTS = ("before 1st trial", "trial start-up", "training epochs", "after last epoch", "between")


def time_split(run: Run, threshold: float) -> dict[str, float]:
    """Where the wall time to threshold went (to the last trial's end when not reached).

    With one trial at a time the parts add up to that wall time; trials at once overlap.
    """
    trials = run.until(threshold)
    parts = dict.fromkeys(PARTS, 0.0)
    if not trials:
        return parts
    parts["before 1st trial"] = trials[0].began - run.launched
    for trial in trials:
        split = split_trial(trial)
        parts["trial start-up"] += split.startup
        parts["training epochs"] += split.training
        parts["after last epoch"] += split.tail
    for before, after in itertools.pairwise(trials):
        parts["between"] += after.began - before.ended
    return parts


# ---- the pure part: what each tuner is given ------------------------------------------------


def seeded_source(text: str, seed: int) -> str:
    """train.py with `seed` as the default of its `seed` param (so every trial uses it)."""
    if text.count(SEED_LINE) != 1:
        raise BenchError(
            f"train.py of {EXAMPLE} no longer has the line {SEED_LINE!r}; update SEED_LINE in "
            "bench/bench_tuning.py"
        )
    return text.replace(SEED_LINE, f'SEED = training.param("seed", {seed})')


def tweakops_config(
    base: Mapping[str, Any],
    tuner: str,
    seed: int,
    threshold: float,
    max_trials: int,
    time_budget: float,
) -> dict[str, Any]:
    """The example's tweakops.yaml for one run: its own tuning settings and the seed
    (tweakops), or the seed's fixed escalation as `strategy: escalate` (escalation)."""
    config = {
        **base,
        "threshold": threshold,
        "max_trials": max_trials,
        "time_budget": time_budget,
    }
    if tuner == TWEAKOPS:
        config["tuning"] = {**(base.get("tuning") or {}), "seed": seed}
    elif tuner == ESCALATION:
        config["tuning"] = {"strategy": "escalate", "seed": seed, "ladder": list(LADDER)}
    else:
        raise ValueError(f"tweakops runs {TWEAKOPS} and {ESCALATION}, not {tuner!r}")
    return config


def hp_declaration(spec: ParamSpec) -> tuple[str, dict[str, Any]]:
    """The keras_tuner.HyperParameters method and arguments for one search-space entry."""
    if spec.type == "categorical":
        return "Choice", {"name": spec.name, "values": list(spec.choices)}
    assert spec.low is not None and spec.high is not None
    sampling = "log" if spec.log else "linear"
    if spec.type == "int":
        return "Int", {
            "name": spec.name,
            "min_value": int(spec.low),
            "max_value": int(spec.high),
            "step": int(spec.step) if spec.step else 1,
            "sampling": sampling,
        }
    return "Float", {
        "name": spec.name,
        "min_value": float(spec.low),
        "max_value": float(spec.high),
        "step": spec.step,
        "sampling": sampling,
    }


def example_space(space: Path | None = None) -> tuple[ParamSpec, ...]:
    return parse_space(search_space(space))


def search_space(space: Path | None) -> Any:
    """The example's search_space, or the one in the yaml file `space` (--space)."""
    if space is None:
        return example_config()["search_space"]
    loaded = yaml.safe_load(space.read_text())
    if not isinstance(loaded, dict) or "search_space" not in loaded:
        raise BenchError(f"{space} has no search_space: key")
    parse_space(loaded["search_space"])  # a bad one fails here, not in every tuner
    return loaded["search_space"]


def example_config() -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLE / "tweakops.yaml").read_text())
    return dict(loaded)


# ---- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    seeds: tuple[int, ...]
    threshold: float
    max_trials: int
    time_budget: float
    runtime: str
    parallel: int
    tuners: tuple[str, ...] = TUNERS
    space: Path | None = None  # a yaml whose search_space replaces the example's, for all


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def run_rows(runs: Sequence[Run], threshold: float) -> list[str]:
    head = (
        f"{'tuner':<12} {'seed':>4} {'trials to ' + format(threshold, 'g'):>22} "
        f"{'wall s':>8} {'best':>7} {'trials run':>10} {'load 1m start/mean':>18}  verdict"
    )
    lines = [head]
    for run in runs:
        reach = run.reach(threshold)
        trials = str(reach.trials) if reach else f"not reached in {len(run.trials)}"
        lines.append(
            f"{run.tuner:<12} {run.seed:>4} {trials:>22} {_num(run.wall(threshold)):>8} "
            f"{_num(run.best(), 4):>7} {len(run.trials):>10} "
            f"{f'{run.load_start:.2f} / {run.load_mean:.2f}':>18}  {run.verdict}"
        )
    return lines


def summary_rows(
    runs: Sequence[Run],
    threshold: float,
    tuners: Sequence[str],
    wall_of: Callable[[Run], float | None] | None = None,
) -> list[str]:
    """Per tuner: reached in k/n, median trials and wall, and tweakops's ratios to it.

    `wall_of` measures one run (default: launch → first trial at the threshold)."""
    measure = wall_of or (lambda run: run.wall(threshold))
    medians: dict[str, tuple[float | None, float | None]] = {}
    lines = [
        f"{'tuner':<12} {'reached':>7} {'median trials':>13} {'median wall s':>13} "
        f"{'tweakops/this wall':>18} {'tweakops/this trials':>20}"
    ]
    for tuner in tuners:
        mine = [r for r in runs if r.tuner == tuner]
        reaches = [r.reach(threshold) for r in mine]
        trials = median_or_none([None if x is None else float(x.trials) for x in reaches])
        wall = median_or_none([measure(r) for r in mine])
        medians[tuner] = (trials, wall)
    ours = medians.get(TWEAKOPS, (None, None))
    for tuner in tuners:
        mine = [r for r in runs if r.tuner == tuner]
        reached = sum(1 for r in mine if r.reach(threshold) is not None)
        trials, wall = medians[tuner]
        wall_ratio = "—" if tuner == TWEAKOPS else ratio(ours[1], wall)
        trials_ratio = "—" if tuner == TWEAKOPS else ratio(ours[0], trials)
        lines.append(
            f"{tuner:<12} {f'{reached}/{len(mine)}':>7} {_num(trials):>13} {_num(wall):>13} "
            f"{wall_ratio:>18} {trials_ratio:>20}"
        )
    lines.append(goal_line(ours[1], medians.get(KERAS_TUNER, (None, None))[1], tuners))
    return lines


def goal_line(ours: float | None, keras_tuner: float | None, tuners: Sequence[str]) -> str:
    text = f"goal: tweakops's median wall time to threshold ≤ {GOAL_RATIO:g}× Keras Tuner's: "
    if TWEAKOPS not in tuners or KERAS_TUNER not in tuners:
        return text + "not measured (needs both tuners)"
    if ours is None:
        return text + "NOT met (tweakops's median run did not reach the threshold)"
    if keras_tuner is None:
        return text + "met (Keras Tuner's median run did not reach the threshold)"
    return text + f"{met_word(ours <= GOAL_RATIO * keras_tuner)} ({ratio(ours, keras_tuner)})"


def breakdown_rows(runs: Sequence[Run], threshold: float, tuners: Sequence[str]) -> list[str]:
    """Where each tuner's time went: medians per trial, and shares of the summed wall time."""
    lines = [
        f"{'tuner':<12} {'trials':>6} {'trial s':>8} {'start-up s':>10} {'epochs':>6} "
        f"{'s/epoch':>7} {'training s':>10} {'after s':>7} {'between s':>9} {'before 1st s':>12}"
    ]
    shares: list[str] = []
    for tuner in tuners:
        mine = [r for r in runs if r.tuner == tuner]
        trials = [t for r in mine for t in r.until(threshold)]
        if not trials:
            continue
        splits = [split_trial(t) for t in trials]
        epochs = [s.epoch for s in splits if s.epoch is not None]
        gaps = [
            after.began - before.ended
            for r in mine
            for before, after in itertools.pairwise(r.until(threshold))
        ]
        firsts = [r.until(threshold)[0].began - r.launched for r in mine if r.until(threshold)]

        def med(values: Sequence[float]) -> float | None:
            return statistics.median(values) if values else None

        lines.append(
            f"{tuner:<12} {len(trials):>6} {_num(med([t.seconds for t in trials])):>8} "
            f"{_num(med([s.startup for s in splits])):>10} "
            f"{_num(med([float(len(t.epoch_times)) for t in trials]), 0):>6} "
            f"{_num(med(epochs), 2):>7} {_num(med([s.training for s in splits])):>10} "
            f"{_num(med([s.tail for s in splits])):>7} {_num(med(gaps)):>9} "
            f"{_num(med(firsts)):>12}"
        )
        totals = dict.fromkeys(PARTS, 0.0)
        for run in mine:
            for part, seconds in time_split(run, threshold).items():
                totals[part] += seconds
        whole = sum(totals.values())
        if whole > 0:
            shares.append(
                f"  {tuner}: {whole:.0f} s = "
                + ", ".join(f"{part} {seconds / whole:.0%}" for part, seconds in totals.items())
            )
    return [
        *lines,
        "share of the summed wall time (to threshold; to the end if not reached):",
        *shares,
    ]


def report(setup: Setup, runs: Sequence[Run], heading: Sequence[str]) -> str:
    threshold = setup.threshold
    lines = [
        f"tuning (issue #6): {EXAMPLE.relative_to(ROOT)}, threshold {threshold:g}, at most "
        f"{setup.max_trials} trials, time budget {setup.time_budget:g} s, seeds "
        f"{' '.join(map(str, setup.seeds))}, {setup.runtime} runtime, {os.cpu_count()} CPUs",
        *heading,
        "",
        *run_rows(runs, threshold),
        "",
        "median over seeds (a run that never reached the threshold counts as infinitely long):",
        *summary_rows(runs, threshold, setup.tuners),
        "",
        "the tuning stage alone: from the end of trial 0 (stage 3: the script's defaults, which "
        "Keras Tuner does not train) for tweakops and the escalation; Keras Tuner as above:",
        *summary_rows(runs, threshold, setup.tuners, lambda run: run.tune_wall(threshold)),
        "",
        "where the time goes (medians per trial, trials up to the one that reached):",
        *breakdown_rows(runs, threshold, setup.tuners),
    ]
    if len(setup.seeds) < 3:
        lines.append("NOTE: fewer than 3 seeds: not the issue's measurement")
    return "\n".join(lines)


# ---- tweakops (optuna) and the escalation: `tweakops run` -------------------------------------


def make_repo(folder: Path, tuner: str, seed: int, setup: Setup) -> Path:
    """A committed git repo: the example with the seed in train.py and the run's yaml."""
    ignore = shutil.ignore_patterns("__pycache__", "accuracy.txt", "epochs.jsonl", "checkpoints")
    shutil.copytree(EXAMPLE, folder, ignore=ignore)
    script = folder / "train.py"
    script.write_text(seeded_source(script.read_text(), seed))
    base = {**example_config(), "search_space": search_space(setup.space)}
    config = tweakops_config(
        base, tuner, seed, setup.threshold, setup.max_trials, setup.time_budget
    )
    (folder / "tweakops.yaml").write_text(
        f"# bench/bench_tuning.py: {tuner}, seed {seed}\n" + yaml.safe_dump(config, sort_keys=False)
    )
    return commit_all(folder, "bench/bench_tuning.py")


def _trial_from_record(record: Mapping[str, Any], folder: Path) -> Trial:
    output = Path(record.get("folder") or folder / f"{int(record['number']):03d}") / "output"
    times = tuple(float(r["time"]) for r in read_epochs(output))
    return Trial(
        number=int(record["number"]),
        began=float(record["started"]),
        ended=float(record["ended"]),
        status=str(record["status"]),
        accuracy=None if record.get("accuracy") is None else float(record["accuracy"]),
        epoch_times=times,
        params=dict(record.get("params") or {}),
    )


def _trial_line(tuner: str, seed: int, trial: Trial) -> str:
    score = "" if trial.accuracy is None else f" {trial.accuracy:.4f}"
    return (
        f"{tuner} seed {seed}: trial {trial.number} {trial.status}{score} "
        f"({trial.seconds:.1f} s, {len(trial.epoch_times)} epochs)"
    )


def run_tweakops(tuner: str, seed: int, setup: Setup, scratch: Path) -> Run:
    """`tweakops run` on the bench repo; the trials from `tweakops --json status`."""
    from tweakops.store import RunStore

    folder = scratch / f"{tuner}-{seed}"
    repo = make_repo(folder / "repo", tuner, seed, setup)
    home, log = folder / "home", folder / "tweakops-run.log"
    env = bench_env(home)
    argv = [
        sys.executable,
        "-m",
        "tweakops",
        "run",
        str(repo),
        "--runtime",
        setup.runtime,
        "--threshold",
        str(setup.threshold),
        "--max-trials",
        str(setup.max_trials),
        "--time-budget",
        str(setup.time_budget),
    ]
    if setup.parallel > 1:
        argv += ["--parallel", str(setup.parallel)]
    say(f"{tuner} seed {seed}: `tweakops run REPO --runtime {setup.runtime} ...` (log: {log})")
    loads = [load1()]
    deadline = time.monotonic() + setup.time_budget + setup.max_trials * WAIT_SECONDS
    with log.open("wb") as out:
        launched = time.time()
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    seen: set[int] = set()
    run_id: str | None = None
    store: RunStore | None = None
    try:
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            loads.append(load1())
            if time.monotonic() > deadline:
                raise BenchError(f"{tuner} seed {seed}: `tweakops run` still runs; stopped")
            if run_id is None:
                runs = sorted(p.name for p in (home / "runs").glob("*") if p.is_dir())
                if not runs:
                    continue
                run_id, store = runs[0], RunStore(home)
            assert store is not None
            for record in store.trials(run_id):
                if record.number in seen or record.ended is None or record.started is None:
                    continue
                seen.add(record.number)
                trial = _trial_from_record(asdict(record), home / "runs" / run_id / "trials")
                say(_trial_line(tuner, seed, trial))
        code = process.wait()
    except BaseException:
        stop(process)
        raise
    if code not in (0, 3) or run_id is None:
        raise BenchError(
            f"{tuner} seed {seed}: `tweakops run` exited {code} (0 reached, 3 not):\n{tail(log)}"
        )
    snapshot = status_snapshot(run_id, env)
    trials_dir = home / "runs" / run_id / "trials"
    trials = tuple(
        _trial_from_record(t, trials_dir)
        for t in snapshot["trials"]
        if t.get("started") is not None and t.get("ended") is not None
    )
    verdict = str(snapshot["run"].get("status"))
    say(f"{tuner} seed {seed}: {snapshot['run'].get('verdict')}")
    return Run(
        tuner=tuner,
        seed=seed,
        launched=launched,
        trials=trials,
        verdict=verdict,
        load_start=loads[0],
        load_mean=statistics.fmean(loads),
        max_trials=setup.max_trials,
        notes=(f"run {run_id}: {snapshot['run'].get('verdict')}",),
    )


# ---- Keras Tuner: one python process (this file with WORKER_FLAG) -----------------------------


def run_keras_tuner(seed: int, setup: Setup, scratch: Path) -> Run:
    """RandomSearch in a fresh python process; its trials from the events it appends."""
    folder = scratch / f"{KERAS_TUNER}-{seed}"
    folder.mkdir(parents=True)
    events, log = folder / "events.jsonl", folder / "worker.log"
    config = {
        "seed": seed,
        "threshold": setup.threshold,
        "max_trials": setup.max_trials,
        "time_budget": setup.time_budget,
        "events": str(events),
        "directory": str(folder / "kt"),
        "space": None if setup.space is None else str(setup.space),
    }
    (folder / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEAKOPS_")}
    say(f"{KERAS_TUNER} seed {seed}: RandomSearch in one python process (log: {log})")
    loads = [load1()]
    deadline = time.monotonic() + setup.time_budget + setup.max_trials * WAIT_SECONDS
    with log.open("wb") as out:
        launched = time.time()
        process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                WORKER_FLAG,
                str(folder / "config.json"),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    shown = 0
    try:
        while process.poll() is None:
            time.sleep(POLL_SECONDS)
            loads.append(load1())
            if time.monotonic() > deadline:
                raise BenchError(f"{KERAS_TUNER} seed {seed}: the search still runs; stopped")
            trials = _worker_trials(_read_events(events))
            for trial in trials[shown:]:
                say(_trial_line(KERAS_TUNER, seed, trial))
            shown = len(trials)
        code = process.wait()
    except BaseException:
        stop(process)
        raise
    records = _read_events(events)
    trials = _worker_trials(records)
    for trial in trials[shown:]:
        say(_trial_line(KERAS_TUNER, seed, trial))
    end = next((r for r in records if r.get("event") == "end"), None)
    if code != 0 or end is None:
        raise BenchError(f"{KERAS_TUNER} seed {seed}: the worker exited {code}:\n{tail(log)}")
    say(f"{KERAS_TUNER} seed {seed}: {end['verdict']}")
    return Run(
        tuner=KERAS_TUNER,
        seed=seed,
        launched=launched,
        trials=tuple(trials),
        verdict=str(end["verdict"]),
        load_start=loads[0],
        load_mean=statistics.fmean(loads),
        max_trials=setup.max_trials,
    )


def _read_events(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return records


def _worker_trials(records: Sequence[Mapping[str, Any]]) -> list[Trial]:
    return [
        Trial(
            number=int(r["number"]),
            began=float(r["began"]),
            ended=float(r["ended"]),
            status=str(r["status"]),
            accuracy=None if r.get("accuracy") is None else float(r["accuracy"]),
            epoch_times=tuple(float(t) for t in r.get("epoch_times", ())),
            params=dict(r.get("params") or {}),
        )
        for r in records
        if r.get("event") == "trial"
    ]


def keras_tuner_worker(config_path: Path) -> int:
    """The Keras Tuner side: RandomSearch over the example's space, in this process."""
    config = json.loads(config_path.read_text())
    events = Path(config["events"])

    def emit(**record: Any) -> None:
        with events.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    emit(event="start", time=time.time())
    os.environ.pop("TWEAKOPS_PARAMS", None)  # keras_cnn's knobs come from its kwargs
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import keras_tuner

    import training

    spec = importlib.util.spec_from_file_location("digits_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    x_train, x_test, y_train, y_test = example.load_data()  # train.py's own split

    seed, threshold = int(config["seed"]), float(config["threshold"])
    space = example_space(None if config.get("space") is None else Path(config["space"]))
    knob_names = set(training.CNN_DEFAULTS)
    current: dict[str, Any] = {}
    done: list[Trial] = []
    deadline = math.inf

    class EpochClock(keras.callbacks.Callback):
        """Each epoch's end; stops the fit at the time budget (tweakops kills the trial)."""

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            current["epoch_times"].append(time.time())
            if time.time() >= deadline:
                current["timeout"] = True
                self.model.stop_training = True

    class DigitsCNN(keras_tuner.HyperModel):
        def build(self, hp: Any) -> Any:
            values = {}
            for entry in space:
                method, kwargs = hp_declaration(entry)
                values[entry.name] = getattr(hp, method)(**kwargs)
            keras.utils.set_random_seed(seed)  # like train.py: every trial's seed is SEED
            knobs = {k: v for k, v in values.items() if k in knob_names}
            return training.keras_cnn(input_shape=(8, 8, 1), classes=10, **knobs)

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            callbacks = [*kwargs.pop("callbacks", []), EpochClock()]
            history = model.fit(
                *args,
                epochs=int(hp.get("epochs")),
                batch_size=int(hp.get("batch_size")),
                validation_split=0.1,
                callbacks=callbacks,
                **kwargs,
            )
            _, current["accuracy"] = model.evaluate(x_test, y_test, verbose=0)
            return history

    class Search(keras_tuner.RandomSearch):
        def on_trial_begin(self, trial: Any) -> None:
            current.clear()
            current.update(began=time.time(), epoch_times=[])
            super().on_trial_begin(trial)

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)  # the oracle records it, the tuner saves its state
            accuracy = current.get("accuracy")
            status = "succeeded"
            if current.get("timeout"):
                status, accuracy = "timeout", None
            elif accuracy is None or str(trial.status) != "COMPLETED":
                status, accuracy = "failed", None
            done.append(
                Trial(
                    number=len(done),
                    began=current["began"],
                    ended=time.time(),
                    status=status,
                    accuracy=None if accuracy is None else float(accuracy),
                    epoch_times=tuple(current["epoch_times"]),
                    params=dict(trial.hyperparameters.values),
                )
            )
            last = done[-1]
            emit(
                event="trial",
                number=last.number,
                began=last.began,
                ended=last.ended,
                status=last.status,
                accuracy=last.accuracy,
                epoch_times=list(last.epoch_times),
                params=dict(last.params),
                message=str(getattr(trial, "message", "") or "")[-2000:],
            )
            if last.reached(threshold) or time.time() >= deadline:
                self.oracle.max_trials = len(self.oracle.trials)  # the next trial is STOPPED

    tuner = Search(
        hypermodel=DigitsCNN(),
        objective=keras_tuner.Objective("val_accuracy", direction="max"),
        max_trials=int(config["max_trials"]),
        seed=seed,
        directory=config["directory"],
        project_name="digits",
        overwrite=True,
    )
    began = time.time()
    deadline = began + float(config["time_budget"])
    emit(event="search", time=began)
    tuner.search(x_train, y_train, verbose=0)
    reach = first_reaching(done, threshold)
    if reach is not None:
        verdict = "reached"
    elif time.time() >= deadline:
        verdict = "not_reached (time_budget)"
    else:
        verdict = "not_reached (max_trials)"
    emit(event="end", time=time.time(), verdict=verdict)
    return 0


# ---- main ------------------------------------------------------------------------------------


def kt_version() -> str:
    """Keras Tuner's version, without importing it (and TensorFlow) here."""
    try:
        return importlib.metadata.version("keras-tuner")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def measure(setup: Setup, scratch: Path, load_start: float) -> str:
    runs: list[Run] = []
    tuners = setup.tuners
    for index, seed in enumerate(setup.seeds):
        shift = index % len(tuners)
        for tuner in (*tuners[shift:], *tuners[:shift]):  # rotate: no tuner always goes first
            say(f"seed {seed}: {tuner} (load 1m {load1():.2f})")
            if tuner == KERAS_TUNER:
                runs.append(run_keras_tuner(seed, setup, scratch))
            else:
                runs.append(run_tweakops(tuner, seed, setup, scratch))
            wall = runs[-1].wall(setup.threshold)
            say(f"seed {seed}: {tuner} wall to threshold {_num(wall)} s")
    space = setup.space or EXAMPLE / "tweakops.yaml"
    shown = space.relative_to(ROOT) if space.is_relative_to(ROOT) else space
    heading = [
        f"search space (all three tuners): {shown}",
        f"tweakops: `tweakops run REPO --runtime {setup.runtime} --threshold "
        f"{setup.threshold:g} --max-trials {setup.max_trials} --time-budget "
        f"{setup.time_budget:g}"
        + (f" --parallel {setup.parallel}" if setup.parallel > 1 else "")
        + "`, the example's tweakops.yaml tuning: (optuna, pruning, patience) + tuning.seed "
        "SEED; trial 0 is train.py's defaults; one process per trial",
        f"keras-tuner {kt_version()}: RandomSearch(seed=SEED, max_trials="
        f"{setup.max_trials}), objective val_accuracy, the yaml's search space, all trials in "
        "one python process (its wall time includes its own TensorFlow import); each trial "
        "scored on train.py's test split",
        "escalation: the seed's fixed escalation run by tweakops's `tuning.strategy: "
        "escalate`, after trial 0: "
        + " → ".join(
            "/".join(f"{k} {v}" for k, v in rung.items() if k != "epochs")
            + f" x{rung['epochs']} epochs"
            for rung in LADDER
        ),
        "every trial trains with keras seed SEED; wall = launching the tuner's process → the "
        "end of the first trial scoring ≥ the threshold; the time budget starts after trial 0 "
        "(tweakops, escalation) or at search() (keras-tuner)",
        f"load 1m: {load_start:.2f} at the start, {load1():.2f} at the end (includes the "
        "bench's own training: one trial uses up to all CPUs)",
    ]
    return report(setup, runs, heading)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == [WORKER_FLAG]:
        return keras_tuner_worker(Path(args_in[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=0.98)
    parser.add_argument("--max-trials", type=int, default=12, help="trial 0 included")
    parser.add_argument("--time-budget", type=float, default=900.0, help="seconds per tuner")
    parser.add_argument("--runtime", choices=("local", "docker"), default="local")
    parser.add_argument("--parallel", type=int, default=1, help="tweakops's trials at once")
    parser.add_argument("--tuners", nargs="+", choices=TUNERS, default=list(TUNERS))
    parser.add_argument("--keep", type=Path, help="keep the runs' folders here (default: temp)")
    parser.add_argument(
        "--space",
        type=Path,
        help="a yaml whose search_space all three tuners search instead of the example's "
        "(e.g. bench/spaces/wide.yaml)",
    )
    args = parser.parse_args(args_in)
    if not 0 < args.threshold <= 1:
        parser.error(f"--threshold must be in (0, 1] but got {args.threshold}")
    if args.max_trials < 2:
        parser.error(f"--max-trials must be 2 or more (trial 0 included) but got {args.max_trials}")
    if args.time_budget <= 0 or args.parallel < 1:
        parser.error("--time-budget must be above 0 and --parallel 1 or more")
    if importlib.util.find_spec("keras_tuner") is None and KERAS_TUNER in args.tuners:
        parser.error("keras_tuner is not installed: pip install -e '.[bench]' (or keras-tuner)")
    setup = Setup(
        seeds=tuple(dict.fromkeys(args.seeds)),
        threshold=args.threshold,
        max_trials=args.max_trials,
        time_budget=args.time_budget,
        runtime=args.runtime,
        parallel=args.parallel,
        tuners=tuple(t for t in TUNERS if t in args.tuners),
        space=None if args.space is None else args.space.resolve(),
    )
    load_start = load1()
    say(f"load 1m {load_start:.2f} on {os.cpu_count()} CPUs")

    def in_scratch() -> str:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=False)
            return measure(setup, args.keep, load_start)
        with tempfile.TemporaryDirectory(prefix="tweakops-bench-tuning-") as scratch:
            return measure(setup, Path(scratch), load_start)

    return run_bench(in_scratch)


if __name__ == "__main__":
    raise SystemExit(main())
