"""Search spaces: parsed from tweakops.yaml, validated, turned into Optuna distributions."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tweakops.errors import quoted

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPES = ("float", "int", "categorical")


class SpaceError(ValueError):
    """A search-space entry is invalid; the message names the parameter."""


@dataclass(frozen=True)
class ParamSpec:
    """One tunable hyperparameter."""

    name: str
    type: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self) -> BaseDistribution:
        if self.type == "categorical":
            return CategoricalDistribution(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step) if self.step else 1
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=step)
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def to_dict(self) -> dict[str, Any]:
        if self.type == "categorical":
            return {"type": self.type, "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


def parse_space(raw: object) -> tuple[ParamSpec, ...]:
    """Parse the `search_space` mapping; raise SpaceError naming the bad entry."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise SpaceError(f"must be a mapping of parameter name to range, got {type(raw).__name__}")
    return tuple(parse_param(str(name), spec) for name, spec in raw.items())


def parse_param(name: str, spec: object) -> ParamSpec:
    if not _NAME.match(name):
        raise SpaceError(
            f"{quoted(name)} is not a valid parameter name (letters, digits, underscore)"
        )
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return _categorical(name, list(spec))
    if not isinstance(spec, Mapping):
        raise SpaceError(
            f"{name}: expected a mapping like {{type: float, low: 0.001, high: 0.1}} "
            f"or a list of choices, got {quoted(spec)}"
        )
    kind = spec.get("type")
    if kind not in _TYPES:
        raise SpaceError(f"{name}.type must be one of {', '.join(_TYPES)}, got {quoted(kind)}")
    allowed = (
        {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
    )
    unknown = sorted(set(map(str, spec)) - allowed)
    if unknown:
        raise SpaceError(
            f"{name}: unknown key {quoted(unknown[0])} for a {kind} (allowed: {sorted(allowed)})"
        )
    if kind == "categorical":
        return _categorical(name, spec.get("choices"))
    return _numeric(name, str(kind), spec)


def _categorical(name: str, choices: object) -> ParamSpec:
    if not isinstance(choices, list) or not choices:
        raise SpaceError(f"{name}.choices must be a non-empty list, got {quoted(choices)}")
    for choice in choices:
        if not isinstance(choice, str | int | float | bool) and choice is not None:
            raise SpaceError(
                f"{name}.choices may hold strings, numbers, booleans; got {quoted(choice)}"
            )
    return ParamSpec(name=name, type="categorical", choices=tuple(choices))


def _number(name: str, key: str, value: object, integer: bool) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise SpaceError(f"{name}.{key} must be a number, got {quoted(value)}")
    if integer and float(value) != int(value):
        raise SpaceError(
            f"{name}.{key} must be a whole number for an int parameter, got {quoted(value)}"
        )
    return float(value)


def _numeric(name: str, kind: str, spec: Mapping[str, Any]) -> ParamSpec:
    integer = kind == "int"
    for key in ("low", "high"):
        if key not in spec:
            raise SpaceError(f"{name}.{key} is required for a {kind} parameter")
    low = _number(name, "low", spec["low"], integer)
    high = _number(name, "high", spec["high"], integer)
    if low >= high:
        raise SpaceError(
            f"{name}: low must be below high, got low={spec['low']} high={spec['high']}"
        )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{name}.log must be true or false, got {quoted(log)}")
    if log and low <= 0:
        raise SpaceError(f"{name}: a log range needs low > 0, got {spec['low']}")
    step = spec.get("step")
    if step is not None:
        step = _number(name, "step", step, integer)
        if step <= 0 or log:
            raise SpaceError(f"{name}.step must be > 0 and cannot be combined with log")
    return ParamSpec(name=name, type=kind, low=low, high=high, log=log, step=step)
