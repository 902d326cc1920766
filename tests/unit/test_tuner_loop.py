"""The tuner loops with a real Optuna study (SQLite in tmp_path) and a pure-Python evaluate.

No processes: `evaluate(number, params, control)` is a function of the test, so every
decision of run_study / run_ladder (stop rules, cancelling, pruning, parallelism, resuming a
dead tuner's study) is observed directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tuning import (
    Observation,
    Pruning,
    StopRules,
    TrialControl,
    open_study,
    parse_space,
    run_ladder,
    run_study,
)

SPACE = parse_space({"x": {"type": "float", "low": 0.0, "high": 1.0}})
BASELINE = Observation(0, {}, 0.5)
WAIT = 30.0  # seconds a test waits for another thread before it gives up (never reached)


def rules(**changes: Any) -> StopRules:
    values: dict[str, Any] = {"threshold": 0.9, "max_trials": 10, "time_budget": 3600.0}
    return StopRules(**{**values, **changes})


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def study_at(storage: str, pruning: Pruning | None = None) -> optuna.Study:
    return open_study(storage, "loop", seed=0, startup_trials=2, pruning=pruning)


def scripted(values: Mapping[int, float | None], calls: list[tuple[int, dict[str, Any]]]) -> Any:
    """An evaluate returning values[number] (default 0.5), recording each call."""

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        calls.append((number, dict(params)))
        return values.get(number, 0.5)

    return evaluate


def states_of(history: tuple[Observation, ...]) -> dict[int, str]:
    return {o.number: o.state for o in history}


# --- threshold -------------------------------------------------------------------------------


def test_threshold_stops_at_once_and_cancels_the_running_sibling(storage: str) -> None:
    study = study_at(storage)
    sibling_started = threading.Event()
    halted: dict[int, bool] = {}
    reasons: dict[int, str | None] = {}

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        if number == 1:
            assert sibling_started.wait(WAIT)
            return 0.95
        sibling_started.set()
        halted[number] = control.stop.wait(WAIT)  # a long training, stopped by the tuner
        reasons[number] = control.reason
        return None

    results: list[Observation] = []
    outcome = run_study(
        SPACE, evaluate, rules(), study, BASELINE, parallel=2, on_result=results.append
    )
    assert outcome.verdict.rule == "threshold" and outcome.verdict.reached
    assert outcome.verdict.outcome == "reached"
    assert "0.9500 at trial 1" in outcome.verdict.message
    assert halted == {2: True} and reasons == {2: "cancelled"}
    assert states_of(outcome.history) == {0: "complete", 1: "complete", 2: "cancelled"}
    assert [o.number for o in results] == [1, 2]
    assert outcome.best is not None and outcome.best.number == 1
    trials = study.trials
    assert len(trials) == 2  # nothing was started after the threshold was met
    assert trials[0].state == TrialState.COMPLETE and trials[0].value == 0.95
    assert trials[1].state == TrialState.FAIL
    assert trials[1].user_attrs["stopped"] == "cancelled"


def test_a_value_returned_by_a_cancelled_sibling_that_finished_anyway_is_kept(
    storage: str,
) -> None:
    study = study_at(storage)
    sibling_started = threading.Event()

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        if number == 1:
            assert sibling_started.wait(WAIT)
            return 0.95
        sibling_started.set()
        assert control.stop.wait(WAIT)
        return 0.7  # its last epoch ended before it saw the stop order

    outcome = run_study(SPACE, evaluate, rules(), study, BASELINE, parallel=2)
    assert outcome.verdict.rule == "threshold"
    (sibling,) = [o for o in outcome.history if o.number == 2]
    assert sibling.state == "complete" and sibling.value == 0.7
    assert study.trials[1].state == TrialState.COMPLETE and study.trials[1].value == 0.7


def test_threshold_met_by_trial_zero_starts_nothing(storage: str) -> None:
    study = study_at(storage)
    calls: list[tuple[int, dict[str, Any]]] = []
    outcome = run_study(SPACE, scripted({}, calls), rules(), study, Observation(0, {}, 0.93))
    assert outcome.verdict.rule == "threshold" and outcome.verdict.reached
    assert calls == [] and study.trials == []
    assert outcome.best == Observation(0, {}, 0.93)


def test_a_late_sibling_value_at_the_threshold_turns_the_verdict_into_reached(
    storage: str,
) -> None:
    study = study_at(storage)
    sibling_started = threading.Event()

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        if number == 1:
            assert sibling_started.wait(WAIT)
            return 0.4  # no new best: patience 1 fires and the sibling is cancelled
        sibling_started.set()
        assert control.stop.wait(WAIT)
        return 0.95  # ...but it had finished: its value is kept

    outcome = run_study(SPACE, evaluate, rules(patience=1), study, BASELINE, parallel=2)
    assert outcome.best is not None and outcome.best.value == 0.95
    assert outcome.verdict.reached and outcome.verdict.rule == "threshold"
    assert "0.9500 at trial 2" in outcome.verdict.message


# --- budgets ---------------------------------------------------------------------------------


def test_max_trials_counts_trial_zero_and_trials_in_flight(storage: str) -> None:
    study = study_at(storage)
    first_told = threading.Event()
    started: list[int] = []

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        started.append(number)
        if number == 2:  # still running when trial 1 is told: it counts against the budget
            assert first_told.wait(WAIT)
        return 0.4

    def on_result(observed: Observation) -> None:
        if observed.number == 1:
            first_told.set()

    outcome = run_study(
        SPACE, evaluate, rules(max_trials=3), study, BASELINE, parallel=2, on_result=on_result
    )
    assert sorted(started) == [1, 2]  # trial 0 + two trials = 3: a third never started
    assert outcome.verdict.rule == "max_trials" and not outcome.verdict.reached
    assert outcome.verdict.outcome == "budget spent"
    assert "max_trials (3) spent" in outcome.verdict.message
    assert [o.number for o in outcome.history] == [0, 1, 2]
    assert len(study.trials) == 2


@pytest.mark.parametrize("parallel", [1, 4])
def test_never_more_trials_start_than_max_trials(storage: str, parallel: int) -> None:
    study = study_at(storage)
    calls: list[tuple[int, dict[str, Any]]] = []
    outcome = run_study(
        SPACE, scripted({}, calls), rules(max_trials=5), study, BASELINE, parallel=parallel
    )
    assert sorted(n for n, _ in calls) == [1, 2, 3, 4]
    assert outcome.verdict.rule == "max_trials"
    assert len(outcome.history) == 5 and len(study.trials) == 4


@pytest.mark.parametrize(("elapsed_before", "trials"), [(0.0, 3), (15.0, 1), (30.0, 0)])
def test_time_budget_on_a_fake_clock(storage: str, elapsed_before: float, trials: int) -> None:
    study = study_at(storage)
    now = [1000.0]

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        now[0] += 10.0  # each trial takes 10 s of the fake clock
        return 0.5

    outcome = run_study(
        SPACE,
        evaluate,
        rules(time_budget=25.0),
        study,
        BASELINE,
        elapsed_before=elapsed_before,
        clock=lambda: now[0],
    )
    assert outcome.verdict.rule == "time_budget" and not outcome.verdict.reached
    assert outcome.verdict.outcome == "budget spent"
    assert "time_budget (25 s) spent" in outcome.verdict.message
    assert len(outcome.history) == 1 + trials and len(study.trials) == trials


# --- stalled ---------------------------------------------------------------------------------


def test_three_failed_trials_in_a_row_stop_as_stalled(storage: str) -> None:
    study = study_at(storage)
    calls: list[tuple[int, dict[str, Any]]] = []
    outcome = run_study(
        SPACE, scripted({1: 0.6, 2: None, 3: None, 4: None}, calls), rules(), study, BASELINE
    )
    assert outcome.verdict.rule == "failures" and not outcome.verdict.reached
    assert outcome.verdict.outcome == "stalled"
    assert "3 trials in a row failed" in outcome.verdict.message
    assert "best 0.6000 at trial 1" in outcome.verdict.message
    assert states_of(outcome.history) == {
        0: "complete",
        1: "complete",
        2: "failed",
        3: "failed",
        4: "failed",
    }
    assert [t.state for t in study.trials][1:] == [TrialState.FAIL] * 3


def test_pruned_trials_do_not_count_as_failures(storage: str) -> None:
    study = study_at(storage)

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        if number == 3:
            control.halt("pruned")  # as the pruner does through control.report
        return None

    outcome = run_study(SPACE, evaluate, rules(), study, BASELINE)
    # 1 2 failed, 3 pruned, 4 5 failed: no three failures in a row until trial 6
    assert [o.state for o in outcome.history][1:] == [
        "failed",
        "failed",
        "pruned",
        "failed",
        "failed",
        "failed",
    ]
    assert outcome.verdict.rule == "failures"
    assert study.trials[2].state == TrialState.PRUNED


def test_patience_stops_as_stalled_after_trials_without_a_new_best(storage: str) -> None:
    study = study_at(storage)
    calls: list[tuple[int, dict[str, Any]]] = []
    values: dict[int, float | None] = {1: 0.6, 2: 0.55, 3: 0.6, 4: 0.99}
    outcome = run_study(SPACE, scripted(values, calls), rules(patience=2), study, BASELINE)
    assert [n for n, _ in calls] == [1, 2, 3]  # 0.6 equals the best: not a new one
    assert outcome.verdict.rule == "patience" and not outcome.verdict.reached
    assert outcome.verdict.outcome == "stalled"
    assert "no new best in the last 2 trial(s)" in outcome.verdict.message


def test_an_empty_search_space_has_nothing_to_tune(storage: str) -> None:
    calls: list[tuple[int, dict[str, Any]]] = []
    outcome = run_study((), scripted({}, calls), rules(), study_at(storage), BASELINE)
    assert calls == []
    assert outcome.verdict.rule == "nothing_to_tune" and outcome.verdict.outcome == "stalled"
    assert outcome.history == (BASELINE,)


# --- pruning ---------------------------------------------------------------------------------

GOOD = [0.5, 0.7, 0.8, 0.85, 0.88, 0.89]  # per-epoch val_accuracy of a promising trial
BAD = [0.1, 0.12, 0.13, 0.14, 0.15, 0.16]  # far below every earlier trial at every epoch


def test_a_hopeless_trial_is_pruned_after_the_warmup_while_good_ones_complete(
    storage: str,
) -> None:
    study = study_at(storage, Pruning(warmup_epochs=2, startup_trials=2))
    curves = {1: BAD, 2: GOOD, 3: GOOD, 4: BAD, 5: GOOD}
    epochs_run: dict[int, int] = {}
    told_to_stop: dict[int, bool] = {}

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        curve = curves[number]
        for epoch, value in enumerate(curve, start=1):
            epochs_run[number] = epoch
            if control.report(epoch, value):
                told_to_stop[number] = True
                return None
        return curve[-1]

    outcome = run_study(SPACE, evaluate, rules(max_trials=6), study, BASELINE)
    # trial 1 is as bad, but fewer than startup_trials trials had finished: never pruned
    assert states_of(outcome.history) == {
        0: "complete",
        1: "complete",
        2: "complete",
        3: "complete",
        4: "pruned",
        5: "complete",
    }
    assert told_to_stop == {4: True}
    assert epochs_run == {1: 6, 2: 6, 3: 6, 4: 2, 5: 6}  # pruned at the end of the warmup
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.COMPLETE,
    ]
    assert study.trials[3].intermediate_values == {1: 0.1, 2: 0.12}
    assert outcome.verdict.rule == "max_trials"


def test_reports_never_stop_a_trial_without_pruning(storage: str) -> None:
    study = study_at(storage, pruning=None)
    curves = {1: GOOD, 2: GOOD, 3: BAD}
    stops: list[bool] = []

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        stops.extend(control.report(e, v) for e, v in enumerate(curves[number], start=1))
        return curves[number][-1]

    outcome = run_study(SPACE, evaluate, rules(max_trials=4), study, BASELINE)
    assert not any(stops)
    assert [o.state for o in outcome.history] == ["complete"] * 4


# --- parallel --------------------------------------------------------------------------------


def test_parallel_three_runs_three_trials_at_once_into_one_study(storage: str) -> None:
    study = study_at(storage)
    all_three = threading.Barrier(3, timeout=WAIT)  # broken (an error) unless 3 run at once
    lock = threading.Lock()
    active, most, threads = [0], [0], set()

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            threads.add(threading.current_thread().name)
        if number <= 3:
            all_three.wait()
        with lock:
            active[0] -= 1
        return 0.1 * number

    outcome = run_study(SPACE, evaluate, rules(max_trials=8), study, BASELINE, parallel=3)
    assert most[0] == 3  # the first three met at the barrier; never a fourth at once
    assert len(threads) == 3 and all(name.startswith("trial") for name in threads)
    assert sorted(o.number for o in outcome.history) == list(range(8))
    assert outcome.verdict.rule == "max_trials"
    stored = optuna.load_study(study_name="loop", storage=storage)
    assert sorted(t.number for t in stored.trials) == list(range(7))
    assert all(t.state == TrialState.COMPLETE for t in stored.trials)
    assert {round(t.value or 0, 6) for t in stored.trials} == {
        round(0.1 * n, 6) for n in range(1, 8)
    }


def test_the_seed_makes_the_proposals_repeatable(tmp_path: Path) -> None:
    def proposals(name: str, seed: int) -> list[dict[str, Any]]:
        study = open_study(f"sqlite:///{tmp_path / name}.db", name, seed, startup_trials=2)
        calls: list[tuple[int, dict[str, Any]]] = []
        values = {n: 0.1 * n for n in range(1, 6)}  # past the startup trials: TPE proposes
        run_study(SPACE, scripted(values, calls), rules(max_trials=6), study, BASELINE)
        return [params for _, params in calls]

    assert proposals("a", seed=0) == proposals("b", seed=0)
    assert proposals("c", seed=1) != proposals("a", seed=0)


def test_the_first_trial_takes_the_fixed_params_and_the_sampler_picks_the_rest(
    storage: str,
) -> None:
    space = parse_space(
        {"x": {"type": "float", "low": 0, "high": 1}, "n": {"type": "int", "low": 1, "high": 9}}
    )
    study = study_at(storage)
    calls: list[tuple[int, dict[str, Any]]] = []
    run_study(space, scripted({}, calls), rules(max_trials=3), study, BASELINE, first={"n": 9})
    (first_number, first_params), (_, second_params) = calls
    assert first_number == 1 and first_params["n"] == 9 and 0 <= first_params["x"] <= 1
    assert study.trials[0].params == first_params  # the study knows it like any other trial
    assert second_params != first_params


def test_first_params_wait_in_no_study_when_trial_zero_already_decided(storage: str) -> None:
    study = study_at(storage)
    calls: list[tuple[int, dict[str, Any]]] = []
    reached = Observation(0, {}, 0.95)
    run_study(SPACE, scripted({}, calls), rules(), study, reached, first={"x": 1.0})
    assert calls == [] and study.trials == []


# --- resuming a dead tuner's study -----------------------------------------------------------


def test_trials_in_flight_when_the_tuner_died_are_finished_first_with_their_params(
    storage: str,
) -> None:
    dead = study_at(storage)
    distributions = {p.name: p.distribution() for p in SPACE}
    finished = dead.ask(distributions)
    dead.tell(finished, 0.3)
    lost = [dead.ask(distributions), dead.ask(distributions)]  # asked, never told: it died
    calls: list[tuple[int, dict[str, Any]]] = []
    outcome = run_study(
        SPACE, scripted({}, calls), rules(max_trials=6), study_at(storage), BASELINE, parallel=2
    )
    assert calls[:2] == [(t.number + 1, t.params) for t in lost]
    numbers = [n for n, _ in calls]
    assert numbers == [2, 3, 4, 5] and finished.number + 1 not in numbers
    assert [o.number for o in outcome.history] == [0, 1, 2, 3, 4, 5]
    assert outcome.history[1] == Observation(1, finished.params, 0.3)
    stored = optuna.load_study(study_name="loop", storage=storage).trials
    assert [t.number for t in stored] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in stored)
    assert stored[1].params == lost[0].params and stored[2].params == lost[1].params


def test_a_second_tuner_sees_the_first_ones_verdicts_and_repeats_nothing(storage: str) -> None:
    sibling_started = threading.Event()

    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        if number == 1:
            assert sibling_started.wait(WAIT)
            return 0.95
        sibling_started.set()
        control.stop.wait(WAIT)
        return None

    run_study(SPACE, evaluate, rules(), study_at(storage), BASELINE, parallel=2)
    calls: list[tuple[int, dict[str, Any]]] = []
    again = run_study(SPACE, scripted({}, calls), rules(), study_at(storage), BASELINE)
    assert calls == []
    assert again.verdict.rule == "threshold"
    assert states_of(again.history) == {0: "complete", 1: "complete", 2: "cancelled"}


def test_a_lost_trial_is_not_left_running_when_the_run_was_already_decided(
    storage: str,
) -> None:
    dead = study_at(storage)
    distributions = {p.name: p.distribution() for p in SPACE}
    dead.tell(dead.ask(distributions), 0.95)  # the threshold was met...
    dead.ask(distributions)  # ...while a sibling ran, then the tuner died before cancelling it
    calls: list[tuple[int, dict[str, Any]]] = []
    outcome = run_study(SPACE, scripted({}, calls), rules(), study_at(storage), BASELINE)
    assert outcome.verdict.rule == "threshold"
    stored = optuna.load_study(study_name="loop", storage=storage).trials
    assert [t.state for t in stored if t.state == TrialState.RUNNING] == []
    assert 2 in states_of(outcome.history)


def test_a_second_tuner_on_a_shared_study_leaves_a_live_tuners_trial_alone(
    storage: str,
) -> None:
    first_running, release = threading.Event(), threading.Event()
    first_calls: list[int] = []
    errors: list[BaseException] = []

    def slow(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        first_calls.append(number)
        first_running.set()
        assert release.wait(WAIT)
        return 0.2

    def first_tuner() -> None:
        try:
            run_study(SPACE, slow, rules(max_trials=2), study_at(storage), BASELINE, owner="a")
        except BaseException as exc:  # a tell on a trial the other tuner finished
            errors.append(exc)

    live = threading.Thread(target=first_tuner)
    live.start()
    try:
        assert first_running.wait(WAIT)
        calls: list[tuple[int, dict[str, Any]]] = []
        second = study_at(storage)
        run_study(SPACE, scripted({}, calls), rules(max_trials=2), second, BASELINE, owner="b")
    finally:
        release.set()
        live.join(WAIT)
    assert first_calls[0] not in [n for n, _ in calls]
    assert errors == []


# --- the escalate ladder ---------------------------------------------------------------------

LADDER = ({"q": 0.3, "filters": 16}, {"q": 0.95, "filters": 32}, {"q": 0.99, "filters": 64})


def by_rung(calls: list[tuple[int, dict[str, Any]]]) -> Callable[..., float | None]:
    def evaluate(number: int, params: dict[str, Any], control: TrialControl) -> float | None:
        assert control.trial is None and control.report(1, 0.0) is False  # no pruning here
        calls.append((number, dict(params)))
        return float(params["q"])

    return evaluate


def test_ladder_climbs_rungs_in_order_until_the_threshold() -> None:
    calls: list[tuple[int, dict[str, Any]]] = []
    results: list[Observation] = []
    outcome = run_ladder(LADDER, by_rung(calls), rules(), [], BASELINE, on_result=results.append)
    assert calls == [(1, LADDER[0]), (2, LADDER[1])]
    assert [o.number for o in results] == [1, 2]
    assert outcome.verdict.rule == "threshold" and outcome.verdict.outcome == "reached"
    assert outcome.best == Observation(2, LADDER[1], 0.95)


def test_ladder_skips_the_rungs_an_earlier_tuner_finished() -> None:
    calls: list[tuple[int, dict[str, Any]]] = []
    done = [Observation(1, LADDER[0], None, "failed")]
    outcome = run_ladder(LADDER, by_rung(calls), rules(), done, BASELINE)
    assert calls == [(2, LADDER[1])]
    assert [o.number for o in outcome.history] == [0, 1, 2]
    assert outcome.verdict.rule == "threshold"


def test_a_ladder_trained_below_the_threshold_is_budget_spent() -> None:
    calls: list[tuple[int, dict[str, Any]]] = []
    low = ({"q": 0.3}, {"q": 0.6}, {"q": 0.4})
    outcome = run_ladder(low, by_rung(calls), rules(), [], BASELINE)
    assert [n for n, _ in calls] == [1, 2, 3]
    assert outcome.verdict.rule == "ladder" and not outcome.verdict.reached
    assert outcome.verdict.outcome == "budget spent"
    assert "3 rung(s) are all trained" in outcome.verdict.message
    assert "best 0.6000 at trial 2" in outcome.verdict.message


def test_a_ladder_already_climbed_runs_nothing() -> None:
    calls: list[tuple[int, dict[str, Any]]] = []
    done = [Observation(n, rung, 0.5) for n, rung in enumerate(LADDER[:2], start=1)]
    outcome = run_ladder(LADDER[:2], by_rung(calls), rules(), done, BASELINE)
    assert calls == [] and outcome.verdict.rule == "ladder"


def test_ladder_obeys_the_other_stop_rules() -> None:
    calls: list[tuple[int, dict[str, Any]]] = []
    low = tuple({"q": 0.1 * n} for n in range(1, 6))
    outcome = run_ladder(low, by_rung(calls), rules(max_trials=3), [], BASELINE)
    assert [n for n, _ in calls] == [1, 2]
    assert outcome.verdict.rule == "max_trials"
    failing = run_ladder(low, lambda n, p, c: None, rules(), [], BASELINE)
    assert failing.verdict.rule == "failures" and failing.verdict.outcome == "stalled"
    assert len(failing.history) == 4
