"""ReachedEpochMedianPruner: the median at an epoch counts every trial that reported it."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tuning.pruner import ReachedEpochMedianPruner

DISTRIBUTIONS = {"x": FloatDistribution(0.0, 1.0)}


def study_with(
    *curves: tuple[TrialState, list[float]], pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    """A study holding one trial per (state, per-epoch values from epoch 1)."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for state, values in curves:
        study.add_trial(
            create_trial(
                state=state,
                value=values[-1] if state == TrialState.COMPLETE else None,
                params={"x": 0.5},
                distributions=DISTRIBUTIONS,
                intermediate_values=dict(enumerate(values, start=1)),
            )
        )
    return study


def decide(study: optuna.Study, values: list[float]) -> bool:
    """Whether a running trial that reported `values` (epoch 1, 2, ...) is pruned now."""
    trial = study.ask(DISTRIBUTIONS)
    for epoch, value in enumerate(values, start=1):
        trial.report(value, epoch)
    return bool(trial.should_prune())


GOOD = (TrialState.COMPLETE, [0.80, 0.90, 0.95, 0.97])
POOR = (TrialState.PRUNED, [0.30, 0.40, 0.50, 0.55])


def test_pruned_trials_count_in_the_median_where_finished_ones_alone_would_prune() -> None:
    middling = [0.5, 0.6, 0.7, 0.8]  # under both finished trials, over the pruned ones
    ours = study_with(GOOD, GOOD, POOR, POOR, POOR, pruner=ReachedEpochMedianPruner(2, 2))
    optunas = study_with(GOOD, GOOD, POOR, POOR, POOR, pruner=optuna.pruners.MedianPruner(2, 2))
    assert decide(ours, middling) is False
    assert decide(optunas, middling) is True  # the ratchet this pruner exists for


def test_a_trial_below_the_median_of_those_that_got_as_far_is_pruned() -> None:
    study = study_with(GOOD, GOOD, GOOD, POOR, pruner=ReachedEpochMedianPruner(2, 2))
    assert decide(study, [0.2, 0.3, 0.4]) is True
    assert decide(study, [0.2, 0.3, 0.96]) is False  # its best epoch so far counts


@pytest.mark.parametrize(
    ("finished", "values", "why"),
    [
        (1, [0.1, 0.1, 0.1], "fewer finished trials than startup_trials"),
        (2, [0.1], "before the warmup"),
    ],
)
def test_never_pruned_during_the_start_up_or_the_warmup(
    finished: int, values: list[float], why: str
) -> None:
    study = study_with(*[GOOD] * finished, POOR, POOR, pruner=ReachedEpochMedianPruner(2, 2))
    assert decide(study, values) is False, why


def test_an_epoch_no_other_trial_reached_prunes_nothing() -> None:
    study = study_with(GOOD, GOOD, pruner=ReachedEpochMedianPruner(2, 2))
    assert decide(study, [0.1, 0.1, 0.1, 0.1, 0.1]) is False  # epoch 5: nobody got there
    assert decide(study, [0.1, 0.1, 0.1, 0.1]) is True
