"""Plain-text and HTML bodies of the run report, built from the same rows."""

from __future__ import annotations

import html
import json
from typing import Any

from notify.outcome import RunOutcome
from tweakops.redact import redact
from tweakops.vocabulary import RunStatus

DASH = "—"
DEFAULTS = "defaults"  # the params of trial 0: the script's own
LOG_TAIL_LINES = 40
PARAMS_WIDTH = 60
TRIAL_HEADER: tuple[str, ...] = ("#", "status", "accuracy", "duration s", "restarts", "params")
_RIGHT_ALIGNED = {0, 2, 3, 4}


def fmt_metric(value: float | None) -> str:
    """An accuracy with 3 decimals, or a dash when unknown."""
    return DASH if value is None else f"{value:.3f}"


def fmt_threshold(value: float) -> str:
    """A threshold as written by people: 0.97, not 0.970000."""
    return f"{value:g}"


def compact_params(params: dict[str, Any], width: int = PARAMS_WIDTH) -> str:
    """key=value pairs on one line, cut with an ellipsis past `width` characters."""
    parts = [f"{key}={_fmt_value(value)}" for key, value in params.items()]
    text = " ".join(parts) or DASH
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str | int | bool) or value is None:
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def repo_short_name(repo: str) -> str:
    """`mnist` from https://host/team/mnist.git, git@host:team/mnist.git or /srv/mnist/."""
    tail = repo.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]
    return tail.removesuffix(".git") or repo


def subject(outcome: RunOutcome) -> str:
    """One line that says reached, not reached or failed, the numbers, and the run."""
    name = repo_short_name(outcome.repo)
    threshold = fmt_threshold(outcome.threshold)
    best = outcome.best.accuracy if outcome.best else None
    missed = "run failed" if outcome.run.status == RunStatus.FAILED else "threshold not reached"
    if outcome.reached:
        result = f"threshold reached — {outcome.metric} {fmt_metric(best)} ≥ {threshold}"
    elif best is None:
        result = f"{missed} — no {outcome.metric} measured, target {threshold}"
    else:
        result = f"{missed} — best {fmt_metric(best)} < {threshold}"
    return f"[tweakops] {name}: {result} (run {outcome.run.id})"


def build_link(outcome: RunOutcome) -> str | None:
    """The CI build that produced the run, if known."""
    return outcome.build_url or outcome.run.build_url


def summary_rows(outcome: RunOutcome) -> list[tuple[str, str]]:
    """Label/value pairs at the top of both bodies."""
    best = outcome.best
    commit = outcome.commit or outcome.run.sha
    rows = [
        ("Repository", outcome.repo),
        ("Commit", commit[:10] if commit else DASH),
        ("Branch", outcome.branch or DASH),
        ("Run", outcome.run.id),
        ("Threshold", f"{outcome.metric} ≥ {fmt_threshold(outcome.threshold)}"),
        *([("Settings from", outcome.settings)] if outcome.settings else []),
        ("Result", _result_word(outcome)),
        ("Verdict", outcome.verdict or DASH),
        ("Best", f"{fmt_metric(best.accuracy)} (trial {best.number})" if best else DASH),
        ("Best params", compact_params(best.params, width=200) if best else DASH),
        ("Model", outcome.model_path or DASH),
        ("Trials", _trial_summary(outcome)),
        ("Restarts", _restart_summary(outcome)),
    ]
    if outcome.report_path:
        rows.append(("Report", outcome.report_path))
    link = build_link(outcome)
    if link:
        rows.append(("Build", link))
    return [(label, redact(value)) for label, value in rows]


def _result_word(outcome: RunOutcome) -> str:
    if outcome.reached:
        return "reached"
    return "failed" if outcome.run.status == RunStatus.FAILED else "not reached"


def _trial_summary(outcome: RunOutcome) -> str:
    counts: dict[str, int] = {}
    for trial in outcome.trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    by_status = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    seconds = sum(t.duration or 0.0 for t in outcome.trials)
    detail = f" ({by_status})" if by_status else ""
    return f"{len(outcome.trials)}{detail}, {seconds:.1f} s of training"


def _restart_summary(outcome: RunOutcome) -> str:
    restarted = [t for t in outcome.trials if t.restarts]
    if not restarted:
        return "none"
    total = sum(t.restarts for t in restarted)
    each = ", ".join(f"trial {t.number}: {t.restarts}" for t in restarted)
    return f"{total} ({each})"


def trial_rows(outcome: RunOutcome) -> list[tuple[str, ...]]:
    """One row per trial, in trial order, as strings."""
    rows: list[tuple[str, ...]] = []
    for trial in sorted(outcome.trials, key=lambda t: t.number):
        duration = DASH if trial.duration is None else f"{trial.duration:.1f}"
        rows.append(
            (
                str(trial.number),
                trial.status,
                fmt_metric(trial.accuracy),
                duration,
                str(trial.restarts),
                compact_params(trial.params) if trial.params else DEFAULTS,
            )
        )
    return rows


def log_tail(outcome: RunOutcome) -> str:
    """The last log lines, shown only when the threshold was not reached."""
    if outcome.reached or not outcome.log_tail.strip():
        return ""
    return redact("\n".join(outcome.log_tail.rstrip().splitlines()[-LOG_TAIL_LINES:]))


def fixed_width_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in _RIGHT_ALIGNED else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def text_body(outcome: RunOutcome) -> str:
    """The plain-text report."""
    summary = summary_rows(outcome)
    label_width = max(len(label) for label, _ in summary)
    parts = [subject(outcome).removeprefix("[tweakops] "), ""]
    parts += [f"{label.ljust(label_width)}  {value}" for label, value in summary]
    parts += ["", "Trials", fixed_width_table(TRIAL_HEADER, trial_rows(outcome))]
    tail = log_tail(outcome)
    if tail:
        parts += ["", "Last log lines", tail]
    return "\n".join(parts) + "\n"


_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;"
_PAGE = "font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#222;"


def html_body(outcome: RunOutcome, plot_cid: str | None = None) -> str:
    """The HTML report: same content as the text, every value escaped, CSS inline.

    `plot_cid` is the Content-ID of the accuracy plot, shown under the trial table.
    """
    colour = "#1a7f37" if outcome.reached else "#b42318"
    title = html.escape(subject(outcome).removeprefix("[tweakops] "))
    parts = [f'<html><body style="{_PAGE}">', f'<h2 style="color:{colour};">{title}</h2>']
    parts.append('<table style="border-collapse:collapse;">')
    for label, value in summary_rows(outcome):
        parts.append(f'<tr><th style="{_CELL}text-align:left;">{html.escape(label)}</th>')
        parts.append(f'<td style="{_CELL}">{_html_value(label, value)}</td></tr>')
    parts.append("</table>")
    best = str(outcome.best.number) if outcome.best else None
    parts.append("<h3>Trials</h3>" + _html_table(TRIAL_HEADER, trial_rows(outcome), best))
    if plot_cid:
        alt = f"{outcome.metric} per trial, best so far and the threshold"
        img = f'<img src="cid:{html.escape(plot_cid)}" alt="{html.escape(alt)}" width="700">'
        parts.append(f"<h3>{html.escape(outcome.metric.capitalize())} per trial</h3>{img}")
    tail = log_tail(outcome)
    if tail:
        pre = "background:#f6f8fa;padding:8px;font-size:12px;white-space:pre-wrap;"
        parts.append(f'<h3>Last log lines</h3><pre style="{pre}">{html.escape(tail)}</pre>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_value(label: str, value: str) -> str:
    escaped = html.escape(value)
    if label == "Build" and value.startswith(("http://", "https://")):
        return f'<a href="{escaped}">{escaped}</a>'
    return escaped


def _html_table(header: tuple[str, ...], rows: list[tuple[str, ...]], best: str | None) -> str:
    """The trial table; the row whose # is `best` in bold on green, as in report.html."""

    def cells(row: tuple[str, ...], tag: str) -> str:
        out = []
        for i, cell in enumerate(row):
            align = "right" if i in _RIGHT_ALIGNED else "left"
            style = f"{_CELL}text-align:{align};font-family:monospace;"
            out.append(f'<{tag} style="{style}">{html.escape(cell)}</{tag}>')
        highlight = ' style="background:#dcf3e3;font-weight:bold;"' if row[0] == best else ""
        return f"<tr{highlight}>" + "".join(out) + "</tr>"

    body = [cells(header, "th"), *(cells(row, "td") for row in rows)]
    return '<table style="border-collapse:collapse;">' + "".join(body) + "</table>"
