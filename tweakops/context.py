"""The run context every stage takes, and the wrapper that records a stage in the store."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from monitor import run_lease
from tweakops.config import Config, origins
from tweakops.errors import EngineAway, StoreError, explain
from tweakops.jenkins.build import record_build
from tweakops.records import RunRecord, StageRecord
from tweakops.report.console import Console
from tweakops.resolved import UNREADABLE, ResolvedConfig, resolve_config, setting_overrides
from tweakops.results import require_succeeded
from tweakops.store import RunStore
from tweakops.vocabulary import RunStatus, StageStatus

log = logging.getLogger("tweakops")
# A failure of one of these decides the run: it is failed. notify and watch report on a run.
RUN_DECIDING_STAGES = ("pull", "inspect", "train", "tune")


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
    source: str | None = None  # the source as given (a URL's password too): memory, never stored

    @property
    def folder(self) -> Path:
        return self.store.run_dir(self.run.id)

    @property
    def source_dir(self) -> Path:
        """The run's pristine copy of the project at the pulled commit."""
        return self.folder / "source"

    def refreshed(self) -> RunContext:
        run = self.store.get_run(self.run.id)
        return RunContext(self.store, run, self.console, self.runtime, self.source)

    def config(self) -> Config:
        """The run's configuration (tweakops.yaml and the run's overrides), resolved once."""
        return self.settings().config

    def settings(self) -> ResolvedConfig:
        """The run's configuration as stored with the run; the first stage after pull (which
        drops it when it replaces the run's copy of the project) resolves and stores it."""
        require_succeeded(self.store, self.run.id, "pull")
        stored = self._stored_settings()
        if stored is not None:
            return stored
        resolved = resolve_config(self.source_dir, setting_overrides(self.run.overrides))
        try:
            self.store.save_config(self.run.id, resolved.to_dict())
        except StoreError as exc:  # a read-only store (status, report) still gets its config
            log.warning("[%s] configuration not stored: %s", self.run.id, exc)
        return resolved

    def origins(self) -> dict[str, str]:
        """Where the threshold, max_trials and time_budget came from: as resolved with the
        config, else (it could not be resolved) as the run's tweakops.yaml says."""
        stored = self._stored_settings()
        if stored is not None:
            return stored.origins
        return origins(self.source_dir, setting_overrides(self.run.overrides))

    def _stored_settings(self) -> ResolvedConfig | None:
        """The stored configuration; None when there is none, or one an older tweakops kept
        in another shape (it is resolved again)."""
        try:
            data = self.store.get_config(self.run.id)
            return ResolvedConfig.from_dict(data) if data is not None else None
        except StoreError:  # an old read-only store without the table
            return None
        except UNREADABLE:
            return None

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
    if name in RUN_DECIDING_STAGES:
        _reopen(ctx, name)
    ctx.store.set_stage(
        ctx.run.id, name, status=StageStatus.RUNNING, started=started, ended=None, error=None
    )
    record_build(ctx.store, ctx.run.id, name)  # under Jenkins: which build runs it
    ctx.console.stage_start(name, f"run {ctx.run.id}")
    try:
        result = body(ctx)
    except EngineAway as exc:  # interrupted, not failed: `watch` or a rerun resumes it
        _record_away(ctx, name, exc)
        raise
    except KeyboardInterrupt:
        _record_failure(ctx, name, "interrupted (Ctrl-C or SIGTERM)")
        raise
    except Exception as exc:
        error = explain(exc)
        _record_failure(ctx, name, str(error))
        if error is exc:
            raise
        raise error from exc
    payload = {**result.to_dict(), "summary": result.summary()}
    ended = time.time()
    ctx.store.set_stage(ctx.run.id, name, status=StageStatus.SUCCEEDED, ended=ended, result=payload)
    ctx.console.stage_done(name, ended - started, result.summary())
    return result


def _reopen(ctx: RunContext, name: str) -> None:
    """A deciding stage run again (a rerun, a resume) reopens the run: it is running again and
    the stages after it, whose results it replaces, wait again (a Jenkins chain's `--waiting`
    jobs take it up); their trials and events stay."""
    order = (*RUN_DECIDING_STAGES, "notify")
    later = [
        stage
        for stage in ctx.store.stages(ctx.run.id)
        if stage.name in order[order.index(name) + 1 :] and stage.status != StageStatus.PENDING
    ]
    for stage in later:
        ctx.store.set_stage(
            ctx.run.id, stage.name, status=StageStatus.PENDING, started=None, ended=None, error=None
        )
    run = ctx.store.get_run(ctx.run.id)
    if run.status != RunStatus.RUNNING:
        ctx.store.update_run(ctx.run.id, status=RunStatus.RUNNING, verdict=None)
    if later or run.status != RunStatus.RUNNING:
        redo = ", ".join(s.name for s in later) or "nothing after it"
        ctx.event(
            "run_reopened",
            f"{name} runs again: the run was {run.status}; {redo} will run again",
            stage=name,
        )


def _record_failure(ctx: RunContext, name: str, message: str) -> None:
    """The stage failed, and so did the run when it was one of pull/inspect/train/tune; a
    store that cannot record it (a full disk) never hides the stage's own error."""
    ctx.console.stage_failed(name, message)
    try:
        ctx.store.set_stage(
            ctx.run.id, name, status=StageStatus.FAILED, ended=time.time(), error=message
        )
        ctx.event("stage_failed", f"{name} failed: {message}", stage=name)
        if name in RUN_DECIDING_STAGES:
            ctx.store.update_run(
                ctx.run.id, status=RunStatus.FAILED, verdict=f"{name} failed: {message}"
            )
    except Exception as exc:
        log.warning("[%s] could not record that %s failed: %s", ctx.run.id, name, explain(exc))


def _record_away(ctx: RunContext, name: str, exc: EngineAway) -> None:
    ctx.console.warn(f"{name} interrupted: {exc}")
    try:
        ctx.event("engine_away", f"{name} interrupted: {exc}", stage=name)
    except Exception as error:
        log.warning("[%s] could not record the interruption: %s", ctx.run.id, explain(error))


def stage_records(ctx: RunContext) -> list[StageRecord]:
    return ctx.store.stages(ctx.run.id)
