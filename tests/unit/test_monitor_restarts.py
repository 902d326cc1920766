"""supervise() decisions against a scripted fake runtime: fast and deterministic."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import pytest

from monitor import RestartPolicy, supervise
from tweakops.runtime import ExitStatus, Handle, Runtime, State, TrialSpec

KILLED = ExitStatus(code=None, signal=9)
OK = ExitStatus(code=0)


class ScriptedRuntime(Runtime):
    """Each start() ends with the next scripted status; records every call."""

    name: ClassVar[str] = "fake"

    def __init__(self, outcomes: Iterable[ExitStatus]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []
        self.started = 0

    def start(self, spec: TrialSpec) -> Handle:
        self.started += 1
        self.calls.append(f"start {self.started}")
        return Handle(self.name, str(self.started))

    def wait(self, handle: Handle, timeout: float | None = None) -> ExitStatus:
        self.calls.append(f"wait {handle.id}")
        return self.outcomes[int(handle.id) - 1]

    def status(self, handle: Handle) -> State:
        return "exited"

    def kill(self, handle: Handle) -> None:
        self.calls.append(f"kill {handle.id}")

    def remove(self, handle: Handle) -> None:
        self.calls.append(f"remove {handle.id}")


@pytest.fixture
def spec(tmp_path: Path) -> TrialSpec:
    return TrialSpec("t", ("python", "train.py"), tmp_path, tmp_path / "out", tmp_path / "t.log")


def test_every_attempt_is_removed_after_it_ends(spec: TrialSpec) -> None:
    runtime = ScriptedRuntime([KILLED, OK])
    result = supervise(runtime, spec, RestartPolicy(), sleep=lambda _s: None)
    assert result.verdict == "ok" and result.restarts == 1
    assert runtime.calls == ["start 1", "wait 1", "remove 1", "start 2", "wait 2", "remove 2"]
    assert [a.handle for a in result.attempts] == ["fake:1", "fake:2"]


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (ExitStatus(code=137, oom_killed=True), "oom"),
        (ExitStatus(code=None, signal=9, timed_out=True), "timeout"),
        (ExitStatus(code=2), "code_error"),
    ],
)
def test_failures_that_would_fail_again_are_not_restarted(
    spec: TrialSpec, status: ExitStatus, verdict: str
) -> None:
    result = supervise(ScriptedRuntime([status, OK]), spec, RestartPolicy(), sleep=lambda _s: None)
    assert result.verdict == verdict and result.restarts == 0 and result.status == status


def test_zero_max_restarts_gives_up_after_the_first_infrastructure_failure(
    spec: TrialSpec,
) -> None:
    result = supervise(ScriptedRuntime([KILLED, OK]), spec, RestartPolicy(max_restarts=0))
    assert result.verdict == "restarts_exhausted" and len(result.attempts) == 1


def test_backoff_sleeps_grow_between_restarts(spec: TrialSpec) -> None:
    slept: list[float] = []
    runtime = ScriptedRuntime([KILLED, KILLED, KILLED, OK])
    supervise(
        runtime, spec, RestartPolicy(backoff_initial=1.0, backoff_factor=3.0), sleep=slept.append
    )
    assert slept == [1.0, 3.0, 9.0]


def test_no_restart_is_attempted_when_the_backoff_would_outlast_the_budget(
    spec: TrialSpec,
) -> None:
    slept: list[float] = []
    runtime = ScriptedRuntime([KILLED, OK])
    policy = RestartPolicy(backoff_initial=30.0)
    result = supervise(runtime, spec, policy, timeout=5.0, sleep=slept.append)
    assert result.verdict == "timeout" and result.status.timed_out
    assert slept == [] and runtime.started == 1


def test_an_error_in_on_start_kills_and_removes_the_attempt(spec: TrialSpec) -> None:
    runtime = ScriptedRuntime([OK])

    def broken(_handle: Handle, _number: int) -> None:
        raise RuntimeError("store is locked")

    with pytest.raises(RuntimeError, match="store is locked"):
        supervise(runtime, spec, RestartPolicy(), on_start=broken)
    assert runtime.calls == ["start 1", "kill 1", "remove 1"]


def test_separator_starts_on_its_own_line_after_output_without_newline(spec: TrialSpec) -> None:
    spec.log_path.write_text("epoch 3/10")
    supervise(ScriptedRuntime([KILLED, OK]), spec, RestartPolicy(), sleep=lambda _s: None)
    assert spec.log_path.read_text() == (
        "epoch 3/10\n--- attempt 2 (restart after killed by SIGKILL) ---\n"
    )
