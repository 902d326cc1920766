"""Typed records of the run store: what every stage, job and report reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

STAGES: tuple[str, ...] = ("pull", "inspect", "train", "tune", "notify", "watch")


@dataclass(frozen=True)
class RunRecord:
    """One pipeline run of one repository at one commit."""

    id: str
    source: str
    created: float
    status: str  # pending | running | reached | not_reached | failed
    overrides: dict[str, Any] = field(default_factory=dict)
    sha: str | None = None
    verdict: str | None = None  # one sentence naming the rule that ended the run
    build_url: str | None = None
    runtime: str | None = None  # docker | local: decided once (at inspect), kept for the run


@dataclass(frozen=True)
class StageRecord:
    run_id: str
    name: str
    status: str  # pending | running | succeeded | failed | skipped
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)  # tweakops.results reads it typed

    @property
    def summary(self) -> str:
        """The one line the stage said about its result ("" before it had one)."""
        return str(self.result.get("summary") or "")

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


@dataclass(frozen=True)
class TrialRecord:
    run_id: str
    number: int
    params: dict[str, Any]
    status: str  # running | succeeded | failed | pruned
    accuracy: float | None = None
    started: float | None = None
    ended: float | None = None
    # ok | code_error | metric_missing | metric_unreadable | oom | timeout | restarts_exhausted
    verdict: str | None = None
    error: str | None = None
    restarts: int = 0
    folder: str | None = None
    handle: str | None = None  # runtime:id of the process or container

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


def best_trial(trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The trial with the highest metric, the earliest on a tie; None when none measured one."""
    scored = [t for t in trials if t.accuracy is not None]
    return max(scored, key=lambda t: (t.accuracy or 0.0, -t.number)) if scored else None


@dataclass(frozen=True)
class EventRecord:
    run_id: str
    time: float
    kind: str  # e.g. stage_started, trial_restarted, notify_outbox
    message: str
    data: dict[str, Any] = field(default_factory=dict)


# The watchdog's events: a trial restarted by its supervisor or after its tweakops process was
# lost; a trial adopted (still running) and a run taken over by `tweakops watch`.
RESTART_EVENTS = ("trial_restarted", "trial_resumed")
WATCHDOG_EVENTS = (*RESTART_EVENTS, "trial_adopted", "run_resumed")


@dataclass(frozen=True)
class LeaseRecord:
    """Who may act on a run's trials until `expires` (time.time()): one watchdog at a time."""

    run_id: str
    owner: str  # "<host>:<pid>:<token>"
    host: str
    pid: int
    expires: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"
