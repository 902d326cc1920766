"""The tuner loop on Optuna: seeded TPE, study in the run store's database, resumable."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from tuning.space import ParamSpec
from tuning.stop import Observation, StopRules, Verdict, best_of, judge

Evaluate = Callable[[int, dict[str, Any]], float | None]
"""Runs trial `number` with `params`; returns its metric, or None when it failed."""


@dataclass(frozen=True)
class TuneOutcome:
    verdict: Verdict
    history: tuple[Observation, ...]
    best: Observation | None


def open_study(storage_url: str, name: str, seed: int, startup_trials: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials)
    return optuna.create_study(
        study_name=name,
        storage=storage_url,
        sampler=sampler,
        direction="maximize",
        load_if_exists=True,
    )


def finished(study: optuna.Study) -> list[Observation]:
    """Trials the study already holds; trial numbers are Optuna's + 1 (0 is the defaults)."""
    done = (TrialState.COMPLETE, TrialState.FAIL)
    return [
        Observation(
            t.number + 1, dict(t.params), t.value if t.state == TrialState.COMPLETE else None
        )
        for t in study.trials
        if t.state in done
    ]


def run_study(
    space: Sequence[ParamSpec],
    evaluate: Evaluate,
    rules: StopRules,
    study: optuna.Study,
    baseline: Observation,
    elapsed_before: float = 0.0,
    clock: Callable[[], float] = time.monotonic,
) -> TuneOutcome:
    """Propose, evaluate, tell, until a stop rule fires; interrupted trials are finished first."""
    start = clock()
    history = [baseline, *finished(study)]
    for lost in [t for t in study.trials if t.state == TrialState.RUNNING]:
        history.append(_tell(study, lost.number, dict(lost.params), evaluate))
    distributions = {p.name: p.distribution() for p in space}
    while (verdict := judge(history, rules, elapsed_before + clock() - start)) is None:
        if not space:
            return _nothing_to_tune(history)
        trial = study.ask(distributions)
        history.append(_tell(study, trial.number, dict(trial.params), evaluate))
    return TuneOutcome(verdict, tuple(history), best_of(history))


def _tell(
    study: optuna.Study, number: int, params: dict[str, Any], evaluate: Evaluate
) -> Observation:
    value = evaluate(number + 1, params)
    if value is None:
        study.tell(number, state=TrialState.FAIL)
    else:
        study.tell(number, value)
    return Observation(number + 1, params, value)


def _nothing_to_tune(history: list[Observation]) -> TuneOutcome:
    message = (
        "threshold not reached and nothing to tune: tweakops.yaml has no search_space, "
        "so only the defaults were trained; add one to let tuning try other values"
    )
    return TuneOutcome(Verdict(False, "nothing_to_tune", message), tuple(history), best_of(history))
