"""bench/bench_tuning.py's report: the goal lines (met, not met, not measured), the summary
against the best peer, the overheads, and the checkpoint overhead's lazy import.

No timing thresholds here (house rule): made-up runs and made-up measured numbers.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import pytest

from bench._tuning_report import (
    CHECKPOINT_MISSING,
    checkpoint_lines,
    report,
    startup_goal_line,
    startup_lines,
    tuning_goal_line,
    wall_ratio,
)
from bench._tuning_runs import Run, Summary, Trial
from bench._tuning_setup import (
    ESCALATION,
    KT_BAYESIAN,
    KT_HYPERBAND,
    KT_RANDOM,
    TUNERS,
    TWEAKOPS,
    Setup,
)


@dataclass(frozen=True)
class Cost:
    """Like bench/checkpoint_overhead.py's EpochOverhead."""

    plain_s_per_epoch: float
    tweakops_s_per_epoch: float
    overhead_s: float
    share: float


def summary(tuner: str, reached: int, wall: float | None) -> Summary:
    return Summary(tuner, 3, reached, 2.0, wall, 30.0)


def sequential(tuner: str, seed: int, walls: list[float], scores: list[float]) -> Run:
    """Trials one after another from t=1, each with epochs 1 s apart after 2 s of start-up."""
    trials, start = [], 1.0
    for number, (seconds, score) in enumerate(zip(walls, scores, strict=True)):
        epochs = tuple(start + 3.0 + i for i in range(int(seconds) - 4))
        trials.append(Trial(number, start, start + seconds, "succeeded", score, epochs))
        start += seconds
    return Run(tuner, seed, 0.0, tuple(trials), "reached", 1.0, 1.5, 12)


# ---- the tuning goal -------------------------------------------------------------------------


def test_tuning_goal_is_met_with_as_many_seeds_and_at_most_0_7_of_the_walls() -> None:
    assert ": met (3/3 vs kt-random 3/3; wall 0.50x)" in tuning_goal_line(
        summary(TWEAKOPS, 3, 10.0), summary(KT_RANDOM, 3, 20.0)
    )
    assert ": met (2/3 vs kt-random 2/3; wall 0.70x)" in tuning_goal_line(
        summary(TWEAKOPS, 2, 14.0), summary(KT_RANDOM, 2, 20.0)
    )  # ≤ 0.7x
    assert ": met (2/3 vs kt-bayesian 1/3; wall peer ∞)" in tuning_goal_line(
        summary(TWEAKOPS, 2, 14.0), summary(KT_BAYESIAN, 1, None)
    )


def test_tuning_goal_is_not_met_when_slower_or_on_fewer_seeds() -> None:
    slower = tuning_goal_line(summary(TWEAKOPS, 3, 40.0), summary(KT_RANDOM, 3, 20.0))
    assert "NOT met (3/3 vs kt-random 3/3; wall 2.00x)" in slower
    fewer = tuning_goal_line(summary(TWEAKOPS, 2, 5.0), summary(KT_HYPERBAND, 3, 20.0))
    assert "NOT met (2/3 vs kt-hyperband 3/3; wall 0.25x)" in fewer
    never = tuning_goal_line(summary(TWEAKOPS, 1, None), summary(KT_RANDOM, 0, None))
    assert "NOT met (1/3 vs kt-random 0/3; tweakops's median wall is ∞)" in never


def test_tuning_goal_is_not_measured_without_tweakops_or_a_peer() -> None:
    assert "not measured" in tuning_goal_line(None, summary(KT_RANDOM, 3, 20.0))
    assert "not measured" in tuning_goal_line(summary(TWEAKOPS, 3, 20.0), None)


def test_wall_ratio_with_infinite_medians() -> None:
    assert wall_ratio(10.0, 20.0) == "0.50x"
    assert wall_ratio(None, 20.0) == "∞"
    assert wall_ratio(10.0, None) == "peer ∞"
    assert wall_ratio(None, None) == "∞/∞"


# ---- the overheads -------------------------------------------------------------------------


def test_startup_goal_line_met_not_met_not_measured() -> None:
    assert ": met (1.20x)" in startup_goal_line(1.2, 1.0)  # ≤ 1.2x
    assert "NOT met (3.00x)" in startup_goal_line(3.0, 1.0)
    assert "not measured" in startup_goal_line(None, 1.0)
    assert "not measured" in startup_goal_line(1.0, None)


def test_startup_compares_tweakops_trials_with_all_keras_tuner_trials() -> None:
    runs = [
        sequential(TWEAKOPS, 0, [10.0, 10.0], [0.5, 0.99]),  # start-up 3 - 1 = 2 s each
        sequential(KT_HYPERBAND, 0, [10.0], [0.99]),
        sequential(KT_RANDOM, 0, [10.0], [0.99]),
    ]
    lines = startup_lines(runs)
    assert "tweakops 2.00 s (median of 2" in lines[0]
    assert "Keras Tuner in-process 2.00 s (median of 2" in lines[0]
    assert lines[1].startswith("goal: ") and ": met (1.00x)" in lines[1]


def test_checkpoint_lines_met_not_met_and_missing() -> None:
    met = checkpoint_lines(Cost(0.2, 0.21, 0.01, 0.05))
    assert "0.200 s/epoch" in met[0] and "+0.010 s" in met[0]
    assert met[1].endswith(": met (5.0% of an epoch)")
    assert checkpoint_lines(Cost(0.2, 0.24, 0.04, 0.2))[1].endswith("NOT met (20.0% of an epoch)")
    assert checkpoint_lines(Cost(0.2, 0.22, 0.02, 0.1))[1].endswith(": met (10.0% of an epoch)")
    missing = checkpoint_lines(None)
    assert missing[0] == CHECKPOINT_MISSING
    assert missing[0] == "checkpoint overhead: not measured (bench/checkpoint_overhead.py missing)"
    assert missing[1].endswith(": not measured")


def test_the_checkpoint_overhead_is_imported_lazily_and_may_be_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bench.bench_tuning import measure_checkpoint

    monkeypatch.setitem(sys.modules, "bench.checkpoint_overhead", None)  # as if missing
    assert measure_checkpoint(0)[0] == CHECKPOINT_MISSING
    calls: list[int] = []

    def epoch_overhead(epochs: int = 20, repeats: int = 5, seed: int = 0) -> Cost:
        calls.append(seed)
        return Cost(0.2, 0.21, 0.01, 0.05)

    module = types.ModuleType("bench.checkpoint_overhead")
    module.epoch_overhead = epoch_overhead  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.checkpoint_overhead", module)
    assert measure_checkpoint(4)[1].endswith(": met (5.0% of an epoch)")
    assert calls == [4]


# ---- the whole report ------------------------------------------------------------------------


def test_report_prints_each_run_the_medians_the_best_peer_and_the_goals() -> None:
    runs = [
        sequential(TWEAKOPS, 0, [10, 10], [0.89, 0.99]),  # wall 21
        sequential(KT_RANDOM, 0, [10], [0.99]),  # wall 11
        sequential(KT_HYPERBAND, 0, [10, 10, 10], [0.5, 0.6, 0.99]),  # wall 31
        sequential(ESCALATION, 0, [10, 10, 10], [0.89, 0.95, 0.97]),  # never
    ]
    setup = Setup((0,), 0.98, 12, 900.0, tuners=TUNERS)
    text = report(setup, runs, ["heading line"], checkpoint_lines(None))
    lines = text.splitlines()
    assert "heading line" in text
    assert "compute s = the sum of the tuner's trials' wall seconds" in text
    assert "not in 3" in text
    assert any(line.startswith("kt-random*") and "1.91x" in line for line in lines)  # 21 / 11
    assert "NOT met (1/1 vs kt-random 1/1; wall 1.91x)" in text
    escalation = [line for line in lines if line.startswith(ESCALATION) and " 0/1 " in line]
    assert len(escalation) == 1 and "peer ∞" in escalation[0]  # its summary row
    assert not any(line.startswith(KT_BAYESIAN) for line in lines)  # not run: no row
    assert CHECKPOINT_MISSING in lines
    assert sum(1 for line in lines if line.startswith("goal: ")) == 3
    assert "fewer than 3 seeds" in text


def test_report_without_the_overheads_says_so() -> None:
    runs = [sequential(TWEAKOPS, 0, [10], [0.99]), sequential(KT_RANDOM, 0, [10], [0.99])]
    setup = Setup((0, 1, 2), 0.98, 12, 900.0, overheads=False)
    text = report(setup, runs, [], [])
    assert "overheads: skipped (--no-overheads)" in text
    assert sum(1 for line in text.splitlines() if line.startswith("goal: ")) == 1
    assert "fewer than 3 seeds" not in text
