"""How to tune: the `tuning:` mapping of tweakops.yaml, parsed and validated.

tuning:
  strategy: optuna            # or escalate: climb `ladder` until the threshold is met
  seed: 0                     # the sampler's seed (optuna)
  patience: 5                 # stop ("stalled") after 5 finished trials with no new best
  pruning: {metric: val_accuracy, warmup_epochs: 2, startup_trials: 2}   # or false
  grow_first: true            # trial 1 = trial 0 with every size knob at its top (optuna)
  parallel: auto              # trials at once: auto (default) = what the machine allows
  storage: postgresql://tweakops@db.example.org/studies   # default: the run store
  study: digits-cnn           # the study's name on a shared storage
  ladder:                     # strategy escalate: each rung is one trial's params
    - {conv_blocks: 1, filters: 16, epochs: 10}
    - {conv_blocks: 2, filters: 32, epochs: 15}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tweakops.errors import ConfigError, quoted
from tweakops.sections import check_section

STRATEGIES: tuple[str, ...] = ("optuna", "escalate")
AUTO = "auto"  # tuning.parallel: as many trials at once as the machine allows
MOST_AT_ONCE = 8  # what `auto` never goes above (a study's sampler learns from finished trials)
TUNING_KEYS = (
    "strategy",
    "seed",
    "patience",
    "pruning",
    "grow_first",
    "parallel",
    "storage",
    "study",
    "ladder",
)
PRUNING_KEYS = ("metric", "warmup_epochs", "startup_trials")
_STORAGE = re.compile(r"^(postgresql(\+\w+)?|mysql(\+\w+)?|sqlite)://", re.IGNORECASE)
_PASSWORD = re.compile(r"^[a-z0-9+]+://[^/@:]*:[^/@]+@|[?&]password=", re.IGNORECASE)
_STUDY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Pruning:
    """Median pruning (tuning/pruner.py) fed by each epoch's `metric` (the trial's epochs.jsonl)."""

    metric: str = "val_accuracy"  # falls back to "accuracy" when an epoch has no such key
    warmup_epochs: int = 2  # never prune before this many epochs
    startup_trials: int = 2  # trials that must have finished before any is pruned


@dataclass(frozen=True)
class TuningSettings:
    strategy: str = "optuna"
    seed: int = 0
    patience: int | None = None  # None: no "stalled" rule
    pruning: Pruning | None = Pruning()
    grow_first: bool = True  # the first tuned trial grows trial 0 (tuning/prior.py)
    parallel: int | None = None  # None: "auto", what the machine allows (auto_parallel)
    storage: str | None = None  # None: the run store's SQLite database
    study: str | None = None  # None: one study per run
    ladder: tuple[dict[str, Any], ...] = ()


def parse_tuning(value: object, source: str) -> TuningSettings:
    """The `tuning` mapping; every error names the key, the value and what is allowed."""
    if value is None:
        return TuningSettings()
    fields: dict[str, Any] = {}
    for key, raw in check_section(value, "tuning", source, TUNING_KEYS).items():
        if key == "pruning":  # a section of its own: its unknown keys are named tuning.pruning.*
            fields["pruning"] = _pruning(raw, source)
        else:
            fields[str(key)] = _PARSERS[str(key)](raw, f"tuning.{key} in {source}")
    settings = TuningSettings(**fields)
    if settings.strategy == "escalate" and not settings.ladder:
        raise ConfigError(
            f"tuning.strategy escalate in {source} needs tuning.ladder: a list of params, one "
            "mapping per trial, smallest model first"
        )
    return settings


def parse_parallel(value: object, where: str) -> int | None:
    """A number of trials at once from 1 to 64, or "auto" (None): what the machine allows."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return None
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or number != int(number) or not 1 <= number <= 64:
        raise ConfigError(
            f"{where} must be auto or a whole number from 1 to 64, got {quoted(value)}"
        )
    return int(number)


def auto_parallel(
    cpus: int,
    memory: int | None,
    trial_cpus: float | None,
    trial_memory: int | None,
    most: int = MOST_AT_ONCE,
    spare_cpus: int = 0,
) -> int:
    """Trials at once for `parallel: auto`: as many as the CPUs (each trial's `cpus` limit,
    else one CPU per trial) and the memory (each trial's `memory` limit) hold, at most `most`.
    `spare_cpus` are left to the warm spares: a spare that gets no CPU while the trials train
    is not ready when the next trial takes it (bench/bench_tuning.py on 2 CPUs: 2 at once,
    median start-up 2.7 s; 1 at once and a CPU for the spare, 0.9 s)."""
    cpus = max(1, cpus - spare_cpus)
    by_cpu = int(cpus // trial_cpus) if trial_cpus else cpus
    by_memory = memory // trial_memory if memory and trial_memory else by_cpu
    return max(1, min(by_cpu, by_memory, most))


def _strategy(value: object, where: str) -> str:
    if value not in STRATEGIES:
        raise ConfigError(f"{where} must be one of {', '.join(STRATEGIES)}, got {quoted(value)}")
    return str(value)


def _whole(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ConfigError(
            f"{where} must be a whole number from {low} to {high}, got {quoted(value)}"
        )
    if not low <= int(value) <= high:
        raise ConfigError(
            f"{where} must be a whole number from {low} to {high}, got {quoted(value)}"
        )
    return int(value)


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {quoted(value)}")
    return value


def _patience(value: object, where: str) -> int | None:
    return None if value is None else _whole(value, where, low=1, high=10_000)


def _pruning(value: object, source: str) -> Pruning | None:
    """tuning.pruning: false (off), true (the defaults) or a mapping of PRUNING_KEYS."""
    if value is False or value is None:
        return None
    if value is True:
        return Pruning()
    shape = "false or a mapping like {metric: val_accuracy, warmup_epochs: 2}"
    value = check_section(value, "tuning.pruning", source, PRUNING_KEYS, shape)
    where = f"tuning.pruning in {source}"
    metric = value.get("metric", Pruning.metric)
    if not isinstance(metric, str) or not _PARAM.match(metric):
        raise ConfigError(
            f"{where}: metric must name an epoch metric like val_accuracy, got {quoted(metric)}"
        )
    return Pruning(
        metric=metric,
        warmup_epochs=_whole(
            value.get("warmup_epochs", Pruning.warmup_epochs), f"{where}: warmup_epochs", 0, 10_000
        ),
        startup_trials=_whole(
            value.get("startup_trials", Pruning.startup_trials),
            f"{where}: startup_trials",
            0,
            10_000,
        ),
    )


def _storage(value: object, where: str) -> str:
    if not isinstance(value, str) or not _STORAGE.match(value.strip()):
        raise ConfigError(
            f"{where} must be a database URL like postgresql://user@host/db, got {quoted(value)}"
        )
    if _PASSWORD.search(value.strip()):
        raise ConfigError(
            f"{where} holds a password: keep it out of the repository; leave it out of the URL "
            "and set PGPASSWORD (or ~/.pgpass) on the machines that tune"
        )
    return value.strip()


def _study(value: object, where: str) -> str:
    if not isinstance(value, str) or not _STUDY.match(value):
        raise ConfigError(
            f"{where} must be a name of letters, digits, '_', '.', '-', got {quoted(value)}"
        )
    return value


def _seed(value: object, where: str) -> int:
    return _whole(value, where, low=0, high=2**31 - 1)


def _ladder(value: object, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list of params, one mapping per trial")
    rungs = []
    for index, rung in enumerate(value, start=1):
        if not isinstance(rung, Mapping) or not rung:
            raise ConfigError(
                f"{where}: rung {index} must be a mapping of params, got {quoted(rung)}"
            )
        for name, param in rung.items():
            if not isinstance(name, str) or not _PARAM.match(name):
                raise ConfigError(f"{where}: rung {index} has a bad param name {quoted(name)}")
            if not isinstance(param, str | int | float | bool):
                raise ConfigError(
                    f"{where}: rung {index} param {name} must be a number, string or boolean, "
                    f"got {quoted(param)}"
                )
        rungs.append(dict(rung))
    return tuple(rungs)


_PARSERS: dict[str, Any] = {
    "strategy": _strategy,
    "seed": _seed,
    "patience": _patience,
    "grow_first": _flag,
    "parallel": parse_parallel,
    "storage": _storage,
    "study": _study,
    "ladder": _ladder,
}
