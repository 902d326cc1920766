"""Time to threshold on the digits CNN: tweakops against Keras Tuner and the seed's escalation.

    python bench/bench_tuning.py [--seeds 0 1 2] [--threshold 0.985] [--max-trials 30]
                                 [--time-budget 600] [--space bench/spaces/wide.yaml]
                                 [--runtime auto|local|docker] [--parallel N]
                                 [--tuners tweakops kt-random kt-hyperband kt-bayesian escalation]
                                 [--no-overheads] [--keep DIR]

Per seed, in one go on this machine, five tuners of examples/digits-cnn (a Keras CNN on
scikit-learn's 8x8 digits; the score is the test-split accuracy that its train.py writes),
each with the same threshold, most trials and time budget, over the --space file's search
space (default: the wide space):

- tweakops: `tweakops run REPO` with the settings a user gets by default (no --runtime, so
  `auto`, and no --parallel unless given) on a temp git repo holding the example, whose
  tweakops.yaml is the example's with the space's search_space, the flags' threshold,
  max_trials and time_budget, and `tuning.seed: SEED`. Trial 0 runs train.py's defaults;
  every trial is a fresh process.
- kt-random, kt-hyperband, kt-bayesian: Keras Tuner's RandomSearch, Hyperband (max_epochs =
  the space's most epochs, factor 3, stopped after the trial budget; it sets each trial's
  epochs itself) and BayesianOptimization, each in a fresh python process per seed (its wall
  includes its TensorFlow import); each trial is scored on train.py's test split.
- escalation: the seed's fixed escalation (LADDER), run by tweakops's `strategy: escalate`.

Then the two overheads: per-trial start-up (tweakops's process per trial against Keras
Tuner's in-process trials) and the per-epoch checkpoint + epoch record cost
(bench/checkpoint_overhead.py). The pure parts are in bench/_tuning_*.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the checkout

from bench._common import ROOT, BenchError, run_bench, say
from bench._tuning_kt import WORKER_FLAG, keras_tuner_worker, kt_version, run_keras_tuner
from bench._tuning_launch import load1
from bench._tuning_report import checkpoint_lines, report, wall_text
from bench._tuning_runs import Run
from bench._tuning_setup import (
    ESCALATION,
    HYPERBAND_FACTOR,
    KT_BAYESIAN,
    KT_HYPERBAND,
    KT_ORACLES,
    KT_RANDOM,
    LADDER,
    TUNERS,
    TWEAKOPS,
    WIDE,
    Setup,
    most_epochs,
    space_specs,
)
from bench._tuning_tweakops import run_tweakops


def run_tuner(tuner: str, seed: int, setup: Setup, scratch: Path) -> Run:
    if tuner in KT_ORACLES:
        return run_keras_tuner(tuner, seed, setup, scratch)
    return run_tweakops(tuner, seed, setup, scratch)


def heading(setup: Setup, runs: list[Run], load_start: float) -> list[str]:
    """What each tuner was given, and where tweakops's trials ran."""
    n, tuners = setup.max_trials, setup.tuners
    runtimes = sorted({r.runtime for r in runs if r.tuner in (TWEAKOPS, ESCALATION)})
    flags = (f" --runtime {setup.runtime}" if setup.runtime else "") + (
        f" --parallel {setup.parallel}" if setup.parallel else ""
    )
    epochs = most_epochs(space_specs(setup.space)) if KT_HYPERBAND in tuners else 0
    kt = {
        KT_RANDOM: f"{KT_RANDOM} RandomSearch(seed=SEED, max_trials={n})",
        KT_HYPERBAND: f"{KT_HYPERBAND} Hyperband(max_epochs={epochs}, "
        f"factor={HYPERBAND_FACTOR}, "
        f"hyperband_iterations=1, seed=SEED), stopped after {n} trials, epochs set by it",
        KT_BAYESIAN: f"{KT_BAYESIAN} BayesianOptimization(seed=SEED, max_trials={n}), "
        "its default num_initial_points (3 × the space's params) random trials first",
    }
    lines = []
    if TWEAKOPS in tuners or ESCALATION in tuners:
        lines.append(
            f"tweakops: `tweakops run REPO{flags}`, the example's tweakops.yaml with the space, "
            "threshold, max_trials, time_budget and tuning.seed SEED; runtime used: "
            f"{', '.join(runtimes) or '—'}; trial 0 is train.py's defaults; a process per trial"
        )
    if any(t in KT_ORACLES for t in tuners):
        lines.append(
            f"keras-tuner {kt_version()}: "
            + "; ".join(kt[t] for t in tuners if t in kt)
            + "; objective val_accuracy, each trial scored on train.py's test split, a fresh "
            "python process per tuner and seed (its wall includes its TensorFlow import)"
        )
    if ESCALATION in tuners:
        lines.append(
            "escalation: tweakops's `tuning.strategy: escalate` after trial 0: "
            + " → ".join(
                "/".join(str(v) for k, v in rung.items() if k != "epochs") + f" x{rung['epochs']}"
                for rung in LADDER
            )
            + " (conv_blocks/filters/dense_units x epochs)"
        )
    lines.append(
        "every trial trains with keras seed SEED; the tuners' order rotates from seed to seed; "
        f"load 1m {load_start:.2f} at the start, {load1():.2f} at the end (the bench's own "
        "training included)"
    )
    return lines


def measure_checkpoint(seed: int) -> list[str]:
    """(b) the per-epoch checkpoint + epoch record cost, from bench/checkpoint_overhead.py."""
    try:
        from bench.checkpoint_overhead import epoch_overhead
    except ModuleNotFoundError as exc:
        if exc.name != "bench.checkpoint_overhead":
            raise
        return checkpoint_lines(None)
    say("checkpoint overhead: the same fit with and without the per-epoch checkpoint + record")
    return checkpoint_lines(epoch_overhead(seed=seed))


def measure(setup: Setup, scratch: Path, load_start: float) -> str:
    runs: list[Run] = []
    tuners = setup.tuners
    for index, seed in enumerate(setup.seeds):
        shift = index % len(tuners)
        for tuner in (*tuners[shift:], *tuners[:shift]):  # rotate: no tuner always goes first
            say(f"seed {seed}: {tuner} (load 1m {load1():.2f})")
            runs.append(run_tuner(tuner, seed, setup, scratch))
            wall = wall_text(runs[-1].wall(setup.threshold))
            say(f"seed {seed}: {tuner} wall to threshold {wall} s")
    checkpoint = measure_checkpoint(setup.seeds[0]) if setup.overheads else []
    return report(setup, runs, heading(setup, runs, load_start), checkpoint)


def parse(argv: list[str]) -> tuple[Setup, Path | None]:
    """The bench's setup from the command line, and --keep's folder."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=float, default=0.985)
    parser.add_argument("--max-trials", type=int, default=30, help="trial 0 included")
    parser.add_argument("--time-budget", type=float, default=600.0, help="s per tuner and seed")
    parser.add_argument("--space", type=Path, default=WIDE, help="a yaml with a search_space")
    parser.add_argument(
        "--runtime", choices=("auto", "local", "docker"), help="for tweakops (default: not passed)"
    )
    parser.add_argument(
        "--parallel", type=int, help="tweakops's trials at once (default: not passed)"
    )
    parser.add_argument("--tuners", nargs="+", choices=TUNERS, default=list(TUNERS))
    parser.add_argument("--no-overheads", action="store_true", help="skip both overheads")
    parser.add_argument("--keep", type=Path, help="keep the runs' folders here (default: temp)")
    args = parser.parse_args(argv)
    if not 0 < args.threshold <= 1:
        parser.error(f"--threshold must be in (0, 1] but got {args.threshold}")
    if args.max_trials < 2:
        parser.error(f"--max-trials must be 2 or more (trial 0 included) but got {args.max_trials}")
    if args.time_budget <= 0 or (args.parallel is not None and args.parallel < 1):
        parser.error("--time-budget must be above 0 and --parallel 1 or more")
    setup = Setup(
        seeds=tuple(dict.fromkeys(args.seeds)),
        threshold=args.threshold,
        max_trials=args.max_trials,
        time_budget=args.time_budget,
        space=args.space.resolve(),
        runtime=args.runtime,
        parallel=args.parallel,
        tuners=tuple(t for t in TUNERS if t in args.tuners),
        overheads=not args.no_overheads,
    )
    try:
        specs = space_specs(setup.space)
        if KT_HYPERBAND in setup.tuners:
            most_epochs(specs)
    except (BenchError, OSError, ValueError, yaml.YAMLError) as exc:
        parser.error(f"--space {args.space}: {exc}")
    return setup, args.keep


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == [WORKER_FLAG]:
        return keras_tuner_worker(Path(args_in[1]))
    setup, keep = parse(args_in)
    if importlib.util.find_spec("keras_tuner") is None and set(setup.tuners) & set(KT_ORACLES):
        print("error: keras_tuner is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    load_start = load1()
    say(f"load 1m {load_start:.2f} on {os.cpu_count()} CPUs; checkout {ROOT}")

    def in_scratch() -> str:
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=False)
            return measure(setup, keep, load_start)
        with tempfile.TemporaryDirectory(prefix="tweakops-bench-tuning-") as scratch:
            return measure(setup, Path(scratch), load_start)

    return run_bench(in_scratch)


if __name__ == "__main__":
    raise SystemExit(main())
