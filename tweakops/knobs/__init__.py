"""Knobs: the tunable literals of a user's code, found with ast and written into trial copies.

knobs = infer_knobs(root, ["model.py"])          # inspect
print(space_yaml(knobs))                          # a search_space: block to paste
diff = apply_knobs(trial / "src", knobs, params)  # a trial's own copy, never the repo
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from tuning.space import ParamSpec
from tweakops.analysis.code_units import read_units
from tweakops.knobs._keras import keras_knobs
from tweakops.knobs._model import Knob, Site
from tweakops.knobs._rewrite import apply_knobs, unified_diff
from tweakops.knobs._rules import spec_yaml
from tweakops.knobs._sklearn import ESTIMATORS, sklearn_knobs
from tweakops.knobs._source import FileCode

__all__ = [
    "ESTIMATORS",
    "Knob",
    "Site",
    "apply_knobs",
    "infer_knobs",
    "knob_space",
    "space_yaml",
    "unified_diff",
]


def infer_knobs(root: Path, files: Iterable[str]) -> tuple[Knob, ...]:
    """The knobs of `files` (the entrypoint and the repo modules it imports), in source order.

    A name found more than once gets a number (`dense_units_1`, `dense_units_2`); a literal
    reached twice (one constant passed to two calls) is one knob, named by its first use.
    """
    found: list[tuple[str, Knob]] = []
    seen: set[tuple[str, int | None, int, int, str]] = set()
    for rel in files:
        code = FileCode.of(read_units(root, rel))
        for base, knob in [*keras_knobs(code), *sklearn_knobs(code)]:
            site = knob.site  # one knob per literal; an optimizer string carries two
            role = base if site.form == "optimizer" else ""
            key = (site.file, site.cell, site.line, site.col, f"{role}:{site.keyword}")
            if key not in seen:
                seen.add(key)
                found.append((base, knob))
    counts = Counter(base for base, _ in found)
    numbered: Counter[str] = Counter()
    knobs = []
    for base, knob in found:
        numbered[base] += 1
        name = base if counts[base] == 1 else f"{base}_{numbered[base]}"
        knobs.append(replace(knob, name=name, spec=replace(knob.spec, name=name)))
    return tuple(knobs)


def knob_space(knobs: Sequence[Knob]) -> tuple[ParamSpec, ...]:
    """The search space the knobs span."""
    return tuple(knob.spec for knob in knobs)


def space_yaml(knobs: Sequence[Knob]) -> str:
    """A ready-to-paste `search_space:` block, each line commented with where and what."""
    if not knobs:
        return ""
    entries = [(f"  {k.name}: {spec_yaml(k.spec)}", _comment(k)) for k in knobs]
    width = max(len(entry) for entry, _ in entries)
    lines = [f"{entry.ljust(width)}  # {comment}" for entry, comment in entries]
    return "\n".join(["search_space:", *lines])


def _comment(knob: Knob) -> str:
    written = "default" if knob.site.form == "keyword" else "written"
    return f"{knob.site.where} {knob.what}, {written} {knob.default!r}"
