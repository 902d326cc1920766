"""The first tuned trial: trial 0's values, with every size knob at the top of its range.

Trial 0 trains the code as written. When it misses the threshold, the likeliest reason is too
small a model or too little training, so the first tuned trial keeps trial 0's values and sets
every size knob (epochs, layers and blocks, units, filters, estimators, iterations, depth) to
the largest value the search space allows. When that reaches the threshold, tuning is over
after one trial; when it does not, the sampler has learned that size alone is not enough.
A knob that is not a size keeps trial 0's value (its learning rate, optimizer, batch size);
one that trial 0 did not report, or whose value is outside the space, is left to the sampler.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tuning.space import ParamSpec

SIZE_WORDS = frozenset(
    {
        "epoch",
        "epochs",
        "layer",
        "layers",
        "blocks",
        "units",
        "neurons",
        "hidden",
        "dim",
        "filters",
        "channels",
        "width",
        "depth",
        "estimators",
        "trees",
        "nodes",
        "iter",
        "iterations",
    }
)
_WORD = re.compile(r"[a-z]+")


def is_size(name: str) -> bool:
    """A knob whose larger values mean a bigger model or more training, named by what it
    counts (its last word): `epochs`, `dense_units`, `n_estimators`, `max_depth`, `n_hidden`,
    and `hidden_size(s)`; never a `min_…` (min_samples_leaf shrinks), `epoch_seconds` nor
    `hidden_dropout`."""
    words = _WORD.findall(name.lower())
    if not words or "min" in words:
        return False
    hidden_size = words[0] == "hidden" and words[-1] in ("size", "sizes")
    return words[-1] in SIZE_WORDS or hidden_size


def grown(space: Sequence[ParamSpec], trial0: Mapping[str, Any]) -> dict[str, Any]:
    """The first tuned trial's params (partial: the sampler picks the rest); {} when the
    space has no size knob to grow."""
    params: dict[str, Any] = {}
    for spec in space:
        top = _top(spec) if is_size(spec.name) else None
        if top is not None:
            params[spec.name] = top
        elif spec.name in trial0 and _within(spec, trial0[spec.name]):
            params[spec.name] = trial0[spec.name]
    return params if any(is_size(name) for name in params) else {}


def _top(spec: ParamSpec) -> Any:
    """The largest value of a numeric knob (on its step), or of numeric choices; else None."""
    if spec.type == "categorical":
        numbers = [c for c in spec.choices if _number(c)]
        return max(numbers) if numbers and len(numbers) == len(spec.choices) else None
    distribution = spec.distribution()
    return distribution.high  # type: ignore[attr-defined]  # Optuna puts it on the step


def _within(spec: ParamSpec, value: Any) -> bool:
    if spec.type == "categorical":
        return any(value == c and type(value) is type(c) for c in spec.choices)
    if not _number(value) or (spec.type == "int" and not isinstance(value, int)):
        return False
    assert spec.low is not None and spec.high is not None
    if not spec.low <= value <= spec.high:
        return False
    if spec.step is None:
        return True
    steps = (value - spec.low) / spec.step
    return math.isclose(steps, round(steps), abs_tol=1e-9)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
