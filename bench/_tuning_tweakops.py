"""tweakops (optuna) and the seed's escalation in bench/bench_tuning.py: `tweakops run` on a
temp git repo holding the example, with a temp TWEAKOPS_HOME; the trials from the run store
while it runs and from `tweakops --json status` at the end."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from bench._common import BenchError, bench_env, commit_all, say, status_snapshot, tail
from bench._tuning_launch import deadline_for, watch
from bench._tuning_runs import Run, Trial
from bench._tuning_setup import EXAMPLE, Setup, run_config, seeded_source, tweakops_args
from training import read_epochs


def make_repo(folder: Path, tuner: str, seed: int, setup: Setup) -> Path:
    """A committed git repo: the example with the seed in train.py and the run's yaml."""
    ignore = shutil.ignore_patterns("__pycache__", "accuracy.txt", "epochs.jsonl", "checkpoints")
    shutil.copytree(EXAMPLE, folder, ignore=ignore)
    script = folder / "train.py"
    script.write_text(seeded_source(script.read_text(), seed))
    config = run_config(tuner, seed, setup)
    (folder / "tweakops.yaml").write_text(
        f"# bench/bench_tuning.py: {tuner}, seed {seed}\n" + yaml.safe_dump(config, sort_keys=False)
    )
    return commit_all(folder, "bench/bench_tuning.py")


def trial_from_record(record: Mapping[str, Any], folder: Path) -> Trial:
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


def runtime_of(snapshot: Mapping[str, Any]) -> str:
    """Where the run's trials ran, as the run store recorded it: the train stage's result
    (runtime, and the image on docker), else the run's own record."""
    for stage in snapshot.get("stages", ()):
        result = stage.get("result") or {}
        if stage.get("name") == "train" and result.get("runtime"):
            image = result.get("image")
            return str(result["runtime"]) + (f" ({image})" if image else "")
    return str(snapshot.get("run", {}).get("runtime") or "unknown")


class _StoreTrials:
    """The trials that ended since the last call, from the temp home's run store."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.run_id: str | None = None
        self.seen: set[int] = set()

    def __call__(self) -> list[Trial]:
        from tweakops.store import RunStore

        if self.run_id is None:
            runs = sorted(p.name for p in (self.home / "runs").glob("*") if p.is_dir())
            if not runs:
                return []
            self.run_id = runs[0]
        new = []
        for record in RunStore(self.home).trials(self.run_id):
            if record.number in self.seen or record.ended is None or record.started is None:
                continue
            self.seen.add(record.number)
            new.append(trial_from_record(asdict(record), self.trials_dir(self.run_id)))
        return new

    def trials_dir(self, run_id: str) -> Path:
        return self.home / "runs" / run_id / "trials"


def run_tweakops(tuner: str, seed: int, setup: Setup, scratch: Path) -> Run:
    """`tweakops run REPO` on the bench repo; the trials from `tweakops --json status`."""
    folder = scratch / f"{tuner}-{seed}"
    repo = make_repo(folder / "repo", tuner, seed, setup)
    home, log = folder / "home", folder / "tweakops-run.log"
    env = bench_env(home)
    args = tweakops_args(repo, setup)
    shown = " ".join([args[0], "REPO", *args[2:]])
    say(f"{tuner} seed {seed}: `tweakops {shown}` (log: {log})")
    trials_of = _StoreTrials(home)
    watched = watch(
        [sys.executable, "-m", "tweakops", *args],
        env,
        log,
        (tuner, seed),
        deadline_for(setup.time_budget, setup.max_trials),
        trials_of,
    )
    run_id = trials_of.run_id
    if watched.code not in (0, 3) or run_id is None:
        raise BenchError(
            f"{tuner} seed {seed}: `tweakops run` exited {watched.code} (0 reached, 3 not):\n"
            f"{tail(log)}"
        )
    snapshot = status_snapshot(run_id, env)
    trials = tuple(
        trial_from_record(t, trials_of.trials_dir(run_id))
        for t in snapshot["trials"]
        if t.get("started") is not None and t.get("ended") is not None
    )
    say(f"{tuner} seed {seed}: {snapshot['run'].get('verdict')}")
    return Run(
        tuner=tuner,
        seed=seed,
        launched=watched.launched,
        trials=trials,
        verdict=str(snapshot["run"].get("status")),
        load_start=watched.load_start,
        load_mean=watched.load_mean,
        max_trials=setup.max_trials,
        runtime=runtime_of(snapshot),
        notes=(f"run {run_id}: {snapshot['run'].get('verdict')}",),
    )
