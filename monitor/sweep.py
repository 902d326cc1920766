"""The watchdog sweep (`tweakops watch`, `watch --all`): a run whose process died mid-stage is
resumed where it stopped.

A run needs the watchdog when its record says a stage is running but nobody holds its lease
(the process that ran it was killed, its agent crashed, the host rebooted). The sweep takes
the lease and has the caller's `resume(run, stage)` run the stages again from the interrupted
one (the pipeline does: a trial whose container still runs is adopted, a gone one restarts
from its last checkpoint, finished trials are kept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from monitor._run import WatchedRun
from tweakops.errors import EngineAway, TweakopsError, explain
from tweakops.records import RESTART_EVENTS
from tweakops.store.lease import LeaseHeld, run_lease
from tweakops.vocabulary import RunStatus, StageStatus

RESUMED, WATCHED, IDLE, FINISHED, FAILED = "resumed", "watched", "idle", "finished", "failed"
WAITING = "waiting"  # for its Docker engine: left as it is, the next sweep tries again

Run = TypeVar("Run", bound=WatchedRun)


@dataclass(frozen=True)
class Swept:
    """What the watchdog found and did for one run."""

    run_id: str
    action: str  # resumed | watched (a live process owns it) | idle | finished | failed | waiting
    detail: str

    def line(self) -> str:
        return f"run {self.run_id}: {self.action}: {self.detail}"


@dataclass(frozen=True)
class Watched:
    runs: tuple[Swept, ...]
    restarts: int  # restart events recorded in these runs so far

    @property
    def failed(self) -> tuple[Swept, ...]:
        return tuple(s for s in self.runs if s.action == FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": [asdict(s) for s in self.runs], "restarts": self.restarts}

    def summary(self) -> str:
        resumed = [s.run_id for s in self.runs if s.action == RESUMED]
        what = f"resumed {', '.join(resumed)}" if resumed else "nothing to resume"
        return f"{len(self.runs)} run(s) checked, {what}; {self.restarts} restart(s) recorded"


def watch_run(ctx: Run, resume: Callable[[Run, str], object]) -> Watched:
    """Sweep this run once."""
    swept = sweep_run(ctx, resume)
    return Watched((swept,), restart_count(ctx))


def sweep_run(ctx: Run, resume: Callable[[Run, str], object]) -> Swept:
    """Resume the run if a stage was interrupted and no live process holds its lease."""
    run_id = ctx.run.id
    if (untouched := _nothing_to_resume(ctx)) is not None:
        return untouched  # cheap look first: no lease taken for finished or idle runs
    try:
        with run_lease(ctx.store, run_id):
            if (untouched := _nothing_to_resume(ctx)) is not None:
                return untouched  # another watchdog finished it just before we got the lease
            stage = _interrupted(ctx)[0]
            ctx.event(
                "run_resumed",
                f"stage {stage} was interrupted (its process is gone); the watchdog resumes it",
                stage=stage,
            )
            ctx.console.say(f"    run {run_id}: {stage} was interrupted; resuming it")
            try:
                resume(ctx, stage)
            except EngineAway as exc:
                return Swept(run_id, WAITING, f"{stage} waits for its Docker engine: {exc}")
            except TweakopsError as exc:
                return Swept(run_id, FAILED, f"resuming {stage} failed: {exc}")
    except LeaseHeld as held:
        return Swept(run_id, WATCHED, f"{held.holder.describe()} is working on it")
    final = ctx.store.get_run(run_id)
    return Swept(run_id, RESUMED, f"resumed from {stage}: {final.verdict or final.status}")


def _interrupted(ctx: WatchedRun) -> list[str]:
    """Stages recorded as running (the watch stage itself aside), in pipeline order."""
    stages = ctx.store.stages(ctx.run.id)
    return [s.name for s in stages if s.status == StageStatus.RUNNING and s.name != "watch"]


def _nothing_to_resume(ctx: WatchedRun) -> Swept | None:
    """FINISHED or IDLE when the run needs no watchdog, else None."""
    run = ctx.store.get_run(ctx.run.id)
    if run.status != RunStatus.RUNNING:
        return Swept(run.id, FINISHED, f"the run is {run.status.replace('_', ' ')}")
    if not _interrupted(ctx):
        return Swept(run.id, IDLE, "no stage is in progress")
    return None


def sweep(contexts: Sequence[Run], resume: Callable[[Run, str], object]) -> Watched:
    """Sweep several runs (`tweakops watch --all`); one broken run does not stop the rest."""
    results = tuple(_sweep_one(ctx, resume) for ctx in contexts)
    counts = [_restarts_or_zero(ctx) for ctx in contexts]
    return Watched(results, sum(counts))


def _sweep_one(ctx: Run, resume: Callable[[Run, str], object]) -> Swept:
    """sweep_run(), with whatever breaks (a damaged record, a full disk) reported as FAILED."""
    try:
        return sweep_run(ctx, resume)
    except Exception as exc:  # one run's trouble never stops the sweep of the others
        ctx.console.warn(f"run {ctx.run.id}: {explain(exc)}")
        return Swept(ctx.run.id, FAILED, str(explain(exc)))


def _restarts_or_zero(ctx: WatchedRun) -> int:
    try:
        return restart_count(ctx)
    except Exception:  # the sweep already said what is wrong with this run
        return 0


def follow(
    contexts: Callable[[], Sequence[Run]],
    resume: Callable[[Run, str], object],
    wait_for_exits: Callable[[float], object],
    poll: float,
    duration: float | None,
    clock: Callable[[], float],
) -> Watched:
    """Sweep, then wake on each container exit (or every `poll` s) and sweep again, until no
    run is left running or `duration` s have passed. Returns the last sweep."""
    deadline = None if duration is None else clock() + duration
    while True:
        watched = sweep(contexts(), resume)
        running = [s for s in watched.runs if s.action in (WATCHED, IDLE, WAITING)]
        if not running or (deadline is not None and clock() >= deadline):
            return watched
        left = poll if deadline is None else max(0.0, min(poll, deadline - clock()))
        wait_for_exits(left)


def restart_count(ctx: WatchedRun) -> int:
    return sum(len(ctx.store.events(ctx.run.id, kind)) for kind in RESTART_EVENTS)
