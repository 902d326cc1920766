"""Run one trial to its end: restart infrastructure failures, bounded, with backoff."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor._classify import INFRASTRUCTURE, RESTARTS_EXHAUSTED, TIMEOUT, RestartPolicy, classify
from tweakops.runtime import ExitStatus, Handle, Runtime, TrialSpec


@dataclass(frozen=True)
class Attempt:
    """One start of a trial and how it ended."""

    number: int  # 1 for the first start
    handle: str  # "<runtime>:<id>"
    status: ExitStatus
    verdict: str  # classify(status)
    started: float  # time.time()
    ended: float


@dataclass(frozen=True)
class Supervised:
    """The outcome of a supervised trial and its retry history."""

    status: ExitStatus  # of the last attempt (timed_out when the budget ran out between attempts)
    verdict: str  # ok | code_error | oom | timeout | restarts_exhausted
    attempts: tuple[Attempt, ...]

    @property
    def restarts(self) -> int:
        """Attempts after the first."""
        return max(0, len(self.attempts) - 1)


def supervise(
    runtime: Runtime,
    spec: TrialSpec,
    policy: RestartPolicy,
    timeout: float | None = None,
    on_start: Callable[[Handle, int], None] | None = None,
    on_restart: Callable[[Attempt, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Supervised:
    """Run `spec` until it ends other than by an infrastructure failure, or the limits stop it.

    `timeout` is the trial's wall budget across all attempts. A restart runs the same spec
    again (the script resumes from its checkpoints in output_dir). Any exception, Ctrl-C
    included, kills and removes the running attempt before it propagates.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    attempts: list[Attempt] = []
    while True:
        number = len(attempts) + 1
        if attempts:
            _write_separator(spec.log_path, number, attempts[-1].status)
        attempt = _run_attempt(runtime, spec, number, _remaining(deadline), on_start)
        attempts.append(attempt)
        if attempt.verdict != INFRASTRUCTURE:
            return Supervised(attempt.status, attempt.verdict, tuple(attempts))
        if attempt.number > policy.max_restarts:
            return Supervised(attempt.status, RESTARTS_EXHAUSTED, tuple(attempts))
        delay = policy.delay(attempt.number)
        left = _remaining(deadline)
        if left is not None and left <= delay:
            out_of_time = ExitStatus(code=None, timed_out=True)
            return Supervised(out_of_time, TIMEOUT, tuple(attempts))
        if on_restart is not None:
            on_restart(attempt, delay)
        sleep(delay)


def _run_attempt(
    runtime: Runtime,
    spec: TrialSpec,
    number: int,
    timeout: float | None,
    on_start: Callable[[Handle, int], None] | None,
) -> Attempt:
    """Start, wait and remove one attempt; leave no process behind if anything interrupts."""
    started = time.time()
    handle = runtime.start(spec)
    try:
        if on_start is not None:
            on_start(handle, number)
        status = runtime.wait(handle, timeout)
    except BaseException:
        _abandon(runtime, handle)
        raise
    runtime.remove(handle)
    return Attempt(number, str(handle), status, classify(status), started, time.time())


def _abandon(runtime: Runtime, handle: Handle) -> None:
    """Kill and remove an attempt on the way out of an exception, hiding cleanup errors."""
    with contextlib.suppress(Exception):
        runtime.kill(handle)
    with contextlib.suppress(Exception):
        runtime.remove(handle)


def _remaining(deadline: float | None) -> float | None:
    """Seconds left before the deadline (never negative); None for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _write_separator(log_path: Path, number: int, previous: ExitStatus) -> None:
    """Append "--- attempt N (restart after <cause>) ---" on a line of its own."""
    line = f"--- attempt {number} (restart after {previous.describe()}) ---\n"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a trial may own its folder; it must not redirect the host's writes elsewhere.
    fd = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "r+b") as log:
        size = log.seek(0, os.SEEK_END)
        if size > 0:
            log.seek(size - 1)
            if log.read(1) != b"\n":
                line = "\n" + line
        log.write(line.encode("utf-8"))
