from dataclasses import replace

import pytest

from tuning import Observation, StopRules, Verdict, judge

RULES = StopRules(threshold=0.9, max_trials=5, time_budget=100.0, max_consecutive_failures=3)


def obs(*values: float | None) -> list[Observation]:
    return [Observation(i, {}, v) for i, v in enumerate(values)]


def test_tuning_goes_on_while_under_threshold_and_budget() -> None:
    assert judge(obs(0.5, 0.6), RULES, elapsed=10) is None


def test_threshold_stops_at_once_and_names_the_trial() -> None:
    verdict = judge(obs(0.5, 0.95), RULES, elapsed=10)
    assert verdict is not None and verdict.reached and verdict.rule == "threshold"
    assert "0.9500 at trial 1" in verdict.message


def test_max_trials_counts_trial_zero() -> None:
    verdict = judge(obs(0.5, 0.6, 0.7, 0.6, 0.5), RULES, elapsed=10)
    assert verdict is not None and verdict.rule == "max_trials" and not verdict.reached
    assert "best 0.7000 at trial 2" in verdict.message


def test_time_budget_stops() -> None:
    verdict = judge(obs(0.5), RULES, elapsed=100.5)
    assert verdict is not None and verdict.rule == "time_budget"


def test_consecutive_failures_stop_with_their_own_verdict() -> None:
    verdict = judge(obs(0.5, None, None, None), RULES, elapsed=1)
    assert verdict is not None and verdict.rule == "failures"


@pytest.mark.parametrize("values", [(0.5, None, 0.6, None), (None, None)])
def test_failures_that_are_not_consecutive_do_not_stop(values: tuple[float | None, ...]) -> None:
    assert judge(obs(*values), RULES, elapsed=1) is None


def states(*pairs: tuple[float | None, str]) -> list[Observation]:
    return [Observation(i, {}, v, s) for i, (v, s) in enumerate(pairs)]


def test_an_observation_without_a_value_is_a_failure_unless_stopped() -> None:
    assert Observation(1, {}, None).state == "failed"
    assert Observation(1, {}, None, "pruned").state == "pruned"
    assert Observation(1, {}, None, "cancelled").state == "cancelled"
    assert Observation(1, {}, 0.5).state == "complete"


@pytest.mark.parametrize("stopped", ["pruned", "cancelled"])
def test_pruned_and_cancelled_trials_are_not_failures(stopped: str) -> None:
    history = states((0.5, "complete"), (None, "failed"), (None, stopped), (None, "failed"))
    assert judge(history, RULES, elapsed=1) is None
    three = [*history, Observation(4, {}, None)]
    verdict = judge(three, replace(RULES, max_trials=10), elapsed=1)
    assert verdict is None  # failed, stopped, failed, failed: not three failures in a row
    four = [*three, Observation(5, {}, None)]
    verdict = judge(four, replace(RULES, max_trials=10), elapsed=1)
    assert verdict is not None and verdict.rule == "failures" and verdict.outcome == "stalled"


def test_patience_counts_finished_trials_since_the_last_new_best() -> None:
    rules = replace(RULES, max_trials=100, patience=3)
    assert judge(obs(0.5, 0.6, 0.55, 0.6), rules, elapsed=1) is None  # equal is not better
    verdict = judge(obs(0.5, 0.6, 0.55, 0.6, None), rules, elapsed=1)
    assert verdict is not None and verdict.rule == "patience" and not verdict.reached
    assert verdict.outcome == "stalled"
    assert "no new best in the last 3 trial(s)" in verdict.message
    assert "best 0.6000 at trial 1" in verdict.message
    assert judge(obs(0.5, 0.6, 0.55, 0.6, 0.61), rules, elapsed=1) is None


def test_pruned_trials_count_toward_patience() -> None:
    rules = replace(RULES, max_trials=100, patience=2)
    history = states((0.5, "complete"), (None, "pruned"), (None, "pruned"))
    verdict = judge(history, rules, elapsed=1)
    assert verdict is not None and verdict.rule == "patience"


def test_without_patience_tuning_never_stalls_on_no_progress() -> None:
    assert judge(obs(0.5, *[0.4] * 50), replace(RULES, max_trials=100), elapsed=1) is None


def test_threshold_wins_over_a_budget_spent_by_the_same_trial() -> None:
    verdict = judge(obs(0.5, 0.6, 0.7, 0.6, 0.91), RULES, elapsed=1000)
    assert verdict is not None and verdict.rule == "threshold" and verdict.outcome == "reached"


@pytest.mark.parametrize(
    ("rule", "outcome"),
    [
        ("threshold", "reached"),
        ("max_trials", "budget spent"),
        ("time_budget", "budget spent"),
        ("ladder", "budget spent"),
        ("patience", "stalled"),
        ("failures", "stalled"),
        ("nothing_to_tune", "stalled"),
    ],
)
def test_each_rule_has_its_outcome(rule: str, outcome: str) -> None:
    assert Verdict(rule == "threshold", rule, "").outcome == outcome


def test_not_reached_verdicts_start_with_their_outcome() -> None:
    verdicts = [
        judge(obs(0.5, 0.6, 0.7, 0.6, 0.5), RULES, elapsed=1),
        judge(obs(0.5), RULES, elapsed=100.5),
        judge(obs(0.5, None, None, None), RULES, elapsed=1),
        judge(obs(0.5, 0.4), replace(RULES, patience=1), elapsed=1),
    ]
    for verdict in verdicts:
        assert verdict is not None and not verdict.reached
        assert verdict.message.startswith(f"{verdict.outcome}: threshold 0.9 not reached, ")
