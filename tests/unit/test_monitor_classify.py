"""Failure classes, restart backoff and which failures restart: pure decisions."""

from __future__ import annotations

import pytest

from monitor import (
    CODE_ERROR,
    INFRASTRUCTURE,
    OK,
    OOM,
    TIMEOUT,
    RestartPolicy,
    classify,
    restartable,
)
from tweakops.errors import ConfigError
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


@pytest.mark.parametrize("progressed", [False, True])
def test_infrastructure_failures_always_restart(progressed: bool) -> None:
    assert restartable(INFRASTRUCTURE, progressed)


@pytest.mark.parametrize("verdict", [CODE_ERROR, OOM])
def test_a_crash_after_progress_restarts_but_not_one_before_any_epoch(verdict: str) -> None:
    assert restartable(verdict, progressed=True)
    assert not restartable(verdict, progressed=False)


@pytest.mark.parametrize("verdict", [OK, TIMEOUT])
def test_success_and_timeout_never_restart(verdict: str) -> None:
    assert not restartable(verdict, progressed=True)
