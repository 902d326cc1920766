"""`tweakops run`: the six stages in one process, the embedded default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor import run_lease
from tweakops.context import RunContext, run_stage
from tweakops.errors import EngineAway, TweakopsError
from tweakops.report.page import try_write_report
from tweakops.stages.inspect import inspect
from tweakops.stages.notify import notify
from tweakops.stages.pull import pull
from tweakops.stages.train import train
from tweakops.stages.tune import tune
from tweakops.stages.watch import Watched, watch
from tweakops.vocabulary import RunStatus, StageStatus

EXIT_REACHED = 0
EXIT_NOT_REACHED = 3

_MAIN: tuple[tuple[str, Callable[[RunContext], Any]], ...] = (
    ("pull", pull),
    ("inspect", inspect),
    ("train", train),
    ("tune", tune),
)
MAIN_STAGES: tuple[str, ...] = tuple(name for name, _ in _MAIN)


def run_pipeline(ctx: RunContext, start: str = "pull", watch_after: bool = True) -> int:
    """Run pull → inspect → train → tune from `start`, then always notify (and watch).

    The process holds the run's lease throughout, so no other watchdog acts on the run.
    Returns the exit code: 0 reached, 3 not reached; stage errors are raised.
    """
    with run_lease(ctx.store, ctx.run.id):
        return _run_stages(ctx, start, watch_after)


def _run_stages(ctx: RunContext, start: str, watch_after: bool) -> int:
    error: TweakopsError | None = None
    first = MAIN_STAGES.index(start) if start in MAIN_STAGES else len(MAIN_STAGES)
    for name, body in _MAIN[first:]:
        try:
            run_stage(ctx, name, body)
        except EngineAway:
            raise  # interrupted: the run stays resumable; nothing is skipped or mailed
        except TweakopsError as exc:  # run_stage recorded the stage and the run as failed
            error = exc
            _skip_rest(ctx, after=name)
            break
        ctx = ctx.refreshed()
    last = (("notify", notify), ("watch", watch_stage)) if watch_after else (("notify", notify),)
    for name, body in last:
        try:
            run_stage(ctx, name, body)
        except TweakopsError as exc:
            error = error or exc
    _write_report(ctx)
    if error is not None:
        raise error
    run = ctx.store.get_run(ctx.run.id)
    return EXIT_REACHED if run.status == RunStatus.REACHED else EXIT_NOT_REACHED


def resume_run(ctx: RunContext, stage: str) -> int:
    """How the watchdog resumes an interrupted run: the stages again from `stage`."""
    return run_pipeline(ctx, start=stage, watch_after=False)


def watch_stage(ctx: RunContext) -> Watched:
    """The watch stage, resuming through this pipeline."""
    return watch(ctx, resume_run)


def _write_report(ctx: RunContext) -> None:
    path = try_write_report(ctx.store, ctx.run.id)
    if path is not None:
        ctx.console.say(f"report: {path}")


def _skip_rest(ctx: RunContext, after: str) -> None:
    for name in MAIN_STAGES[MAIN_STAGES.index(after) + 1 :]:
        ctx.store.set_stage(
            ctx.run.id, name, status=StageStatus.SKIPPED, error=f"skipped: {after} failed"
        )
