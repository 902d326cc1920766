"""The run context every stage takes, and the wrapper that records a stage in the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from monitor import run_lease
from tweakops.config import Config, load_config
from tweakops.console import Console
from tweakops.errors import StoreError, TweakopsError
from tweakops.records import RunRecord, StageRecord
from tweakops.store import RunStore

log = logging.getLogger("tweakops")


class StageResult(Protocol):
    def to_dict(self) -> dict[str, Any]: ...
    def summary(self) -> str: ...


R = TypeVar("R", bound=StageResult)


@dataclass(frozen=True)
class RunContext:
    """A run, its store, how to run trials, and where to talk to people."""

    store: RunStore
    run: RunRecord
    console: Console = field(default_factory=Console)
    runtime: str = "auto"

    @property
    def folder(self) -> Path:
        return self.store.run_dir(self.run.id)

    @property
    def source_dir(self) -> Path:
        """The run's pristine copy of the project at the pulled commit."""
        return self.folder / "source"

    def refreshed(self) -> RunContext:
        return RunContext(self.store, self.store.get_run(self.run.id), self.console, self.runtime)

    def config(self) -> Config:
        self.result_of("pull")
        overrides = {k: v for k, v in self.run.overrides.items() if k != "ref"}  # ref: pull's
        return load_config(self.source_dir, overrides)

    def result_of(self, stage: str) -> dict[str, Any]:
        """The stored result of an earlier stage; a clear error when it has not succeeded."""
        record = self.store.get_stage(self.run.id, stage)
        if record.status != "succeeded":
            raise StoreError(
                f"run {self.run.id}: stage {stage!r} has not succeeded (it is {record.status}); "
                f"run `tweakops {stage} --run {self.run.id}` first"
            )
        return record.result

    def event(self, kind: str, message: str, **data: Any) -> None:
        log.info("[%s] %s", self.run.id, message)
        self.store.add_event(self.run.id, kind, message, **data)


def run_stage(ctx: RunContext, name: str, body: Callable[[RunContext], R]) -> R:
    """Record `name` as running, run it, store its result or its error; re-raise errors.

    Every stage but watch holds the run's lease (monitor.run_lease): a second process that
    tries a stage of the same run at the same time is refused with LeaseHeld.
    """
    if name == "watch":  # the watchdog takes the lease itself, only when it acts
        return _run_stage(ctx, name, body)
    with run_lease(ctx.store, ctx.run.id):
        return _run_stage(ctx, name, body)


def _run_stage(ctx: RunContext, name: str, body: Callable[[RunContext], R]) -> R:
    started = time.time()
    ctx.store.set_stage(ctx.run.id, name, status="running", started=started, ended=None, error=None)
    ctx.console.stage_start(name, f"run {ctx.run.id}")
    try:
        result = body(ctx)
    except (TweakopsError, KeyboardInterrupt) as exc:
        message = str(exc) if isinstance(exc, TweakopsError) else "interrupted (Ctrl-C)"
        ctx.store.set_stage(ctx.run.id, name, status="failed", ended=time.time(), error=message)
        ctx.event("stage_failed", f"{name} failed: {message}", stage=name)
        ctx.console.stage_failed(name, message)
        raise
    payload = {**result.to_dict(), "summary": result.summary()}
    ended = time.time()
    ctx.store.set_stage(ctx.run.id, name, status="succeeded", ended=ended, result=payload)
    ctx.console.stage_done(name, ended - started, result.summary())
    return result


def stage_records(ctx: RunContext) -> list[StageRecord]:
    return ctx.store.stages(ctx.run.id)
