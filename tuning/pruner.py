"""Median pruning against every trial that got as far, the pruned ones included.

Optuna's MedianPruner compares a trial with the *finished* trials only. Once a few good
trials have finished, the median at each epoch is theirs and stays there: the trials it
prunes never count, so they never lower it, and it goes on pruning nearly everything
(bench/bench_tuning.py, seed 4 of the wide space: 23 of the 25 trials after the first four
finished ones were pruned, the threshold was never reached). Here a trial is pruned when its
best epoch so far is below the median, at this epoch, of every other trial that reported it,
whether that trial finished or was pruned there or later.
"""

from __future__ import annotations

import math
import statistics

import optuna
from optuna.trial import FrozenTrial, TrialState

_DONE = (TrialState.COMPLETE, TrialState.PRUNED)


class ReachedEpochMedianPruner(optuna.pruners.BasePruner):
    """Prune below the median of all other trials' values at the same epoch (maximize)."""

    def __init__(self, startup_trials: int, warmup_epochs: int) -> None:
        self.startup_trials = startup_trials  # finished trials needed before any is pruned
        self.warmup_epochs = warmup_epochs  # never prune before this epoch

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        epoch = trial.last_step
        if epoch is None or epoch < self.warmup_epochs:
            return False
        done = study.get_trials(deepcopy=False, states=_DONE)
        others = [t for t in done if t.number != trial.number]
        if sum(t.state == TrialState.COMPLETE for t in others) < self.startup_trials:
            return False
        reached = [t.intermediate_values[epoch] for t in others if epoch in t.intermediate_values]
        reached = [v for v in reached if not math.isnan(v)]
        mine = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        if not reached:
            return False
        return not mine or max(mine) < statistics.median(reached)
