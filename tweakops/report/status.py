"""What `tweakops status` and `tweakops runs` show: readable tables, or JSON for scripts."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from tweakops.analysis.record import Inspected
from tweakops.records import WATCHDOG_EVENTS, RunRecord, TrialRecord, best_trial
from tweakops.redact import redact, redact_deep
from tweakops.report.console import (
    Cell,
    fmt_accuracy,
    fmt_params,
    fmt_seconds,
    make_table,
    render,
    status_text,
    styled,
)
from tweakops.results import Trained, read_result
from tweakops.store import RunStore
from tweakops.vocabulary import StageStatus


def run_snapshot(store: RunStore, run_id: str) -> dict[str, Any]:
    """Everything about one run, as plain data."""
    return {
        "run": asdict(store.get_run(run_id)),
        "folder": str(store.run_dir(run_id)),
        "stages": [asdict(s) for s in store.stages(run_id)],
        "trials": [asdict(t) for t in store.trials(run_id)],
        "events": [asdict(e) for e in store.events(run_id)],
    }


def render_status(
    store: RunStore, run_id: str, color: bool = False, width: int | None = None
) -> str:
    """The run, its stages and trials as tables; status words coloured when `color`; the
    last column of each table cut to `width` (a terminal's) when given."""
    run = store.get_run(run_id)
    status = Text.assemble("status: ", status_text(run.status, color))
    head: list[RenderableType] = [
        f"run {run.id}  {run.source}" + (f" @ {run.sha[:10]}" if run.sha else ""),
        status.append(f" — {run.verdict}" if run.verdict else ""),
        f"folder: {store.run_dir(run.id)}",
        *_runtime_line(store, run.id),
        *_inspect_lines(store, run.id),
        "",
    ]
    rows: list[list[Cell]] = [
        [
            s.name,
            status_text(s.status, color),
            fmt_seconds(s.duration),
            s.error or s.summary,
        ]
        for s in store.stages(run.id)
    ]
    headers = ["stage", "status", "seconds", "summary"]
    stages = make_table(headers, rows, right={2}, color=color, width=width)
    parts = [*head, stages]
    trials = store.trials(run.id)
    if trials:
        parts += ["", _trial_table(trials, color, width)]
    recoveries = [e for e in store.events(run.id) if e.kind in WATCHDOG_EVENTS]
    if recoveries:
        events: list[list[Cell]] = [
            [time.strftime("%H:%M:%S", time.localtime(e.time)), e.message] for e in recoveries
        ]
        table = make_table(["watchdog", "what happened"], events, color=color, width=width)
        parts += ["", table]
    return redact(render(parts, color))


def _trial_table(trials: list[TrialRecord], color: bool, width: int | None) -> Table:
    """One row per trial; the best one (highest metric, earliest on a tie) in bold."""
    best = best_trial(trials)
    rows: list[list[Cell]] = []
    for t in trials:
        bold = color and best is not None and t.number == best.number
        cells = [
            str(t.number),
            t.status,
            fmt_accuracy(t.accuracy),
            fmt_seconds(t.duration),
            str(t.restarts),
            _handle(t.handle),
            fmt_params(t.params) if t.params else "(defaults)",
        ]
        rows.append(
            [
                status_text(cell, color) if i == 1 else styled(cell, "bold", bold)
                for i, cell in enumerate(cells)
            ]
        )
    headers = ["trial", "status", "accuracy", "seconds", "restarts", "process", "params"]
    return make_table(headers, rows, right={0, 2, 3, 4}, color=color, width=width)


def render_runs(
    store: RunStore, runs: list[RunRecord], color: bool = False, width: int | None = None
) -> str:
    """One line per run: its status (coloured when `color`), best metric, commit and source."""
    rows: list[list[Cell]] = []
    for run in runs:
        scored = [t.accuracy for t in store.trials(run.id) if t.accuracy is not None]
        rows.append(
            [
                run.id,
                status_text(run.status, color),
                fmt_accuracy(max(scored) if scored else None),
                (run.sha or "")[:10],
                run.source,
            ]
        )
    headers = ["run", "status", "best", "commit", "source"]
    return redact(render([make_table(headers, rows, right={2}, color=color, width=width)], color))


def _runtime_line(store: RunStore, run_id: str) -> list[str]:
    trained = read_result(store.get_stage(run_id, "train"), Trained)
    if trained is None or not trained.runtime:
        return []
    image = f", image {trained.image}" if trained.runtime == "docker" else ""
    return [f"runtime: {trained.runtime}{image}"]


def _inspect_lines(store: RunStore, run_id: str) -> list[str]:
    """What inspect found and applied: entrypoint, environment, checkpoints, knobs."""
    stage = store.get_stage(run_id, "inspect")
    inspected = read_result(stage, Inspected) if stage.status == StageStatus.SUCCEEDED else None
    return [f"{label}: {text}" for label, text in inspected.facts()] if inspected else []


def _handle(handle: str | None) -> str:
    """`docker:<12 hex>` like `docker ps`, `local:<pid>`."""
    if not handle:
        return "—"
    runtime, _, ident = handle.partition(":")
    return f"{runtime}:{ident[:12]}"


def as_json(data: Any) -> str:
    """JSON for scripts; strings redacted like everything tweakops shows."""
    return json.dumps(redact_deep(data), indent=2, sort_keys=True, default=str)
