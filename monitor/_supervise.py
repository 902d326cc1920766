"""Run one trial to its end: restart infrastructure failures, bounded, with backoff."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor._classify import OK, RESTARTS_EXHAUSTED, TIMEOUT, RestartPolicy, classify, restartable
from tweakops.errors import EngineAway, RuntimeUnavailable
from tweakops.runtime import ExitStatus, Handle, Runtime, TrialSpec
from tweakops.runtime._trial_folder import open_log
from tweakops.trialfiles import TrialFileRefused, read_tail

ENGINE_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Attempt:
    """One start of a trial and how it ended."""

    number: int  # 1 for the first start
    handle: str  # "<runtime>:<id>"
    status: ExitStatus
    verdict: str  # classify(status)
    started: float  # time.time()
    ended: float
    first_epoch: int = 0  # completed epochs when it started
    last_epoch: int = 0  # completed epochs when it ended

    @property
    def progressed(self) -> bool:
        """It finished at least one epoch."""
        return self.last_epoch > self.first_epoch


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


@dataclass(frozen=True)
class Probe:
    """What the supervisor may read of a trial's own output (its epochs.jsonl, its metric)."""

    last_epoch: Callable[[], int] = lambda: 0  # completed epochs so far
    finished: Callable[[], bool] = lambda: False  # the metric file exists: the script ended
    stopped: Callable[[], str | None] = lambda: None  # "pruned"/"cancelled" by the tuner


def supervise(
    runtime: Runtime,
    spec: TrialSpec,
    policy: RestartPolicy,
    timeout: float | None = None,
    on_start: Callable[[Handle, int], None] | None = None,
    on_restart: Callable[[Attempt, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    probe: Probe | None = None,
    adopt: Handle | None = None,
) -> Supervised:
    """Run `spec` until it ends in a way a restart cannot mend, or the limits stop it.

    `timeout` is the trial's wall budget across all attempts. The restart limit and the
    backoff count failed attempts in a row that finished no epoch: an attempt that made
    progress starts the count again, so a long training survives any number of faults
    that each leave it further on. A restart runs the same spec
    again (same image, mounts, params, limits): the script resumes from its checkpoints in
    output_dir. `adopt` is an attempt still running from an earlier tweakops process: it is
    waited for first instead of starting a new one. Before a restart the runtime must be
    ready again (a restarted Docker engine) within policy.engine_wait. Any exception,
    Ctrl-C included, kills and removes the running attempt before it propagates.
    """
    probe = probe or Probe()
    deadline = None if timeout is None else time.monotonic() + timeout
    attempts: list[Attempt] = []
    fruitless = 0  # failed attempts in a row that finished no epoch: the limit and the backoff
    while True:
        number = len(attempts) + 1
        if (reason := probe.stopped()) is not None:  # stopped before this attempt started
            if adopt is not None:
                _abandon(runtime, adopt)
            return Supervised(ExitStatus(code=None), reason, tuple(attempts))
        start: Callable[[TrialSpec], Handle] = runtime.start
        if adopt is not None:
            start = functools.partial(runtime.adopt, adopt)
        elif attempts:
            _write_separator(spec.log_path, number, attempts[-1].status)
            start = functools.partial(
                _start_when_ready, runtime, limit=policy.engine_wait, sleep=sleep
            )
        attempt = _run_attempt(runtime, spec, number, _remaining(deadline), on_start, probe, start)
        adopt = None
        attempts.append(attempt)
        if attempt.verdict != OK and (reason := probe.stopped()) is not None:
            return Supervised(attempt.status, reason, tuple(attempts))  # the tuner stopped it
        if not restartable(attempt.verdict, attempt.progressed):
            return Supervised(attempt.status, attempt.verdict, tuple(attempts))
        fruitless = 1 if attempt.progressed else fruitless + 1
        if fruitless > policy.max_restarts:
            return Supervised(attempt.status, RESTARTS_EXHAUSTED, tuple(attempts))
        delay = policy.delay(fruitless)
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
    probe: Probe,
    start: Callable[[TrialSpec], Handle],
) -> Attempt:
    """Start (or adopt), wait and remove one attempt; leave no process behind on interrupts."""
    started, first_epoch = time.time(), probe.last_epoch()
    handle = start(spec)
    try:
        if on_start is not None:
            on_start(handle, number)
        status = runtime.wait(handle, timeout)
    except BaseException:
        _abandon(runtime, handle)
        raise
    runtime.remove(handle)
    verdict = classify(status)
    if status.missing and probe.finished():
        verdict = OK  # it vanished after writing its metric: an adopted trial that had ended
    return Attempt(
        number, str(handle), status, verdict, started, time.time(), first_epoch, probe.last_epoch()
    )


def _start_when_ready(
    runtime: Runtime, spec: TrialSpec, limit: float, sleep: Callable[[float], None]
) -> Handle:
    """Start a restart, waiting up to `limit` s for a runtime that is away (an engine restart).

    The engine may answer on an old connection while it shuts down, so a failed start is
    retried too, not only a failed ping.
    """
    waited = 0.0
    while True:
        if runtime.ready():
            try:
                return runtime.start(spec)
            except RuntimeUnavailable as exc:
                error: Exception = exc
        else:
            error = RuntimeUnavailable(f"the {runtime.name} runtime does not answer")
        if waited >= limit:
            raise EngineAway(
                f"could not restart trial {spec.name!r} within {limit:.0f} s ({error}); start "
                "the engine: `tweakops watch --all` or the same stage again resumes the trial "
                "from its checkpoint, on the same runtime"
            ) from error
        sleep(ENGINE_POLL_SECONDS)
        waited += ENGINE_POLL_SECONDS


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
    try:  # a trial may own its folder: never a link, a FIFO or a device (tweakops/trialfiles)
        last = read_tail(log_path.parent, log_path, 1)
    except FileNotFoundError:
        last = b""
    except TrialFileRefused:
        return  # the attempt's own start refuses the log with a clear verdict
    with open_log(log_path) as log:
        log.write(("\n" if last not in (b"", b"\n") else "").encode() + line.encode("utf-8"))
