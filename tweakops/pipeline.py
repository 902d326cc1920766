"""`tweakops run`: the six stages in one process, the embedded default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tweakops.context import RunContext, run_stage
from tweakops.errors import TweakopsError
from tweakops.stages import inspect, notify, pull, train, tune, watch

EXIT_REACHED = 0
EXIT_NOT_REACHED = 3

_MAIN: tuple[tuple[str, Callable[[RunContext], Any]], ...] = (
    ("pull", pull),
    ("inspect", inspect),
    ("train", train),
    ("tune", tune),
)


def run_pipeline(ctx: RunContext) -> int:
    """Run pull → inspect → train → tune, then always notify and watch; return the exit code."""
    error: TweakopsError | None = None
    for name, body in _MAIN:
        try:
            run_stage(ctx, name, body)
        except TweakopsError as exc:
            error = exc
            ctx.store.update_run(ctx.run.id, status="failed", verdict=f"{name} failed: {exc}")
            _skip_rest(ctx, after=name)
            break
        ctx = ctx.refreshed()
    for name, body in (("notify", notify), ("watch", watch)):
        try:
            run_stage(ctx, name, body)
        except TweakopsError as exc:
            error = error or exc
    if error is not None:
        raise error
    run = ctx.store.get_run(ctx.run.id)
    return EXIT_REACHED if run.status == "reached" else EXIT_NOT_REACHED


def _skip_rest(ctx: RunContext, after: str) -> None:
    names = [name for name, _ in _MAIN]
    for name in names[names.index(after) + 1 :]:
        ctx.store.set_stage(ctx.run.id, name, status="skipped", error=f"skipped: {after} failed")
