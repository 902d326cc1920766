"""Hyperparameters handed to the entrypoint as a JSON file (env TWEAKOPS_PARAMS).

In a trial, every value param() hands out is also written to output_dir()/params_used.json,
defaults included: trial 0 is how the host learns what the code trains with when nobody
changes anything (the values tuning grows its first trial from).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar, cast

from training._paths import OUTPUT_ENV, output_dir
from training.files import atomic_write

PARAMS_ENV = "TWEAKOPS_PARAMS"
USED_FILE = "params_used.json"

T = TypeVar("T")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def params() -> dict[str, Any]:
    """All hyperparameters of this trial; {} when TWEAKOPS_PARAMS is unset (run by hand)."""
    value = os.environ.get(PARAMS_ENV, "")
    if not value:
        return {}
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(
            f"{PARAMS_ENV} points at {path}, which cannot be read ({exc.strerror}): "
            "it must name a JSON file of hyperparameters, or be unset"
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{PARAMS_ENV} file {path} is not valid JSON ({exc}): "
            'expected an object such as {"epochs": 10}'
        ) from exc
    if not isinstance(data, dict):
        raise ValueError(
            f"{PARAMS_ENV} file {path} holds a {type(data).__name__}: "
            'expected a JSON object such as {"epochs": 10}'
        )
    return data


def param(name: str, default: T) -> T:
    """params()[name] or `default`, cast to the type of `default` when it is bool/int/float/str."""
    value = _cast(name, params().get(name, default), default)
    _record(name, value)
    return cast(T, value)


_used: dict[str, Any] = {}  # what param() handed out in this process, as in USED_FILE


def _record(name: str, value: Any) -> None:
    """Add `name` to params_used.json, in a trial only (run by hand, nothing is written)."""
    if not os.environ.get(OUTPUT_ENV) or not isinstance(value, bool | int | float | str):
        return
    if name in _used and _used[name] == value:
        return
    _used[name] = value
    atomic_write(output_dir() / USED_FILE, json.dumps(_used, sort_keys=True) + "\n")


def _cast(name: str, value: Any, default: Any) -> Any:
    """Convert `value` to type(default); a value that does not fit is a ValueError naming `name`."""
    kind = type(default)
    try:
        if isinstance(default, bool):
            return _to_bool(value)
        if isinstance(default, int):
            return _to_int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError("a bool is not a number")
            return float(value)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"hyperparameter {name!r} must be a {kind.__name__} like its default "
            f"{default!r}, but got {value!r} ({exc})"
        ) from exc
    return value


def _to_bool(value: Any) -> bool:
    """True/False, 1/0 or the strings true/false/yes/no/on/off/1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false")


def _to_int(value: Any) -> int:
    """An int from an int, a whole float (3.0) or a numeric string; never truncates."""
    if isinstance(value, bool):
        raise ValueError("a bool is not an int")
    if isinstance(value, int):
        return value
    number = float(value)
    if not number.is_integer():
        raise ValueError("not a whole number")
    return int(number)
