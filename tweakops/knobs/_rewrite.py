"""Write a trial's values into its own copy of the code, at the knobs' exact spans.

Each span is checked against the text inspect saw before it is replaced, the new text is
spliced by position (never a regex), and the change comes back as a unified diff.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tweakops.analysis.code_units import read_units, write_units
from tweakops.errors import InspectError
from tweakops.knobs._model import OPTIMIZER_KNOB, Knob, Site
from tweakops.knobs._source import lines_of, segment


def apply_knobs(src: Path, knobs: Sequence[Knob], params: Mapping[str, Any]) -> str:
    """Write `params` into the knobs they name under `src`; return the unified diff."""
    chosen = [k for k in knobs if k.name in params]
    by_file: dict[str, list[Knob]] = defaultdict(list)
    for knob in chosen:
        by_file[knob.site.file].append(knob)
    diffs: list[str] = []
    for file in sorted(by_file):
        units = {unit.cell: unit for unit in read_units(src, file)}
        by_unit: dict[int | None, list[Knob]] = defaultdict(list)
        for knob in by_file[file]:
            by_unit[knob.site.cell].append(knob)
        texts: dict[int | None, str] = {}
        for cell in sorted(by_unit, key=lambda c: c or 0):
            unit = units.get(cell)
            if unit is None:
                raise _moved(by_unit[cell][0].site, "the cell is gone")
            texts[cell] = splice(unit.text, by_unit[cell], params)
            diffs.append(unified_diff(unit.text, texts[cell], unit.label))
        write_units(src, file, texts)
    return "".join(diffs)


def splice(text: str, knobs: Sequence[Knob], params: Mapping[str, Any]) -> str:
    """`text` with each knob's span replaced by its new value (groups sharing a span once)."""
    groups: dict[tuple[int, int, int, int], list[Knob]] = defaultdict(list)
    for knob in knobs:
        site = knob.site
        groups[(site.line, site.col, site.end_line, site.end_col)].append(knob)
    lines = [line.encode("utf-8") for line in lines_of(text)]
    for (line, col, end_line, end_col), group in sorted(groups.items(), reverse=True):
        site = group[0].site
        found = segment(text, line, col, end_line, end_col)
        if found != site.text:
            raise _moved(site, f"expected {site.text!r}, found {found!r}")
        new = replacement(group, params).encode("utf-8")
        head, tail = lines[line - 1][:col], lines[end_line - 1][end_col:]
        lines[line - 1 : end_line] = (head + new + tail).split(b"\n")
    return b"\n".join(lines).decode("utf-8")


def replacement(group: Sequence[Knob], params: Mapping[str, Any]) -> str:
    """The new text of one span from the values of the knobs written there."""
    site = group[0].site
    if site.form == "keyword":
        parts = [f"{k.site.keyword}={code(params[k.name])}" for k in group]
        return (", " if site.comma else "") + ", ".join(parts)
    if site.form == "optimizer":
        chosen = next((k for k in group if k.what == OPTIMIZER_KNOB), None)
        rate = next((k for k in group if k.what != OPTIMIZER_KNOB), None)
        name = params.get(chosen.name, chosen.default) if chosen else _optimizer_in(site)
        if rate is None or rate.name not in params:
            return code(name)
        return (
            f"{{'class_name': {name!r}, 'config': {{'learning_rate': {code(params[rate.name])}}}}}"
        )
    value = params[group[0].name]
    return f"({value}, {value})" if site.form == "pair" else code(value)


def code(value: Any) -> str:
    """A value as Python source."""
    return repr(value)


def unified_diff(old: str, new: str, label: str) -> str:
    """A unified diff of one unit, every line ending in a newline."""
    lines = difflib.unified_diff(
        _with_newlines(old), _with_newlines(new), fromfile=f"a/{label}", tofile=f"b/{label}"
    )
    return "".join(lines)


def _with_newlines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(True)]


def _optimizer_in(site: Site) -> str:
    return site.text.strip("'\"")


def _moved(site: Site, why: str) -> InspectError:
    return InspectError(
        f"the trial's copy of {site.where} is not what inspect read ({why}): "
        "run `tweakops inspect` again on this run"
    )
