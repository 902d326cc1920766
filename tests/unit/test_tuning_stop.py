import pytest

from tuning import Observation, StopRules, judge

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
