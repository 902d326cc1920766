"""Failure classes, restart backoff and stale-trial detection: pure decisions."""

from __future__ import annotations

import pytest

from monitor import RestartPolicy, classify, find_stale
from tweakops.errors import ConfigError
from tweakops.records import TrialRecord
from tweakops.runtime import ExitStatus


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (ExitStatus(code=0), "ok"),
        (ExitStatus(code=1), "code_error"),
        (ExitStatus(code=2), "code_error"),
        (ExitStatus(code=137, oom_killed=True), "oom"),
        (ExitStatus(code=None, signal=9, timed_out=True), "timeout"),
        (ExitStatus(code=None, signal=9), "infrastructure"),
        (ExitStatus(code=None, signal=15), "infrastructure"),
        (ExitStatus(code=137), "infrastructure"),
        (ExitStatus(code=143), "infrastructure"),
        (ExitStatus(code=None, missing=True), "infrastructure"),
        (ExitStatus(code=None), "infrastructure"),
    ],
)
def test_classify_separates_user_errors_from_infrastructure(
    status: ExitStatus, verdict: str
) -> None:
    assert classify(status) == verdict


def test_restart_delays_grow_geometrically_and_are_capped() -> None:
    policy = RestartPolicy(backoff_initial=0.5, backoff_factor=2.0, backoff_max=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_default_restart_policy_is_bounded() -> None:
    policy = RestartPolicy()
    assert policy.max_restarts == 3
    assert policy.delay(100) == policy.backoff_max == 10.0


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_restarts", -1), ("backoff_initial", -0.1), ("backoff_factor", 0.5), ("backoff_max", -1)],
)
def test_restart_policy_rejects_values_that_loop_or_run_backwards(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"{field} must be .* but got {value}"):
        RestartPolicy(**{field: value})  # type: ignore[arg-type]


def test_restart_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        RestartPolicy().delay(0)


NOW = 1_000.0
GRACE = 60.0


def _trial(number: int, status: str = "running", handle: str | None = "local:4242") -> TrialRecord:
    return TrialRecord(run_id="r1", number=number, params={}, status=status, handle=handle)


def _stale(trial: TrialRecord, alive: bool, beat: float | None) -> bool:
    found = find_stale([trial], lambda _h: alive, NOW, lambda _t: beat, GRACE)
    return found == [trial]


def test_running_trial_with_dead_process_and_old_heartbeat_is_stale() -> None:
    assert _stale(_trial(1), alive=False, beat=NOW - GRACE - 1)


def test_running_trial_with_dead_process_and_no_heartbeat_is_stale() -> None:
    assert _stale(_trial(1), alive=False, beat=None)


def test_running_trial_without_a_handle_and_old_heartbeat_is_stale() -> None:
    assert _stale(_trial(1, handle=None), alive=True, beat=NOW - GRACE - 1)


def test_running_trial_whose_process_is_alive_is_not_stale() -> None:
    assert not _stale(_trial(1), alive=True, beat=None)


def test_dead_process_with_a_fresh_heartbeat_is_not_stale_yet() -> None:
    assert not _stale(_trial(1), alive=False, beat=NOW - GRACE + 1)


@pytest.mark.parametrize("status", ["succeeded", "failed", "pruned"])
def test_finished_trial_is_never_stale(status: str) -> None:
    assert not _stale(_trial(1, status=status), alive=False, beat=None)


def test_find_stale_keeps_order_and_asks_only_about_running_trials() -> None:
    asked: list[str] = []

    def is_alive(handle: str) -> bool:
        asked.append(handle)
        return handle == "local:2"

    trials = [_trial(n, handle=f"local:{n}") for n in (1, 2, 3)] + [
        _trial(4, status="succeeded", handle="local:4")
    ]
    stale = find_stale(trials, is_alive, NOW, lambda _t: None, GRACE)
    assert [t.number for t in stale] == [1, 3]
    assert asked == ["local:1", "local:2", "local:3"]
