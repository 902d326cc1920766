"""The report's inspect section: why this image and entrypoint, what was installed, the knobs,
and the best trial's change to the code (its changes.diff)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from notify import RunOutcome
from tweakops.analysis.inspection import InspectResult
from tweakops.analysis.record import Inspected
from tweakops.report.html import cell, esc, facts, table
from tweakops.results import read_result
from tweakops.store import RunStore
from tweakops.trialfiles import CHANGES_FILE, TrialFileRefused, read_text
from tweakops.vocabulary import StageStatus


def inspect_section(store: RunStore, run_id: str, outcome: RunOutcome) -> str:
    stage = store.get_stage(run_id, "inspect")
    inspected = read_result(stage, Inspected) if stage.status == StageStatus.SUCCEEDED else None
    if inspected is None:
        why = stage.error or f"the inspect stage is {stage.status}"
        return f'<p class="empty">Nothing recorded: {esc(why)}.</p>'
    found = inspected.found
    env = inspected.environment
    where = (
        ("Image", inspected.image)
        if env is None or env.runtime == "docker"
        else (
            "Runtime",
            "local (this machine's Python)",
        )
    )
    pairs = [("Framework", found.framework), where, ("Rule", found.rule)]
    pairs += [(label.capitalize(), text) for label, text in inspected.facts()]
    parts = [f'<div class="inspect">{facts([(k, esc(v)) for k, v in pairs])}']
    parts.append(_evidence(found))
    if inspected.knobs:
        parts.append(_knobs(inspected))
    parts.append(_best_change(outcome))
    if found.skipped:
        items = "".join(f"<li>{esc(s)}</li>" for s in found.skipped)
        parts.append(f"<p>Files or cells that did not parse:</p><ul>{items}</ul>")
    return "".join(parts) + "</div>"


def _evidence(found: InspectResult) -> str:
    rows = [
        "<tr>"
        + cell("where", f"{e.file}:{e.line}", "mono")
        + cell("framework", e.framework)
        + cell("evidence", e.what, "mono")
        + "</tr>"
        for e in found.evidence
    ]
    if rows:
        return table(("where", "framework", "evidence"), rows)
    rule = esc(found.rule or "—")
    return f'<p class="empty">No code evidence: the rule “{rule}” chose the image.</p>'


def _knobs(inspected: Inspected) -> str:
    rows = [
        "<tr>"
        + cell("knob", knob.name, "mono")
        + cell("where", knob.site.where, "mono")
        + cell("what", knob.what)
        + cell("in the code", repr(knob.default), "mono")
        + cell("range", _range(knob.spec.to_dict()), "mono")
        + cell("tuned", "yes" if knob.name in inspected.tuned else "no")
        + "</tr>"
        for knob in inspected.knobs
    ]
    header = ("knob", "where", "what", "in the code", "range", "tuned")
    return "<p>Knobs found in the code:</p>" + table(header, rows)


def _range(spec: dict[str, Any]) -> str:
    if spec["type"] == "categorical":
        return " | ".join(map(repr, spec["choices"]))
    scale = ", log" if spec.get("log") else ""
    return f"{spec['type']} {spec['low']:g} … {spec['high']:g}{scale}"


def _best_change(outcome: RunOutcome) -> str:
    best = outcome.best
    if best is None or not best.folder:
        return ""
    folder = Path(best.folder)
    try:
        diff = read_text(folder, folder / CHANGES_FILE)
    except FileNotFoundError:
        return ""
    except (OSError, TrialFileRefused) as exc:
        return f'<p class="empty">{esc(exc)}</p>'
    title = f"What the best trial (trial {best.number}) changed in its copy of the code"
    if not diff.strip():
        return f'<p class="empty">{esc(title)}: nothing, it ran the code as written.</p>'
    lines = "".join(_diff_line(line) for line in diff.splitlines(keepends=True))
    return f'<p>{esc(title)} (changes.diff):</p><pre id="best-diff">{lines}</pre>'


def _diff_line(line: str) -> str:
    """One diff line, added and removed lines marked for colour (headers left plain)."""
    kind = {"+": "add", "-": "del"}.get(line[:1]) if line[:3] not in ("+++", "---") else None
    return f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line)
