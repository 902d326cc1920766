"""report.html: one self-contained page about a run (inline CSS and images, no script)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from notify import RunOutcome
from notify.render import (
    TRIAL_HEADER,
    build_link,
    compact_params,
    log_tail,
    repo_short_name,
    subject,
    summary_rows,
    trial_rows,
)
from tweakops.context import RunContext
from tweakops.errors import TweakopsError
from tweakops.files import atomic_write
from tweakops.records import WATCHDOG_EVENTS, EventRecord, StageRecord, TrialRecord
from tweakops.report.html import NUMERIC_COLUMNS, cell, esc, facts, figure, link, section, table
from tweakops.report.inspection import inspect_section
from tweakops.report.outcome import run_config, run_outcome
from tweakops.report.plots import accuracy_png, epoch_png
from tweakops.report.style import CSS, STATUS_MARKS, TRIAL_PILLS
from tweakops.store import RunStore
from tweakops.trialfiles import read_epochs
from tweakops.vocabulary import StageStatus, TrialVerdict

log = logging.getLogger("tweakops")
REPORT_FILE = "report.html"  # in the run folder
_PARAMS_WIDTH = 400  # the page is wide: params in full, unlike the email's 60 characters


def report_path(store: RunStore, run_id: str) -> Path:
    return store.run_dir(run_id) / REPORT_FILE


def write_report(store: RunStore, run_id: str) -> Path:
    """Render the run's report and write it atomically to its run folder; return the path."""
    return atomic_write(report_path(store, run_id), render_report(store, run_id))


def copy_report(report: Path, folder: Path) -> Path:
    """Copy `report` into `folder` (e.g. a Jenkins workspace, to archive it); the copy's path."""
    try:
        return atomic_write(folder / REPORT_FILE, report.read_bytes())
    except OSError as exc:
        raise TweakopsError(
            f"cannot copy the report to {folder}: {exc.strerror or exc}; "
            "check that the folder can be created and written"
        ) from exc


def try_write_report(store: RunStore, run_id: str) -> Path | None:
    """write_report(), or a logged warning and None: a report never decides how a run ends."""
    try:
        return write_report(store, run_id)
    except Exception as exc:  # whatever broke (a plot, the disk), the email and result go on
        log.warning("[%s] could not write the run report: %s", run_id, exc)
        return None


def render_report(store: RunStore, run_id: str) -> str:
    """The whole page: header, the six stages, plots, trials, restarts and inspect evidence."""
    ctx = RunContext(store, store.get_run(run_id))
    outcome = run_outcome(ctx, run_config(ctx))
    sections = [
        _header(outcome),
        section("Pipeline", _pipeline(store.stages(run_id))),
        section(f"{outcome.metric.capitalize()} per trial", _accuracy_figure(outcome)),
        section(_epochs_title(outcome), _epoch_figure(outcome)),
        section("Trials", _trial_table(outcome)),
        section("Restarts", _restarts(store.events(run_id))),
        section("Inspect: what was found and applied", inspect_section(store, run_id, outcome)),
    ]
    tail = log_tail(outcome)
    if tail:
        sections.append(section("Last log lines", f"<pre>{esc(tail)}</pre>"))
    made = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    footer = f"<footer>tweakops run report · written {made} · {esc(ctx.folder)}</footer>"
    title = f"tweakops · {repo_short_name(outcome.repo)} · run {outcome.run.id}"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join([*sections, footer])
        + "\n</main></body></html>\n"
    )


def _header(outcome: RunOutcome) -> str:
    """The repository, the result as a badge, the headline numbers and the facts of the run."""
    result = "reached" if outcome.reached else "not-reached"
    rows = summary_rows(outcome)
    word = dict(rows).get("Result") or result.replace("-", " ")
    pairs = [
        (label, _fact(label, value))
        for label, value in rows
        if label not in ("Result", "Build")  # the result is the badge; the build a link
    ]
    url = build_link(outcome)
    if url:
        pairs.append(("Build", link(url)))
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(outcome.run.created))
    pairs.append(("Started", esc(started)))
    headline = subject(outcome).split(": ", 1)[-1].rsplit(" (run ", 1)[0]
    return (
        f'<header class="run {result}"><p class="eyebrow">tweakops run report</p>'
        f"<h1>{esc(repo_short_name(outcome.repo))}"
        f'<span class="badge badge-{result}">{esc(word)}</span></h1>'
        f'<p class="headline">{esc(headline)}</p>{facts(pairs)}</header>'
    )


def _fact(label: str, value: str) -> str:
    if label in ("Commit", "Run", "Model", "Best params"):
        return f'<span class="mono">{esc(value)}</span>'
    return esc(value)


def _pipeline(stages: Sequence[StageRecord]) -> str:
    return '<div id="pipeline">' + "".join(_stage_box(s) for s in stages) + "</div>"


def _stage_box(stage: StageRecord) -> str:
    """One stage: its name, status word, seconds and its summary (or error)."""
    seconds = "—" if stage.duration is None else f"{stage.duration:.1f} s"
    note = stage.error or stage.summary or _idle_note(stage)
    mark = STATUS_MARKS.get(stage.status, "")
    return (
        f'<div class="stage stage-{esc(stage.status)}" data-stage="{esc(stage.name)}">'
        f'<div class="stage-head"><span class="stage-name">{esc(stage.name)}</span>'
        f'<span class="stage-time">{seconds}</span></div>'
        f'<div class="stage-status">{mark} {esc(stage.status)}</div>'
        f'<p class="stage-note" title="{esc(note)}">{esc(note)}</p></div>'
    )


def _idle_note(stage: StageRecord) -> str:
    if stage.status == StageStatus.RUNNING and stage.started is not None:
        return "running since " + time.strftime("%H:%M:%S", time.localtime(stage.started))
    return "not started" if stage.status == StageStatus.PENDING else ""


def _accuracy_figure(outcome: RunOutcome) -> str:
    if not outcome.trials:
        return '<p class="empty">No trial ran, so there is nothing to plot.</p>'
    png = accuracy_png(outcome.trials, outcome.threshold, outcome.metric)
    alt = f"{outcome.metric} per trial, best so far and threshold {outcome.threshold:g}"
    return figure("accuracy-plot", png, alt)


def _epochs_title(outcome: RunOutcome) -> str:
    best = outcome.best
    return f"Epochs of the best trial (trial {best.number})" if best else "Epochs of the best trial"


def _epoch_figure(outcome: RunOutcome) -> str:
    best = outcome.best
    if best is None:
        return f'<p class="empty">No trial measured {esc(outcome.metric)}: no best trial.</p>'
    epochs = read_epochs(Path(best.folder), Path(best.folder) / "output") if best.folder else []
    png = epoch_png(epochs, outcome.threshold)
    if png is None:
        return (
            f'<p class="empty">Trial {best.number} logged no epochs (training.log_epoch or '
            "training.keras_callbacks() record them), so there are no curves to show.</p>"
        )
    return figure("epoch-plot", png, f"metrics per epoch of trial {best.number}")


def _trial_table(outcome: RunOutcome) -> str:
    """The trials as in the email (shared rows), the best one highlighted, params in full."""
    if not outcome.trials:
        return '<p class="empty">No trials.</p>'
    best = outcome.best.number if outcome.best else None
    trials = sorted(outcome.trials, key=lambda t: t.number)
    notes = [t.error or (t.verdict if t.verdict != TrialVerdict.OK else "") or "" for t in trials]
    body = []
    for trial, row, note in zip(trials, trial_rows(outcome), notes, strict=True):
        is_best = trial.number == best
        cells = [
            _trial_cell(name, text, trial, is_best)
            for name, text in zip(TRIAL_HEADER, row, strict=True)
        ]
        if any(notes):
            cells.append(cell("note", note))
        css = ' class="best"' if is_best else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    header = (*TRIAL_HEADER, "note") if any(notes) else TRIAL_HEADER
    return table(header, body, NUMERIC_COLUMNS)


def _trial_cell(column: str, text: str, trial: TrialRecord, best: bool) -> str:
    if column == "status":
        return (
            f'<td><span class="pill pill-{TRIAL_PILLS.get(text, "other")}">{esc(text)}</span></td>'
        )
    if column == "params":
        params = compact_params(trial.params, width=_PARAMS_WIDTH) if trial.params else "defaults"
        return f'<td class="mono">{esc(params)}</td>'
    if column == "#" and best:
        return f'<td class="num">{esc(text)}<span class="tag">best</span></td>'
    return cell(column, text)


def _restarts(events: Sequence[EventRecord]) -> str:
    watchdog = [e for e in events if e.kind in WATCHDOG_EVENTS]
    if not watchdog:
        return '<p class="empty">no restarts: every trial ran to its end in one go.</p>'
    rows = [
        "<tr>"
        + cell("time", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time)), "mono")
        + cell("event", e.kind.replace("_", " "))
        + cell("message", e.message)
        + "</tr>"
        for e in watchdog
    ]
    return table(("time", "event", "message"), rows)
