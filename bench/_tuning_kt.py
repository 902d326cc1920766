"""Keras Tuner in bench/bench_tuning.py: RandomSearch, Hyperband or BayesianOptimization, each
in a fresh python process per seed (its wall includes its own TensorFlow import), all trials
in that process. The bench side launches the worker and reads the events it appends; the
worker side (keras_tuner_worker) is one function for the three oracles.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._common import BenchError, say, tail
from bench._tuning_launch import deadline_for, watch
from bench._tuning_runs import Run, Trial, first_reaching
from bench._tuning_setup import (
    EXAMPLE,
    KT_CLASSES,
    KT_ORACLES,
    Setup,
    hp_declarations,
    space_specs,
    tuner_kwargs,
)

WORKER_FLAG = "--keras-tuner-worker"
BENCH = Path(__file__).resolve().parent / "bench_tuning.py"  # runs the worker with WORKER_FLAG


def kt_version() -> str:
    """Keras Tuner's version, without importing it (and TensorFlow) here."""
    try:
        return importlib.metadata.version("keras-tuner")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


# ---- the bench side ---------------------------------------------------------------------------


def run_keras_tuner(tuner: str, seed: int, setup: Setup, scratch: Path) -> Run:
    """One Keras Tuner search in a fresh python process; its trials from its events."""
    oracle = KT_ORACLES[tuner]
    folder = scratch / f"{tuner}-{seed}"
    folder.mkdir(parents=True)
    events, log = folder / "events.jsonl", folder / "worker.log"
    config = {
        "oracle": oracle,
        "seed": seed,
        "threshold": setup.threshold,
        "max_trials": setup.max_trials,
        "time_budget": setup.time_budget,
        "events": str(events),
        "directory": str(folder / "kt"),
        "space": str(setup.space),
    }
    (folder / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWEAKOPS_")}
    say(f"{tuner} seed {seed}: {KT_CLASSES[oracle]} in one python process (log: {log})")
    watched = watch(
        [sys.executable, str(BENCH), WORKER_FLAG, str(folder / "config.json")],
        env,
        log,
        (tuner, seed),
        deadline_for(setup.time_budget, setup.max_trials),
        _EventTrials(events),
    )
    records = read_events(events)
    end = next((r for r in records if r.get("event") == "end"), None)
    if watched.code != 0 or end is None:
        raise BenchError(f"{tuner} seed {seed}: the worker exited {watched.code}:\n{tail(log)}")
    say(f"{tuner} seed {seed}: {end['verdict']}")
    return Run(
        tuner=tuner,
        seed=seed,
        launched=watched.launched,
        trials=tuple(worker_trials(records)),
        verdict=str(end["verdict"]),
        load_start=watched.load_start,
        load_mean=watched.load_mean,
        max_trials=setup.max_trials,
        runtime="in-process",
    )


class _EventTrials:
    """The trials that ended since the last call, from the worker's events."""

    def __init__(self, events: Path) -> None:
        self.events = events
        self.shown = 0

    def __call__(self) -> list[Trial]:
        trials = worker_trials(read_events(self.events))
        new, self.shown = trials[self.shown :], len(trials)
        return new


def read_events(path: Path) -> list[dict[str, Any]]:
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


def worker_trials(records: Sequence[Mapping[str, Any]]) -> list[Trial]:
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


# ---- the worker side: one search in this process -----------------------------------------------


@dataclass
class _Search:
    """The worker's state: the trial running now, the trials done, when to stop."""

    threshold: float
    budget: int  # most trials
    emit: Callable[..., None]
    deadline: float = math.inf
    current: dict[str, Any] = field(default_factory=dict)
    done: list[Trial] = field(default_factory=list)

    def begin(self) -> None:
        self.current = {"began": time.time(), "epoch_times": []}

    def finish(self, completed: bool, params: Mapping[str, Any], message: str) -> Trial:
        """Record the trial that just ended (and emit it)."""
        accuracy = self.current.get("accuracy")
        status = "succeeded"
        if self.current.get("timeout"):
            status, accuracy = "timeout", None
        elif accuracy is None or not completed:
            status, accuracy = "failed", None
        trial = Trial(
            number=len(self.done),
            began=self.current["began"],
            ended=time.time(),
            status=status,
            accuracy=None if accuracy is None else float(accuracy),
            epoch_times=tuple(self.current["epoch_times"]),
            params=dict(params),
        )
        self.done.append(trial)
        self.emit(event="trial", **asdict(trial), message=message[-2000:])
        return trial

    def over(self) -> bool:
        """Stop after this trial: it reached, or the time or trial budget is spent."""
        last = self.done[-1] if self.done else None
        return (
            (last is not None and last.reached(self.threshold))
            or time.time() >= self.deadline
            or len(self.done) >= self.budget
        )

    def verdict(self) -> str:
        if first_reaching(self.done, self.threshold) is not None:
            return "reached"
        spent = "time_budget" if time.time() >= self.deadline else "max_trials"
        return f"not_reached ({spent})"


def keras_tuner_worker(config_path: Path) -> int:
    """The Keras Tuner side: one search (the config's oracle) over the space, in this process."""
    config = json.loads(config_path.read_text())
    events = Path(config["events"])

    def emit(**record: Any) -> None:
        with events.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    emit(event="start", time=time.time())
    os.environ.pop("TWEAKOPS_PARAMS", None)  # keras_cnn's knobs come from its kwargs
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    state = _Search(float(config["threshold"]), int(config["max_trials"]), emit)
    example = _example()
    x_train, x_test, y_train, y_test = example.load_data()  # train.py's own split
    defaults = {"epochs": int(example.EPOCHS), "batch_size": int(example.BATCH_SIZE)}
    tuner = _tuner(config, state, (x_test, y_test), defaults)
    state.deadline = time.time() + float(config["time_budget"])
    emit(event="search", time=time.time())
    tuner.search(x_train, y_train, verbose=0)
    emit(event="end", time=time.time(), verdict=state.verdict())
    return 0


def _example() -> Any:
    """The example's train.py as a module (its params at their defaults)."""
    spec = importlib.util.spec_from_file_location("digits_train", EXAMPLE / "train.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def _tuner(
    config: Mapping[str, Any],
    state: _Search,
    test: tuple[Any, Any],
    defaults: Mapping[str, int],
) -> Any:
    """The config's Keras Tuner tuner, hooked to `state`: each trial scored on the test
    split, the search stopped when state.over() (the oracle then answers STOPPED).
    `defaults`: train.py's epochs and batch_size, for a space without them."""
    import keras
    import keras_tuner

    import training

    oracle, seed = str(config["oracle"]), int(config["seed"])
    space = space_specs(Path(config["space"]))
    declarations = hp_declarations(space, oracle)
    knob_names = set(training.CNN_DEFAULTS)

    class EpochClock(keras.callbacks.Callback):
        """Each epoch's end; stops the fit at the time budget (tweakops kills the trial)."""

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            state.current["epoch_times"].append(time.time())
            if time.time() >= state.deadline:
                state.current["timeout"] = True
                self.model.stop_training = True

    class DigitsCNN(keras_tuner.HyperModel):
        def build(self, hp: Any) -> Any:
            values = {kw["name"]: getattr(hp, method)(**kw) for method, kw in declarations}
            keras.utils.set_random_seed(seed)  # like train.py: every trial's seed is SEED
            knobs = {k: v for k, v in values.items() if k in knob_names}
            return training.keras_cnn(input_shape=(8, 8, 1), classes=10, **knobs)

        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            callbacks = [*kwargs.pop("callbacks", []), EpochClock()]
            values = {**defaults, **hp.values}
            epochs = kwargs.pop("epochs", None) or int(values["epochs"])  # Hyperband: its own
            history = model.fit(
                *args,
                epochs=epochs,
                batch_size=int(values["batch_size"]),
                validation_split=0.1,
                callbacks=callbacks,
                **kwargs,
            )
            _, state.current["accuracy"] = model.evaluate(*test, verbose=0)
            return history

    class Search(getattr(keras_tuner, KT_CLASSES[oracle])):  # type: ignore[misc]
        def on_trial_begin(self, trial: Any) -> None:
            state.begin()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)  # the oracle records it, the tuner saves its state
            completed = str(trial.status) == "COMPLETED"
            message = str(getattr(trial, "message", "") or "")
            state.finish(completed, trial.hyperparameters.values, message)
            if state.over():  # create_trial answers STOPPED from now on, for every oracle
                self.oracle.max_trials = len(self.oracle.trials)

    return Search(
        hypermodel=DigitsCNN(),
        objective=keras_tuner.Objective("val_accuracy", direction="max"),
        directory=config["directory"],
        project_name="digits",
        overwrite=True,
        **tuner_kwargs(oracle, seed, int(config["max_trials"]), space),
    )
