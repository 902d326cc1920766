"""A trial whose tweakops process was lost: adopt its attempt if it still runs, else restart it.

The watchdog decides and records; the trial executor (tweakops.trials.resume_trial) then
follows the adopted attempt, or starts a new one from the trial's checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor._run import WatchedRun
from tweakops.records import TrialRecord
from tweakops.runtime import Handle, Runtime
from tweakops.trialfiles import read_epochs
from tweakops.vocabulary import ProcessState


@dataclass(frozen=True)
class Resumption:
    """How a lost trial goes on: `orphan` (its attempt, still running) is adopted, or None."""

    orphan: Handle | None
    epoch: int  # completed epochs when it was found


def last_epoch(output_dir: Path) -> int:
    """Completed epochs in the trial's epochs.jsonl (0 when there is none)."""
    epochs = read_epochs(output_dir.parent, output_dir)
    return int(epochs[-1]["epoch"]) if epochs else 0


def running_attempt(runtime: Runtime, record: TrialRecord) -> Handle | None:
    """The trial's recorded process or container if this runtime owns it and it still runs."""
    if not record.handle or not record.handle.startswith(f"{runtime.name}:"):
        return None
    handle = Handle.parse(record.handle)
    return handle if runtime.status(handle) == ProcessState.RUNNING else None


def resume_lost_trial(
    ctx: WatchedRun, runtime: Runtime, record: TrialRecord, output_dir: Path
) -> tuple[TrialRecord, Resumption]:
    """Decide how a lost trial goes on and record it: an adoption event, or a resume event
    and one more restart. Returns the (updated) record and the decision."""
    found = Resumption(running_attempt(runtime, record), last_epoch(output_dir))
    if found.orphan is not None:
        ctx.event(
            "trial_adopted",
            f"trial {record.number} was still running ({found.orphan}) after its tweakops "
            f"process was lost; following it from epoch {found.epoch}",
            trial=record.number,
            handle=str(found.orphan),
            epoch=found.epoch,
        )
        return record, found
    ctx.event(
        "trial_resumed",
        f"trial {record.number} lost its process; restarting it from epoch {found.epoch}",
        trial=record.number,
        cause="process lost",
        resumed_from_epoch=found.epoch,
    )
    return ctx.store.update_trial(record, restarts=record.restarts + 1), found
