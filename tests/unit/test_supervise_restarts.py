"""supervise() decisions with a fake runtime: restarts, backoff, progress, the engine, adoption.

The fake runtime plays a script: each attempt ends with a given status after completing a
given number of epochs, which the probe reads like the harness's epochs.jsonl. Sleeps are
recorded instead of slept, so nothing here waits.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import pytest

from monitor import Attempt, Probe, RestartPolicy, supervise
from monitor._supervise import ENGINE_POLL_SECONDS
from tweakops.errors import RuntimeUnavailable
from tweakops.runtime import ExitStatus, Handle, Runtime, State, TrialSpec

OK = ExitStatus(code=0)
KILLED = ExitStatus(code=None, signal=9)
EXIT_1 = ExitStatus(code=1)
OOM_KILLED = ExitStatus(code=137, oom_killed=True)
VANISHED = ExitStatus(code=None, missing=True)


class FakeRuntime(Runtime):
    """Attempts end as scripted: (status, epochs completed during the attempt), in order."""

    name: ClassVar[str] = "fake"

    def __init__(
        self, script: Iterable[tuple[ExitStatus, int]], ready: Iterable[bool] = ()
    ) -> None:
        self.script = list(script)
        self.ready_answers = list(ready)  # then always ready
        self.epoch = 0
        self.started = 0
        self.calls: list[str] = []
        self.interrupt_wait = False
        self.start_failures = 0  # starts that fail as if the engine went away meanwhile

    def probe(self, finished: bool = False) -> Probe:
        return Probe(last_epoch=lambda: self.epoch, finished=lambda: finished)

    def start(self, spec: TrialSpec) -> Handle:
        if self.start_failures:
            self.start_failures -= 1
            self.calls.append("start refused")
            raise RuntimeUnavailable("the fake engine closed the connection")
        self.started += 1
        self.calls.append(f"start s{self.started}")
        return Handle(self.name, f"s{self.started}")

    def adopt(self, handle: Handle, spec: TrialSpec) -> Handle:
        self.calls.append(f"adopt {handle.id}")
        return super().adopt(handle, spec)

    def wait(self, handle: Handle, timeout: float | None = None) -> ExitStatus:
        self.calls.append(f"wait {handle.id}")
        if self.interrupt_wait:
            raise KeyboardInterrupt
        status, epochs = self.script.pop(0)
        self.epoch += epochs
        return status

    def ready(self) -> bool:
        self.calls.append("ready")
        return self.ready_answers.pop(0) if self.ready_answers else True

    def status(self, handle: Handle) -> State:
        return "exited"

    def kill(self, handle: Handle) -> None:
        self.calls.append(f"kill {handle.id}")

    def remove(self, handle: Handle) -> None:
        self.calls.append(f"remove {handle.id}")


@pytest.fixture
def spec(tmp_path: Path) -> TrialSpec:
    return TrialSpec("t", ("python", "train.py"), tmp_path, tmp_path / "out", tmp_path / "t.log")


@pytest.fixture
def slept() -> list[float]:
    return []


# --- a failure of the user's code (or an OOM) after progress --------------------------------


@pytest.mark.parametrize(("status", "verdict"), [(EXIT_1, "code_error"), (OOM_KILLED, "oom")])
def test_a_failure_after_progress_is_restarted_from_there(
    spec: TrialSpec, slept: list[float], status: ExitStatus, verdict: str
) -> None:
    runtime = FakeRuntime([(status, 2), (OK, 3)])
    restarts: list[tuple[Attempt, float]] = []
    policy = RestartPolicy(backoff_initial=0.25)
    result = supervise(
        runtime,
        spec,
        policy,
        on_restart=lambda attempt, delay: restarts.append((attempt, delay)),
        sleep=slept.append,
        probe=runtime.probe(),
    )
    assert result.verdict == "ok" and result.restarts == 1
    first, second = result.attempts
    assert (first.verdict, first.status, first.first_epoch, first.last_epoch) == (
        verdict,
        status,
        0,
        2,
    )
    assert first.progressed
    assert (second.first_epoch, second.last_epoch) == (2, 5)
    assert restarts == [(first, 0.25)] and slept == [0.25]
    assert runtime.calls == [
        "start s1",
        "wait s1",
        "remove s1",
        "ready",
        "start s2",
        "wait s2",
        "remove s2",
    ]
    described = status.describe()
    assert f"--- attempt 2 (restart after {described}) ---" in spec.log_path.read_text()


@pytest.mark.parametrize(("status", "verdict"), [(EXIT_1, "code_error"), (OOM_KILLED, "oom")])
def test_a_failure_before_any_progress_stops_at_once(
    spec: TrialSpec, slept: list[float], status: ExitStatus, verdict: str
) -> None:
    runtime = FakeRuntime([(status, 0), (OK, 5)])
    restarts: list[Attempt] = []
    result = supervise(
        runtime,
        spec,
        RestartPolicy(),
        on_restart=lambda attempt, _delay: restarts.append(attempt),
        sleep=slept.append,
        probe=runtime.probe(),
    )
    assert result.verdict == verdict and result.status == status
    assert len(result.attempts) == 1 and not result.attempts[0].progressed
    assert runtime.started == 1 and restarts == [] and slept == []
    assert not spec.log_path.exists()  # no restart separator


def test_progress_is_judged_per_attempt_not_per_trial(spec: TrialSpec, slept: list[float]) -> None:
    """Epochs done by an earlier attempt do not make a later crash restartable."""
    runtime = FakeRuntime([(EXIT_1, 4), (EXIT_1, 0), (OK, 1)])
    result = supervise(runtime, spec, RestartPolicy(), sleep=slept.append, probe=runtime.probe())
    assert result.verdict == "code_error" and result.restarts == 1
    assert [a.progressed for a in result.attempts] == [True, False]
    assert runtime.started == 2


def test_a_kill_without_progress_is_still_restarted(spec: TrialSpec, slept: list[float]) -> None:
    runtime = FakeRuntime([(KILLED, 0), (KILLED, 0), (OK, 3)])
    result = supervise(runtime, spec, RestartPolicy(), sleep=slept.append, probe=runtime.probe())
    assert result.verdict == "ok" and result.restarts == 2
    assert [a.verdict for a in result.attempts] == ["infrastructure", "infrastructure", "ok"]


def test_faults_that_each_leave_the_trial_further_on_are_all_restarted(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(EXIT_1, 1)] * 5 + [(OK, 1)])
    policy = RestartPolicy(max_restarts=2, backoff_initial=1.0, backoff_factor=2.0)
    result = supervise(runtime, spec, policy, sleep=slept.append, probe=runtime.probe())
    assert result.verdict == "ok" and result.restarts == 5
    assert slept == [1.0] * 5  # progress starts the backoff again


def test_the_limit_counts_fruitless_attempts_in_a_row(spec: TrialSpec, slept: list[float]) -> None:
    script = [(KILLED, 0), (KILLED, 0), (KILLED, 1), (KILLED, 0), (KILLED, 0), (OK, 1)]
    runtime = FakeRuntime(script)
    policy = RestartPolicy(max_restarts=2, backoff_initial=1.0, backoff_factor=2.0)
    result = supervise(runtime, spec, policy, sleep=slept.append, probe=runtime.probe())
    assert result.verdict == "restarts_exhausted" and runtime.started == 5
    assert slept == [1.0, 2.0, 1.0, 2.0]


def test_without_a_probe_no_attempt_counts_as_progress(spec: TrialSpec, slept: list[float]) -> None:
    runtime = FakeRuntime([(EXIT_1, 3), (OK, 0)])
    result = supervise(runtime, spec, RestartPolicy(), sleep=slept.append)
    assert result.verdict == "code_error" and runtime.started == 1


# --- the engine must be back before a restart -----------------------------------------------


def test_a_restart_waits_for_the_engine_then_proceeds(spec: TrialSpec, slept: list[float]) -> None:
    runtime = FakeRuntime([(KILLED, 1), (OK, 2)], ready=[False, False, True])
    policy = RestartPolicy(backoff_initial=0.5, engine_wait=10)
    result = supervise(runtime, spec, policy, sleep=slept.append, probe=runtime.probe())
    assert result.verdict == "ok" and result.restarts == 1
    assert slept == [0.5, ENGINE_POLL_SECONDS, ENGINE_POLL_SECONDS]  # backoff, then two polls
    assert runtime.calls[:3] == ["start s1", "wait s1", "remove s1"]  # no check before the first
    assert runtime.calls[3:] == ["ready", "ready", "ready", "start s2", "wait s2", "remove s2"]


def test_an_engine_back_exactly_at_the_limit_is_still_used(
    spec: TrialSpec, slept: list[float]
) -> None:
    polls = 3
    runtime = FakeRuntime([(KILLED, 1), (OK, 2)], ready=[False] * polls + [True])
    policy = RestartPolicy(backoff_initial=0.0, engine_wait=polls * ENGINE_POLL_SECONDS)
    result = supervise(runtime, spec, policy, sleep=slept.append, probe=runtime.probe())
    assert result.verdict == "ok" and runtime.started == 2
    assert slept == [0.0] + [ENGINE_POLL_SECONDS] * polls


@pytest.mark.parametrize("engine_wait", [0.0, 3.0, 2.5])
def test_an_engine_that_stays_away_raises_after_engine_wait(
    spec: TrialSpec, slept: list[float], engine_wait: float
) -> None:
    runtime = FakeRuntime([(KILLED, 1), (OK, 2)], ready=[False] * 100)
    policy = RestartPolicy(backoff_initial=0.5, engine_wait=engine_wait)
    with pytest.raises(RuntimeUnavailable) as error:
        supervise(runtime, spec, policy, sleep=slept.append, probe=runtime.probe())
    message = str(error.value)
    assert f"within {engine_wait:.0f} s" in message and "fake runtime" in message, message
    assert runtime.started == 1 and runtime.calls[:3] == ["start s1", "wait s1", "remove s1"]
    assert slept[0] == 0.5
    polled = sum(slept[1:])
    assert set(slept[1:]) <= {ENGINE_POLL_SECONDS}
    assert engine_wait <= polled < engine_wait + ENGINE_POLL_SECONDS  # waited the limit, no more


def test_a_restart_whose_start_fails_while_the_engine_restarts_is_retried(
    spec: TrialSpec, slept: list[float]
) -> None:
    """The engine can answer a ping on an old connection while it shuts down."""
    runtime = FakeRuntime([(KILLED, 1), (OK, 2)])
    policy = RestartPolicy(backoff_initial=0.5, engine_wait=10)
    result = supervise(
        runtime,
        spec,
        policy,
        on_restart=lambda *_: setattr(runtime, "start_failures", 2),
        sleep=slept.append,
        probe=runtime.probe(),
    )
    assert result.verdict == "ok" and result.restarts == 1
    assert slept == [0.5, ENGINE_POLL_SECONDS, ENGINE_POLL_SECONDS]
    assert runtime.calls[3:] == [
        "ready",
        "start refused",
        "ready",
        "start refused",
        "ready",
        "start s2",
        "wait s2",
        "remove s2",
    ]


# --- adopting an attempt that an earlier process started ------------------------------------


def test_an_adopted_attempt_is_waited_for_without_a_start(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(OK, 3)])
    started: list[tuple[Handle, int]] = []
    result = supervise(
        runtime,
        spec,
        RestartPolicy(),
        on_start=lambda handle, number: started.append((handle, number)),
        sleep=slept.append,
        probe=runtime.probe(),
        adopt=Handle("fake", "77"),
    )
    assert result.verdict == "ok" and result.restarts == 0
    assert runtime.calls == ["adopt 77", "wait 77", "remove 77"]
    assert started == [(Handle("fake", "77"), 1)]
    assert result.attempts[0].handle == "fake:77"


def test_an_adopted_attempt_that_dies_is_restarted_with_a_new_start(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(KILLED, 1), (OK, 2)])
    result = supervise(
        runtime,
        spec,
        RestartPolicy(),
        sleep=slept.append,
        probe=runtime.probe(),
        adopt=Handle("fake", "77"),
    )
    assert result.verdict == "ok" and result.restarts == 1
    assert runtime.calls == [
        "adopt 77",
        "wait 77",
        "remove 77",
        "ready",
        "start s1",
        "wait s1",
        "remove s1",
    ]
    assert [a.handle for a in result.attempts] == ["fake:77", "fake:s1"]


def test_an_adopted_attempt_that_vanished_after_its_metric_is_ok(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(VANISHED, 2), (OK, 0)])
    result = supervise(
        runtime,
        spec,
        RestartPolicy(),
        sleep=slept.append,
        probe=runtime.probe(finished=True),
        adopt=Handle("fake", "77"),
    )
    assert result.verdict == "ok" and result.restarts == 0
    assert result.status.missing  # the status says what was seen; the verdict what it means
    assert runtime.started == 0 and slept == []


def test_an_adopted_attempt_that_vanished_without_its_metric_is_restarted(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(VANISHED, 0), (OK, 4)])
    result = supervise(
        runtime,
        spec,
        RestartPolicy(),
        sleep=slept.append,
        probe=runtime.probe(finished=False),
        adopt=Handle("fake", "77"),
    )
    assert result.verdict == "ok" and result.restarts == 1
    assert result.attempts[0].verdict == "infrastructure"
    assert "--- attempt 2 (restart after disappeared) ---" in spec.log_path.read_text()
    assert runtime.started == 1


def test_a_handle_of_another_runtime_is_refused_before_anything_runs(spec: TrialSpec) -> None:
    runtime = FakeRuntime([(OK, 1)])
    with pytest.raises(ValueError, match="belongs to the 'docker' runtime"):
        supervise(runtime, spec, RestartPolicy(), adopt=Handle("docker", "abc"))
    assert runtime.calls == ["adopt abc"]


def test_ctrl_c_while_following_an_adopted_attempt_kills_and_removes_it(
    spec: TrialSpec,
) -> None:
    runtime = FakeRuntime([(OK, 1)])
    runtime.interrupt_wait = True
    with pytest.raises(KeyboardInterrupt):
        supervise(runtime, spec, RestartPolicy(), adopt=Handle("fake", "77"))
    assert runtime.calls == ["adopt 77", "wait 77", "kill 77", "remove 77"]


# --- attempts, backoff and the budget ---------------------------------------------------------


def test_every_attempt_is_removed_after_it_ends(spec: TrialSpec, slept: list[float]) -> None:
    runtime = FakeRuntime([(KILLED, 0), (OK, 0)])
    result = supervise(runtime, spec, RestartPolicy(), sleep=slept.append)
    assert result.verdict == "ok" and result.restarts == 1
    assert runtime.calls == [
        *("start s1", "wait s1", "remove s1"),
        *("ready", "start s2", "wait s2", "remove s2"),
    ]
    assert [a.handle for a in result.attempts] == ["fake:s1", "fake:s2"]


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (OOM_KILLED, "oom"),
        (ExitStatus(code=None, signal=9, timed_out=True), "timeout"),
        (ExitStatus(code=2), "code_error"),
    ],
)
def test_failures_that_would_fail_again_are_not_restarted(
    spec: TrialSpec, slept: list[float], status: ExitStatus, verdict: str
) -> None:
    runtime = FakeRuntime([(status, 0), (OK, 0)])
    result = supervise(runtime, spec, RestartPolicy(), sleep=slept.append)
    assert result.verdict == verdict and result.restarts == 0 and result.status == status


def test_zero_max_restarts_gives_up_after_the_first_infrastructure_failure(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(KILLED, 0), (OK, 0)])
    result = supervise(runtime, spec, RestartPolicy(max_restarts=0), sleep=slept.append)
    assert result.verdict == "restarts_exhausted" and len(result.attempts) == 1


def test_backoff_sleeps_grow_between_fruitless_restarts(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(KILLED, 0)] * 3 + [(OK, 0)])
    policy = RestartPolicy(backoff_initial=1.0, backoff_factor=3.0)
    supervise(runtime, spec, policy, sleep=slept.append)
    assert slept == [1.0, 3.0, 9.0]


def test_no_restart_is_attempted_when_the_backoff_would_outlast_the_budget(
    spec: TrialSpec, slept: list[float]
) -> None:
    runtime = FakeRuntime([(KILLED, 0), (OK, 0)])
    policy = RestartPolicy(backoff_initial=30.0)
    result = supervise(runtime, spec, policy, timeout=5.0, sleep=slept.append)
    assert result.verdict == "timeout" and result.status.timed_out
    assert slept == [] and runtime.started == 1


def test_an_error_in_on_start_kills_and_removes_the_attempt(spec: TrialSpec) -> None:
    runtime = FakeRuntime([(OK, 0)])

    def broken(_handle: Handle, _number: int) -> None:
        raise RuntimeError("store is locked")

    with pytest.raises(RuntimeError, match="store is locked"):
        supervise(runtime, spec, RestartPolicy(), on_start=broken)
    assert runtime.calls == ["start s1", "kill s1", "remove s1"]


def test_separator_starts_on_its_own_line_after_output_without_newline(
    spec: TrialSpec, slept: list[float]
) -> None:
    spec.log_path.write_text("epoch 3/10")
    supervise(FakeRuntime([(KILLED, 0), (OK, 0)]), spec, RestartPolicy(), sleep=slept.append)
    assert spec.log_path.read_text() == (
        "epoch 3/10\n--- attempt 2 (restart after killed by SIGKILL) ---\n"
    )
