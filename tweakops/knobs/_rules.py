"""Range rules: the search range of a knob, from the value the code has (its default).

Every range holds the default, so trial 0 is a point of the space. The README's
"Your script as it is" lists these rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tuning.space import ParamSpec

Rule = Callable[[str, Any], tuple[ParamSpec, str] | None]
# Keras' string optimizers by their default learning rate: a knob switches only within a
# family, so that the learning-rate range around the written optimizer's default still fits.
ADAPTIVE = ("adam", "rmsprop", "nadam")  # and adamax, adagrad...: 0.001
DEFAULT_LEARNING_RATES = {"sgd": 0.01}  # every other one defaults to 0.001


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _whole(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number == int(number) and number >= 1 else None


def epochs(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _whole(default)
    if d is None:
        return None
    high = max(4 * d, d + 4)
    return ParamSpec(
        name, "int", low=d, high=high
    ), "int from the written value to 4× (+4 at least)"


def _log_ints(down: int, up: int, floor: int, text: str) -> Rule:
    """int from the written value ÷ `down` (at least `floor`) to × `up`, log scale."""

    def rule(name: str, default: Any) -> tuple[ParamSpec, str] | None:
        d = _whole(default)
        if d is None:
            return None
        low = max(floor, d // down)
        return ParamSpec(name, "int", low=low, high=max(up * d, low + 1), log=True), text

    return rule


sizes = _log_ints(2, 4, 1, "int from ½× to 4×, log scale")
trees = _log_ints(4, 4, 2, "int from ¼× to 4×, log scale")
iterations = _log_ints(1, 10, 1, "int from 1× to 10×, log scale")


def batch(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _whole(default)
    if d is None:
        return None
    choices = sorted({max(1, d // 4), max(1, d // 2), d, 2 * d})
    return ParamSpec(
        name, "categorical", choices=tuple(choices)
    ), "¼×, ½×, 1×, 2× the written value"


def kernel(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _whole(default)
    if d is None:
        return None
    choices = tuple(sorted({d, 3, 5}))
    return ParamSpec(name, "categorical", choices=choices), "the written size, 3 or 5"


def neighbors(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _whole(default)
    if d is None:
        return None
    return ParamSpec(name, "int", low=1, high=max(30, 4 * d)), "int from 1 to 30 (4× if larger)"


def leaf(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _whole(default)
    if d is None:
        return None
    return ParamSpec(name, "int", low=1, high=max(20, 4 * d)), "int from 1 to 20 (4× if larger)"


def rate(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _number(default)
    if d is None or not 0 <= d < 1:
        return None
    high = max(0.5, min(0.9, 2 * d))
    return ParamSpec(name, "float", low=0.0, high=high), "float from 0 to 2× (0.5 to 0.9)"


def fraction(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _number(default)
    if d is None or not 0 < d <= 1:
        return None
    low = min(0.5, d / 2)
    return ParamSpec(name, "float", low=low, high=1.0), "float from ½× (0.5 at most) to 1"


def learning_rate(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _number(default)
    if d is None or d <= 0:
        return None
    spec = ParamSpec(name, "float", low=d / 10, high=min(1.0, d * 10), log=True)
    return spec, "float from ⅒× to 10×, log scale"


def penalty(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    d = _number(default)
    if d is None or d < 0:
        return None
    if d == 0:
        return ParamSpec(name, "float", low=0.0, high=1.0), "float from 0 to 1"
    return ParamSpec(name, "float", low=d / 100, high=d * 100, log=True), (
        "float from 1/100× to 100×, log scale"
    )


def depth(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    if default is None:
        choices = (None, 4, 8, 16, 32)
        return ParamSpec(name, "categorical", choices=choices), "unlimited, 4, 8, 16 or 32"
    d = _whole(default)
    if d is None:
        return None
    return ParamSpec(name, "int", low=max(1, d // 2), high=max(4 * d, d + 4)), (
        "int from ½× to 4× (+4 at least)"
    )


def choices(*options: Any) -> Rule:
    """A categorical of the written value first, then `options`."""

    def rule(name: str, default: Any) -> tuple[ParamSpec, str] | None:
        if not isinstance(default, str | int | float | type(None)):
            return None
        values = tuple(dict.fromkeys([default, *options]))
        shown = ", ".join("None" if v is None else str(v) for v in values)
        return ParamSpec(name, "categorical", choices=values), f"one of {shown}"

    return rule


def optimizer(name: str, default: Any) -> tuple[ParamSpec, str] | None:
    """The written optimizer or another of the same family; none to choose for sgd."""
    if not isinstance(default, str) or default.lower() not in ADAPTIVE:
        return None
    return choices(*ADAPTIVE[:2])(name, default)


def default_learning_rate(optimizer_name: str) -> float:
    """Keras' default learning rate of a string optimizer."""
    return DEFAULT_LEARNING_RATES.get(optimizer_name.lower(), 0.001)


def spec_yaml(spec: ParamSpec) -> str:
    """A ParamSpec as one flow-style YAML mapping (or list) for a search_space block."""
    if spec.type == "categorical":
        return "[" + ", ".join(_yaml_scalar(c) for c in spec.choices) + "]"
    parts = [f"type: {spec.type}", f"low: {_yaml_scalar(_plain(spec.low, spec.type))}"]
    parts.append(f"high: {_yaml_scalar(_plain(spec.high, spec.type))}")
    if spec.log:
        parts.append("log: true")
    return "{" + ", ".join(parts) + "}"


def _plain(value: float | None, kind: str) -> Any:
    return int(value) if kind == "int" and value is not None else value


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}"
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # YAML 1.1 reads 1e-05 as a string, 1.0e-05 as a float
            return f"{mantissa}.0e{exponent}"
        return text if "." in text or e else f"{text}.0"
    return str(value) if isinstance(value, int) else repr(str(value))
