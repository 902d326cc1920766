"""The words tweakops stores and shows for runs, stages, trials and trial processes.

Every enum is a `StrEnum`: a member *is* its string (`RunStatus.REACHED == "reached"`,
`json.dumps` and SQLite write the plain word), so records read back from the store, JSON
output and comparisons with older code keep working unchanged. Import the enum and compare
or assign members instead of writing the word by hand:

    from tweakops.vocabulary import StageStatus, TrialStatus
    if stage.status == StageStatus.SUCCEEDED: ...
    store.save_trial(replace(record, status=TrialStatus.FAILED, verdict=verdict))
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run (tw_runs.status): running until it reached its threshold, missed it, or failed."""

    RUNNING = "running"
    REACHED = "reached"
    NOT_REACHED = "not_reached"
    FAILED = "failed"


class StageStatus(StrEnum):
    """One stage of a run (tw_stages.status)."""

    PENDING = "pending"  # not started yet (every stage of a new run)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an earlier stage failed


class TrialStatus(StrEnum):
    """One trial (tw_trials.status)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PRUNED = "pruned"  # stopped early by the tuner's pruner
    CANCELLED = "cancelled"  # stopped by the tuner because the study ended


class TrialVerdict(StrEnum):
    """Why a trial attempt ended (tw_trials.verdict; monitor's failure classes)."""

    OK = "ok"
    CODE_ERROR = "code_error"  # the user's code failed: recorded, never retried
    OOM = "oom"  # the model is too large for its limits: skipped, not retried
    TIMEOUT = "timeout"  # the trial's wall-clock budget ran out
    INFRASTRUCTURE = "infrastructure"  # killed, engine gone, vanished: restarted, bounded
    RESTARTS_EXHAUSTED = "restarts_exhausted"  # infrastructure failures past the restart limit
    METRIC_MISSING = "metric_missing"  # exited 0 without writing its metric file
    METRIC_UNREADABLE = "metric_unreadable"  # wrote a metric file that is not a number
    PRUNED = "pruned"  # the tuner stopped it (see TrialStatus.PRUNED)
    CANCELLED = "cancelled"  # the tuner stopped it (see TrialStatus.CANCELLED)


class ProcessState(StrEnum):
    """What a runtime knows of a trial's process or container (Runtime.status)."""

    RUNNING = "running"
    EXITED = "exited"  # ended; its exit status is known
    MISSING = "missing"  # gone (removed, or its engine is), exit status unknown


# Groups the stages, trials and reports test for.
FINISHED_TRIALS: frozenset[TrialStatus] = frozenset(set(TrialStatus) - {TrialStatus.RUNNING})
STOPPED_VERDICTS: frozenset[TrialVerdict] = frozenset({TrialVerdict.PRUNED, TrialVerdict.CANCELLED})
NOT_RUN_STAGES: frozenset[StageStatus] = frozenset({StageStatus.PENDING, StageStatus.SKIPPED})

__all__ = [
    "FINISHED_TRIALS",
    "NOT_RUN_STAGES",
    "STOPPED_VERDICTS",
    "ProcessState",
    "RunStatus",
    "StageStatus",
    "TrialStatus",
    "TrialVerdict",
]
