"""What each tuner of bench/bench_tuning.py is given: the workload (the example, the search
space, the threshold and budgets), tweakops's tweakops.yaml and command line, the escalation's
ladder, and Keras Tuner's hyperparameters and constructor arguments. Pure: nothing runs here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench._common import ROOT, BenchError
from tuning.space import ParamSpec, parse_space

EXAMPLE = ROOT / "examples" / "digits-cnn"
WIDE = ROOT / "bench" / "spaces" / "wide.yaml"

TWEAKOPS, ESCALATION = "tweakops", "escalation"
KT_RANDOM, KT_HYPERBAND, KT_BAYESIAN = "kt-random", "kt-hyperband", "kt-bayesian"
# Keras Tuner's oracle per tuner name, and the class that runs it.
KT_ORACLES = {KT_RANDOM: "random", KT_HYPERBAND: "hyperband", KT_BAYESIAN: "bayesian"}
KT_CLASSES = {
    "random": "RandomSearch",
    "hyperband": "Hyperband",
    "bayesian": "BayesianOptimization",
}
TUNERS = (TWEAKOPS, KT_RANDOM, KT_HYPERBAND, KT_BAYESIAN, ESCALATION)
HYPERBAND_FACTOR = 3

# train.py's line whose default every trial (trial 0 included) trains with.
SEED_LINE = 'SEED = training.param("seed", 0)'
# The seed's escalation, fixed in advance: a bigger CNN and longer training each time the
# accuracy is too low. Within the example's and the wide search space; the knobs not named
# keep train.py's defaults (kernel 3, no dropout, adam at 0.003, batch 64).
LADDER: tuple[dict[str, int], ...] = (
    {"conv_blocks": 1, "filters": 16, "dense_units": 64, "epochs": 12},
    {"conv_blocks": 1, "filters": 32, "dense_units": 64, "epochs": 15},
    {"conv_blocks": 2, "filters": 32, "dense_units": 96, "epochs": 15},
    {"conv_blocks": 2, "filters": 48, "dense_units": 128, "epochs": 18},
    {"conv_blocks": 2, "filters": 64, "dense_units": 128, "epochs": 20},
)


@dataclass(frozen=True)
class Setup:
    """One bench run. runtime and parallel are None unless given: tweakops then runs with its
    own defaults (runtime auto, one trial at a time), like a user who sets nothing."""

    seeds: tuple[int, ...]
    threshold: float
    max_trials: int
    time_budget: float
    space: Path = WIDE  # a yaml whose search_space every tuner searches
    runtime: str | None = None
    parallel: int | None = None
    tuners: tuple[str, ...] = TUNERS
    overheads: bool = True


# ---- tweakops and the escalation: the repo's tweakops.yaml and `tweakops run` ----------------


def seeded_source(text: str, seed: int) -> str:
    """train.py with `seed` as the default of its `seed` param (so every trial uses it)."""
    if text.count(SEED_LINE) != 1:
        raise BenchError(
            f"train.py of {EXAMPLE} no longer has the line {SEED_LINE!r}; update SEED_LINE in "
            "bench/_tuning_setup.py"
        )
    return text.replace(SEED_LINE, f'SEED = training.param("seed", {seed})')


def example_config() -> dict[str, Any]:
    loaded = yaml.safe_load((EXAMPLE / "tweakops.yaml").read_text())
    return dict(loaded)


def search_space(space: Path) -> Any:
    """The search_space of the yaml file `space` (--space), checked once here."""
    loaded = yaml.safe_load(space.read_text())
    if not isinstance(loaded, dict) or "search_space" not in loaded:
        raise BenchError(f"{space} has no search_space: key")
    parse_space(loaded["search_space"])  # a bad one fails here, not in every tuner
    return loaded["search_space"]


def space_specs(space: Path) -> tuple[ParamSpec, ...]:
    return parse_space(search_space(space))


def tweakops_config(
    base: Mapping[str, Any],
    tuner: str,
    seed: int,
    threshold: float,
    max_trials: int,
    time_budget: float,
) -> dict[str, Any]:
    """The example's tweakops.yaml for one run with the bench's threshold and budgets: its
    own tuning settings plus the seed (tweakops), or the seed's fixed escalation as
    `strategy: escalate` (escalation)."""
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


def run_config(tuner: str, seed: int, setup: Setup) -> dict[str, Any]:
    """The bench repo's tweakops.yaml: the example's, with the --space file's search_space,
    the flags' threshold, max_trials and time_budget, and tuning.seed SEED."""
    base = {**example_config(), "search_space": search_space(setup.space)}
    return tweakops_config(base, tuner, seed, setup.threshold, setup.max_trials, setup.time_budget)


def tweakops_args(repo: Path, setup: Setup) -> list[str]:
    """`tweakops run REPO`'s arguments: the yaml says the rest; --runtime and --parallel only
    when the bench was given them."""
    args = ["run", str(repo)]
    if setup.runtime is not None:
        args += ["--runtime", setup.runtime]
    if setup.parallel is not None:
        args += ["--parallel", str(setup.parallel)]
    return args


# ---- Keras Tuner: the hyperparameters and the tuner's arguments ------------------------------


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


def hp_declarations(space: tuple[ParamSpec, ...], oracle: str) -> list[tuple[str, dict[str, Any]]]:
    """Every entry of the space, but `epochs` for Hyperband: it sets a trial's epochs (and
    initial epoch) itself, per bracket and round."""
    return [hp_declaration(s) for s in space if not (oracle == "hyperband" and s.name == "epochs")]


def most_epochs(space: tuple[ParamSpec, ...]) -> int:
    """The space's `epochs` high: Hyperband's max_epochs."""
    spec = next((s for s in space if s.name == "epochs"), None)
    if spec is None or spec.type != "int" or spec.high is None:
        raise BenchError("Hyperband needs an int `epochs` param in the search space")
    return int(spec.high)


def tuner_kwargs(
    oracle: str, seed: int, max_trials: int, space: tuple[ParamSpec, ...]
) -> dict[str, Any]:
    """Keras Tuner's constructor arguments (beyond the hypermodel, objective and folder).
    Hyperband has no max_trials: the worker stops it at the trial budget.

    The oracle gets seed + 1: Keras Tuner reads 0 as no seed (`seed or random.randint(1,
    10000)` in Oracle.__init__), so seed 0 searched differently in every run (RandomSearch's
    seed 0 took 107.7 s in one run and 20.5 s in the next; seeds 1-4 repeated)."""
    if oracle in ("random", "bayesian"):
        return {"seed": seed + 1, "max_trials": max_trials}
    if oracle == "hyperband":
        return {
            "seed": seed + 1,
            "max_epochs": most_epochs(space),
            "factor": HYPERBAND_FACTOR,
            "hyperband_iterations": 1,
        }
    raise ValueError(f"no Keras Tuner oracle {oracle!r}: one of {sorted(KT_CLASSES)}")
