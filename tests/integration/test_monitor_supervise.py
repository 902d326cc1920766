"""supervise() with real processes: restarts after kills, bounded, code errors not retried."""

from __future__ import annotations

import os
import random
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

from monitor import Attempt, RestartPolicy, supervise
from tweakops.runtime import ExitStatus, Handle, LocalRuntime, TrialSpec

# Counts its attempts in TWEAKOPS_OUTPUT, SIGKILLs itself while attempt <= KILLS, then succeeds.
COUNTING = """
    import os, time
    from pathlib import Path
    out = Path(os.environ["TWEAKOPS_OUTPUT"])
    counter = out / "attempts"
    n = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(n))
    print("attempt", n, flush=True)
    time.sleep(float(os.environ.get("NAP", "0")))
    if n == 1:
        time.sleep(float(os.environ.get("FIRST_NAP", "0")))
    if n <= int(os.environ["KILLS"]):
        os.kill(os.getpid(), 9)
    (out / "accuracy.txt").write_text("0.9")
    print("trained", flush=True)
"""


def _spec(tmp_path: Path, script: str, **env: str) -> TrialSpec:
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "train.py").write_text(textwrap.dedent(script))
    return TrialSpec(
        name="supervise-test",
        command=("python", "train.py"),
        workdir=tmp_path / "src",
        output_dir=tmp_path / "output",
        log_path=tmp_path / "trial.log",
        env=env,
    )


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_trial_killed_twice_is_restarted_and_finishes(tmp_path: Path) -> None:
    spec = _spec(tmp_path, COUNTING, KILLS="2")
    restarts: list[tuple[Attempt, float]] = []
    result = supervise(
        LocalRuntime(),
        spec,
        RestartPolicy(max_restarts=3),
        on_restart=lambda attempt, delay: restarts.append((attempt, delay)),
        sleep=lambda _s: None,
    )
    log = spec.log_path.read_text()
    assert result.verdict == "ok" and result.status.ok, log
    assert result.restarts == 2 and [a.number for a in result.attempts] == [1, 2, 3]
    assert [a.verdict for a in result.attempts] == ["infrastructure", "infrastructure", "ok"]
    assert [delay for _, delay in restarts] == [0.5, 1.0]
    assert "--- attempt 2 (restart after killed by SIGKILL) ---" in log
    assert "--- attempt 3 (restart after killed by SIGKILL) ---" in log
    assert log.count("trained") == 1
    assert (spec.output_dir / "accuracy.txt").read_text() == "0.9"


def test_trial_that_always_dies_stops_after_max_restarts(tmp_path: Path) -> None:
    spec = _spec(tmp_path, COUNTING, KILLS="99")
    result = supervise(LocalRuntime(), spec, RestartPolicy(max_restarts=2), sleep=lambda _s: None)
    assert result.verdict == "restarts_exhausted"
    assert len(result.attempts) == 3 and result.restarts == 2
    assert (spec.output_dir / "attempts").read_text() == "3"


def test_trial_whose_code_raises_is_recorded_and_not_retried(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "raise ValueError('bad layer size')")
    result = supervise(LocalRuntime(), spec, RestartPolicy(), sleep=lambda _s: None)
    assert result.verdict == "code_error"
    assert result.status.code == 1 and len(result.attempts) == 1
    assert "ValueError: bad layer size" in spec.log_path.read_text()


def test_timeout_is_a_budget_across_all_attempts(tmp_path: Path) -> None:
    spec = _spec(tmp_path, COUNTING, KILLS="999", NAP="0.3")
    policy = RestartPolicy(max_restarts=100, backoff_initial=0.0)
    began = time.monotonic()
    result = supervise(LocalRuntime(), spec, policy, timeout=1.0, sleep=lambda _s: None)
    elapsed = time.monotonic() - began
    assert result.verdict == "timeout" and result.status.timed_out
    assert 2 <= len(result.attempts) < 10
    assert 0.9 < elapsed < 5


def test_trial_killed_from_outside_at_a_random_moment_is_restarted(tmp_path: Path) -> None:
    spec = _spec(tmp_path, COUNTING, KILLS="0", FIRST_NAP="30")
    counter = spec.output_dir / "attempts"
    pause = random.uniform(0.0, 0.3)
    killers: list[threading.Thread] = []

    def kill_first_attempt(pid: int) -> None:
        deadline = time.monotonic() + 10
        while not counter.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(pause)
        os.kill(pid, signal.SIGKILL)

    def on_start(handle: Handle, number: int) -> None:
        if number == 1:
            killers.append(threading.Thread(target=kill_first_attempt, args=(int(handle.id),)))
            killers[0].start()

    result = supervise(
        LocalRuntime(), spec, RestartPolicy(), timeout=20, on_start=on_start, sleep=lambda _s: None
    )
    killers[0].join()
    assert result.verdict == "ok", (pause, spec.log_path.read_text())
    assert result.restarts == 1 and result.attempts[0].status.signal == signal.SIGKILL
    assert (spec.output_dir / "accuracy.txt").read_text() == "0.9"


class _InterruptedWait(LocalRuntime):
    """Ctrl-C arrives while the supervisor waits."""

    def __init__(self) -> None:
        super().__init__()
        self.pids: list[int] = []

    def wait(self, handle: Handle, timeout: float | None = None) -> ExitStatus:
        self.pids.append(int(handle.id))
        raise KeyboardInterrupt


def test_ctrl_c_while_waiting_kills_the_trial_and_propagates(tmp_path: Path) -> None:
    runtime = _InterruptedWait()
    spec = _spec(tmp_path, COUNTING, KILLS="0", NAP="30")
    with pytest.raises(KeyboardInterrupt):
        supervise(runtime, spec, RestartPolicy(), sleep=lambda _s: None)
    assert runtime.pids and _gone(runtime.pids[0])
    assert runtime.status(Handle("local", str(runtime.pids[0]))) == "missing"
