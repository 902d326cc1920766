"""Stage 6: the watchdog sweep of this run (monitor.sweep), as a stage.

The sweep resumes an interrupted run through `resume(ctx, stage)`; the pipeline passes its
own (tweakops.pipeline.resume_run), so this module does not import the pipeline that runs it.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.sweep import (
    FAILED,
    FINISHED,
    IDLE,
    RESUMED,
    WAITING,
    WATCHED,
    Swept,
    Watched,
    follow,
    restart_count,
    sweep,
    sweep_run,
    watch_run,
)
from tweakops.context import RunContext

__all__ = [
    "FAILED",
    "FINISHED",
    "IDLE",
    "RESUMED",
    "WAITING",
    "WATCHED",
    "Swept",
    "Watched",
    "follow",
    "restart_count",
    "sweep",
    "sweep_run",
    "watch",
]


def watch(ctx: RunContext, resume: Callable[[RunContext, str], object]) -> Watched:
    """The stage: sweep this run once, resuming it through `resume` if it was interrupted."""
    return watch_run(ctx, resume)
